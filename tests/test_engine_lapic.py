"""LAPIC timer rules of DESIGN.md section 2 (KVM arch/x86/kvm/lapic.c), one test per rule.

Register-level scripts on one vCPU in classic mode (no PV page involved). Expected
values are computed by hand from the rules: TSC = 2 * ns (2 GHz), APIC bus 1 ns,
TDCR 0xb = divide by 1, TDCR 0 = divide by 2, timer_advance_ns = 1000 (the host fires
1 us early and busy-waits, so a running vCPU sees the interrupt exactly at the deadline).
"""

from __future__ import annotations

import heapq

import pytest
from lazytsc.debugger import Session
from lazytsc.taxonomy import X2APIC_LVTT, Kind
from lazytsc_testkit import events, run, scenario, script, times, tsc

# A vCPU from LAPIC reset values (LVTT masked, SPIV software-disabled).
RESET = """
duration = "700us"
[defaults]
boot = "reset"
"""
EXIT_COST = 600  # host.exit_cost_ns default: the vCPU re-enters that long after an exit
# A booted Linux vCPU (SPIV enabled, LVTT = TSC-deadline mode, vector 0xec, unmasked).
LINUX = """
duration = "300us"
"""
ENABLE = (
    dict(at="1us", op="write", reg="spiv", value=0x1FF),
    dict(at="2us", op="write", reg="tdcr", value=0xB),  # divide by 1
)
ONESHOT = 0x000EC
PERIODIC = 0x200EC
TSCDL = 0x400EC
MASKED_TSCDL = 0x500EC
RESERVED = 0x600EC


def oneshot_body(*ops: dict, lvtt: int = ONESHOT, head: str = RESET) -> str:
    return head + script(*ENABLE, dict(at="3us", op="write", reg="lvtt", value=lvtt), *ops)


# ---- reset values ------------------------------------------------------------------------
def test_reset_values_read_back():
    """kvm_lapic_reset: LVTT=0x10000 (masked), TMICT=TMCCT=0, TDCR=0 (divide by 2), deadline 0."""
    body = RESET + script(
        dict(at="1us", op="read", reg="lvtt", label="lvtt"),
        dict(at="1us", op="read", reg="tmict", label="tmict"),
        dict(at="1us", op="read", reg="tmcct", label="tmcct"),
        dict(at="1us", op="read", reg="tdcr", label="tdcr"),
        dict(at="1us", op="read", reg="tsc_deadline", label="tscdl"),
        dict(at="1us", op="read", reg="spiv", label="spiv"),
    )
    e = run(body, "classic")
    assert e.reads == {"lvtt": 0x10000, "tmict": 0, "tmcct": 0, "tdcr": 0, "tscdl": 0, "spiv": 0xFF}
    snap = e.snapshot().vcpus[0]
    assert snap.divisor == 2
    assert snap.lvtt_masked is True
    assert snap.timer_mode == "one-shot"
    assert snap.timer_armed is False


def test_vcpu_reset_op_restores_reset_values_and_cancels_the_timer():
    """INIT (`reset` op) on a booted vCPU with an armed deadline: timer cancelled, reset values."""
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="write", reg="tmict", value=5),  # ignored (TSC-deadline mode)
        dict(at="50us", op="reset"),
        dict(at="60us", op="read", reg="lvtt", label="lvtt"),
        dict(at="60us", op="read", reg="tmict", label="tmict"),
        dict(at="60us", op="read", reg="tdcr", label="tdcr"),
        dict(at="60us", op="read", reg="tsc_deadline", label="tscdl"),
    )
    e = run(body, "classic")
    assert e.reads == {"lvtt": 0x10000, "tmict": 0, "tdcr": 0, "tscdl": 0}
    cancels = events(e, "timer_cancel")
    assert [(c.time, c.a) for c in cancels] == [(50_000, tsc(10_000) + tsc(100_000))]
    assert events(e, "timer_fire") == []
    assert events(e, "guest_timer_irq") == []


