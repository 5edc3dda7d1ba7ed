"""Long work off the UI thread: one job at a time, with progress and cancel.

A job is a plain function `fn(job) -> result` that calls `job.report(frac, text)`
now and then and checks `job.cancelled()`. It runs in a QThread; its result (or
error) comes back to the UI thread through queued signals, so the window keeps
painting and responding while the engine runs. A streaming job hands partial
results (chunks of a run) to the UI thread as it goes with `job.partial(obj)`;
they arrive in order, all before the final result.

Python objects never travel inside a queued signal: they go through a
thread-safe queue and the signal only says "look". (PySide6 6.11 copies and
drops the Python object a queued `Signal(object)` carries on the thread that
emits or delivers it, sometimes without the GIL; under a stream of chunks that
corrupts the Python heap.)
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

JOB_SWITCH_INTERVAL = 0.0005  # seconds (CPython's default is 0.005)
GC_EVERY_MS = 500  # while a job runs, the UI thread collects garbage this often


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class Job(QtCore.QObject):
    progress = QtCore.Signal(float, str)
    partial_sig = QtCore.Signal()
    finished = QtCore.Signal()
    failed = QtCore.Signal(str, str)
    cancelled_sig = QtCore.Signal()

    def __init__(self, fn: Callable[[Job], Any], label: str) -> None:
        super().__init__()
        self.fn = fn
        self.label = label
        self._cancel = threading.Event()
        self._last_report = 0.0
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()  # partial results, in order
        self.result: Any = None

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def partial(self, obj: Any) -> None:
        """Hand a partial result to the UI thread (delivered in order, before the result)."""
        self.outbox.put(obj)
        self.partial_sig.emit()

    def report(self, fraction: float, text: str = "") -> None:
        """Progress (0..1, or -1 when unknown); throttled to ~20 updates a second."""
        now = time.monotonic()
        if now - self._last_report >= 0.05:
            self._last_report = now
            self.progress.emit(float(fraction), text)

    @QtCore.Slot()
    def run(self) -> None:
        try:
            result = self.fn(self)
        except Cancelled:
            self.cancelled_sig.emit()
        except Exception as exc:  # reported to the UI, never lost
            self.failed.emit(f"{exc}", traceback.format_exc())
        else:
            self.result = result
            self.finished.emit()


class TaskRunner(QtCore.QObject):
    """Runs one Job at a time on its own thread and calls back on the UI thread."""

    busyChanged = QtCore.Signal(bool)
    progress = QtCore.Signal(float, str)
    started = QtCore.Signal(str)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._job: Job | None = None
        self._thread: QtCore.QThread | None = None
        self._callbacks: tuple | None = None
        self._graveyard: dict[int, tuple[Job, QtCore.QThread]] = {}
        self.label = ""
        # While a job runs, Python's cyclic garbage collector would run in whichever
        # thread happens to allocate -- mostly the job's. Collected there, a cycle
        # holding Qt objects the UI just dropped (plots of a rebuilt timeline) would
        # delete them off the UI thread while it paints. So the automatic collector
        # is off while a job runs, and the UI thread collects on a timer.
        self._gc_timer = QtCore.QTimer(self)
        self._gc_timer.setInterval(GC_EVERY_MS)
        self._gc_timer.timeout.connect(self._collect)
        self._gc_was_enabled = True
        self._gc_ticks = 0

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(
        self,
        label: str,
        fn: Callable[[Job], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str, str], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
    ) -> bool:
        if self._job is not None:
            return False
        job = Job(fn, label)
        thread = QtCore.QThread()
        thread.setObjectName(f"lazytsc-{label}")
        job.moveToThread(thread)
        thread.started.connect(job.run)
        # Qt deletes the job in its own thread as that thread ends, then the thread
        # itself; the Python wrappers stay referenced until then (never deleted from
        # the wrong thread by a garbage collection).
        thread.finished.connect(job.deleteLater)
        thread.finished.connect(thread.deleteLater)
        key = id(job)
        self._graveyard[key] = (job, thread)
        thread.destroyed.connect(lambda *_a, key=key: self._graveyard.pop(key, None))
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled_sig.connect(self._on_cancelled)
        job.progress.connect(self.progress)
        job.partial_sig.connect(self._on_partial)
        self._job, self._thread = job, thread
        self._on_partial_cb = on_partial
        self._callbacks = (on_done, on_error, on_cancel)
        self.label = label
        self.started.emit(label)
        self.busyChanged.emit(True)
        # While a CPU-bound job holds the GIL, every Python call the UI thread makes
        # (a table's data(), a paint) waits up to the switch interval to get it back:
        # a short interval keeps painting and input snappy during long runs.
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, JOB_SWITCH_INTERVAL))
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._gc_timer.start()
        thread.start()
        return True

    def _collect(self) -> None:
        """Garbage collection on the UI thread (young generations often, all of them now and then)."""
        self._gc_ticks += 1
        gc.collect(2 if self._gc_ticks % 10 == 0 else 1)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the running job ends (tests, window close); True if none is left."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self._job is not None and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self._thread is not None:
                self._thread.wait(10)
        return self._job is None

    def _finish(self) -> tuple:
        thread = self._thread
        callbacks = self._callbacks or (None, None, None)
        self._job = None
        self._thread = None
        self._callbacks = None
        if thread is not None:
            thread.quit()
            thread.wait()
        sys.setswitchinterval(getattr(self, "_switch", sys.getswitchinterval()))
        self._gc_timer.stop()
        gc.collect(1)
        if self._gc_was_enabled:
            gc.enable()
        self.busyChanged.emit(False)
        return callbacks

    @QtCore.Slot()
    def _on_partial(self) -> None:
        self._drain()

    def _drain(self) -> None:
        """Hand every partial result waiting in the job's outbox to the callback."""
        job = self._job
        if job is None:
            return
        cb = getattr(self, "_on_partial_cb", None)
        while True:
            try:
                obj = job.outbox.get_nowait()
            except queue.Empty:
                return
            if cb is not None:
                cb(obj)

    @QtCore.Slot()
    def _on_finished(self) -> None:
        self._drain()
        result = self._job.result if self._job is not None else None
        on_done, _, _ = self._finish()
        if on_done is not None:
            on_done(result)

    @QtCore.Slot(str, str)
    def _on_failed(self, message: str, tb: str) -> None:
        _, on_error, _ = self._finish()
        if on_error is not None:
            on_error(message, tb)

    @QtCore.Slot()
    def _on_cancelled(self) -> None:
        _, _, on_cancel = self._finish()
        if on_cancel is not None:
            on_cancel()
