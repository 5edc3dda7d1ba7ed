"""Render the main window to a PNG, headless (the README picture: `make screenshot`).

    python packaging/screenshot.py PATH [--scenario NAME] [--mode lazy|classic]
                                        [--theme dark|light] [--size 1600x1000] [--events N]

Opens the built-in default scenario (or --scenario) in lazytsc_gui's MainWindow on Qt's
offscreen platform, with fresh settings (never the user's), then moves the debugger forward
so the timeline has a cursor, highlighted state and counted exits: by default it continues
to the scenario's first breakpoint (the seed's picture stops at the host's `kick`), or with
--events N it steps to event N. Then it grabs the window and saves PATH.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TIMEOUT_MS = 60_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path, help="PNG to write (e.g. docs/screenshot.png)")
    ap.add_argument("--scenario", help="built-in scenario name or file (default: the default one)")
    ap.add_argument("--mode", choices=("classic", "lazy"), default="lazy")
    ap.add_argument("--theme", choices=("dark", "light"), default="dark")
    ap.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    ap.add_argument("--events", type=int, help="step to this event count instead of continuing "
                    "to the first breakpoint")
    args = ap.parse_args(argv)
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size: expected WxH, got {args.size!r}")
    args.width, args.height = w, h
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from lazytsc.resources import icon_path
    from lazytsc.scenario import resolve_scenario_path
    from PySide6 import QtCore, QtGui, QtWidgets

    import lazytsc_gui  # noqa: F401  (the GUI package's binding work-arounds)
    from lazytsc_gui import themes
    from lazytsc_gui.main_window import MainWindow
    from lazytsc_gui.settings import Settings

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName("lazytsc")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    ini = Path(tempfile.mkdtemp(prefix="lazytsc-screenshot-")) / "settings.ini"
    settings = Settings(QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat))
    settings.theme = args.theme
    themes.manager().set_theme(args.theme, app)

    win = MainWindow(settings=settings, mode=args.mode, restore_layout=False)
    win.persist = False
    win.resize(args.width, args.height)
    win.show()
    ctl = win.controller
    result = {"rc": 1, "phase": "loading"}

    def finish() -> None:
        app.processEvents()
        args.path.parent.mkdir(parents=True, exist_ok=True)
        ok = win.grab().save(str(args.path))
        if ok:
            print(f"screenshot.py: wrote {args.path} ({win.width()}x{win.height()}, "
                  f"{ctl.position} of {ctl.total} events, {args.mode}, {args.theme}): "
                  f"{getattr(ctl, 'last_stop', '') or 'no stop message'}")
            result["rc"] = 0
        else:
            print(f"screenshot.py: cannot write {args.path}", file=sys.stderr)
        app.quit()

    def settle() -> None:
        # let the timeline and panels repaint after the last move
        QtCore.QTimer.singleShot(300, finish)

    def on_busy(busy: bool) -> None:
        if not busy and result["phase"] == "running":
            result["phase"] = "done"
            settle()

    def on_document(doc) -> None:
        if doc is None or result["phase"] != "loading":
            return
        result["phase"] = "running"
        if args.events is not None:
            ctl.goto_position(args.events)
        else:
            ctl.continue_()
        if not ctl.busy:  # moved synchronously
            result["phase"] = "done"
            settle()

    def timeout() -> None:
        print(f"screenshot.py: timed out in phase {result['phase']!r}", file=sys.stderr)
        app.exit(1)

    def failed(title: str, message: str) -> None:
        print(f"screenshot.py: {title}: {message}", file=sys.stderr)
        app.exit(1)

    ctl.documentChanged.connect(lambda doc: QtCore.QTimer.singleShot(0, lambda: on_document(doc)))
    ctl.busyChanged.connect(on_busy)
    ctl.loadFailed.connect(failed)
    QtCore.QTimer.singleShot(TIMEOUT_MS, timeout)

    if args.scenario:
        found = Path(args.scenario)
        win.open_path(str(found if found.exists() else resolve_scenario_path(args.scenario)),
                      ask=False)
    else:
        win.open_default()
    rc = app.exec()
    return result["rc"] if rc == 0 else rc


if __name__ == "__main__":
    sys.exit(main())
