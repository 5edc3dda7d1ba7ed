"""Dark and light themes: the Qt palette and the timeline's colours, in one place.

Every widget asks `current()` for colours instead of hard-coding them, and
`ThemeManager.changed` tells them to repaint when the user switches theme.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lazytsc.taxonomy import EXIT_ORDER, HAZARD_KINDS, KIND_NAMES
from PySide6 import QtCore, QtGui, QtWidgets

HAZARD_NAMES = tuple(KIND_NAMES[k] for k in sorted(HAZARD_KINDS))


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alt_base: str
    text: str
    dim_text: str
    button: str
    highlight: str
    highlight_text: str
    mid: str
    plot_bg: str
    plot_fg: str
    grid: str
    grid_minor: str
    lane_alt: str  # background band of every other lane row
    changed_bg: str  # state panel: field changed by the last step
    changed_fg: str
    current_row_bg: str  # event list: the current event
    future_fg: str  # event list: events after the cursor
    error_bg: str  # editor: line with an error
    error_fg: str
    link: str
    marks: dict[str, str] = field(default_factory=dict)

    def color(self, role: str) -> QtGui.QColor:
        return QtGui.QColor(self.marks.get(role, self.plot_fg))


_EXIT_DARK = {
    "intr": "#ce93d8",
    "cpuid": "#a1887f",
    "halt": "#4db6ac",
    "msr-write": "#64b5f6",
    "pause": "#fff176",
    "ept-violation": "#ff8a65",
    "ept-misconfig": "#ff7043",
    "preemption-timer": "#81c784",
    "msr-read": "#90a4ae",
    "other": "#bdbdbd",
    "irq-window": "#a1887f",
}
_EXIT_LIGHT = {
    "intr": "#8e24aa",
    "cpuid": "#6d4c41",
    "halt": "#00897b",
    "msr-write": "#1e88e5",
    "pause": "#f9a825",
    "ept-violation": "#e64a19",
    "ept-misconfig": "#d84315",
    "preemption-timer": "#43a047",
    "msr-read": "#546e7a",
    "other": "#757575",
    "irq-window": "#6d4c41",
}
_HAZ_DARK = {
    "spurious": "#ff5252",
    "late": "#ffab40",
    "lost": "#ff1744",
    "stale_pending": "#ff80ab",
    "equal_skip": "#ffd740",
    "stale_armed": "#e040fb",
    "sw_kick_delayed": "#ff9e80",
    "livelock": "#ff1744",
}
_HAZ_LIGHT = {
    "spurious": "#d50000",
    "late": "#ef6c00",
    "lost": "#b71c1c",
    "stale_pending": "#c2185b",
    "equal_skip": "#c79100",
    "stale_armed": "#8e24aa",
    "sw_kick_delayed": "#e65100",
    "livelock": "#d50000",
}


def _marks(dark: bool) -> dict[str, str]:
    base = {
        "written": "#4fc3f7" if dark else "#0277bd",
        "skipped": "#b0bec5" if dark else "#78909c",
        "arm": "#81c784" if dark else "#2e7d32",
        "span_fired": "#81c784" if dark else "#43a047",
        "span_cancelled": "#90a4ae" if dark else "#90a4ae",
        "fire": "#c5e1a5" if dark else "#1b5e20",
        "irq": "#ffd54f" if dark else "#f57f17",
        "ipi": "#9fa8da" if dark else "#3949ab",
        "dropped": "#ff8a80" if dark else "#c62828",
        "hlt": "#4db6ac" if dark else "#00897b",
        "update": "#4fc3f7" if dark else "#0277bd",
        "kick": "#ffb74d" if dark else "#e65100",
        "kick_request": "#ffe0b2" if dark else "#bf360c",
        "clear": "#f48fb1" if dark else "#ad1457",
        "pending": "#ffb74d" if dark else "#e65100",
        "armed": "#4fc3f7" if dark else "#0277bd",
        "requested": "#9e9e9e" if dark else "#9e9e9e",
        "now": "#757575" if dark else "#bdbdbd",
        "cursor": "#ffee58" if dark else "#d81b60",
        "measure_a": "#80deea" if dark else "#00838f",
        "measure_b": "#f48fb1" if dark else "#ad1457",
        "bookmark": "#b39ddb" if dark else "#5e35b1",
        "selection": "#ffffff" if dark else "#000000",
        "other": "#bdbdbd" if dark else "#616161",
    }
    for reason, colour in (_EXIT_DARK if dark else _EXIT_LIGHT).items():
        base[f"exit:{reason}"] = colour
    for name, colour in (_HAZ_DARK if dark else _HAZ_LIGHT).items():
        base[f"haz:{name}"] = colour
    base["haz:timer_coalesced"] = "#bcaaa4" if dark else "#6d4c41"
    return base


DARK = Theme(
    name="dark",
    window="#232629",
    base="#1b1d20",
    alt_base="#25282c",
    text="#e0e0e0",
    dim_text="#8a8f96",
    button="#2e3236",
    highlight="#2f6fb0",
    highlight_text="#ffffff",
    mid="#3b4046",
    plot_bg="#16181b",
    plot_fg="#c8ccd0",
    grid="#33383e",
    grid_minor="#24282c",
    lane_alt="#1d2024",
    changed_bg="#7a5d00",
    changed_fg="#fff8e1",
    current_row_bg="#4a4418",
    future_fg="#6f757c",
    error_bg="#5c1f24",
    error_fg="#ff8a80",
    link="#64b5f6",
    marks=_marks(True),
)
LIGHT = Theme(
    name="light",
    window="#f3f3f3",
    base="#ffffff",
    alt_base="#f5f7fa",
    text="#1f1f1f",
    dim_text="#6b6b6b",
    button="#e8e8e8",
    highlight="#2f6fb0",
    highlight_text="#ffffff",
    mid="#c8c8c8",
    plot_bg="#ffffff",
    plot_fg="#303030",
    grid="#dcdcdc",
    grid_minor="#eeeeee",
    lane_alt="#f4f6f8",
    changed_bg="#ffe082",
    changed_fg="#3e2723",
    current_row_bg="#fff59d",
    future_fg="#a0a0a0",
    error_bg="#ffcdd2",
    error_fg="#b71c1c",
    link="#1565c0",
    marks=_marks(False),
)
THEMES = {"dark": DARK, "light": LIGHT}

assert all(f"exit:{r}" in DARK.marks for r in EXIT_ORDER)
assert all(f"haz:{h}" in DARK.marks for h in HAZARD_NAMES)


class ThemeManager(QtCore.QObject):
    """Holds the current theme and tells widgets when it changes."""

    changed = QtCore.Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.theme: Theme = DARK
        self._applied: tuple[int, Theme] | None = None

    def set_theme(self, name: str, app: QtWidgets.QApplication | None = None) -> None:
        """Switch theme; the application's style sheet is set only when it changes.

        Setting a style sheet re-polishes every widget (~0.15 s at start-up), and start-up
        reaches here from the settings, the window and the checked menu action.
        """
        self.theme = THEMES.get(name, DARK)
        app = app or QtWidgets.QApplication.instance()
        if app is not None and self._applied != (id(app), self.theme):
            apply_palette(app, self.theme)
            self._applied = (id(app), self.theme)
        self.changed.emit(self.theme)


_MANAGER: ThemeManager | None = None


def manager() -> ThemeManager:
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = ThemeManager()
    return _MANAGER


def current() -> Theme:
    return manager().theme


def apply_palette(app: QtWidgets.QApplication, theme: Theme) -> None:
    """Fusion style with the theme's palette (same look on every platform)."""
    app.setStyle("Fusion")
    c = QtGui.QColor
    pal = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    group = QtGui.QPalette.ColorGroup
    pal.setColor(role.Window, c(theme.window))
    pal.setColor(role.WindowText, c(theme.text))
    pal.setColor(role.Base, c(theme.base))
    pal.setColor(role.AlternateBase, c(theme.alt_base))
    pal.setColor(role.ToolTipBase, c(theme.base))
    pal.setColor(role.ToolTipText, c(theme.text))
    pal.setColor(role.PlaceholderText, c(theme.dim_text))
    pal.setColor(role.Text, c(theme.text))
    pal.setColor(role.Button, c(theme.button))
    pal.setColor(role.ButtonText, c(theme.text))
    pal.setColor(role.BrightText, c("#ff5252"))
    pal.setColor(role.Highlight, c(theme.highlight))
    pal.setColor(role.HighlightedText, c(theme.highlight_text))
    pal.setColor(role.Link, c(theme.link))
    pal.setColor(role.Mid, c(theme.mid))
    pal.setColor(role.Dark, c(theme.mid).darker(130))
    pal.setColor(role.Light, c(theme.button).lighter(120))
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(group.Disabled, r, c(theme.dim_text))
    app.setPalette(pal)
    app.setStyleSheet(
        f"QToolTip {{ color: {theme.text}; background: {theme.base}; border: 1px solid {theme.mid}; }}"
        f"QDockWidget::title {{ padding: 3px 6px; background: {theme.button}; }}"
    )


def html_swatch(color: str, glyph: str) -> str:
    return f"<span style='color:{color}'>{glyph}</span>"
