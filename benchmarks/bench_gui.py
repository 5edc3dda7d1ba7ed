"""GUI figures: timeline redraw at 10^6 events, event-list filtering, and open-to-drawn time.

Offscreen Qt (QT_QPA_PLATFORM=offscreen). A frame is one change of the visible
range (pan or zoom) followed by a synchronous render of the whole timeline
widget (`grab()`), so it counts the numpy level-of-detail work and Qt's painting.
"Open default scenario to drawn window" is the wall time of a fresh process
`python -m lazytsc_gui.app --screenshot PNG --quit-after 0`: interpreter start,
imports, the run, the first paint, the PNG, exit.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

Row = tuple[str, float, str, str]
REPO = Path(__file__).resolve().parents[1]


def _big_log(target_events: int):
    """A tcp_rr run (lazy, 2 vCPUs) with at least `target_events` events."""
    from lazytsc.engine import Engine
    from lazytsc.resources import builtin_scenario
    from lazytsc.scenario import load_scenario

    scenario = load_scenario(builtin_scenario("tcp_rr"))
    scenario.run.duration_ns = 10**12
    engine = Engine(scenario, "lazy")
    engine.run(max_events=target_events)
    return scenario, engine.log


def _frames(widget, t_end: float, smoke: bool) -> list[float]:
    """Pan and zoom over the run: full view, then windows of 1/10 .. 1/10^4 of it."""
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    times = []
    levels = [1.0, 0.1, 0.01, 0.001, 0.0001]
    pans = 2 if smoke else 8
    for frac in levels:
        width = t_end * frac
        start = t_end * 0.3
        for k in range(pans):
            x0 = start + k * width * 0.15
            t = time.perf_counter()
            widget.set_x_range(x0, x0 + width)
            widget.glw.grab()
            times.append((time.perf_counter() - t) * 1000)
            app.processEvents()
    return times


def timeline_figures(smoke: bool) -> list[Row]:
    from PySide6 import QtWidgets

    import lazytsc_gui  # noqa: F401  (binding work-arounds)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from lazytsc_gui.events_model import EventsModel
    from lazytsc_gui.timeline import TimelineWidget
    from lazytsc_gui.timeline_data import build_timeline_data

    target = 20_000 if smoke else 1_000_000
    scenario, log = _big_log(target)
    n = len(log)
    cols = {name: log.column(name) for name in ("time", "vcpu", "kind", "exit", "a", "b", "parent")}
    t = time.perf_counter()
    data = build_timeline_data(cols, len(scenario.run.vcpus), [v.tsc_khz for v in scenario.run.vcpus])
    build_s = time.perf_counter() - t
    widget = TimelineWidget()
    widget.resize(1600, 900)
    widget.set_data(data, "bench")
    widget.show()
    app.processEvents()
    widget.glw.grab()  # first paint (caches, fonts) is not a pan/zoom frame
    frames = _frames(widget, data.t_end, smoke)
    model = EventsModel()
    model.set_log(log)
    t = time.perf_counter()
    model.set_filters(kinds={1, 2}, vcpu=0)
    filter_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    model.find("spurious", 0)
    find_ms = (time.perf_counter() - t) * 1000
    widget.close()
    label = f"{n:,} events"
    frames.sort()
    p95 = frames[min(len(frames) - 1, int(round(0.95 * (len(frames) - 1))))]
    return [
        (f"timeline redraw, pan/zoom, {label} (median)", statistics.median(frames), "ms/frame", "<= 50"),
        (f"timeline redraw, pan/zoom, {label} (95th percentile)", p95, "ms/frame", "<= 50"),
        (f"timeline data from the log, {label}", build_s * 1000, "ms", "(reference)"),
        (f"event list filter (kind + vCPU), {label}", filter_ms, "ms", "(reference)"),
        (f"event list search, {label}", find_ms, "ms", "(reference)"),
    ]


def open_time(smoke: bool) -> list[Row]:
    """Wall time of a fresh `lazytsc-gui` process until its first drawn window is saved."""
    runs = 1 if smoke else 3
    samples = []
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        env["LAZYTSC_SETTINGS"] = str(Path(tmp) / "settings.ini")
        for k in range(runs):
            png = Path(tmp) / f"shot{k}.png"
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "lazytsc_gui.app", "--screenshot", str(png), "--quit-after", "0"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            elapsed = time.perf_counter() - t
            if proc.returncode != 0 or not png.exists():
                raise RuntimeError(f"lazytsc-gui failed ({proc.returncode}): {proc.stderr[-2000:]}")
            samples.append(elapsed)
    return [("open default scenario to drawn window (fresh process)", statistics.median(samples), "s", "<= 2")]


def run(smoke: bool = False) -> list[Row]:
    return timeline_figures(smoke) + open_time(smoke)


if __name__ == "__main__":
    for figure, value, unit, target in run(smoke="--smoke" in sys.argv):
        print(f"{figure:<64} {value:>12,.2f} {unit:<9} target {target}")
