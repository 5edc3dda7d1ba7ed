"""The host side of the lazy protocol (DESIGN.md section 1): init, exit, update, kick,
clear, the PV MSR and the sw path's request.

Lazy mode, one vCPU booted as Linux: at t=0 it runs CPUID and registers its page at
GPA 0x10000 (msr = 0x10001). TSC = 2 * ns. `set_next_event(delta)` at time t asks for
tsc(t) + tsc(delta); no reprogram jitter, so values are exact.
"""

from __future__ import annotations

import pytest
from lazytsc.engine import Engine
from lazytsc.lazy_host import KICK_GUARD
from lazytsc.taxonomy import (
    CLEAR_EXPIRED_HV,
    CLEAR_EXPIRED_SW,
    CLEAR_LVTT,
    CLEAR_PV_DISABLE,
    DROP_RESTART,
    EXIT_MIGRATE,
    EXIT_PV_DISABLE,
    EXIT_REENABLE,
    EXIT_RESET,
    EXPIRED_DIRECT,
    KVM_FEATURE_LAZY_TSCDEADLINE,
)
from lazytsc_testkit import events, run, scenario, script, times, tsc

BASE = """
duration = "{duration}"
variant = "{variant}"
[defaults]
reprogram_jitter_cycles = 0
{defaults}
"""
GPA = 0x10000
EXIT_COST = 600  # host.exit_cost_ns default


def body(*ops: dict, duration: str = "300us", variant: str = "v2", defaults: str = "", host: str = "") -> str:
    head = BASE.format(duration=duration, variant=variant, defaults=defaults)
    if host:
        head += "[host]\n" + host + "\n"
    return head + script(*ops)


def state_at(text: str, t_ns: int, mode: str = "lazy"):
    """Snapshot of vCPU 0 after every event up to and including time `t_ns`."""
    e = Engine(scenario(text), mode)
    e.run(until_ns=t_ns)
    return e.snapshot().vcpus[0]


A1 = tsc(10_000) + tsc(100_000)  # set_next_event(100us) at 10us: 220000
P2 = tsc(20_000) + tsc(100_000)  # set_next_event(100us) at 20us: 240000
OVERWRITE = (
    dict(at="10us", op="set_next_event", delta="100us"),
    dict(at="20us", op="set_next_event", delta="100us"),
)


# ---- init and the PV MSR -----------------------------------------------------------------
def test_boot_registers_the_page_after_cpuid():
    e = run(body(), "lazy")
    first = list(e.log)[:3]
    assert [ev.kind_name for ev in first] == ["cpuid", "wrmsr_pv", "init"]
    cpuid, wrmsr, init = first
    assert cpuid.a == 1 << KVM_FEATURE_LAZY_TSCDEADLINE and cpuid.exit_name == "cpuid"
    assert (wrmsr.a, wrmsr.b, wrmsr.exit_name, wrmsr.sub_name) == (GPA | 1, 1, "msr-write", "pv-lazy-tscdeadline")
    assert (init.a, init.b) == (GPA, 1)
    snap = e.snapshot().vcpus[0]
    assert (snap.pv_msr, snap.pv_mapped, snap.pv_registered) == (GPA | 1, True, True)


def test_classic_mode_never_registers():
    e = run(body(*OVERWRITE), "classic")
    assert events(e, "wrmsr_pv") == [] and events(e, "init") == []
    assert events(e, "update") == [] and events(e, "kick") == []
    assert len(events(e, "wrmsr_tsc_deadline")) == 2


