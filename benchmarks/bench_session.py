"""The debugger session at scale: goto anywhere, step back, memory (tcp_rr, lazy mode).

Each figure is printed beside its goal; the baselines in the same run are what the
old code paths cost: replaying from the start (a session that could not use the
checkpoints ahead of the cursor) and recounting the prefix per step (the panels).
Times are CPU time of this process (`time.process_time`): the machine is shared,
and wall time would measure the neighbours.
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc

from lazytsc.debugger import Session
from lazytsc.engine import Engine
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import Scenario, load_scenario

Row = tuple[str, float, str, str]


def tcp_rr(duration_ns: int = 10**12) -> Scenario:
    scenario = load_scenario(builtin_scenario("tcp_rr"))
    scenario.run.duration_ns = duration_ns
    return scenario


def _ms(fn) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000


def _session(events: int) -> Session:
    session = Session(tcp_rr(), "lazy")
    session.run(max_events=events, breakpoints=[])
    return session


def _far_and_back(session: Session, samples: int, seed: int = 1) -> tuple[list[float], list[float], list[float]]:
    """goto a far position (the other half of the run), step back cold, step back warm."""
    rng = random.Random(seed)
    n = session.total
    far, cold, warm = [], [], []
    for i in range(samples):
        p = rng.randrange(n // 2, n) if i % 2 == 0 else rng.randrange(2, n // 2)
        session.goto(rng.randrange(2, n // 2) if i % 2 == 0 else rng.randrange(n // 2, n))
        far.append(_ms(lambda p=p: session.goto(p)))
        session._states.clear()  # noqa: SLF001 - measure the replay, not the cached window
        cold.append(_ms(session.step_back))
        warm.append(_ms(session.step_back))
    return far, cold, warm


def _memory(events: int) -> float:
    """Bytes per event the session holds (log + checkpoints + caches), by tracemalloc."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    session = _session(events)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / max(1, session.total)


def _gui_step_back(events: int, samples: int) -> list[Row]:
    """What the user sees: Shift+F10 in the window, panels and timeline refreshed."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    import tempfile

    from lazytsc.accounting import caused_by, summarize

    import lazytsc_gui  # noqa: F401  (binding work-arounds)
    from lazytsc_gui.document import build_run
    from lazytsc_gui.main_window import MainWindow
    from lazytsc_gui.settings import Settings

    ini = os.path.join(tempfile.mkdtemp(prefix="lazytsc-bench-"), "settings.ini")
    win = MainWindow(settings=Settings(QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat)), mode="lazy", restore_layout=False)
    win.persist = False
    win.resize(1600, 1000)
    win.show()
    scenario = tcp_rr(int(events / 750 * 1_000_000))  # tcp_rr logs about 750 events per simulated ms
    doc = build_run(scenario, "lazy")
    win.controller.set_document(doc)
    app.processEvents()
    c = win.controller
    rng = random.Random(2)
    back, step, base = [], [], []
    for _ in range(samples):
        p = rng.randrange(2, c.total)
        c.goto_position(p)
        app.processEvents()
        doc.session._states.clear()  # noqa: SLF001 - a replayed step back, not a cached one
        back.append(_ms(lambda: (c.step_back(), app.processEvents())))
        step.append(_ms(lambda: (c.step(), app.processEvents())))
        # baseline: what each step cost the panels before (recount the prefix, walk the log)
        base.append(_ms(lambda p=p: (summarize(doc.log, upto=p), caused_by(doc.log, p - 1))))
    n = c.total
    win.close()
    return [
        (f"GUI step back (Shift+F10) at {n:,} events (median)", statistics.median(back), "ms", "<= 30 ms"),
        (f"GUI step back (Shift+F10) at {n:,} events (max)", max(back), "ms", "<= 30 ms (median)"),
        (f"GUI step (F10) at {n:,} events (median)", statistics.median(step), "ms", "<= 30 ms"),
        (f"baseline: full panel recount per step at {n:,} events (median)", statistics.median(base), "ms", "(what each step cost before)"),
    ]


def run(smoke: bool = False) -> list[Row]:
    sizes = (20_000,) if smoke else (1_000_000, 5_000_000)
    samples = 4 if smoke else 25
    rows: list[Row] = []
    for events in sizes:
        session = _session(events)
        label = f"{events:,} events"
        far, cold, warm = _far_and_back(session, samples)
        back = statistics.median(cold)
        goal_far = "<= 20 ms, <= 3x step back" if events <= 1_000_000 else "<= 30 ms"
        rows.append((f"session goto a far event, {label} (median)", statistics.median(far), "ms", goal_far))
        rows.append((f"session goto a far event, {label} (max)", max(far), "ms", goal_far))
        rows.append((f"session step back, replayed, {label} (median)", back, "ms", "<= 5 ms"))
        rows.append((f"session step back, replayed, {label} (max)", max(cold), "ms", "<= 5 ms (median)"))
        rows.append((f"session step back, again (cached window), {label} (median)", statistics.median(warm), "ms", "<= 5 ms"))
        rows.append((f"session goto far / step back, {label}", statistics.median(far) / max(1e-9, back), "x", "<= 3"))
        rows.append((f"session checkpoints, {label}", session.checkpoint_bytes() / session.total, "bytes/event", "<= 8 (stated bound, pickled)"))
        if events == sizes[0]:
            # Baseline: a session that cannot use checkpoints ahead replays from the start.
            target = events // 2
            base = _ms(lambda target=target: Engine(tcp_rr(), "lazy").run(max_events=target))
            rows.append((f"baseline: replay from the start to event {target:,}", base, "ms", "(what goto far cost before)"))
        del session
    mem_events = 20_000 if smoke else 1_000_000
    rows.append((f"session memory at {mem_events:,} events (log is 40)", _memory(mem_events), "bytes/event", "<= 50"))
    rows += _gui_step_back(20_000 if smoke else 1_000_000, 4 if smoke else 25)
    return rows
