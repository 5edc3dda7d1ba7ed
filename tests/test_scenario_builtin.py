"""The built-in teaching scenarios do what their `explain` text says (hand-derived).

TSC = 2 * ns in all of them.
"""

from __future__ import annotations

import pytest
from lazytsc.lazy_host import KICK_GUARD
from lazytsc.scenario import load_scenario
from lazytsc.taxonomy import CLEAR_LVTT, EXIT_MIGRATE
from lazytsc_testkit import SCENARIOS, events, run, scenario, times, tsc


def builtin(name):
    return load_scenario(SCENARIOS / f"{name}.toml")


def test_lvtt_mask_stale_pending_story():
    lazy = run(builtin("lvtt_mask_stale_pending"), "lazy")
    armed, pending = tsc(110_000), tsc(220_000)
    assert [(w.time, w.a) for w in events(lazy, "wrmsr_tsc_deadline")] == [(10_000, armed), (310_000, tsc(360_000))]
    assert [(s.time, s.a, s.b) for s in events(lazy, "deadline_skip")] == [(20_000, pending, armed)]
    assert [(c.time, c.a, c.b) for c in events(lazy, "clear")] == [(30_000, CLEAR_LVTT, armed)]
    assert [(s.time, s.a) for s in events(lazy, "stale_pending")] == [(30_000, pending)]
    # the old armed timer still fires (its delivery dropped: masked); kick returns at its
    # guard -- clear zeroed cached_armed -- so the stale pending is never armed
    assert [(k.time, k.a, k.b) for k in events(lazy, "kick")] == [(109_000, pending, KICK_GUARD), (359_000, tsc(360_000), 0)]
    assert [(d.time, d.b) for d in events(lazy, "irq_inject")] == [(109_000, 1)]
    assert times(lazy, "guest_timer_irq") == [360_000]
    assert lazy.reads == {"msr_after_fire": 0}
    classic = run(builtin("lvtt_mask_stale_pending"), "classic")
    assert len(events(classic, "wrmsr_tsc_deadline")) == 3
    assert [(d.time, d.b) for d in events(classic, "irq_inject")] == [(219_000, 1)]


def test_spurious_interrupt_story():
    """The halted vCPU's timer is on the hrtimer (vcpu_block): the old armed deadline's
    apic_timer_fn runs timer_advance_ns early plus the host's callback latency
    (sw_timer_latency_ns = 800), raises KVM_REQ_LAZY_TSCDEADLINE and kicks; the vCPU runs
    again 8us later (wakeup_latency_ns) and the request's kick arms `pending` at that entry.
    The latched interrupt is still delivered: early for the guest."""
    lazy = run(builtin("spurious_interrupt"), "lazy")
    first, moved = tsc(1_010_000), tsc(5_020_000)
    assert [(w.time, w.a) for w in events(lazy, "wrmsr_tsc_deadline")] == [(10_000, first)]
    fire1, wake1 = 1_009_800, 1_017_800
    wake2 = 5_027_800  # the second expiry (5.0198ms) wakes it 8us later
    (req, _req2) = events(lazy, "kick_request")
    assert (req.time, req.a) == (fire1, first)
    assert [(k.time, k.a, k.b) for k in events(lazy, "kick")] == [(wake1, moved, 1), (wake2, moved, 0)]
    assert [(s.time, s.b) for s in events(lazy, "spurious")] == [(wake1, moved)]
    assert [q.time for q in events(lazy, "equal_skip")] == [wake1]
    assert times(lazy, "wake") == [wake1, wake2]
    assert times(lazy, "guest_timer_irq") == [wake1, wake2]
    classic = run(builtin("spurious_interrupt"), "classic")
    assert [w.a for w in events(classic, "wrmsr_tsc_deadline")] == [first, moved]
    assert times(classic, "wake") == [wake2]
    assert events(classic, "spurious") == []


def test_migration_without_vmm_support_story():
    lazy = run(builtin("migration_no_vmm"), "lazy")
    armed = tsc(510_000)
    (stale,) = events(lazy, "stale_armed")
    assert (stale.time, stale.a, stale.b) == (100_000, armed, EXIT_MIGRATE)
    # later deadlines are skipped against the stale `armed` and nothing arms them
    assert [(s.time, s.b) for s in events(lazy, "deadline_skip")] == [(200_000, armed), (510_000, armed), (1_200_000, armed)]
    assert [lo.time for lo in events(lazy, "lost")] == [510_000, 1_200_000]
    assert events(lazy, "kick") == []  # the page is not mapped on the destination
    classic = run(builtin("migration_no_vmm"), "classic")
    assert times(classic, "guest_timer_irq") == [1_100_000, 1_500_000]


def test_migration_with_vmm_support_keeps_the_protocol_working():
    text = (SCENARIOS / "migration_no_vmm.toml").read_text().replace("vmm_support = false", "vmm_support = true")
    lazy = run(scenario(text), "lazy")
    assert events(lazy, "stale_armed") == [] and events(lazy, "lost") == []
    assert times(lazy, "guest_timer_irq")[-2:] == [1_100_000, 1_500_000]


def test_periodic_tick_saves_nothing():
    sc = builtin("periodic_tick")
    classic, lazy = run(sc, "classic"), run(sc, "lazy")
    assert len(events(lazy, "wrmsr_tsc_deadline")) == len(events(classic, "wrmsr_tsc_deadline")) > 30
    assert events(lazy, "deadline_skip") == []
    kicks = events(lazy, "kick")
    assert kicks and all(k.b == 0 for k in kicks)  # every deadline fires: pending == armed
    assert events(lazy, "spurious") == []


def test_seed_overwrite_story():
    lazy = run(builtin("seed_overwrite"), "lazy")
    assert len(events(lazy, "wrmsr_tsc_deadline")) == 1
    assert [(k.time, k.a, k.b) for k in events(lazy, "kick")] == [(109_000, tsc(150_000), 1), (149_000, tsc(150_000), 0)]
    assert [s.time for s in events(lazy, "spurious")] == [110_000]
    assert [q.time for q in events(lazy, "equal_skip")] == [110_000]


@pytest.mark.parametrize("mode", ["classic", "lazy"])
def test_sw_kick_delayed_story(mode):
    e = run(builtin("sw_kick_delayed"), mode)
    if mode == "classic":
        assert events(e, "sw_kick_delayed") == [] and events(e, "late") == []
        return
    (req,) = [r for r in events(e, "kick_request") if r.time < 1_000_000]
    delayed = events(e, "sw_kick_delayed")
    assert delayed and delayed[0].a > 5_000
    # nothing exited between the expiry and the unrelated host interrupt whose re-entry
    # served the request (vcpu_enter_guest, exit_cost_ns after that exit)
    between = [ev for ev in e.log if req.time < ev.time < delayed[0].time and ev.exit >= 0 and ev.vcpu == 0]
    assert [ev.kind_name for ev in between] == ["host_irq"]
    assert delayed[0].time == between[0].time + 600