@pytest.mark.parametrize(
    "setting",
    ["pv_gpa = 0x100000000", "pv_gpa = 0x200000000"],
    ids=["gpa-at-4GiB", "gpa-beyond-memory"],
)
def test_init_with_a_bad_gpa_fails_the_write_and_stays_disabled(setting):
    """A GPA beyond guest memory cannot be mapped: the WRMSR #GPs, the guest stays classic."""
    gpa = int(setting.split("=")[1], 0)
    e = run(body(*OVERWRITE, defaults=setting), "lazy")
    wrmsr = events(e, "wrmsr_pv")
    assert [(w.a, w.b) for w in wrmsr] == [(gpa | 1, 0)]
    assert [(i.a, i.b) for i in events(e, "init")] == [(gpa, 0)]
    snap = e.snapshot().vcpus[0]
    assert (snap.pv_msr, snap.pv_mapped, snap.pv_registered) == (0, False, False)
    # the guest driver behaves classically: both requests write, nothing is skipped
    assert len(events(e, "wrmsr_tsc_deadline")) == 2
    assert events(e, "deadline_skip") == [] and events(e, "update") == []


def test_init_fails_when_guest_memory_is_too_small_for_the_page():
    e = run(body(*OVERWRITE, host="guest_mem_bytes = 65536"), "lazy")
    assert [(i.a, i.b) for i in events(e, "init")] == [(GPA, 0)]
    assert e.snapshot().vcpus[0].pv_registered is False


def test_cpuid_without_the_feature_keeps_the_guest_classic():
    """cpuid_lazy = false: the guest sees no bit 18 and never writes the PV MSR at boot."""
    e = run(body(*OVERWRITE, defaults="cpuid_lazy = false"), "lazy")
    (cpuid,) = events(e, "cpuid")
    assert cpuid.a == 0
    assert events(e, "wrmsr_pv") == []
    assert len(events(e, "wrmsr_tsc_deadline")) == 2


def test_pv_msr_write_without_cpuid_feature_is_accepted_unless_enforced():
    """guest_pv_has() refuses only when KVM_CAP_ENFORCE_PV_FEATURE_CPUID is on (QEMU turns it
    on only with kvm-pv-enforce-cpuid): by default the enable write maps the page even though
    CPUID hides the feature. The guest's driver is chosen by CPUID (setup_APIC_timer:
    kvm_para_has_feature), so it stays classic and writes every deadline."""
    ops = (dict(at="5us", op="pv_enable", gpa=GPA), *OVERWRITE, dict(at="30us", op="read", reg="pv_msr", label="msr"))
    e = run(body(*ops, defaults="cpuid_lazy = false"), "lazy")
    assert [(w.a, w.b) for w in events(e, "wrmsr_pv")] == [(GPA | 1, 1)]
    assert [(i.a, i.b) for i in events(e, "init")] == [(GPA, 1)]
    assert e.reads == {"msr": GPA | 1}
    assert len(events(e, "wrmsr_tsc_deadline")) == 2
    assert events(e, "deadline_skip") == []


def test_pv_msr_write_without_cpuid_feature_faults_when_enforced():
    """With KVM_CAP_ENFORCE_PV_FEATURE_CPUID, guest_pv_has() is false: the WRMSR and the RDMSR #GP."""
    ops = (dict(at="5us", op="pv_enable", gpa=GPA), *OVERWRITE, dict(at="30us", op="read", reg="pv_msr", label="msr"))
    e = run(body(*ops, defaults="cpuid_lazy = false", host="enforce_pv_cpuid = true"), "lazy")
    assert [(w.a, w.b) for w in events(e, "wrmsr_pv")] == [(GPA | 1, 0)]
    assert events(e, "init") == []
    assert e.reads == {"msr": -1}
    assert len(events(e, "wrmsr_tsc_deadline")) == 2