# ---- one-shot count-down, TMCCT, TDCR ---------------------------------------------------------
def test_tmcct_counts_down_and_reads_zero_after_oneshot_expiry():
    """TMICT=100000 at 10us, divide by 1: TMCCT = remaining ns; 0 once the one-shot expired."""
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=100_000),
        dict(at="20us", op="read", reg="tmcct", label="t20"),
        dict(at="50us", op="read", reg="tmcct", label="t50"),
        dict(at="100us", op="read", reg="tmcct", label="t100"),
        dict(at="200us", op="read", reg="tmcct", label="t200"),
        dict(at="200us", op="read", reg="tmict", label="tmict"),
    )
    e = run(body, "classic")
    assert e.reads == {"t20": 90_000, "t50": 60_000, "t100": 10_000, "t200": 0, "tmict": 100_000}
    assert times(e, "guest_timer_irq") == [110_000]


def test_tmcct_scales_with_the_divider():
    """Divide by 2 (TDCR=0): period = 2 * TMICT ns and TMCCT = remaining / 2."""
    body = RESET + script(
        dict(at="1us", op="write", reg="spiv", value=0x1FF),
        dict(at="3us", op="write", reg="lvtt", value=ONESHOT),
        dict(at="10us", op="write", reg="tmict", value=50_000),
        dict(at="20us", op="read", reg="tmcct", label="t20"),
    )
    e = run(body, "classic")
    assert e.reads == {"t20": (110_000 - 20_000) // 2}
    assert times(e, "guest_timer_irq") == [110_000]


def test_tmcct_zero_with_tmict_zero():
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=0),
        dict(at="20us", op="read", reg="tmcct", label="t"),
    )
    e = run(body, "classic")
    assert e.reads == {"t": 0}
    assert events(e, "timer_arm") == []


def test_tmcct_zero_in_tsc_deadline_mode():
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="read", reg="tmcct", label="t"),
    )
    assert run(body, "classic").reads == {"t": 0}


def test_tdcr_change_rescales_the_remaining_time():
    """TMICT=100000 (/1) at 10us -> 110us; at 30us TDCR /2: 80us left become 160us -> 190us."""
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=100_000),
        dict(at="30us", op="write", reg="tdcr", value=0),
        dict(at="40us", op="read", reg="tmcct", label="t40"),
    )
    e = run(body, "classic")
    assert e.reads == {"t40": (190_000 - 40_000) // 2}
    assert times(e, "guest_timer_irq") == [190_000]
    assert e.snapshot().vcpus[0].divisor == 2


def test_tdcr_change_rescales_down():
    """TMICT=100000 (/2) at 10us -> 210us; at 110us TDCR /1: 100us left become 50us -> 160us."""
    body = RESET + script(
        dict(at="1us", op="write", reg="spiv", value=0x1FF),
        dict(at="3us", op="write", reg="lvtt", value=ONESHOT),
        dict(at="10us", op="write", reg="tmict", value=100_000),
        dict(at="110us", op="write", reg="tdcr", value=0xB),
    )
    assert times(run(body, "classic"), "guest_timer_irq") == [160_000]


def test_timer_arm_and_fire_name_the_same_deadline_in_oneshot_mode():
    """TIMER_ARM.a and its TIMER_FIRE.a are both "deadline tsc" (taxonomy.KIND_FIELDS).

    In TSC-deadline mode they are; in one-shot/periodic mode TIMER_FIRE.a is tsc(target)
    and TIMER_ARM.a must be the same TSC value (the GUI converts both with tsc_khz).
    """
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=100_000))
    e = run(body, "classic")
    (fire,) = events(e, "timer_fire")
    arm = e.log.event(fire.parent)
    assert arm.kind == Kind.TIMER_ARM
    assert fire.a == tsc(110_000)
    assert arm.a == fire.a


# ---- periodic ---------------------------------------------------------------------------
def test_periodic_interrupts_every_period():
    """min_timer_period_us = 20: TMICT=50000 (/1) = 50us period from 10us."""
    body = RESET.replace('"700us"', '"260us"') + "[host]\nmin_timer_period_us = 20\n"
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=50_000), lvtt=PERIODIC, head=body)
    assert times(run(body, "classic"), "guest_timer_irq") == [60_000, 110_000, 160_000, 210_000, 260_000]


def test_periodic_period_is_clamped_to_min_timer_period():
    """TMICT=1000 (/1) asks for 1us; KVM clamps periodic timers to min_timer_period_us=200us."""
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=1000), lvtt=PERIODIC)
    e = run(body, "classic")
    assert times(e, "guest_timer_irq") == [210_000, 410_000, 610_000]


