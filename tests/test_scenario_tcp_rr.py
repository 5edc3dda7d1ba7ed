"""tcp_rr against both published tables (DESIGN.md section 1), and the mechanism behind them.

The mechanism (docs/model.md, "tcp_rr"). Every transaction wakes a halted vCPU with an
IPI (an apic-icr write); leaving idle restarts the NOHZ tick (tick_nohz_restart: two
TSC-deadline writes), entering idle stops it (tick_nohz_stop_tick: one) -- 3 writes and
1 IPI per halt. Lazy mode skips the later deadlines (kvm_lapic_next_deadline: `tsc >=
armed`) and keeps the tick's deadline armed: once per tick period the host timer fires
whatever the vCPU is doing. Running with its tick due (hv path, a preemption-timer exit),
that is the tick. Halted, the timer is the hrtimer (kvm_lapic_switch_to_sw_timer in
vcpu_block); apic_timer_fn latches and wakes it, V2 and V3 alike, and the guest takes a
spurious interrupt and halts again. Running in idle with the tick stopped (the wake-up IPI
being handled), kvm_lapic_expired_hv_timer injects in V2 and, in V3, not when the kick
re-arms. Each skipped write spares one exit's host time on the transaction's critical
path, so lazy transactions are faster: that is why halts and IPIs rise with it.

The two tables come from two hosts. With one guest and workload, V3's table is reproduced
with exits four times as costly (tcp_rr_evidence.V3_HOST): its classic column alone has
1.8x the timer interrupts per halt of the seed's, and its lazy speed-up (halt ratio 1.42
against 1.11) needs exits to be ~30% of a classic transaction, not ~10%. The variant
alone acts at most once per tick boundary and cannot close that gap.

Tolerances (the task's): cuts within 5 percentage points of the published ones, halt and
apic-icr ratios within 0.15, the guest timer interrupt ratio within 0.2; the seed's shares
within 5 points. Runs: 3 seeds x 50 ms each, counts pooled before a ratio is taken.
"""

from __future__ import annotations

import pytest
from lazytsc.sensitivity import PUBLISHED
from lazytsc.tcp_rr_evidence import V3_HOST, run_one

SEEDS = (1, 2, 3)
CUT = 0.05
RATIO = 0.15
IRQ_RATIO = 0.2
SHARE = 0.05


def pooled(name: str, settings: dict[str, str]) -> dict[str, dict[str, float]]:
    """{mode: summary figures, `workload.*` and the mechanism counts `mech.*`}, summed over SEEDS."""
    out: dict[str, dict[str, float]] = {"classic": {}, "lazy": {}}
    for seed in SEEDS:
        for mode in out:
            for key, value in run_one(name, settings, seed, "", mode).items():
                out[mode][key] = out[mode].get(key, 0) + value
    return out


@pytest.fixture(scope="module")
def v2():
    return pooled("tcp_rr", {})


@pytest.fixture(scope="module")
def v3_seed_host():
    return pooled("tcp_rr_v3", {})


@pytest.fixture(scope="module")
def v3_host():
    return pooled("tcp_rr_v3", V3_HOST)


def cut(runs, key):
    return 1 - runs["lazy"][key] / runs["classic"][key]


def ratio(runs, key):
    return runs["lazy"][key] / runs["classic"][key]


def share(runs, mode, part, whole):
    return runs[mode][part] / runs[mode][whole]


def published(variant: str) -> dict[str, dict[str, float]]:
    return {mode: dict(counts) for mode, counts in PUBLISHED[variant].items()}


def check_within(model: float, expected: float, tol: float, what: str) -> None:
    assert abs(model - expected) <= tol, f"{what}: model {model:.3f}, published {expected:.3f} +- {tol}"


def test_v2_has_the_seed_tables_shape(v2):
    """The seed's table (V2): its shares, cuts and ratios, within the tolerances."""
    pub = published("v2")
    for mode, part, whole in (
        ("classic", "exits.by_reason.msr-write", "exits.total"),
        ("classic", "exits.by_reason.halt", "exits.total"),
        ("classic", "exits.msr_write.tsc-deadline", "exits.by_reason.msr-write"),
        ("lazy", "exits.by_reason.halt", "exits.total"),
        ("lazy", "exits.by_reason.msr-write", "exits.total"),
        ("lazy", "exits.msr_write.apic-icr", "exits.by_reason.msr-write"),
    ):
        check_within(share(v2, mode, part, whole), share(pub, mode, part, whole), SHARE, f"{mode} {part} / {whole}")
    for key in ("exits.total", "exits.by_reason.msr-write", "exits.msr_write.tsc-deadline"):
        check_within(cut(v2, key), cut(pub, key), CUT, f"cut {key}")
    for key in ("exits.by_reason.halt", "exits.msr_write.apic-icr"):
        check_within(ratio(v2, key), ratio(pub, key), RATIO, f"ratio {key}")