def test_pv_disable_runs_clear_then_exit():
    ops = (
        dict(at="10us", op="set_next_event", delta="100us"),
        dict(at="20us", op="pv_disable"),
        dict(at="30us", op="set_next_event", delta="100us"),
        dict(at="40us", op="set_next_event", delta="100us"),
    )
    e = run(body(*ops), "lazy")
    at20 = [ev for ev in e.log if ev.time == 20_000]
    names = [ev.kind_name for ev in at20]
    assert names[:4] == ["wrmsr_pv", "clear", "stale_pending", "exit"]
    wrmsr, clear, stale = at20[:3]
    exit_ = at20[names.index("exit")]
    assert (wrmsr.a, wrmsr.b) == (0, 1)
    assert (clear.a, clear.b) == (CLEAR_PV_DISABLE, A1)
    assert stale.a == A1  # the guest's pending (= A1) is no longer backed by `armed`
    assert exit_.a == EXIT_PV_DISABLE
    # kvm_set_msr_common's disable path runs clear + exit but never stores the new value, and
    # exit does not touch msr_val: RDMSR keeps returning GPA|1 after the disable.
    snap = state_at(body(*ops), 25_000)
    assert (snap.armed, snap.cached_armed, snap.pv_msr, snap.pv_mapped, snap.pv_registered) == (0, 0, GPA | 1, False, False)
    # the guest keeps its lazy driver, but armed stays 0 (nothing maps the page): every request writes
    assert times(e, "wrmsr_tsc_deadline") == [10_000, 30_000, 40_000]
    assert events(e, "stale_armed") == []  # clear ran first: nothing stale in the page


def test_pv_disable_flags_one_stale_pending():
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="20us", op="pv_disable"))
    e = run(body(*ops), "lazy")
    assert len(events(e, "stale_pending")) == 1
    assert e.summary()["hazards"]["stale_pending"] == 1


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_reenable_runs_exit_before_init_only_in_v3(variant):
    e = run(body(dict(at="10us", op="pv_enable", gpa=GPA + 64), variant=variant), "lazy")
    at10 = [ev.kind_name for ev in e.log if ev.time == 10_000]
    if variant == "v3":
        assert at10 == ["wrmsr_pv", "exit", "init"]
        assert events(e, "exit")[0].a == EXIT_REENABLE
    else:
        assert at10 == ["wrmsr_pv", "init"]
    assert [(i.a, i.b) for i in events(e, "init")] == [(GPA, 1), (GPA + 64, 1)]
    assert e.snapshot().vcpus[0].pv_msr == (GPA + 64) | 1


# ---- update ------------------------------------------------------------------------------------
def test_update_on_every_accepted_tsc_deadline_write():
    """update(tsc): guest armed = cached_armed = tsc, also for a raw WRMSR (pending untouched)."""
    ops = (
        dict(at="10us", op="set_next_event", delta="100us"),
        dict(at="20us", op="wrmsr_tsc_deadline", value=300_000),
    )
    s15 = state_at(body(*ops), 15_000)
    assert (s15.pending, s15.armed, s15.cached_armed) == (A1, A1, A1)
    s25 = state_at(body(*ops), 25_000)
    assert (s25.pending, s25.armed, s25.cached_armed) == (A1, 300_000, 300_000)
    e = run(body(*ops), "lazy")
    assert [(u.time, u.a) for u in events(e, "update")][:2] == [(10_000, A1), (20_000, 300_000)]


def test_no_update_when_the_write_is_ignored():
    """In one-shot mode the TSC-deadline MSR write is ignored: no update (apic_update_lvtt cleared)."""
    ops = (
        dict(at="10us", op="write", reg="lvtt", value=0xEC),
        dict(at="20us", op="wrmsr_tsc_deadline", delta="100us"),
    )
    e = run(body(*ops), "lazy")
    assert events(e, "update") == []
    assert e.snapshot().vcpus[0].armed == 0