def test_oneshot_is_not_clamped():
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=1000))
    assert times(run(body, "classic"), "guest_timer_irq") == [11_000]


def test_periodic_tmcct_wraps_within_the_period():
    """Period 100us from 10us: at 150us the second period (ends 210us) has 60us left."""
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=100_000),
        dict(at="150us", op="read", reg="tmcct", label="t150"),
        lvtt=PERIODIC,
    )
    assert run(body, "classic").reads == {"t150": 60_000}


def test_periodic_reload_after_a_late_expiry_does_not_burst():
    """advance_periodic_target_expiration: if target + period is already past, target = now.

    The host normally fires on time, so the late expiry is simulated: the armed periodic
    hv timer (period 200us, first target 210us) is taken by hand at 1.05 ms, four periods
    late (kvm_lapic_expired_hv_timer). The target becomes `now`; restart_apic_timer finds
    it expired at once and leaves the periodic hv timer to exit right after entry, which
    advances the target to now + period. The guest takes one interrupt for the missed
    periods (the second injection finds the vector still in the IRR), then the next one
    at now + period: no burst.
    """
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=200_000), lvtt=PERIODIC)
    body = body.replace('"700us"', '"1400us"')
    s = Session(scenario(body), "classic")
    s.run(until_ns=20_000)
    e = s.engine
    t = e.timer.s[0]
    assert t.hv_in_use and t.target == 210_000
    late = 1_050_000
    e.sched.queue[:] = [q for q in e.sched.queue if q[2] != e.timer.H_HV_FIRE]  # the on-time expiry is gone
    heapq.heapify(e.sched.queue)
    e.sched.now = late
    n0 = len(e.log)
    e.sched.begin(-1)
    e.timer.hv_timer_exit(0, (t.hv_gen, -1))
    assert e.timer.s[0].target == late  # not 210us + 200us, not a backlog
    e.run()
    irqs = [x for x in times(e, "guest_timer_irq") if x >= late]
    assert len([x for x in irqs if x < late + 200_000]) == 1
    assert irqs[1] == late + 200_000  # busy-waited to the target: exactly on time
    assert all(ev.time >= late for ev in list(e.log)[n0:])


# ---- mode switches ---------------------------------------------------------------------------
def test_entering_tsc_deadline_mode_cancels_and_zeroes_tmict():
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=100_000),
        dict(at="20us", op="write", reg="lvtt", value=TSCDL),
        dict(at="30us", op="read", reg="tmict", label="tmict"),
        dict(at="30us", op="read", reg="tmcct", label="tmcct"),
    )
    e = run(body, "classic")
    assert e.reads == {"tmict": 0, "tmcct": 0}
    assert times(e, "timer_cancel") == [20_000]
    assert events(e, "guest_timer_irq") == []
    assert e.snapshot().vcpus[0].timer_mode == "tsc-deadline"


def test_leaving_tsc_deadline_mode_cancels_and_zeroes_the_deadline():
    """The stored deadline is zeroed: switching back to TSC-deadline mode reads 0 and arms nothing."""
    deadline = tsc(10_000) + tsc(100_000)
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="15us", op="read", reg="tsc_deadline", label="armed"),
        dict(at="20us", op="write", reg="lvtt", value=ONESHOT),
        dict(at="25us", op="read", reg="tsc_deadline", label="oneshot"),
        dict(at="30us", op="write", reg="lvtt", value=TSCDL),
        dict(at="40us", op="read", reg="tsc_deadline", label="back"),
    )
    e = run(body, "classic")
    assert e.reads == {"armed": deadline, "oneshot": 0, "back": 0}
    assert [(c.time, c.a) for c in events(e, "timer_cancel")] == [(20_000, deadline)]
    assert events(e, "guest_timer_irq") == []


def test_oneshot_to_periodic_keeps_the_running_countdown():
    """TMICT=300000 (/1) one-shot at 10us (310us); periodic from 100us: 310us, then 610us."""
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=300_000),
        dict(at="100us", op="write", reg="lvtt", value=PERIODIC),
    )
    e = run(body, "classic")
    assert events(e, "timer_cancel") == []
    assert times(e, "guest_timer_irq") == [310_000, 610_000]


