"""Rules the engine once got wrong, each stated as KVM's code (lapic.c, x86.c) or the seed patch.

One vCPU unless said otherwise; TSC = 2 * ns (2 GHz); exit_cost_ns = 600 (the vCPU re-enters
600 ns after an exit); timer_advance_ns = 1000.
"""

from __future__ import annotations

from lazytsc.engine import Engine
from lazytsc.taxonomy import (
    BACKEND_HV,
    BACKEND_SW,
    CLEAR_EXPIRED_HV,
    EXPIRED_LATCHED,
    SWITCH_BLOCK,
    SWITCH_WAKE,
    WAKE_SPURIOUS,
)
from lazytsc_testkit import events, run, scenario, script, times, tsc

EXIT = 600
LINUX = """
duration = "{duration}"
vcpus = {vcpus}
[defaults]
reprogram_jitter_cycles = 0
{defaults}
[host]
{host}
"""


def body(
    *ops: dict, duration: str = "400us", vcpus: int = 1, defaults: str = "", host: str = "sw_timer_latency_ns = 0"
) -> str:
    return LINUX.format(duration=duration, vcpus=vcpus, defaults=defaults, host=host) + script(*ops)


# ---- item 2: a masked expiry makes nothing pending -------------------------------------------------
def test_masked_expiry_does_not_wake_a_halted_vcpu():
    """A halted vCPU's timer is on the hrtimer (vcpu_block: kvm_lapic_switch_to_sw_timer).
    apic_timer_fn -> apic_timer_expired(from_timer_fn) latches the expiry and kicks the vCPU,
    but with LVTT masked apic_has_pending_timer() is false and kvm_vcpu_has_events() sees no
    interrupt: vcpu_block() finds the vCPU not runnable and blocks again. The guest stays
    halted, and the expiry stays latched."""
    ops = (
        dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", op="write", reg="lvtt", value=0x500EC),  # TSC-deadline mode, masked
        dict(at="30us", op="hlt"),
    )
    e = run(body(*ops), "classic")
    assert events(e, "guest_timer_irq") == []
    (wake,) = events(e, "wake")
    assert wake.a == WAKE_SPURIOUS
    snap = e.snapshot().vcpus[0]
    assert snap.halted is True and snap.irq_latched is True