# ---- kick ---------------------------------------------------------------------------------------
def test_kick_rearms_pending_on_the_hv_path_v2_injects_early_interrupt():
    """V2 kvm_lapic_expired_hv_timer: apic_timer_expired(false) -- with APICv the expiry goes
    straight into the IRR (kvm_apic_inject_pending_timer_irqs) -- then cancel_hv_timer, then
    `kick`: pending (P2) > armed (A1), so kvm_set_lapic_tscdeadline_msr(P2). The interrupt
    for A1 is delivered anyway, busy-waited to A1 (110us): early for the guest, who wants
    P2. Its reprogram of P2 is skipped (tsc == armed); at P2 the kick finds nothing later
    and disarms."""
    e = run(body(*OVERWRITE), "lazy")
    keep = {"timer_fire", "timer_expired", "kick", "update", "timer_arm", "guest_timer_irq", "spurious", "deadline_skip", "equal_skip"}
    seq = [(ev.time, ev.kind_name, ev.a, ev.b) for ev in e.log if ev.time >= 100_000 and ev.vcpu == 0 and ev.kind_name in keep]
    assert seq == [
        (109_000, "timer_fire", A1, 0),
        (109_000, "timer_expired", A1, EXPIRED_DIRECT),
        (109_000, "kick", P2, 1),
        (109_000, "update", P2, 0),
        (109_000, "timer_arm", P2, 0),
        (110_000, "guest_timer_irq", A1, P2),
        (110_000, "spurious", A1, P2),
        (110_000, "deadline_skip", P2, P2),
        (110_000, "equal_skip", P2, P2),
        (119_000, "timer_fire", P2, 0),
        (119_000, "timer_expired", P2, EXPIRED_DIRECT),
        (119_000, "kick", P2, 0),
        (120_000, "guest_timer_irq", P2, P2),
    ]
    (fire1,) = [ev for ev in events(e, "timer_fire") if ev.time == 109_000]
    assert fire1.exit_name == "preemption-timer"


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_kick_rearm_on_the_hv_path_without_apicv_drops_the_early_interrupt(variant):
    """Without APICv, apic_timer_expired(false) only latches (lapic_timer.pending = 1). V2's
    kick then re-arms through kvm_set_lapic_tscdeadline_msr -> __start_apic_timer, which
    zeroes the latched expiry: no early interrupt -- the same as V3, which skips
    apic_timer_expired when the kick re-arms. The guest gets only its P2 interrupt."""
    e = run(body(*OVERWRITE, variant=variant, defaults="apicv = false"), "lazy")
    assert times(e, "guest_timer_irq") == [120_000]
    assert events(e, "spurious") == []
    if variant == "v2":
        (drop,) = events(e, "timer_dropped")
        assert (drop.time, drop.a, drop.b) == (109_000, A1, DROP_RESTART)
    else:
        assert events(e, "timer_dropped") == []


def test_kick_rearm_on_the_hv_path_v3_injects_nothing():
    e = run(body(*OVERWRITE, variant="v3"), "lazy")
    assert [(k.time, k.b) for k in events(e, "kick")] == [(109_000, 1), (119_000, 0)]
    assert times(e, "guest_timer_irq") == [120_000]
    assert events(e, "spurious") == []


def test_kick_disarms_when_pending_is_not_later_than_armed():
    e = run(body(*OVERWRITE), "lazy")
    s = state_at(body(*OVERWRITE), 119_500)
    assert (s.pending, s.armed, s.cached_armed) == (P2, 0, 0)
    assert events(e, "kick")[-1].b == 0


def test_kick_disarms_when_pending_is_zero():
    """A raw WRMSR leaves pending = 0: kick finds nothing to arm (`next && ...`)."""
    ops = (dict(at="10us", op="wrmsr_tsc_deadline", delta="100us"),)
    e = run(body(*ops), "lazy")
    assert [(k.time, k.a, k.b) for k in events(e, "kick")] == [(109_000, 0, 0)]
    s = e.snapshot().vcpus[0]
    assert (s.armed, s.cached_armed) == (0, 0)
    assert times(e, "guest_timer_irq") == [110_000]


