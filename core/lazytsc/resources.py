"""Find the built-in resources (scenarios, icons, demo texts) wherever lazytsc runs.

One module answers for the three ways lazytsc is started: from a source checkout
(resources/ beside core/), from an installed wheel (the `lazytsc_resources`
package), and from the PyInstaller one-folder app (`sys._MEIPASS/resources`).
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The directory holding scenarios/, icons/ and demos/."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidate = Path(frozen_root) / "resources"
        if candidate.is_dir():
            return candidate
    try:
        import lazytsc_resources  # the wheel (and editable install) ships resources/ as a package

        pkg_dir = Path(lazytsc_resources.__file__).resolve().parent
        if (pkg_dir / "scenarios").is_dir():
            return pkg_dir
    except ImportError:
        pass
    checkout = Path(__file__).resolve().parents[2] / "resources"
    if (checkout / "scenarios").is_dir():
        return checkout
    raise FileNotFoundError("lazytsc resources not found (checked frozen app, package, checkout)")


def scenarios_dir() -> Path:
    return resources_dir() / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario name (file stem) -> path, sorted by name."""
    return {p.stem: p for p in sorted(scenarios_dir().glob("*.toml"))}


def builtin_scenario(name: str) -> Path:
    """Path of the built-in scenario `name`; KeyError with the known names if absent."""
    found = builtin_scenarios()
    if name not in found:
        raise KeyError(f"no built-in scenario {name!r} (known: {', '.join(found)})")
    return found[name]


DEFAULT_SCENARIO = "seed_overwrite"


def icon_path(name: str = "lazytsc.svg") -> Path:
    return resources_dir() / "icons" / name


def demo_text(name: str) -> str:
    """The explanation shown beside the timeline for a built-in demo (Markdown), or ''."""
    path = resources_dir() / "demos" / f"{name}.md"
    return path.read_text(encoding="utf-8") if path.exists() else ""
