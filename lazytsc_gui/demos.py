"""Help ▸ Examples: the built-in scenarios, each with its explanation text.

The explanation shown beside the timeline is `lazytsc.resources.demo_text(name)`
(resources/demos/NAME.md) when it exists, else the scenario's own `explain`.
The teaching order puts the seed's picture first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lazytsc.resources import builtin_scenarios, demo_text

# Teaching order; other built-in scenarios follow alphabetically.
PREFERRED = (
    "seed_overwrite",
    "spurious_interrupt",
    "lvtt_mask_stale_pending",
    "tcp_rr",
    "tcp_rr_v3",
    "periodic_tick",
    "reset_stale_armed",
    "migration_no_vmm",
    "sw_kick_delayed",
)


@dataclass(frozen=True)
class Demo:
    name: str
    path: Path
    title: str


def _title(path: Path) -> str:
    """The scenario's `name` field, read without running it (fallback: the file stem)."""
    try:
        import tomllib

        with path.open("rb") as fh:
            data = tomllib.load(fh)
        name = data.get("name")
        return str(name) if isinstance(name, str) and name else path.stem
    except (OSError, ValueError):
        return path.stem


def demos() -> list[Demo]:
    try:
        found = builtin_scenarios()
    except FileNotFoundError:
        return []
    order = [n for n in PREFERRED if n in found] + sorted(n for n in found if n not in PREFERRED)
    return [Demo(n, found[n], _title(found[n])) for n in order]


def explanation(name: str, scenario_explain: str = "") -> str:
    """Markdown shown beside the timeline for a demo.

    The scenario's own `explain` (what happens and why), then the demo's guided tour
    (resources/demos/NAME.md: what to press and where to look in the GUI).
    """
    tour = ""
    try:
        tour = demo_text(name)
    except (FileNotFoundError, OSError):
        tour = ""
    parts = [p.strip() for p in (scenario_explain, tour) if p and p.strip()]
    return "\n\n".join(parts)