def test_periodic_to_oneshot_keeps_the_running_countdown():
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=300_000),
        dict(at="100us", op="write", reg="lvtt", value=ONESHOT),
        lvtt=PERIODIC,
    )
    e = run(body, "classic")
    assert events(e, "timer_cancel") == []
    assert times(e, "guest_timer_irq") == [310_000]


def test_reserved_timer_mode_keeps_tmict_but_runs_no_timer():
    """LVTT mode 3 is reserved: KVM keeps the TMICT value, nothing counts, nothing fires."""
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=5000),
        dict(at="20us", op="read", reg="tmict", label="tmict"),
        dict(at="20us", op="read", reg="tmcct", label="tmcct"),
        dict(at="30us", op="wrmsr_tsc_deadline", delta="10us"),
        dict(at="40us", op="read", reg="tsc_deadline", label="tscdl"),
        lvtt=RESERVED,
    )
    e = run(body, "classic")
    assert e.reads == {"tmict": 5000, "tmcct": 0, "tscdl": 0}
    assert events(e, "timer_arm") == []
    assert events(e, "guest_timer_irq") == []
    assert e.snapshot().vcpus[0].timer_mode == "reserved"


# ---- masking, SPIV ------------------------------------------------------------------------------
def test_masked_tsc_deadline_expiry_is_dropped():
    """A masked LVTT still expires; kvm_apic_local_deliver delivers nothing.

    The preemption timer fires timer_advance_ns early (109us); with APICv,
    apic_timer_expired(from_timer_fn=false) injects at once (kvm_apic_inject_pending_timer_irqs),
    which drops the masked vector and zeroes the TSC deadline.
    """
    body = LINUX + script(
        dict(at="5us", op="write", reg="lvtt", value=MASKED_TSCDL),
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="200us", op="read", reg="tsc_deadline", label="after"),
    )
    e = run(body, "classic")
    assert times(e, "timer_fire") == [109_000]
    drops = events(e, "irq_inject")
    assert [(d.time, d.a, d.b) for d in drops] == [(109_000, 0xEC, 1)]
    assert events(e, "guest_timer_irq") == []
    assert e.reads == {"after": 0}


def test_masked_oneshot_expiry_is_dropped():
    """A masked one-shot on the hv timer: vmx_set_hv_timer arms it timer_advance_ns before
    its 30us target (for every timer mode), and the expiry's delivery is dropped."""
    body = oneshot_body(dict(at="10us", op="write", reg="tmict", value=20_000), lvtt=ONESHOT | 0x10000)
    e = run(body, "classic")
    assert [(d.time, d.b) for d in events(e, "irq_inject")] == [(29_000, 1)]
    assert events(e, "guest_timer_irq") == []


def test_spiv_software_disable_masks_lvtt():
    """apic_set_spiv: clearing bit 8 masks every LVT; LVTT writes stay masked while disabled."""
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="write", reg="spiv", value=0xFF),
        dict(at="30us", op="read", reg="lvtt", label="masked"),
        dict(at="40us", op="write", reg="lvtt", value=TSCDL),
        dict(at="50us", op="read", reg="lvtt", label="forced"),
    )
    e = run(body, "classic")
    assert e.reads == {"masked": MASKED_TSCDL, "forced": MASKED_TSCDL}
    assert events(e, "guest_timer_irq") == []
    assert [d.b for d in events(e, "irq_inject")] == [1]


def test_lvtt_written_while_spiv_disabled_is_forced_masked_at_reset():
    body = RESET + script(
        dict(at="1us", op="write", reg="lvtt", value=ONESHOT),
        dict(at="2us", op="read", reg="lvtt", label="lvtt"),
        dict(at="3us", op="write", reg="tmict", value=10_000),
    )
    e = run(body, "classic")
    assert e.reads == {"lvtt": 0x100EC}
    assert events(e, "guest_timer_irq") == []