def test_expiry_latched_while_masked_is_injected_when_lvtt_is_unmasked():
    """KVM, unlike hardware: the latched expiry (lapic_timer.pending) survives the mask, and
    after the guest unmasks LVTT the vcpu_run() loop tail (kvm_inject_pending_timer_irqs,
    now that apic_has_pending_timer() holds) injects it. vCPU 1 wakes vCPU 0 with an IPI."""
    ops = (
        dict(at="10us", vcpu=0, op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", vcpu=0, op="write", reg="lvtt", value=0x500EC),
        dict(at="30us", vcpu=0, op="hlt"),
        dict(at="200us", vcpu=1, op="ipi", dest=0, vector=0x40),
        dict(at="250us", vcpu=0, op="write", reg="lvtt", value=0x400EC),  # unmask
    )
    e = run(body(*ops, vcpus=2, defaults='boot = "linux"'), "classic")
    irqs = [ev for ev in events(e, "guest_timer_irq") if ev.vcpu == 0]
    assert [ev.time for ev in irqs] == [250_000 + EXIT]


# ---- item 6: init maps any GPA inside guest memory ---------------------------------------------------
def test_init_maps_gpa_zero_and_an_unaligned_gpa():
    """kvm_lazy_tscdeadline_init: the page of msr_val, the struct at offset_in_page(msr - 1):
    no alignment check, and GPA 0 is a valid guest physical address."""
    for gpa in (0, 0x10004):
        ops = (
            dict(at="5us", op="pv_enable", gpa=gpa),
            dict(at="10us", op="set_next_event", delta="100us"),
            dict(at="20us", op="set_next_event", delta="200us"),
            dict(at="30us", op="read", reg="armed", label="armed"),
        )
        e = run(body(*ops, defaults=f"pv_gpa = {gpa}"), "lazy")
        assert [(i.a, i.b) for i in events(e, "init")][-1] == (gpa, 1)
        assert e.reads["armed"] == tsc(110_000)  # the host's update reached the guest's struct
        assert events(e, "deadline_skip")[0].time == 20_000  # the later deadline stayed in the page


# ---- item 8: one-shot and periodic on the hrtimer are armed at the exact target --------------------
def test_sw_oneshot_is_armed_at_the_exact_target_and_not_waited_for():
    """start_sw_period(): hrtimer_start(target_expiration), no timer_advance_ns; the expiry
    records no expired_tscdeadline (not TSC-deadline mode, no hv timer), so
    kvm_wait_lapic_expire() never busy-waits. The interrupt comes at the target plus the
    expiry's own exit (an `intr` exit while the vCPU runs)."""
    ops = (
        dict(at="5us", op="write", reg="lvtt", value=0xEC),  # one-shot
        dict(at="6us", op="write", reg="tdcr", value=0xB),  # divide by 1
        dict(at="10us", op="write", reg="tmict", value=50_000),  # 50us
    )
    e = run(body(*ops, defaults='timer_backend = "sw"'), "classic")
    arm = events(e, "timer_arm")[-1]
    fire = events(e, "timer_fire")[-1]
    target = 10_000 + 50_000  # start_apic_timer() reads the clock as the TMICT write is handled, at the exit
    assert (arm.b, fire.time, fire.exit_name) == (BACKEND_SW, target, "intr")
    assert events(e, "busy_wait") == []
    assert times(e, "guest_timer_irq") == [target + EXIT]


def test_sw_tsc_deadline_is_armed_timer_advance_early():
    """start_sw_tscdeadline(): the hrtimer expires timer_advance_ns before the deadline and the
    entry busy-waits to it (kvm_wait_lapic_expire): the interrupt lands on the deadline."""
    e = run(body(dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"), defaults='timer_backend = "sw"'), "classic")
    assert times(e, "timer_fire") == [109_000]
    assert times(e, "guest_timer_irq") == [110_000]
    assert [b.a for b in events(e, "busy_wait")] == [1000 - EXIT]


# ---- item 9: TDCR after an expired one-shot -------------------------------------------------------
def test_tdcr_write_after_a_oneshot_expired_fires_it_again():
    """kvm_lapic_reg_write(APIC_TDCR): when the divide count changes and `period` is set --
    it still is after a one-shot expired -- update_target_expiration() starts from the
    target kvm_apic_inject_pending_timer_irqs() reset to 0, so the remaining time is 0, and
    restart_apic_timer() expires it at once: a second interrupt."""
    ops = (
        dict(at="5us", op="write", reg="lvtt", value=0xEC),
        dict(at="6us", op="write", reg="tdcr", value=0xB),
        dict(at="10us", op="write", reg="tmict", value=20_000),
        dict(at="100us", op="write", reg="tdcr", value=0x0),  # divide by 2
    )
    e = run(body(*ops), "classic")
    irqs = times(e, "guest_timer_irq")
    assert len(irqs) == 2 and irqs[1] == 100_000 + EXIT


# ---- item 10: a woken vCPU still honours the busy-wait ------------------------------------------------
def test_wakeup_faster_than_the_advance_still_delivers_on_the_deadline():
    """The halted vCPU's hrtimer fires timer_advance_ns early; with wakeup_latency_ns (100 ns)
    below the advance the vCPU runs again before the deadline, and kvm_wait_lapic_expire()
    holds the entry until it: the guest never sees a TSC-deadline interrupt early."""
    ops = (dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"), dict(at="20us", op="hlt"))
    e = run(body(*ops, host="wakeup_latency_ns = 100\nsw_timer_latency_ns = 0"), "classic")
    (irq,) = events(e, "guest_timer_irq")
    assert irq.time == 110_000 and irq.a == tsc(110_000)
    assert events(e, "spurious") == []


# ---- item 11: hv deltas within the advance expire at arm time --------------------------------------
def test_hv_deadline_within_the_advance_expires_at_arm_time():
    """vmx_set_hv_timer(): a delta within timer_advance_ns leaves nothing for the preemption
    timer (`expired`), so start_hv_timer() calls apic_timer_expired() and cancels it: no
    timer is armed and no preemption-timer exit follows."""
    e = run(body(dict(at="10us", op="wrmsr_tsc_deadline", delta="500ns")), "classic")
    assert events(e, "timer_arm") == []
    assert e.summary()["exits"]["by_reason"]["preemption-timer"] == 0
    (irq,) = events(e, "guest_timer_irq")
    assert irq.time == 10_000 + EXIT  # the WRMSR's exit outlasts the 500 ns


# ---- item 12: the backend switches are events -------------------------------------------------------
def test_hlt_moves_the_hv_timer_to_the_hrtimer_and_the_wakeup_moves_it_back():
    """vcpu_block(): kvm_lapic_switch_to_sw_timer() before blocking (the hv timer only counts
    in guest mode), kvm_lapic_switch_to_hv_timer() -> restart_apic_timer() after the wake."""
    ops = (
        dict(at="10us", vcpu=0, op="wrmsr_tsc_deadline", delta="300us"),
        dict(at="20us", vcpu=0, op="hlt"),
        dict(at="100us", vcpu=1, op="ipi", dest=0, vector=0x40),
    )
    e = run(body(*ops, vcpus=2), "classic")
    switches = [(ev.a, ev.b) for ev in events(e, "backend_switch") if ev.vcpu == 0]
    assert switches == [(BACKEND_SW, SWITCH_BLOCK), (BACKEND_HV, SWITCH_WAKE)]
    arms = [ev.b for ev in events(e, "timer_arm") if ev.vcpu == 0]
    assert arms == [BACKEND_HV, BACKEND_SW, BACKEND_HV]
    assert [ev.time for ev in events(e, "guest_timer_irq") if ev.vcpu == 0] == [310_000]


def test_switch_back_to_hv_finds_the_deadline_expired_and_clears():
    """After the wake, start_hv_timer() finds the deadline within timer_advance_ns: its
    expired branch calls apic_timer_expired() and, under the seed, `clear`."""
    ops = (
        dict(at="10us", vcpu=0, op="wrmsr_tsc_deadline", delta="100us"),
        dict(at="20us", vcpu=0, op="hlt"),
        dict(at="100us", vcpu=1, op="ipi", dest=0, vector=0x40),
    )
    # The hrtimer is armed at deadline - timer_advance_ns (start_sw_tscdeadline) = 109us, and its
    # callback runs 1us late; the IPI's wake-up ends at 109.5us, inside the advance window.
    text = body(*ops, vcpus=2, host="wakeup_latency_ns = 9500\nsw_timer_latency_ns = 1000")
    e = run(text, "lazy")
    clears = [c for c in events(e, "clear") if c.vcpu == 0]
    assert [(c.time, c.a) for c in clears] == [(109_500, CLEAR_EXPIRED_HV)]
    expired = [x for x in events(e, "timer_expired") if x.vcpu == 0]
    assert expired and expired[0].time == 109_500


# ---- item 13 and issue 12 item 6: no recursion, any length ---------------------------------------------
def test_timer_advance_longer_than_the_tick_runs_to_the_end():
    """timer_advance_ns >= the tick period: every deadline is within the advance, expires at
    arm time and is busy-waited to (kvm_wait_lapic_expire, capped at the advance). The run
    is a long chain of expiries, not a recursion: it completes, one interrupt per tick."""
    text = 'duration = "30ms"\n[defaults]\ntimer_advance_ns = 1000000\n[workload]\nkind = "periodic_tick"\nhz = 1000\n'
    e = Engine(scenario(text), "lazy")
    e.run()
    assert e.done
    irqs = len(events(e, "guest_timer_irq"))
    assert 28 <= irqs <= 31
    assert events(e, "livelock") == []


def test_livelock_guard_ends_a_run_that_spins_at_one_instant():
    """The engine's own guard (not a kernel rule): more than LIVELOCK_EVENTS events at one
    simulated instant end the run with a `livelock` hazard instead of spinning forever."""
    from lazytsc import sim

    e = Engine(scenario('duration = "1ms"\n' + script(dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"))), "classic")
    old = sim.LIVELOCK_EVENTS
    try:
        import lazytsc.engine as engine_mod

        engine_mod.LIVELOCK_EVENTS = 2
        e.run()
    finally:
        engine_mod.LIVELOCK_EVENTS = old
    assert e.done
    assert len(events(e, "livelock")) == 1


def test_latched_expiry_of_a_sw_timer_is_injected_at_the_entry_after_its_exit():
    """apic_timer_fn on a running vCPU: `intr` exit; the expiry is latched
    (apic_timer_expired(from_timer_fn): pending = 1, even with APICv) and the vcpu_run() loop
    tail injects it before the next entry."""
    e = run(body(dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"), defaults='timer_backend = "sw"'), "classic")
    (exp,) = events(e, "timer_expired")
    assert exp.b == EXPIRED_LATCHED


def test_a_preemption_timer_expiring_in_the_host_fires_at_entry_and_names_its_arm():
    """The VMX preemption timer counts only in VMX non-root mode: a deadline that comes due
    while the vCPU is still in the host (here: inside the WRMSR exit that armed it) exits
    right after the next VM entry (kvm_lapic_expired_hv_timer). The firing's parent is the
    TIMER_ARM it ends, like every other firing."""
    ops = (dict(at="10us", op="wrmsr_tsc_deadline", delta="1300ns"),)  # hv fires at 10.3us, in the host
    e = run(body(*ops), "classic")
    (arm,) = [ev for ev in events(e, "timer_arm") if ev.time == 10_000]
    (fire,) = [ev for ev in events(e, "timer_fire") if ev.time >= 10_000]
    assert (fire.time, fire.exit_name, fire.parent) == (10_000 + EXIT, "preemption-timer", arm.index)


# ---- a VMM restore runs outside KVM_RUN ------------------------------------------------------------
RESTORE = """
duration = "700us"
vcpus = 1
variant = "v2"
[defaults]
reprogram_jitter_cycles = 0
timer_backend = "hv"
{defaults}
"""


def test_a_restore_that_expires_the_deadline_delivers_it_at_entry_after_the_busy_wait():
    """KVM_SET_MSRS(IA32_TSC_DEADLINE) on the destination runs outside KVM_RUN: a deadline
    within timer_advance_ns takes start_hv_timer's expired branch and, with APICv,
    apic_timer_expired() puts LVTT in the IRR -- but the guest runs only after the VMM's
    KVM_RUN, whose vcpu_enter_guest() busy-waits in kvm_wait_lapic_expire() until the
    deadline. The interrupt comes at the deadline, not at the restore, and is not early."""
    text = RESTORE.format(defaults="") + script(
        dict(at=10_000, op="set_deadline", tsc=26_000),  # 13 us at 2 GHz
        dict(at=12_000, op="migrate", vmm_support=False),
    )
    e = run(text, "classic")
    (irq,) = events(e, "guest_timer_irq")
    assert irq.time == 13_000 and irq.a == irq.b == 26_000
    assert events(e, "spurious") == []
    (wait,) = events(e, "busy_wait")
    assert wait.time == 12_000 and wait.a == 1_000


def test_a_migrated_halted_vcpu_stays_halted_and_its_first_run_blocks_or_takes_the_timer():
    """KVM_GET/SET_MP_STATE carry KVM_MP_STATE_HALTED, and the destination's first KVM_RUN goes
    through vcpu_run() -> vcpu_block(), which finds the expiry the restore latched (no APICv:
    apic_timer_expired() sets lapic_timer.pending) and kvm_inject_pending_timer_irqs() injects
    it. The guest's deadline is delivered; none is lost."""
    text = RESTORE.format(defaults="apicv = false") + script(
        dict(at=10_000, op="set_deadline", tsc=31_208),
        dict(at=12_000, op="set_deadline", tsc=34_008),
        dict(at=14_000, op="hlt"),
        dict(at=16_000, op="migrate", vmm_support=True),
    )
    e = run(text, "lazy")
    assert e.summary()["timer"]["lost"] == 0
    (migrate,) = events(e, "migrate")
    irqs = events(e, "guest_timer_irq")
    assert any(ev.index > migrate.index and ev.a >= 34_008 for ev in irqs), [(ev.time, ev.a) for ev in irqs]


def test_a_posted_injection_queued_by_the_source_never_reaches_the_restored_vcpu():
    """With posted timer interrupts apic_timer_fn() busy-waits (__kvm_wait_lapic_expire) and then
    injects, all inside the source's hrtimer callback. A migration replaces the vCPU: the
    destination's LAPIC is built by KVM_SET_LAPIC / KVM_SET_MSRS from saved state, so the
    source's callback never injects into it (nor zeroes its new tscdeadline)."""
    text = """
duration = "14201ns"
vcpus = 1
variant = "v2"
[defaults]
reprogram_jitter_cycles = 0
timer_backend = "sw"
posted_timer_interrupts = true
hlt_exits = false
""" + script(
        dict(at=10_000, op="set_deadline", tsc=28_400),
        dict(at=12_000, op="set_deadline", tsc=32_408),
        dict(at=14_001, op="migrate", vmm_support=True),
    )
    e = run(text, "lazy")
    (migrate,) = events(e, "migrate")
    fires = [ev.index for ev in events(e, "timer_fire") if ev.index < migrate.index]
    assert fires, "the source's hrtimer fired before the migration"
    from_source = [ev for ev in events(e, "irq_accept") if ev.index > migrate.index and ev.parent in fires]
    assert from_source == []
