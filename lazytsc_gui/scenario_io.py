"""Reading and checking scenario text for the window, safely (no Qt).

Files are read by a worker, never on the UI thread, and only regular files of a
bounded size (`lazytsc.safeio` where the engine package has it): a FIFO would
block `open()` forever and `/dev/zero` reads without end. Checking never raises:
input nested deeper than the TOML parser's recursion limit, or anything else the
checker chokes on, becomes one ScenarioError at the line where it happens.
"""

from __future__ import annotations

import os
import stat

from lazytsc.scenario import Scenario, ScenarioError, check_scenario

MAX_SCENARIO_BYTES = 16 << 20
NESTING_LIMIT = 100

try:  # the engine package's safe opening (regular files only, byte caps)
    from lazytsc.safeio import read_scenario_bytes as _read_safe
except ImportError:  # pragma: no cover - older engine package
    _read_safe = None


def read_scenario_file(path: str) -> bytes:
    """The file's bytes; OSError (with a reason a person can act on) otherwise."""
    if _read_safe is not None:
        return _read_safe(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or special file"
        raise OSError(f"{path}: is {kind}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path}: is not a regular file")
        data = fh.read(MAX_SCENARIO_BYTES + 1)
    if len(data) > MAX_SCENARIO_BYTES:
        raise OSError(f"{path}: larger than {MAX_SCENARIO_BYTES >> 20} MiB: not a scenario")
    return data


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