# ---- TSC-deadline MSR --------------------------------------------------------------------------
def test_tsc_deadline_msr_reads_back_then_zero_after_firing():
    deadline = tsc(10_000) + tsc(100_000)
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="50us", op="read", reg="tsc_deadline", label="before"),
        dict(at="150us", op="read", reg="tsc_deadline", label="after"),
    )
    e = run(body, "classic")
    assert e.reads == {"before": deadline, "after": 0}
    assert times(e, "guest_timer_irq") == [110_000]
    (irq,) = events(e, "guest_timer_irq")
    assert irq.a == deadline  # delivered exactly at the deadline (timer_advance_ns busy-wait)


def test_tsc_deadline_msr_reads_zero_outside_tsc_deadline_mode():
    """In one-shot mode the MSR is ignored: a write arms nothing and reads give 0."""
    body = oneshot_body(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="read", reg="tsc_deadline", label="t"),
    )
    e = run(body, "classic")
    assert e.reads == {"t": 0}
    assert events(e, "timer_arm") == []
    assert events(e, "guest_timer_irq") == []
    # the WRMSR itself still exits
    assert len(events(e, "wrmsr_tsc_deadline")) == 1


@pytest.mark.parametrize("value_ns", [5_000, 50_000])
def test_deadline_in_the_past_or_now_fires_at_once(value_ns):
    """A deadline <= now expires at arm time: vmx_set_hv_timer reports `expired`, so
    start_hv_timer calls apic_timer_expired and cancels the hv timer -- no timer is armed.
    The guest takes the interrupt when it re-enters after the WRMSR exit (exit_cost_ns)."""
    body = LINUX + script(
        dict(at="50us", op="wrmsr_tsc_deadline", value=tsc(value_ns)),
        dict(at="60us", op="read", reg="tsc_deadline", label="after"),
    )
    e = run(body, "classic")
    assert events(e, "timer_arm") == []
    assert times(e, "guest_timer_irq") == [50_000 + EXIT_COST]
    assert e.reads == {"after": 0}


def test_tsc_deadline_write_cancels_and_rearms():
    first, second = tsc(10_000) + tsc(100_000), tsc(20_000) + tsc(50_000)
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="wrmsr_tsc_deadline", delta="50us"),
    )
    e = run(body, "classic")
    assert [(ev.time, ev.a) for ev in events(e, "timer_cancel")] == [(20_000, first)]
    assert [ev.a for ev in events(e, "timer_arm")] == [first, second]
    assert times(e, "guest_timer_irq") == [70_000]


def test_tsc_deadline_write_of_zero_disarms():
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="wrmsr_tsc_deadline", value=0),
        dict(at="30us", op="read", reg="tsc_deadline", label="t"),
    )
    e = run(body, "classic")
    assert times(e, "timer_cancel") == [20_000]
    assert events(e, "guest_timer_irq") == []
    assert e.reads == {"t": 0}
    assert e.snapshot().vcpus[0].timer_armed is False


def test_tmict_write_is_ignored_in_tsc_deadline_mode():
    body = LINUX + script(
        dict(at="10us", op="write", reg="tmict", value=5000),
        dict(at="20us", op="read", reg="tmict", label="tmict"),
    )
    e = run(body, "classic")
    assert e.reads == {"tmict": 0}
    assert events(e, "timer_arm") == []
    assert events(e, "guest_timer_irq") == []


def test_at_most_one_expiry_is_latched():
    """apic_timer_expired() returns at once while lapic_timer.pending is set.

    A periodic 50us timer on a vCPU that halts: vcpu_block moved it to the hrtimer, which
    start_sw_period arms at the exact target (no advance). The expiry at 60us latches and
    kicks the vCPU, which runs again 120us later (wakeup_latency_ns); the expiries at 110us
    and 160us find the first still latched and coalesce: one interrupt, at 180us.
    """
    body = RESET.replace('"700us"', '"200us"') + "[host]\nmin_timer_period_us = 20\nwakeup_latency_ns = 120000\nsw_timer_latency_ns = 0\n"
    body = oneshot_body(
        dict(at="10us", op="write", reg="tmict", value=50_000),
        dict(at="11us", op="hlt"),
        lvtt=PERIODIC,
        head=body,
    )
    e = run(body, "classic")
    assert times(e, "timer_coalesced") == [110_000, 160_000]
    assert times(e, "guest_timer_irq") == [180_000]  # woken 120us after the 60us expiry