HALTED = (
    dict(at="10us", op="set_next_event", delta="100us"),
    dict(at="20us", op="set_next_event", delta="200us"),
    dict(at="30us", op="hlt"),
)
P_HALT = tsc(20_000) + tsc(200_000)  # 440000 = 220us


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_sw_path_request_is_handled_at_the_next_guest_entry(variant):
    """Halted vCPU (vcpu_block moved the timer to the hrtimer): apic_timer_fn latches the
    expiry, raises KVM_REQ_LAZY_TSCDEADLINE and kicks the vCPU, which runs again after
    wakeup_latency_ns (8us). vcpu_enter_guest serves the request -- kick re-arms P_HALT --
    and the latched interrupt (injected by the loop tail) is delivered: on the sw path V3
    injects too. The script's HLT returns with it; the vCPU runs on, so P_HALT arrives on
    time on the hv timer."""
    e = run(body(*HALTED, variant=variant, host="sw_timer_latency_ns = 0"), "lazy")
    (fire1, _fire2) = events(e, "timer_fire")
    assert (fire1.time, fire1.exit, fire1.b) == (109_000, -1, 1)
    (req,) = events(e, "kick_request")
    assert (req.time, req.a) == (109_000, A1)
    (wake,) = events(e, "wake")
    assert wake.time == 117_000
    kicks = events(e, "kick")
    assert (kicks[0].time, kicks[0].a, kicks[0].b) == (117_000, P_HALT, 1)
    assert kicks[0].index > wake.index
    irq_times = times(e, "guest_timer_irq")
    assert irq_times == [117_000, 220_000]
    assert [ev.time for ev in events(e, "spurious")] == [117_000]


def test_sw_backend_running_vcpu_kicks_right_after_the_intr_exit():
    """sw backend, vCPU running: the hrtimer's host interrupt is an `intr` exit; the request
    raised by apic_timer_fn is served at the very next vcpu_enter_guest (exit_cost_ns later)."""
    e = run(body(*OVERWRITE, defaults='timer_backend = "sw"', host="sw_timer_latency_ns = 0"), "lazy")
    fire = events(e, "timer_fire")[0]
    assert (fire.time, fire.exit_name) == (109_000, "intr")
    names = [ev.kind_name for ev in e.log if ev.time == 109_000]
    assert names[:3] == ["timer_fire", "timer_expired", "kick_request"]
    kick = events(e, "kick")[0]
    assert (kick.time, kick.b) == (109_000 + EXIT_COST, 1)
    assert events(e, "sw_kick_delayed") == []


def test_sw_kick_on_a_woken_halted_vcpu_is_not_the_delayed_kick_hazard():
    """DESIGN.md: the hazard is a request that waits for an *unrelated* exit (posted timer
    interrupts, HLT passed through). A halted vCPU with HLT exits is woken by the expiry
    itself (kvm_vcpu_kick); the kick at that entry is the normal sw path."""
    e = run(body(*HALTED), "lazy")
    assert events(e, "sw_kick_delayed") == []


def test_sw_path_with_posted_interrupts_and_no_hlt_exits_waits_for_an_unrelated_exit():
    """Posted timer interrupts, HLT passed through: the expiry at 109us is posted (the host
    callback busy-waits to 110us, kvm_use_posted_timer_interrupt) and nothing exits, so
    `pending` (220us) is armed only at the entry after the CPUID exit at 500us:
    sw_kick_delayed; the re-armed deadline is already past, expired at arm time (clear,
    start_sw_tscdeadline), and the wanted interrupt comes 280us late."""
    defaults = 'timer_backend = "sw"\nposted_timer_interrupts = true\nhlt_exits = false'
    ops = (*HALTED, dict(at="500us", op="cpuid"))
    e = run(body(*ops, duration="1ms", defaults=defaults, host="sw_timer_latency_ns = 0"), "lazy")
    (req,) = events(e, "kick_request")
    assert req.time == 109_000
    entry = 500_000 + EXIT_COST
    (delayed,) = events(e, "sw_kick_delayed")
    assert (delayed.time, delayed.a, delayed.b) == (entry, entry - 109_000, A1)
    (kick,) = events(e, "kick")
    assert (kick.time, kick.b) == (entry, 1)
    clears = [c for c in events(e, "clear") if c.time == entry]
    assert [(c.a, c.b) for c in clears] == [(CLEAR_EXPIRED_SW, P_HALT)]
    assert times(e, "guest_timer_irq") == [110_000, entry]
    (late,) = events(e, "late")
    assert (late.time, late.b) == (entry, P_HALT)
    assert e.summary()["timer"]["lost"] == 0


