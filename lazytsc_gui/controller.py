"""The debugger controller: the one object that moves the cursor.

Widgets call its methods (step, run, jump, ...) and listen to its signals; it
talks to the engine only through `lazytsc.debugger.Session` and reads state
only through `Session.snapshot()`. Positions are event counts: F10 steps one
event, F11 one engine action. Jumps restore a checkpoint and replay at most one
interval, so they run inline; what may take long (loading a run, continue and
reverse continue with conditions or watchpoints, "who wrote this value") goes to
the TaskRunner so the UI never freezes.
"""

from __future__ import annotations

import numpy as np
from lazytsc.debugger import Breakpoint, Watchpoint
from lazytsc.scenario import Bookmark, Scenario
from lazytsc.snapshot import Snapshot
from lazytsc.taxonomy import EXIT_BY_NAME, KIND_BY_NAME
from PySide6 import QtCore

from .document import RunDocument, TraceDocument, build_trace, stream_session
from .fmt import fmt_ns
from .runlog import release_freed_memory
from .trace_lines import raw_lines_for
from .worker import TaskRunner

PLAY_INTERVAL_MS = 40


class DebugController(QtCore.QObject):
    documentChanged = QtCore.Signal(object)
    documentGrew = QtCore.Signal(object)  # a streaming run got its next chunk of events
    positionChanged = QtCore.Signal(int)
    selectionChanged = QtCore.Signal(int)
    vcpuChanged = QtCore.Signal(int)
    busyChanged = QtCore.Signal(bool)
    status = QtCore.Signal(str)
    stopped = QtCore.Signal(str)
    bookmarksChanged = QtCore.Signal()
    breakpointsChanged = QtCore.Signal()
    playingChanged = QtCore.Signal(bool)
    loadFailed = QtCore.Signal(str, str)  # title, message
    refused = QtCore.Signal(str)  # a run did not start, and why

    def __init__(self, runner: TaskRunner | None = None, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner or TaskRunner(self)
        self.runner.busyChanged.connect(self.busyChanged)
        self.doc: RunDocument | TraceDocument | None = None
        self.snapshot: Snapshot | None = None
        self.prev_snapshot: Snapshot | None = None
        self.changed: list[frozenset[str]] = []
        self.selected_event = -1
        self.vcpu = 0
        self._trace_pos = 0
        self._trace_breakpoints: list[Breakpoint] = []
        self.watchpoints: list[Watchpoint] = []
        # Set by the breakpoints panel: rows that are not valid (a run refuses to start).
        self.invalid_breakpoints: list[str] = []
        self.last_stop = ""
        self.hit_event = -1  # event index of the last breakpoint hit
        self.play_rate = 50.0  # events per second in play mode
        self._play_timer = QtCore.QTimer(self)
        self._play_timer.setInterval(PLAY_INTERVAL_MS)
        self._play_timer.timeout.connect(self._play_tick)
        self._play_credit = 0.0

    # ---- documents ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    def load_scenario(
        self, scenario: Scenario, mode: str, keep_time: bool = False, on_loaded=None, on_failed=None, on_shown=None, on_cancelled=None
    ) -> bool:
        """Stream `scenario` in `mode` from the worker: shown after its first chunk, filled in as it runs.

        `on_shown(doc)` runs when the first screen is shown, `on_loaded(doc)` when the whole
        run is in. Cancelled or failed, the previous document comes back.
        """
        if self.busy:
            return False
        self.pause_play()
        t_keep = self.current_time_ns() if (keep_time and self.doc is not None) else None
        previous = self.doc
        doc = RunDocument.empty(scenario, mode)

        def chunk(cols) -> None:
            if doc.add(cols):
                self.set_document(doc)  # the first screen
                if on_shown is not None:
                    on_shown(doc)
            elif self.doc is doc:
                self.documentGrew.emit(doc)

        def done(_events: int) -> None:
            doc.finish()
            if self.doc is not doc:
                self.set_document(doc)
                if on_shown is not None:
                    on_shown(doc)
            else:  # the panels now see the whole run
                self.documentChanged.emit(doc)
                self.positionChanged.emit(self.position)
            release_freed_memory()  # the chunk copies are gone: give their pages back
            if t_keep is not None:
                idx = int(np.searchsorted(doc.log.column("time"), t_keep, side="right"))
                self.goto_position(idx)
            if on_loaded is not None:
                on_loaded(doc)

        def restore_previous() -> None:
            if self.doc is doc:
                self.set_document(previous)

        def failed(message: str, tb: str) -> None:
            restore_previous()
            self.loadFailed.emit("Run failed", f"{scenario.name}: {message}\n\n{tb}")
            if on_failed is not None:
                on_failed(message)

        def cancelled() -> None:
            restore_previous()
            self.status.emit("Run cancelled: the previous run is still shown")
            if on_cancelled is not None:
                on_cancelled()

        return self.runner.start(
            f"run {scenario.name} ({mode})",
            lambda job: stream_session(doc.session, job, job.partial),
            done,
            failed,
            cancelled,
            on_partial=chunk,
        )

    def load_trace(self, path: str, on_loaded=None) -> bool:
        self.pause_play()

        def done(doc: TraceDocument) -> None:
            self.set_document(doc)
            if on_loaded is not None:
                on_loaded(doc)

        def job(j):
            doc = build_trace(path, j)
            j.report(-1.0, "reading the raw lines")
            doc.raw = raw_lines_for(doc.result, doc.path, j.cancelled)
            return doc

        return self.runner.start(
            f"import {path}",
            job,
            done,
            lambda message, tb: self.loadFailed.emit("Cannot open trace", message),
            lambda: self.status.emit("Import cancelled"),
        )

    def set_document(self, doc: RunDocument | TraceDocument | None) -> None:
        self.pause_play()
        self.doc = doc
        self._trace_pos = 0
        self.selected_event = -1
        self.vcpu = 0
        self.snapshot = self._snap()
        self.prev_snapshot = None
        self.changed = [frozenset() for _ in range(self.n_vcpus)]
        self.hit_event = -1
        self.last_stop = ""
        for w in self.watchpoints:
            w.hits = 0
        self.documentChanged.emit(doc)
        self.positionChanged.emit(self.position)
        self.selectionChanged.emit(-1)
        self.vcpuChanged.emit(self.vcpu)

    @property
    def n_vcpus(self) -> int:
        return self.doc.n_vcpus if self.doc is not None else 0

    @property
    def session(self):
        return self.doc.session if isinstance(self.doc, RunDocument) else None

    # ---- position -----------------------------------------------------------------------
    @property
    def position(self) -> int:
        if self.doc is None:
            return 0
        if isinstance(self.doc, RunDocument):
            # while a run streams in, the worker owns the session: the cursor is at the start
            return self.doc.session.position if self.doc.complete else 0
        return self._trace_pos

    @property
    def total(self) -> int:
        return len(self.doc.log) if self.doc is not None else 0

    @property
    def current_event(self) -> int:
        return self.position - 1

    @property
    def done(self) -> bool:
        if self.doc is None:
            return True
        if isinstance(self.doc, RunDocument):
            return self.doc.session.done if self.doc.complete else False
        return self._trace_pos >= len(self.doc.log)

    def current_time_ns(self) -> int:
        if self.doc is None:
            return 0
        if isinstance(self.doc, RunDocument) and self.snapshot is not None:
            return self.snapshot.time_ns
        pos = self.position
        return int(self.doc.log.column("time")[pos - 1]) if pos > 0 else 0

    def cursor_time_ns(self) -> int:
        """Time of the current event (the timeline cursor): 0 before the first event."""
        if self.doc is None or self.position == 0:
            return 0
        return int(self.doc.log.column("time")[self.position - 1])

    def _snap(self) -> Snapshot | None:
        if isinstance(self.doc, RunDocument):
            return self.doc.session.snapshot() if self.doc.complete else self.doc.start_snapshot
        return None

    def _moved(self, before: Snapshot | None, note: str = "") -> None:
        self.prev_snapshot = before
        self.snapshot = self._snap()
        if self.snapshot is not None and before is not None and len(before.vcpus) == len(self.snapshot.vcpus):
            self.changed = [v.changed_fields(b) for v, b in zip(self.snapshot.vcpus, before.vcpus, strict=True)]
        else:
            self.changed = [frozenset() for _ in range(self.n_vcpus)]
        if note:
            self.last_stop = note
            self.stopped.emit(note)
        self.positionChanged.emit(self.position)

    def _guard(self) -> bool:
        if self.doc is None:
            return False
        if self.busy:
            self.status.emit(f"Busy: {self.runner.label} (Pause / Esc cancels)")
            return False
        return True

    def step(self) -> None:
        """F10: exactly one event forward."""
        if not self._guard():
            return
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            if self.doc.session.done:
                self.status.emit("At the end of the run")
                return
            self.doc.session.step()
        else:
            if self._trace_pos >= len(self.doc.log):
                self.status.emit("At the end of the trace")
                return
            self._trace_pos += 1
        self._moved(before)

    def step_action(self) -> None:
        """F11: to the end of the engine action holding the next event (its causal group)."""
        if not self._guard():
            return
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            if self.doc.session.done:
                self.status.emit("At the end of the run")
                return
            self.doc.session.step_action()
        else:
            self._trace_pos = min(len(self.doc.log), self._trace_pos + 1)
        self._moved(before)

    def step_back_action(self) -> None:
        """Shift+F11: back to the start of the action holding the current event."""
        if not self._guard():
            return
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            if not self.doc.session.step_back_action():
                self.status.emit("At the start of the run")
                return
        else:
            if self._trace_pos == 0:
                return
            self._trace_pos -= 1
        self._moved(before)

    def lane_event(self, direction: int, vcpu: int | None = None) -> None:
        """Next (+1) / previous (-1) event of one vCPU lane (default: the selected vCPU)."""
        if not self._guard():
            return
        v = self.vcpu if vcpu is None else vcpu
        col = self.doc.log.column("vcpu")
        cur = self.position - 1
        if direction > 0:
            hits = np.flatnonzero(col[cur + 1 :] == v)
            idx = cur + 1 + int(hits[0]) if len(hits) else -1
        else:
            hits = np.flatnonzero(col[: max(0, cur)] == v)
            idx = int(hits[-1]) if len(hits) else -1
        if idx < 0:
            self.status.emit(f"No {'later' if direction > 0 else 'earlier'} event on vCPU {v}")
            return
        self.goto_event(idx)
        self.select_event(idx)

    def step_vcpu(self, vcpu: int | None = None) -> None:
        """Next event in the selected vCPU's lane."""
        self.lane_event(+1, vcpu)

    def step_back(self) -> None:
        """Shift+F10: exactly one event back (checkpoint + replay)."""
        if not self._guard():
            return
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            if not self.doc.session.step_back():
                self.status.emit("At the start of the run")
                return
        else:
            if self._trace_pos == 0:
                self.status.emit("At the start of the trace")
                return
            self._trace_pos -= 1
        self._moved(before)

    def restart(self) -> None:
        if not self._guard():
            return
        self.pause_play()
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            self.doc.session.restart()
            self.breakpointsChanged.emit()
        else:
            self._trace_pos = 0
        self._moved(before, "Restarted at the beginning")

    def goto_event(self, index: int) -> None:
        """Click-to-jump: make `index` the current event (the action holding it)."""
        self.goto_position(index + 1)

    def goto_position(self, pos: int) -> None:
        if not self._guard():
            return
        pos = max(0, min(pos, self.total))
        before = self.snapshot
        if isinstance(self.doc, TraceDocument):
            self._trace_pos = pos
        else:
            self.doc.session.goto(pos)
        self._moved(before)

    def goto_time(self, t_ns: int) -> None:
        """Make the last event at or before `t_ns` the current event."""
        if self.doc is None:
            return
        idx = int(np.searchsorted(self.doc.log.column("time"), t_ns, side="right"))
        self.goto_position(idx)

    # ---- runs with breakpoints ------------------------------------------------------------
    def _run_job(self, label: str, fn, before: Snapshot | None, quiet: bool = False) -> None:
        def done(result) -> None:
            self._moved(before, "" if quiet else self._describe_result(result))
            hit = getattr(result, "event", -1)
            if getattr(result, "reason", "") in ("breakpoint", "watchpoint") and hit >= 0:
                self.hit_event = hit
                self.select_event(hit)

        def failed(message: str, tb: str) -> None:
            self._moved(before)
            self.loadFailed.emit("Run failed", f"{message}\n\n{tb}")

        def cancelled() -> None:
            self._moved(before, f"Paused at event {self.position:,}")

        self.runner.start(label, fn, done, failed, cancelled)

    def _finish_run(self, result, before: Snapshot | None) -> None:
        """A run that ended inline: the same report as a worker's."""
        self._moved(before, self._describe_result(result))
        if getattr(result, "reason", "") in ("breakpoint", "watchpoint") and result.event >= 0:
            self.hit_event = result.event
            self.select_event(result.event)

    def who_wrote(self, vcpu: int, name: str, on_found=None) -> None:
        """Jump to the event that last changed `name` of `vcpu` before the cursor (worker)."""
        session = self.session
        if session is None or not self._guard():
            return
        before = self.snapshot

        def job(j):
            return session.last_change(vcpu, name, cancel=j.cancelled, progress=lambda f: j.report(f, f"searching back for the write of {name}"))

        def done(index: int) -> None:
            if index < 0:
                self._moved(before, f"{name} of vCPU {vcpu} has not changed since the start of the run")
                return
            ev = self.doc.log.event(index)
            session.goto(index + 1)
            self._moved(before, f"{name} of vCPU {vcpu} was last written by #{index} {ev.kind_name} at t = {fmt_ns(ev.time)}")
            self.select_event(index)
            if on_found is not None:
                on_found(index)

        self.runner.start(f"who wrote {name}", job, done, lambda m, tb: self.loadFailed.emit("Search failed", m), lambda: self._moved(before, "Search cancelled"))

    def _describe_result(self, result) -> str:
        if result is None:
            return ""
        reason = getattr(result, "reason", "")
        ev = self.doc.log.event(result.event) if 0 <= getattr(result, "event", -1) < len(self.doc.log) else None
        where = f" at #{result.event} {ev.kind_name} (vCPU {ev.vcpu}, t = {fmt_ns(ev.time)})" if ev else ""
        if reason == "breakpoint" and result.breakpoint is not None:
            return f"Breakpoint '{result.breakpoint.describe()}' hit{where}"
        if reason == "watchpoint" and result.watchpoint is not None:
            return f"Watchpoint '{result.watchpoint.describe()}' hit{where}: {result.old!r} → {result.new!r}"
        return {
            "end": "Reached the end of the run",
            "start": "Reached the start of the run (no earlier breakpoint)",
            "until": f"Stopped at t = {fmt_ns(self.current_time_ns())}",
            "limit": f"Stopped at event {self.position:,}",
            "cancelled": f"Paused at event {self.position:,}",
        }.get(reason, reason)

    def _refuse_invalid(self) -> bool:
        """A breakpoint the user wrote but that does not parse must not be skipped silently."""
        if not self.invalid_breakpoints:
            return False
        first = self.invalid_breakpoints[0]
        more = f" (and {len(self.invalid_breakpoints) - 1} more)" if len(self.invalid_breakpoints) > 1 else ""
        message = f"Not running: {first}{more}. Fix the condition or disable that breakpoint."
        self.last_stop = message
        self.stopped.emit(message)
        self.refused.emit(message)
        return True

    def _needs_walk(self) -> bool:
        session = self.session
        return session is not None and (any(b.enabled and b.needs_state for b in session.breakpoints) or any(w.enabled for w in self.watchpoints))

    def continue_(self) -> None:
        """F5: run forward until an enabled breakpoint or watchpoint hits or the run ends."""
        if not self._guard() or self._refuse_invalid():
            return
        self.pause_play()
        before = self.snapshot
        if isinstance(self.doc, TraceDocument):
            self._trace_search(+1, before)
            return
        session = self.doc.session
        session.watchpoints = self.watchpoints
        start = session.position
        total = max(1, self.total - start)
        if not self._needs_walk():
            self._finish_run(session.run(), before)
            return
        self._run_job(
            "continue",
            lambda job: session.run(progress=lambda p: job.report((p - start) / total, f"{p:,} events"), cancel=job.cancelled, progress_every=5_000),
            before,
        )

    def reverse_continue(self) -> None:
        """Shift+F5: back to the previous event that hits an enabled breakpoint or watchpoint."""
        if not self._guard() or self._refuse_invalid():
            return
        self.pause_play()
        before = self.snapshot
        if isinstance(self.doc, TraceDocument):
            self._trace_search(-1, before)
            return
        session = self.doc.session
        session.watchpoints = self.watchpoints
        if not self._needs_walk():
            self._finish_run(session.reverse_continue(), before)
            return
        self._run_job("reverse continue", lambda job: session.reverse_continue(), before)

    def run_to_event(self, index: int) -> None:
        """Run to cursor: forward with breakpoints to the event; backward is a jump."""
        if not self._guard():
            return
        target = index + 1
        if target <= self.position or isinstance(self.doc, TraceDocument):
            self.goto_position(target)
            return
        if self._refuse_invalid():
            return
        before = self.snapshot
        session = self.doc.session
        session.watchpoints = self.watchpoints
        start = session.position
        distance = target - start
        if not self._needs_walk():
            self._finish_run(session.run(max_events=distance), before)
            return
        self._run_job(
            "run to cursor",
            lambda job: session.run(max_events=distance, progress=lambda p: job.report((p - start) / distance, f"{p:,} events"), cancel=job.cancelled, progress_every=5_000),
            before,
        )

    def run_to_time(self, time_ns: int) -> None:
        times = self.doc.log.column("time") if self.doc is not None else None
        if times is None or not len(times):
            return
        idx = int(np.searchsorted(times, time_ns, side="right")) - 1
        self.run_to_event(max(0, idx))

    def pause(self) -> None:
        """Pause: stop play mode and cancel a running job (the cursor stays where it got)."""
        self.pause_play()
        if self.busy:
            self.runner.cancel()

    # ---- trace documents: breakpoints over columns -------------------------------------------
    def trace_breakpoints(self) -> list[Breakpoint]:
        return self._trace_breakpoints

    def _trace_search(self, direction: int, before) -> None:
        log = self.doc.log
        active = [b for b in self._trace_breakpoints if b.enabled]
        n = len(log)
        if not active:
            self._trace_pos = n if direction > 0 else 0
            self._moved(before, "Reached the end of the trace" if direction > 0 else "Reached the start of the trace")
            return
        kind = log.column("kind")
        exit_col = log.column("exit")
        vcpu = log.column("vcpu")
        mask = np.zeros(n, dtype=bool)
        skipped = 0
        for bp in active:
            if bp.condition:
                skipped += 1
                continue
            m = np.ones(n, dtype=bool)
            if bp.kind:
                m &= kind == KIND_BY_NAME[bp.kind]
            if bp.exit:
                m &= exit_col == EXIT_BY_NAME[bp.exit]
            if bp.vcpu is not None:
                m &= vcpu == bp.vcpu
            mask |= m
        cur = self._trace_pos - 1
        if direction > 0:
            hits = np.nonzero(mask[cur + 1 :])[0]
            idx = cur + 1 + int(hits[0]) if len(hits) else -1
        else:
            hits = np.nonzero(mask[: max(0, cur)])[0]
            idx = int(hits[-1]) if len(hits) else -1
        note = " (conditions need a simulated run: skipped)" if skipped else ""
        if idx < 0:
            self._trace_pos = n if direction > 0 else 0
            self._moved(before, ("Reached the end of the trace" if direction > 0 else "Reached the start of the trace") + note)
            return
        self._trace_pos = idx + 1
        ev = log.event(idx)
        self._moved(before, f"Breakpoint hit at #{idx} {ev.kind_name} (vCPU {ev.vcpu}, t = {fmt_ns(ev.time)}){note}")
        self.hit_event = idx
        self.select_event(idx)

    # ---- breakpoints ----------------------------------------------------------------------
    def breakpoints(self) -> list[Breakpoint]:
        if isinstance(self.doc, RunDocument):
            return self.doc.session.breakpoints
        return self._trace_breakpoints

    def set_breakpoints(self, bps: list[Breakpoint]) -> None:
        target = self.breakpoints()
        target[:] = bps
        self.breakpointsChanged.emit()

    # ---- selection ------------------------------------------------------------------------
    def select_event(self, index: int) -> None:
        if self.doc is None:
            return
        if index != self.selected_event:
            self.selected_event = index
            if 0 <= index < self.total:
                v = int(self.doc.log.column("vcpu")[index])
                if 0 <= v < self.n_vcpus and v != self.vcpu:
                    self.set_vcpu(v)
            self.selectionChanged.emit(index)

    def set_vcpu(self, v: int) -> None:
        if 0 <= v < max(1, self.n_vcpus) and v != self.vcpu:
            self.vcpu = v
            self.vcpuChanged.emit(v)

    # ---- bookmarks -----------------------------------------------------------------------
    def bookmarks(self) -> list[Bookmark]:
        return self.doc.bookmarks if self.doc is not None else []

    def add_bookmark(self, name: str, at_ns: int, event: int | None = None, note: str = "") -> None:
        if self.doc is None:
            return
        self.doc.bookmarks.append(Bookmark(name, int(at_ns), event, note))
        self.doc.bookmarks.sort(key=lambda b: b.at)
        self.bookmarksChanged.emit()

    def remove_bookmark(self, index: int) -> None:
        if self.doc is not None and 0 <= index < len(self.doc.bookmarks):
            del self.doc.bookmarks[index]
            self.bookmarksChanged.emit()

    def bookmark_time_ns(self, bm: Bookmark) -> int:
        if bm.event is not None and self.doc is not None and 0 <= bm.event < self.total:
            return int(self.doc.log.column("time")[bm.event])
        return bm.at

    # ---- play mode --------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def set_play_rate(self, events_per_second: float) -> None:
        self.play_rate = max(0.5, float(events_per_second))

    def play(self, on: bool = True) -> None:
        if on and (self.doc is None or self.busy or self.done):
            return
        if on == self.playing:
            return
        if on:
            self._play_credit = 1.0
            self._play_timer.start()
        else:
            self._play_timer.stop()
        self.playingChanged.emit(on)

    def pause_play(self) -> None:
        if self.playing:
            self.play(False)

    def _play_tick(self) -> None:
        if self.doc is None or self.busy or self.done:
            self.play(False)
            return
        self._play_credit += self.play_rate * PLAY_INTERVAL_MS / 1000.0
        n = int(self._play_credit)
        if n < 1:
            return
        self._play_credit -= n
        before = self.snapshot
        if isinstance(self.doc, RunDocument):
            result = self.doc.session.run(max_events=n, watchpoints=self.watchpoints)
            if result.reason in ("breakpoint", "watchpoint"):
                self.play(False)
                self._moved(before, self._describe_result(result))
                self.hit_event = result.event
                self.select_event(result.event)
                return
        else:
            self._trace_pos = min(len(self.doc.log), self._trace_pos + n)
        self._moved(before)
        if self.done:
            self.play(False)
            self.stopped.emit("Play reached the end of the run")
