"""Themes: switching restyles the application once per change, not once per caller."""

from __future__ import annotations

from PySide6 import QtWidgets

from lazytsc_gui import themes


def test_the_style_sheet_is_set_once_per_theme_change(qtbot, monkeypatch):
    """Setting an application style sheet re-polishes every widget; start-up asks for the same
    theme three times (settings, window, the checked menu action)."""
    app = QtWidgets.QApplication.instance()
    calls = []
    real = themes.apply_palette
    monkeypatch.setattr(themes, "apply_palette", lambda a, t: calls.append(t.name) or real(a, t))
    manager = themes.ThemeManager()
    seen = []
    manager.changed.connect(seen.append)
    for name in ("dark", "dark", "dark", "light", "light", "dark"):
        manager.set_theme(name, app)
    assert calls == ["dark", "light", "dark"]
    assert len(seen) == 6 and seen[-1] is themes.DARK
    assert app.palette().window().color().name() == themes.DARK.window.lower()