def test_expired_deadlines_written_back_to_back_each_interrupt_once():
    """Two expired deadlines written back to back: the first expiry (injected into the IRR
    at arm time, APICv) is delivered at the VM entry after its WRMSR, before the guest
    executes the next write; so two interrupts, and nothing is coalesced."""
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", value=1000),
        dict(at="10us", op="wrmsr_tsc_deadline", value=2000),
    )
    e = run(body, "classic")
    assert events(e, "timer_coalesced") == []
    assert times(e, "guest_timer_irq") == [10_000 + EXIT_COST, 10_000 + 2 * EXIT_COST]
    kinds = [ev.kind_name for ev in events(e) if ev.kind_name in ("wrmsr_tsc_deadline", "guest_timer_irq")]
    assert kinds == ["wrmsr_tsc_deadline", "guest_timer_irq", "wrmsr_tsc_deadline", "guest_timer_irq"]


def test_hv_expiry_is_a_preemption_timer_exit_and_sw_expiry_an_intr_exit():
    """Backends: hv -> preemption-timer exit; sw hrtimer while the guest runs -> intr exit."""
    body = LINUX + script(dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"))
    hv = events(run(body, "classic"), "timer_fire")
    sw = events(run(body.replace('"300us"', '"300us"\n[defaults]\ntimer_backend = "sw"'), "classic"), "timer_fire")
    assert [(f.exit_name, f.b) for f in hv] == [("preemption-timer", 0)]
    assert [(f.exit_name, f.b) for f in sw] == [("intr", 1)]


def test_lvtt_write_is_an_msr_write_exit_with_x2apic():
    body = LINUX + script(dict(at="10us", op="write", reg="lvtt", value=TSCDL))
    (w,) = events(run(body, "classic"), "lapic_write")
    assert (w.a, w.b, w.exit_name, w.sub_name) == (X2APIC_LVTT, TSCDL, "msr-write", "other")


@pytest.mark.parametrize("mode", ["classic", "lazy"])
def test_guest_write_at_the_delivery_instant_is_never_spurious(mode):
    """Deadline 110us fires at 109us (timer_advance_ns) and is injected at 110us; the guest
    writes a new deadline (210us) at 110us. In KVM the guest runs no instruction before
    the pending injection at VM entry, and a deadline write zeroes the pending count
    (__start_apic_timer: lapic_timer.pending = 0): classic mode can never see an
    interrupt earlier than the deadline it asked for."""
    body = LINUX + script(
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="110us", op="wrmsr_tsc_deadline", delta="100us"),
    )
    e = run(body, mode)
    assert events(e, "spurious") == []
    assert times(e, "guest_timer_irq")[-1] == 210_000


# ---- reset quirks ---------------------------------------------------------------------------
def test_bsp_lint0_is_extint_after_reset_and_keeps_its_bits_when_masked():
    """kvm_lapic_reset(): with KVM_X86_QUIRK_LINT0_REENABLED (default on) the BSP's LINT0 is
    `SET_APIC_DELIVERY_MODE(0, APIC_MODE_EXTINT)` = 0x700, unmasked; an AP's is masked. A SPIV
    software disable then ORs APIC_LVT_MASKED into the old value (0x10700), and INIT resets it
    to 0x700 again."""
    body = """
vcpus = 2
duration = "100us"
[defaults]
boot = "reset"
""" + script(
        dict(at="1us", op="read", reg="lvt0", label="bsp"),
        dict(at="1us", vcpu=1, op="read", reg="lvt0", label="ap"),
        dict(at="2us", op="write", reg="spiv", value=0x1FF),
        dict(at="3us", op="write", reg="spiv", value=0xFF),
        dict(at="4us", op="read", reg="lvt0", label="bsp_masked"),
        dict(at="5us", op="reset"),
        dict(at="6us", op="read", reg="lvt0", label="bsp_init"),
    )
    e = run(body, "classic")
    assert e.reads == {"bsp": 0x700, "ap": 0x10000, "bsp_masked": 0x10700, "bsp_init": 0x700}


