"""An imported trace becomes an EventLog the GUI draws like a simulated run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lazytsc.accounting import exit_table
from lazytsc.taxonomy import BACKEND_HV, Exit, Kind, MsrSub
from lazytsc.traces import import_trace

DATA = Path(__file__).parent / "data" / "traces"
FILES = ["ftrace_intel.txt", "trace_pipe_old.txt", "tracecmd_report.txt",
         "perf_script_new.txt", "perf_script_old.txt", "ftrace_amd.txt", "broken_reordered.txt"]


@pytest.mark.parametrize("name", FILES)
def test_eventlog_matches_the_summary(name: str) -> None:
    result = import_trace(DATA / name)
    summary = result.summary()
    log = result.to_eventlog()
    assert len(log) == summary["events"]
    table = exit_table(log.column("exit"), log.column("sub"))
    assert table == summary["exits"]
    kind = log.column("kind")
    assert int((kind == Kind.GUEST_TIMER_IRQ).sum()) == summary["timer"]["interrupts"]
    time = log.column("time")
    assert time[0] >= 0 and (np.diff(time) >= 0).all()
    assert int(kind[-1]) == Kind.END and int(time[-1]) == summary["sim_time_ns"]


def test_eventlog_kinds_follow_the_exit() -> None:
    result = import_trace(DATA / "ftrace_intel.txt")
    log = result.to_eventlog()
    rows = [log.event(i) for i in range(len(log))]
    deadline = [e for e in rows if e.kind == Kind.WRMSR_TSC_DEADLINE]
    assert [e.a for e in deadline] == [0x2540BE4C5A8, 0x2540BE8F000, 0x2540BE91234, 0x2540BF00000]
    assert all(e.exit == Exit.MSR_WRITE and e.sub == MsrSub.TSC_DEADLINE for e in deadline)
    icr = [e for e in rows if e.kind == Kind.WRMSR_ICR]
    assert len(icr) == 1 and icr[0].a == 1 and icr[0].b == 0xFD
    assert [e.exit for e in rows if e.kind == Kind.HLT] == [Exit.HALT]
    fire = [e for e in rows if e.kind == Kind.TIMER_FIRE]
    assert len(fire) == 1 and fire[0].exit == Exit.PREEMPTION_TIMER and fire[0].b == BACKEND_HV
    assert [e.exit for e in rows if e.kind == Kind.HOST_IRQ] == [Exit.INTR]
    notes = [e for e in rows if e.kind == Kind.NOTE and e.exit == Exit.OTHER]
    assert [result.note_names[e.a] for e in notes] == ["IO_INSTRUCTION"]
    # times relative to the first line, in integer ns
    assert deadline[0].time == 5_000 and deadline[0].vcpu == 0


def test_keep_events_gives_the_same_log_in_one_pass() -> None:
    two_pass = import_trace(DATA / "tracecmd_report.txt").to_eventlog()
    one_pass = import_trace(DATA / "tracecmd_report.txt", keep_events=True).to_eventlog()
    assert one_pass.digest() == two_pass.digest()


def test_deadline_writes_are_int64_arrays() -> None:
    result = import_trace(DATA / "ftrace_intel.txt")
    t, v = result.deadline_writes(0)
    assert t.dtype == np.int64 and v.dtype == np.int64
    assert list(t) == [6_000, 221_000, 701_000]
    assert list(v) == [0x2540BE4C5A8, 0x2540BE8F000, 0x2540BF00000]
    empty_t, empty_v = result.deadline_writes(7)
    assert len(empty_t) == len(empty_v) == 0
    assert list(result.timer_interrupts(0)) == [201_000]
    assert result.vcpus == [0, 1]


def test_columns_after_a_truncate_are_the_new_branch_of_the_same_length():
    """Truncate then append as many different events: column() must not return the old branch."""
    from lazytsc.eventlog import EventLog

    log = EventLog()
    for i in range(4):
        log.append(100 + i, 0, 1, a=i)
    assert list(log.column("a")) == [0, 1, 2, 3]
    log.truncate(2)
    log.append(500, 0, 1, a=7)
    log.append(501, 0, 1, a=8)
    assert list(log.column("a")) == [0, 1, 7, 8] and list(log.column("time")) == [100, 101, 500, 501]