def test_sw_path_without_any_later_exit_loses_the_deadline():
    """No exit ever serves the request. After the posted early interrupt the guest skips
    its reprogram of P_HALT (tsc >= armed): only the pending request could still deliver
    it, once an exit serves it -- and none comes. At the end: P_HALT passed undelivered
    (`lost`) and the request was never served (`sw_kick_delayed`)."""
    defaults = 'timer_backend = "sw"\nposted_timer_interrupts = true\nhlt_exits = false'
    e = run(body(*HALTED, duration="1ms", defaults=defaults, host="sw_timer_latency_ns = 0"), "lazy")
    assert events(e, "kick") == []
    assert e.snapshot().vcpus[0].kick_requested is True
    (lost,) = events(e, "lost")
    assert (lost.time, lost.a) == (1_000_000, P_HALT)
    (never,) = events(e, "sw_kick_delayed")
    assert never.time == 1_000_000


# ---- clear -----------------------------------------------------------------------------------------
def test_clear_on_lvtt_mask():
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="20us", op="write", reg="lvtt", value=0x500EC))
    e = run(body(*ops), "lazy")
    at20 = [ev for ev in e.log if ev.time == 20_000]
    assert [ev.kind_name for ev in at20] == ["lapic_write", "clear", "stale_pending"]
    assert (at20[1].a, at20[1].b) == (CLEAR_LVTT, A1)
    s = state_at(body(*ops), 20_000)
    assert (s.pending, s.armed, s.cached_armed, s.lvtt_masked) == (A1, 0, 0, True)
    # apic_update_lvtt's mask does not cancel the armed timer: it still fires (delivery
    # dropped), and kick returns at its guard -- clear left cached_armed == 0 -- so the stale
    # pending is never armed: the next request is written.
    assert [(k.time, k.b) for k in events(e, "kick")] == [(109_000, KICK_GUARD)]
    assert [e_.time for e_ in events(e, "timer_arm")] == [10_000]
    assert events(e, "guest_timer_irq") == []


def test_clear_on_lvtt_mode_change():
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="20us", op="write", reg="lvtt", value=0xEC))
    e = run(body(*ops), "lazy")
    at20 = [ev.kind_name for ev in e.log if ev.time == 20_000]
    assert at20[:3] == ["lapic_write", "timer_cancel", "clear"]
    (clear,) = events(e, "clear")
    assert (clear.a, clear.b) == (CLEAR_LVTT, A1)
    assert events(e, "timer_fire") == []


@pytest.mark.parametrize(("backend", "reason"), [("hv", CLEAR_EXPIRED_HV), ("sw", CLEAR_EXPIRED_SW)])
def test_clear_when_the_deadline_already_expired_at_arm_time(backend, reason):
    """start_hv_timer / start_sw_tscdeadline: the written deadline is in the past, so it
    expires at arm time (apic_timer_expired; with APICv straight into the IRR) and the
    seed's clear runs. The guest takes it at the entry after the WRMSR exit."""
    ops = (dict(at="10us", op="set_deadline", tsc=1000), dict(at="20us", op="read", reg="armed", label="armed"))
    e = run(body(*ops, defaults=f'timer_backend = "{backend}"'), "lazy")
    at10 = [ev.kind_name for ev in e.log if ev.time == 10_000]
    assert at10 == ["deadline_request", "wrmsr_tsc_deadline", "update", "timer_expired", "irq_accept", "clear"]
    assert times(e, "guest_timer_irq") == [10_000 + EXIT_COST]
    (clear,) = events(e, "clear")
    assert (clear.a, clear.b) == (reason, 1000)
    assert e.reads == {"armed": 0}
    assert events(e, "timer_arm") == []


