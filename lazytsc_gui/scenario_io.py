"""Reading and checking scenario text for the window, safely (no Qt).

Files are read by a worker, never on the UI thread, and only regular files of a
bounded size (`lazytsc.safeio`): a FIFO would
block `open()` forever and `/dev/zero` reads without end. Checking never raises:
input nested deeper than the TOML parser's recursion limit, or anything else the
checker chokes on, becomes one ScenarioError at the line where it happens.
"""

from __future__ import annotations

from lazytsc.safeio import read_scenario_bytes
from lazytsc.scenario import Scenario, ScenarioError, check_scenario

NESTING_LIMIT = 100


def read_scenario_file(path: str) -> bytes:
    """The file's bytes (regular files only, size capped: lazytsc.safeio); OSError with a
    reason a person can act on otherwise."""
    return read_scenario_bytes(path)


def deepest_line(text: str, limit: int = NESTING_LIMIT) -> int:
    """The first line where brackets/braces nest deeper than `limit` (0 if none)."""
    depth = 0
    quote = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        for ch in line:
            if quote:
                if ch == quote:
                    quote = ""
                continue
            if ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[{":
                depth += 1
                if depth > limit:
                    return lineno
            elif ch in "]}":
                depth = max(0, depth - 1)
    return 0


def check_text(text: str, name: str) -> tuple[Scenario | None, list[ScenarioError], bool]:
    """check_scenario that never raises; the flag is True for pathological input."""
    deep = deepest_line(text)
    if deep:
        return None, [ScenarioError(name, deep, "", f"nesting no deeper than {NESTING_LIMIT} levels of [ ] or {{ }}")], True
    try:
        scenario, errors = check_scenario(text, name)
    except (RecursionError, MemoryError):
        return None, [ScenarioError(name, deepest_line(text, 20) or 1, "", "input this deeply nested or this large cannot be checked")], True
    except Exception as exc:  # a checker bug must not take the window down
        return None, [ScenarioError(name, 0, "", f"a scenario the checker can read ({type(exc).__name__}: {exc})")], True
    return scenario, errors, False
