"""`lazytsc-gui [SCENARIO_OR_TRACE] [--mode classic|lazy] [--screenshot PATH] [--quit-after MS]`.

With no file it opens the built-in default scenario. On a machine without a
display (no DISPLAY / WAYLAND_DISPLAY and no QT_QPA_PLATFORM) it switches to
Qt's offscreen platform and says so, instead of aborting. `--screenshot`
saves a PNG of the window once the run is drawn (README screenshot, packaging
smoke test); `--quit-after` leaves the event loop after MS milliseconds (after
the screenshot, if one was asked for).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_T0 = time.perf_counter()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lazytsc-gui", description="Timeline debugger for KVM's lazy TSC-deadline protocol.")
    p.add_argument("path", nargs="?", help="a scenario (.toml), a built-in scenario name, or a KVM trace to open")
    p.add_argument("--mode", choices=("classic", "lazy"), help="guest driver of the debugged run (default: last used, lazy)")
    p.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: last used, dark)")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window once the run is drawn")
    p.add_argument("--quit-after", metavar="MS", type=int, help="quit after MS milliseconds (after --screenshot)")
    return p.parse_args(argv)


def ensure_platform(environ: dict | None = None, out=None) -> bool:
    """Use the offscreen platform when there is no display; True if it switched."""
    env = os.environ if environ is None else environ
    if env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return False
    if sys.platform in ("win32", "darwin"):
        return False
    env["QT_QPA_PLATFORM"] = "offscreen"
    print("lazytsc-gui: no display (DISPLAY/WAYLAND_DISPLAY unset): using Qt's offscreen platform", file=out or sys.stderr)
    return True


def _resolve(path: str) -> str:
    from pathlib import Path

    from lazytsc.scenario import resolve_scenario_path

    if Path(path).exists():
        return path
    return str(resolve_scenario_path(path))


def check_platform_libraries(environ: dict | None = None, out=None, missing_for=None) -> bool:
    """Name the system libraries Qt's platform plugin lacks (Qt's own message blames the
    wrong one); False when some are missing."""
    from . import qtdeps

    platform = qtdeps.platform_to_check(environ)
    if platform not in qtdeps.PLATFORM_PLUGINS:
        return True
    missing = (missing_for or qtdeps.missing_for)(platform)
    if missing:
        print(qtdeps.missing_message(platform, missing), file=out or sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ensure_platform()
    if not check_platform_libraries():
        return 1

    from PySide6 import QtCore, QtGui, QtWidgets

    import lazytsc_gui  # noqa: F401  (binding work-arounds)

    app = QtWidgets.QApplication.instance()
    if app is None:
        QtGui.QGuiApplication.setHighDpiScaleFactorRoundingPolicy(QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("lazytsc")
    app.setOrganizationName("lazytsc")
    app.setApplicationDisplayName("lazytsc")
    app.setDesktopFileName("io.github.lazytsc.Lazytsc")

    from lazytsc.resources import icon_path

    from . import themes
    from .main_window import MainWindow
    from .settings import Settings

    icon = icon_path()
    if icon.exists():
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    settings_file = os.environ.get("LAZYTSC_SETTINGS")
    if not settings_file and (args.screenshot or args.quit_after is not None):
        # Scripted runs (README screenshot, smoke tests) never touch the user's settings.
        import tempfile

        settings_file = os.path.join(tempfile.mkdtemp(prefix="lazytsc-gui-"), "settings.ini")
    settings = Settings(QtCore.QSettings(settings_file, QtCore.QSettings.Format.IniFormat)) if settings_file else Settings()
    if args.theme:
        settings.theme = args.theme
    themes.manager().set_theme(settings.theme, app)
    win = MainWindow(settings=settings, mode=args.mode, restore_layout=args.screenshot is None)
    win.persist = args.quit_after is None and args.screenshot is None
    win.show()

    state = {"shot": args.screenshot is None, "quit": False}

    def shoot() -> None:
        if state["shot"]:
            return
        state["shot"] = True
        app.processEvents()
        ok = win.grab().save(args.screenshot)
        elapsed = time.perf_counter() - _T0
        print(f"lazytsc-gui: screenshot {'saved to' if ok else 'FAILED:'} {args.screenshot} ({elapsed:.2f} s after start)", file=sys.stderr)
        if state["quit"]:
            app.quit()

    def quit_now() -> None:
        state["quit"] = True
        if state["shot"]:
            app.quit()

    if args.screenshot:
        def on_doc(_doc) -> None:
            QtCore.QTimer.singleShot(0, shoot)

        win.controller.documentChanged.connect(on_doc)
        QtCore.QTimer.singleShot(20_000, shoot)  # shoot anyway if nothing loads
    if args.quit_after is not None:
        QtCore.QTimer.singleShot(max(0, args.quit_after), quit_now)

    if args.path:
        win.open_path(_resolve(args.path), ask=False)
    else:
        win.open_default()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
