"""The guest clockevent drivers (DESIGN.md section 1), one test per branch.

Lazy `kvm_lapic_next_deadline`: `pending = tsc`; WRMSR only if `armed == 0 || tsc < armed`.
Classic `lapic_next_deadline`: WRMSR on every call. TSC = 2 * ns; set_next_event(d) at
time t asks for tsc(t) + tsc(d) (delta in whole clockevent ticks of 8 cycles).
"""

from __future__ import annotations

import pytest
from lazytsc_testkit import events, run, script, times, tsc

HEAD = """
duration = "400us"
[defaults]
reprogram_jitter_cycles = 0
"""
FIRST = dict(at="10us", op="set_next_event", delta="100us")  # tsc 220000 = 110us
ARMED = tsc(10_000) + tsc(100_000)


def second(at_us: int, delta_us: int) -> tuple[dict, int]:
    return dict(at=f"{at_us}us", op="set_next_event", delta=f"{delta_us}us"), tsc(at_us * 1000) + tsc(delta_us * 1000)


def test_armed_zero_writes():
    e = run(HEAD + script(FIRST), "lazy")
    (req,) = events(e, "deadline_request")
    assert (req.time, req.a, req.b) == (10_000, ARMED, 0)
    (w,) = events(e, "wrmsr_tsc_deadline")
    assert (w.time, w.a, w.exit_name, w.sub_name) == (10_000, ARMED, "msr-write", "tsc-deadline")
    assert events(e, "deadline_skip") == []
    s = e.snapshot().vcpus[0]
    assert s.pending == ARMED


def test_earlier_deadline_writes():
    op, want = second(20, 50)  # 140000 < armed 220000
    assert want < ARMED
    e = run(HEAD + script(FIRST, op), "lazy")
    # WRMSR_TSC_DEADLINE.b is `armed` after the write (kvm_lazy_tscdeadline_update ran)
    assert [(w.time, w.a, w.b) for w in events(e, "wrmsr_tsc_deadline")] == [(10_000, ARMED, ARMED), (20_000, want, want)]
    assert [r.b for r in events(e, "deadline_request")] == [0, ARMED]
    assert events(e, "deadline_skip") == []
    assert times(e, "guest_timer_irq") == [70_000]
    assert events(e, "spurious") == [] and events(e, "lost") == []


def test_equal_deadline_is_skipped_and_flagged():
    """`<` not `<=`: tsc == armed is skipped (the equal_skip hazard), and still delivered."""
    op, want = second(20, 90)  # 40000 + 180000 = 220000 == armed
    assert want == ARMED
    e = run(HEAD + script(FIRST, op), "lazy")
    assert len(events(e, "wrmsr_tsc_deadline")) == 1
    (skip,) = events(e, "deadline_skip")
    assert (skip.time, skip.a, skip.b) == (20_000, ARMED, ARMED)
    (eq,) = events(e, "equal_skip")
    assert (eq.time, eq.a, eq.b) == (20_000, ARMED, ARMED)
    assert times(e, "guest_timer_irq") == [110_000]
    assert events(e, "spurious") == [] and events(e, "lost") == []


def test_later_deadline_is_skipped_without_equal_flag():
    op, want = second(20, 100)  # 240000 > armed
    e = run(HEAD + script(FIRST, op), "lazy")
    assert len(events(e, "wrmsr_tsc_deadline")) == 1
    skip = events(e, "deadline_skip")[0]
    assert (skip.time, skip.a, skip.b) == (20_000, want, ARMED)
    # the skip itself is not an equal deadline (the reprogram after the early interrupt is)
    assert [q.time for q in events(e, "equal_skip")] == [110_000]
    assert events(e, "lost") == []
    assert e.snapshot().vcpus[0].pending == want


def test_skip_is_not_an_exit():
    op, _ = second(20, 100)
    e = run(HEAD + script(FIRST, op), "lazy")
    for ev in events(e, "deadline_skip") + events(e, "deadline_request"):
        assert ev.exit == -1


@pytest.mark.parametrize(("at_us", "delta_us"), [(20, 50), (20, 90), (20, 100)])
def test_classic_always_writes(at_us, delta_us):
    op, want = second(at_us, delta_us)
    e = run(HEAD + script(FIRST, op), "classic")
    assert [(w.time, w.a) for w in events(e, "wrmsr_tsc_deadline")] == [(10_000, ARMED), (20_000, want)]
    assert [r.b for r in events(e, "deadline_request")] == [0, 0]
    assert events(e, "deadline_skip") == [] and events(e, "equal_skip") == []
    assert times(e, "guest_timer_irq") == [want // 2]


def test_unregistered_lazy_guest_behaves_classically():
    """pv_lazy = false: the guest kernel has no lazy driver and never registers."""
    op, _ = second(20, 100)
    e = run(HEAD + "pv_lazy = false\n" + script(FIRST, op), "lazy")
    assert events(e, "wrmsr_pv") == []
    assert len(events(e, "wrmsr_tsc_deadline")) == 2


def test_seed_overwrite_picture():
    """The seed's picture: five deadlines, each 100us ahead, 10us apart (t = 10..50us)."""
    ops = [dict(at=f"{10 * k}us", op="set_next_event", delta="100us") for k in range(1, 6)]
    wants = [tsc(10_000 * k) + tsc(100_000) for k in range(1, 6)]
    classic = run(HEAD + script(*ops), "classic")
    lazy = run(HEAD + script(*ops), "lazy")
    assert [w.a for w in events(classic, "wrmsr_tsc_deadline")] == wants
    assert [w.a for w in events(lazy, "wrmsr_tsc_deadline")] == wants[:1]
    assert [s.a for s in events(lazy, "deadline_skip")][:4] == wants[1:]
    assert times(classic, "guest_timer_irq") == [150_000]
    # lazy: early interrupt at the first deadline, then the wanted one
    assert times(lazy, "guest_timer_irq") == [110_000, 150_000]
    assert [s.time for s in events(lazy, "spurious")] == [110_000]


def test_sequential_set_next_event_calls_all_deliver():
    """A bare script programs a second deadline after the first expired: both delivered."""
    ops = (FIRST, dict(at="200us", op="set_next_event", delta="100us"))
    for mode in ("classic", "lazy"):
        e = run(HEAD + script(*ops), mode)
        assert times(e, "guest_timer_irq") == [110_000, 300_000], mode
        assert events(e, "lost") == [], mode
        assert len(events(e, "wrmsr_tsc_deadline")) == 2, mode


def test_delta_ticks_is_in_clockevent_ticks_of_eight_cycles():
    e = run(HEAD + script(dict(at="10us", op="set_next_event", delta_ticks=1000)), "classic")
    (w,) = events(e, "wrmsr_tsc_deadline")
    assert w.a == tsc(10_000) + 8 * 1000