def test_clear_is_lazy_only():
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="20us", op="write", reg="lvtt", value=0x500EC))
    assert events(run(body(*ops), "classic"), "clear") == []


# ---- exit ------------------------------------------------------------------------------------------
def test_exit_on_reset_keeps_the_guest_page_armed_stale():
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="50us", op="reset"))
    e = run(body(*ops), "lazy")
    """kvm_lapic_reset: hrtimer_cancel, the seed's `exit` (cached_armed = 0, page unmapped --
    but the guest page keeps `armed`), then the LVT reset masks LVTT and apic_update_lvtt
    cancels the hv timer. msr_val is not reset: RDMSR still returns GPA|1."""
    at50 = [ev for ev in e.log if ev.time == 50_000]
    assert [ev.kind_name for ev in at50] == ["vcpu_reset", "exit", "stale_armed", "stale_pending", "timer_cancel"]
    assert at50[1].a == EXIT_RESET
    assert (at50[2].a, at50[2].b) == (A1, EXIT_RESET)
    s = e.snapshot().vcpus[0]
    assert (s.armed, s.cached_armed, s.pv_msr, s.pv_mapped) == (A1, 0, GPA | 1, False)
    assert s.pending == A1


def test_stale_armed_after_reset_makes_the_guest_skip_and_lose_its_timer():
    """The reset_stale_armed demo: after INIT (RFLAGS.IF = 0) the guest re-enables interrupts,
    the APIC and LVTT but not the PV page; tsc (100us + 400us) >= stale armed (110us):
    skipped, nothing armed: lost."""
    ops = (
        dict(at="10us", op="set_next_event", delta="100us"),
        dict(at="50us", op="reset"),
        dict(at="55us", op="sti"),
        dict(at="60us", op="write", reg="spiv", value=0x1FF),
        dict(at="70us", op="write", reg="lvtt", value=0x400EC),
        dict(at="100us", op="set_next_event", delta="400us"),
    )
    lazy = run(body(*ops, duration="1ms"), "lazy")
    want = tsc(100_000) + tsc(400_000)
    (skip,) = events(lazy, "deadline_skip")
    assert (skip.time, skip.a, skip.b) == (100_000, want, A1)
    (lost,) = events(lazy, "lost")
    assert (lost.time, lost.a, lost.b) == (100_000, want, A1)
    classic = run(body(*ops, duration="1ms"), "classic")
    assert events(classic, "lost") == []
    assert times(classic, "guest_timer_irq") == [500_000]


@pytest.mark.parametrize("vmm_support", [False, True])
def test_exit_on_migration(vmm_support):
    """The source vCPU goes away (`exit`); the destination vCPU starts from creation state
    and the VMM restores APIC base, LAPIC, TSC, the PV MSR (only with VMM support) and the
    TSC deadline. With the PV MSR restored before the deadline, kvm_set_lapic_tscdeadline_msr's
    update makes armed = cached_armed again; without it nothing maps the page and the
    guest's `armed` is stale."""
    ops = (dict(at="10us", op="set_next_event", delta="100us"), dict(at="50us", op="migrate", vmm_support=vmm_support))
    e = run(body(*ops), "lazy")
    at50 = [ev for ev in e.log if ev.time == 50_000]
    names = [ev.kind_name for ev in at50]
    exit_ = next(ev for ev in at50 if ev.kind_name == "exit")
    assert exit_.a == EXIT_MIGRATE
    s = state_at(body(*ops), 50_000)
    arms = [ev.a for ev in at50 if ev.kind_name == "timer_arm"]
    assert arms == [A1]
    if vmm_support:
        assert "init" in names and [ev.a for ev in at50 if ev.kind_name == "update"] == [A1]
        assert (s.armed, s.cached_armed, s.pv_msr, s.pv_mapped) == (A1, A1, GPA | 1, True)
        assert events(e, "stale_armed") == []
    else:
        assert "init" not in names
        assert (s.armed, s.cached_armed, s.pv_msr, s.pv_mapped) == (A1, 0, 0, False)
        assert events(e, "stale_armed")[0].b == EXIT_MIGRATE
    # the restored TSC deadline still fires on time
    assert times(e, "guest_timer_irq") == [110_000]