def test_v3_on_v3s_host_has_v3s_shape(v3_host):
    """V3's measurement: cuts, halt and apic-icr ratios, and the guest timer interrupt ratio."""
    pub = published("v3")
    for key in ("exits.total", "exits.msr_write.tsc-deadline"):
        check_within(cut(v3_host, key), cut(pub, key), CUT, f"cut {key}")
    for key in ("exits.by_reason.halt", "exits.msr_write.apic-icr"):
        check_within(ratio(v3_host, key), ratio(pub, key), RATIO, f"ratio {key}")
    check_within(ratio(v3_host, "timer.interrupts"), ratio(pub, "timer.interrupts"), IRQ_RATIO, "ratio timer.interrupts")


def test_v3s_host_is_the_one_its_classic_column_describes(v2, v3_host):
    """Costlier exits lengthen the time a vCPU runs with its tick due per transaction:
    V3's classic column has 1.8x the seed's timer interrupts per halt (44,003 / 2,082,894
    against the seed's 29,518 preemption-timer exits / 2,503,932 halts). The V3 host must
    move the model's classic interrupts per halt the same way -- a figure the host's exit
    cost was not chosen by."""
    def per_halt(runs):
        return runs["classic"]["timer.interrupts"] / runs["classic"]["exits.by_reason.halt"]

    assert per_halt(v3_host) > 1.25 * per_halt(v2)


def test_the_variant_alone_cannot_reach_v3s_table(v2, v3_seed_host):
    """V3 changes kvm_lapic_expired_hv_timer only: at most one event per tick boundary per
    vCPU, against ~50 transactions per boundary. So on one host V3's halt ratio stays within
    the tolerance of V2's, and far from V3's published 1.42 (the residue is the host)."""
    boundaries = sum(v for k, v in v3_seed_host["lazy"].items() if k.startswith("mech.boundaries."))
    assert boundaries < 0.05 * v3_seed_host["lazy"]["workload.transactions"]
    same = ratio(v3_seed_host, "exits.by_reason.halt")
    assert abs(same - ratio(v2, "exits.by_reason.halt")) <= 0.05
    assert ratio(published("v3"), "exits.by_reason.halt") - same > RATIO


def test_v3_injects_nothing_when_the_hv_kick_rearms(v2, v3_seed_host):
    """kvm_lapic_expired_hv_timer: V2 calls apic_timer_expired before the kick, so every hv
    fire injects; V3 kicks first and injects only if the kick did not re-arm."""
    lz2, lz3 = v2["lazy"], v3_seed_host["lazy"]
    assert lz2["mech.hv kicks that re-armed"] > 0 and lz3["mech.hv kicks that re-armed"] > 0
    assert lz2["mech.hv kicks that re-armed, nothing injected"] == 0
    assert lz3["mech.hv kicks that re-armed, nothing injected"] == lz3["mech.hv kicks that re-armed"]
    # Running in idle with the tick stopped, pending is far beyond the stale tick: V2's
    # interrupt there is spurious, V3 delivers none.
    idle = "mech.hv: idle, tick stopped"
    assert lz2[f"{idle}.spurious"] == lz2[f"{idle}.interrupts"] == lz2["mech.boundaries.hv: idle, tick stopped"] > 0
    assert lz3[f"{idle}.interrupts"] == 0


def test_the_stale_tick_wakes_halted_vcpus_in_both_variants(v2, v3_seed_host):
    """A halted vCPU's timer is the hrtimer (vcpu_block -> kvm_lapic_switch_to_sw_timer);
    apic_timer_fn latches and wakes it in V2 and V3: a spurious interrupt, then HLT again.
    Classic mode stops the tick before HLT, so nothing fires early there."""
    halted = "mech.sw: halted"
    for runs in (v2, v3_seed_host):
        lz, c = runs["lazy"], runs["classic"]
        assert lz["mech.boundaries.sw: halted"] > 0
        assert lz[f"{halted}.spurious"] == lz[f"{halted}.interrupts"] > 0
        assert lz[f"{halted}.halt"] > 0
        assert c["timer.spurious"] == 0 and c["mech.boundaries.sw: halted"] == 0
        assert lz["timer.lost"] == 0 and c["timer.lost"] == 0


def test_classic_writes_three_deadlines_and_sends_one_ipi_per_halt(v2):
    """tick_nohz_stop_tick before HLT (one write), tick_nohz_restart after the wake-up (two:
    hrtimer_cancel reprograms to the next timer, hrtimer_start to the tick); the wake-up is
    one IPI (ttwu_queue_wakelist). Lazy mode skips all but the writes that move the armed
    deadline earlier."""
    c, lz = v2["classic"], v2["lazy"]
    halts = c["exits.by_reason.halt"]
    assert c["mech.writes.idle entry (tick stop)"] == pytest.approx(halts, rel=0.02)
    assert c["mech.writes.idle exit (tick restart)"] == pytest.approx(2 * halts, rel=0.02)
    assert c["exits.msr_write.apic-icr"] == pytest.approx(halts, rel=0.02)
    assert c["timer.msr_writes_skipped"] == 0
    assert lz["timer.msr_writes_skipped"] > 0.9 * lz["timer.deadline_requests"]