def test_xapic_page_reads_all_ones_and_drops_writes_while_hardware_disabled():
    """apic_mmio_read()/apic_mmio_write(): with IA32_APIC_BASE.EN clear and
    KVM_X86_QUIRK_LAPIC_MMIO_HOLE (default on) a read fills 0xff and a write is dropped --
    and an MMIO store never faults. Re-enabling shows the registers as they were."""
    body = """
duration = "100us"
[defaults]
boot = "reset"
x2apic = false
""" + script(
        dict(at="1us", op="write", reg="spiv", value=0x1FF),
        dict(at="2us", op="wrmsr", msr=0x1B, value=0xFEE00100),  # EN clear
        dict(at="3us", op="read", reg="lvtt", label="lvtt_off"),
        dict(at="3us", op="read", reg="spiv", label="spiv_off"),
        dict(at="4us", op="write", reg="spiv", value=0xFF, label="spiv_write"),
        dict(at="4us", op="write", reg="tmcct", value=1, label="ro_write"),
        dict(at="5us", op="wrmsr", msr=0x1B, value=0xFEE00900),  # EN set again
        dict(at="6us", op="read", reg="spiv", label="spiv_on"),
        dict(at="7us", op="write", reg="tmcct", value=1, label="ro_write_on"),
    )
    e = run(body, "classic")
    assert e.reads["lvtt_off"] == 0xFFFFFFFF
    assert e.reads["spiv_off"] == 0xFFFFFFFF
    assert e.reads["spiv_on"] == 0x1FF  # the dropped write changed nothing
    assert e.script.faults == {}  # neither the dropped nor the read-only store faults


def test_x2apic_rdmsr_of_write_only_registers_and_msrs_outside_x2apic_mode_fault():
    """kvm_x2apic_msr_read() -> kvm_lapic_msr_read() -> kvm_lapic_reg_read() returns 1 (#GP)
    for a register kvm_lapic_readable_reg_mask() leaves out: EOI (0x80b), SELF IPI (0x83f);
    kvm_x2apic_msr_read()/_write() return 1 for any x2APIC MSR while the APIC is in xAPIC mode."""
    body = """
duration = "100us"
[defaults]
boot = "reset"
""" + script(
        dict(at="1us", op="rdmsr", msr=0x80B, label="eoi"),
        dict(at="1us", op="rdmsr", msr=0x83F, label="self_ipi"),
        dict(at="1us", op="rdmsr", msr=0x803, label="lvr"),
        dict(at="2us", op="wrmsr", msr=0x1B, value=0xFEE00100),  # disabled
        dict(at="3us", op="wrmsr", msr=0x1B, value=0xFEE00900),  # xAPIC
        dict(at="4us", op="rdmsr", msr=0x803, label="lvr_xapic"),
        dict(at="4us", op="wrmsr", msr=0x808, value=0, label="tpr_xapic"),
    )
    e = run(body, "classic")
    assert e.script.faults == {"eoi": 13, "self_ipi": 13, "lvr_xapic": 13, "tpr_xapic": 13}
    assert e.reads["lvr"] == 0x50014


@pytest.mark.parametrize("backend", ["hv", "sw"])
def test_tdcr_change_after_oneshot_expiry_refires_at_once(backend):
    """kvm_lapic_reg_write(APIC_TDCR): the divide count changed and `period` is still set, so
    update_target_expiration() sets `target_expiration = now` (remaining 0) and
    restart_apic_timer() -> start_sw_period() (no TSC deadline left for the hv timer) reads a
    later ktime_get(): `ktime_after(now, target)` holds and apic_timer_expired(apic, false)
    injects at once (APICv) -- the expired one-shot fires again at the TDCR write, without an
    hrtimer and without an extra exit."""
    body = f"""
duration = "100us"
[defaults]
boot = "reset"
timer_backend = "{backend}"
""" + script(
        *ENABLE,
        dict(at="3us", op="write", reg="lvtt", value=ONESHOT),
        dict(at="4us", op="write", reg="tmict", value=1000),
        dict(at="20us", op="write", reg="tdcr", value=0xA),  # divide by 128
    )
    e = run(body, "classic")
    irqs = times(e, "guest_timer_irq")
    assert len(irqs) == 2
    assert irqs[1] == 20_000 + EXIT_COST  # taken at the TDCR write's re-entry
    expired = events(e, "timer_expired")
    assert expired[-1].time == 20_000  # expired at the write, not an hrtimer later
    assert all(t < 20_000 for t in times(e, "timer_fire"))
    assert all(t < 20_000 for t in times(e, "timer_arm"))