def test_every_timer_fire_names_the_arm_it_expires():
    """Per-event accounting: an expiry's parent is the TIMER_ARM of the same deadline."""
    e = run(body(*HALTED, dict(at="250us", op="pv_disable")), "lazy")
    fires = events(e, "timer_fire")
    assert len(fires) == 2
    for fire in fires:
        arm = e.log.event(fire.parent)
        assert (arm.kind_name, arm.a) == ("timer_arm", fire.a)


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_deadline_beyond_the_preemption_timer_range_runs_to_the_end(variant):
    """hv_max_delta_cycles = 1000: the 100us deadline falls back to the hrtimer. The run
    must still end, with the one wanted interrupt delivered at 110us (an `intr` exit at
    109us, busy-waited to the deadline at the entry)."""
    text = body(dict(at="10us", op="set_next_event", delta="100us"), variant=variant, host="hv_max_delta_cycles = 1000\nsw_timer_latency_ns = 0")
    e = Engine(scenario(text), "lazy")
    e.run(max_events=5000)
    assert e.done
    assert times(e, "guest_timer_irq") == [110_000]


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_hv_fallback_to_sw_clears_in_neither_variant(variant):
    """start_hv_timer: when the delta does not fit the preemption timer, set_hv_timer fails
    (-ERANGE) and start_hv_timer returns false before its pending/expired branches, so the
    seed's clear does not run -- in V2 as in V3. The hrtimer takes the deadline; `armed` stays."""
    text = body(dict(at="10us", op="set_next_event", delta="100us"), variant=variant, host="hv_max_delta_cycles = 1000")
    e = run(text, "lazy")
    arm = events(e, "timer_arm")[0]
    assert (arm.time, arm.a, arm.b) == (10_000, A1, 1)  # sw backend
    assert [c for c in events(e, "clear") if c.time == 10_000] == []
    assert state_at(text, 20_000).armed == A1


def test_reregistering_after_reset_zeroes_the_page_and_recovers():
    """kvm_guest_cpu_init zeroes the page before the MSR write: after an INIT the guest that
    re-registers has armed = pending = 0, so its next request writes and is delivered."""
    ops = (
        dict(at="10us", op="set_next_event", delta="100us"),
        dict(at="50us", op="reset"),
        dict(at="55us", op="sti"),
        dict(at="60us", op="write", reg="spiv", value=0x1FF),
        dict(at="70us", op="write", reg="lvtt", value=0x400EC),
        dict(at="80us", op="pv_enable", gpa=GPA),
        dict(at="85us", op="read", reg="armed", label="armed"),
        dict(at="85us", op="read", reg="pending", label="pending"),
        dict(at="100us", op="set_next_event", delta="400us"),
    )
    e = run(body(*ops, duration="1ms"), "lazy")
    assert e.reads == {"armed": 0, "pending": 0}
    want = tsc(100_000) + tsc(400_000)
    assert [(w.time, w.a) for w in events(e, "wrmsr_tsc_deadline")] == [(10_000, A1), (100_000, want)]
    assert events(e, "lost") == []
    assert times(e, "guest_timer_irq") == [500_000]
    s = e.snapshot().vcpus[0]
    assert (s.pv_msr, s.pv_mapped, s.pv_registered) == (GPA | 1, True, True)
