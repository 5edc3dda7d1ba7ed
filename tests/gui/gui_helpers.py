"""Helpers shared by the GUI tests (imported by name: tests/gui is on sys.path)."""

from __future__ import annotations

from lazytsc.resources import builtin_scenarios


def wait_idle(qtbot, win, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=timeout)


def open_builtin(qtbot, win, name: str = "seed_overwrite") -> None:
    path = builtin_scenarios()[name]
    with qtbot.waitSignal(win.controller.documentChanged, timeout=30_000):
        assert win.open_scenario_file(str(path), builtin=name)
    wait_idle(qtbot, win)
