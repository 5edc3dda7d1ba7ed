"""What-if: the recorded 0x6e0 writes replayed through the engine's lazy driver and host."""

from __future__ import annotations

from pathlib import Path

import pytest
from lazytsc.traces import import_trace
from lazytsc.traces.synth import iter_tcp_rr
from lazytsc.traces.whatif import calibrate, format_what_if, what_if

DATA = Path(__file__).parent / "data" / "traces"
KHZ = 2_000_000
OFFSET = 7_000_000_000_000
START_US = 5_000_000  # iter_tcp_rr's first event
CYCLES = 1_500


@pytest.fixture(scope="module")
def tcp_rr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("whatif") / "tcp_rr.txt"
    with open(path, "w") as f:
        f.writelines(iter_tcp_rr(CYCLES, tsc_khz=KHZ, tsc_offset=OFFSET))
    return path


def test_calibration_recovers_the_guest_tsc(tcp_rr: Path) -> None:
    result = import_trace(tcp_rr)
    cal = calibrate(result, [0, 1])
    assert cal.method == "fit"
    assert cal.tsc_khz == KHZ
    # guest TSC at the trace's first line
    assert abs(cal.offset - (START_US * 1000 * KHZ // 1_000_000 + OFFSET)) < 2 * KHZ // 1000


def test_lazy_saves_most_tsc_deadline_exits(tcp_rr: Path) -> None:
    result = import_trace(tcp_rr)
    recorded = result.summary()
    w = what_if(result)
    writes = recorded["timer"]["msr_writes"]
    assert writes == 3 * 2 * CYCLES + recorded["timer"]["interrupts"]
    assert w.requests == writes
    # the replay went through the engine's guest driver in both modes
    assert w.classic["timer"]["deadline_requests"] >= writes
    assert w.lazy["timer"]["deadline_requests"] >= writes
    assert w.classic["timer"]["msr_writes_skipped"] == 0
    assert w.saved_tsc_deadline_exits > 0.9 * writes
    assert w.saved_tsc_deadline_exits == (
        w.classic["exits_replay_only"]["msr_write"]["tsc-deadline"]
        - w.lazy["exits_replay_only"]["msr_write"]["tsc-deadline"]
    )
    res = w.resulting
    assert res["exits"]["msr_write"]["tsc-deadline"] == writes - w.saved_tsc_deadline_exits
    assert res["exits"]["total"] < recorded["exits"]["total"]
    # exits the replay does not model stay as recorded
    for reason in ("halt", "cpuid", "ept-violation"):
        assert res["exits"]["by_reason"][reason] == recorded["exits"]["by_reason"][reason]
    assert res["exits"]["msr_write"]["apic-icr"] == recorded["exits"]["msr_write"]["apic-icr"]
    # never-disarmed deadlines fire early: the reviewers' worry, made visible
    assert w.added_spurious_interrupts == w.lazy["timer"]["spurious"] - w.classic["timer"]["spurious"]
    assert w.added_spurious_interrupts >= 0
    assert res["timer"]["spurious"] == w.added_spurious_interrupts
    text = format_what_if(w)
    assert "tsc-deadline exits saved" in text and "lazy (what-if)" in text


def test_replay_is_deterministic(tcp_rr: Path) -> None:
    result = import_trace(tcp_rr)
    assert what_if(result).as_dict() == what_if(result).as_dict()


def test_given_tsc_khz_is_used(tcp_rr: Path) -> None:
    result = import_trace(tcp_rr)
    w = what_if(result, tsc_khz=KHZ)
    assert w.calibration.method == "interrupts"
    assert w.calibration.tsc_khz == KHZ


def test_without_interrupts_the_calibration_says_it_guessed(tmp_path: Path) -> None:
    path = tmp_path / "noirq.txt"
    with open(path, "w") as f:
        f.writelines(line for line in iter_tcp_rr(200) if "vec 236" not in line)
    w = what_if(import_trace(path))
    assert w.calibration.method == "earliest-deadline"
    assert any("no timer interrupts to calibrate" in x for x in w.warnings)
    assert w.saved_tsc_deadline_exits > 0


def test_trace_without_deadline_writes() -> None:
    w = what_if(import_trace(DATA / "perf_kvm_stat.txt"))
    assert w.requests == 0 and w.saved_tsc_deadline_exits == 0
    assert any("nothing to replay" in x for x in w.warnings)
    assert w.resulting["exits"] == w.recorded["exits"]


def test_unknown_vcpu_writes_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    text = (DATA / "trace_pipe_old.txt").read_text()
    # a thread that never prints kvm_entry and has no `CPU N/KVM` name: its writes
    # cannot be given to a vCPU
    text += "  qemu-kvm-9999  [005] d... 99999.000001: kvm_msr: msr_write 6e0 = 0x123456789\n"
    path.write_text(text)
    w = what_if(import_trace(path))
    assert any("unknown vCPU" in x for x in w.warnings)
    assert sorted(w.vcpus) == [0, 1]


def test_max_requests_bounds_the_replay(tcp_rr: Path) -> None:
    w = what_if(import_trace(tcp_rr), max_requests=100)
    assert sum(w.replayed.values()) == 100
    assert w.requests == w.replayed["deadline_writes"] < 100
    assert any("first 100" in x for x in w.warnings)


def _without_exits(src: Path, dst: Path) -> Path:
    with open(src) as fin, open(dst, "w") as fout:
        fout.writelines(line for line in fin if "kvm_exit:" not in line)
    return dst


def test_no_kvm_exit_lines_never_reads_as_lazy_adding_exits(tcp_rr: Path, tmp_path: Path) -> None:
    """Without kvm_exit lines there is no recorded exit table: the classic replay is the
    baseline, so the headline compares like with like (never `0 recorded -> N`)."""
    w = what_if(import_trace(_without_exits(tcp_rr, tmp_path / "noexit.txt")))
    assert not w.exits_recorded
    assert w.baseline_label == "classic replay"
    assert w.recorded["exits"]["total"] > 0
    assert w.resulting["exits"]["total"] < w.recorded["exits"]["total"]
    text = format_what_if(w)
    assert "recorded ->" not in text and "the trace recorded no exits" in text
    assert any("no kvm_exit lines" in x for x in w.warnings)


def test_rate_that_cannot_be_inferred_is_required_and_its_sensitivity_shown(tmp_path: Path) -> None:
    from lazytsc.traces import TraceError

    path = tmp_path / "noirq.txt"
    with open(path, "w") as f:
        f.writelines(line for line in iter_tcp_rr(100) if "vec 236" not in line)
    result = import_trace(path)
    with pytest.raises(TraceError, match="--tsc-khz: expected the guest TSC frequency"):
        what_if(result, require_rate=True)
    w = what_if(result, tsc_khz=KHZ, require_rate=True)
    assert not w.rate_inferred
    assert [row["tsc_khz"] for row in w.sensitivity] == [KHZ // 2, KHZ, 2 * KHZ]
    assert "sensitivity to the TSC rate" in format_what_if(w)


def test_recorded_deadlines_are_replayed_without_added_jitter(tcp_rr: Path) -> None:
    """The classic replay writes exactly the recorded deadlines (shifted into the
    simulation's TSC frame): no reprogram jitter is added to what the guest wrote."""
    from lazytsc.taxonomy import Kind

    result = import_trace(tcp_rr)
    w = what_if(result)
    log = w.logs["classic"]
    kind, vcpu, a = log.column("kind"), log.column("vcpu"), log.column("a")
    _t, values = result.deadline_writes(0)
    expected = set((values - w.calibration.offset).tolist())
    written = a[(kind == int(Kind.WRMSR_TSC_DEADLINE)) & (vcpu == w.vcpus[0])]
    assert expected <= set(written.tolist())


def test_lvtt_and_hlt_are_replayed(tmp_path: Path) -> None:
    """LVTT/TMICT writes (x2APIC MSRs) and HLTs reach the engine, not only 0x6e0 writes."""
    lines = list(iter_tcp_rr(50))
    extra = [
        "       CPU 0/KVM-2345    [001] d.... 5.000100: kvm_msr: msr_write 832 = 0x400ec\n",
        "       CPU 0/KVM-2345    [001] d.... 5.000101: kvm_msr: msr_write 838 = 0x0\n",
    ]
    path = tmp_path / "lvtt.txt"
    path.write_text("".join(lines[:2] + extra + lines[2:]))
    w = what_if(import_trace(path))
    assert w.replayed["lapic_writes"] == 2
    assert w.replayed["halts"] == 2 * 50
    writes = w.logs["classic"].column("kind") == int(__import__("lazytsc.taxonomy", fromlist=["Kind"]).Kind.LAPIC_WRITE)
    assert writes.sum() >= 2


def test_one_shot_guest_has_nothing_for_lazy_to_skip() -> None:
    """The real x86-tsc recording programs TMICT (one-shot mode) and never writes 0x6e0:
    the what-if says so and saves nothing, instead of inventing savings."""
    dat = DATA / "tracedat" / "kvm_vmx_lts_x86tsc_hip24_2024.dat"
    w = what_if(import_trace(dat), require_rate=True)
    assert w.saved_tsc_deadline_exits == 0 and w.requests == 0
    assert any("TMICT" in x and "nothing to skip" in x for x in w.warnings)


def test_only_lazy_is_a_what_if(tcp_rr: Path) -> None:
    with pytest.raises(ValueError):
        what_if(import_trace(tcp_rr), mode="classic")
