"""What-if replay: would lazy TSC-deadline have saved exits on *this* recording?

Why a replay through the engine: the seed's authors answered the question by
running both kernels. From a recording we know every guest deadline request that
reached the MSR (classic guests write every one), its time and value; we feed the
same requests, in the same order and at the same times, through the engine's
guest clockevent driver (`set_deadline` script ops, lazy rule `write only if
armed == 0 || tsc < armed`) and its host model (update/kick/clear), once in lazy
mode and once in classic mode. The protocol rules live in the engine only.

Reported side by side with the recording:
  * tsc-deadline exits saved: classic replay writes minus lazy replay writes;
  * early (spurious) interrupts added: lazy minus classic replay;
  * the resulting exit table: the recording plus (lazy replay - classic replay)
    for every reason, so exits the replay does not model (HLT, IPIs, ...) stay as
    recorded and only the timer's share changes (including the extra expiries of
    never-disarmed deadlines: preemption-timer or intr exits).

What is replayed, per traced vCPU and in recorded order: every MSR 0x6e0 write (a
`set_deadline` clockevent request, a raw 0 as a disarm), every LVTT/TMICT/TDCR write
(x2APIC MSRs 0x832/0x838/0x83e or xAPIC `kvm_apic` writes: the guest's timer mode and
one-shot programming), and every HLT with its recorded wake-up: a wake-up that no
recorded timer interrupt explains is delivered as an IPI from a helper vCPU whose own
exits are left out of every count. No reprogram jitter is added to recorded deadlines
(they already carry the guest's own). The engine is driven only through its public API
(Scenario, RunConfig/VcpuConfig, ScriptOp, Engine).

Guest TSC vs trace time: the recorded values are guest TSC deadlines, the recorded
times host trace-clock ns (or raw TSC counts under the x86-tsc clock). `calibrate` fits
`tsc = rate * t + offset` on pairs of (armed deadline, timer interrupt time) — every
LAPIC timer interrupt fires the deadline armed last. When that is impossible the rate
cannot be inferred: the CLI then requires --tsc-khz, and the result is shown at half
and twice that rate too, so its sensitivity to the guess is visible. A trace without
kvm_exit lines has no recorded exit table: then the classic and lazy replays are
compared with each other, never with zero recorded exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..accounting import exit_table
from ..engine import Engine
from ..eventlog import EventLog
from ..scenario import HostConfig, RunConfig, Scenario, ScriptOp, VcpuConfig
from ..taxonomy import EXIT_ORDER, MSR_SUB_ORDER
from .errors import TraceError
from .importer import TraceResult

DEFAULT_TSC_KHZ = VcpuConfig().tsc_khz
MIN_KHZ, MAX_KHZ = 100_000, 10_000_000
MAX_REQUESTS = 250_000  # one ScriptOp object (~0.4 KB) per replayed op: bound the replay's memory
TAIL_NS = 1_000_000  # run this long after the last request so armed deadlines can fire
TIMER_KEYS = ("deadline_requests", "msr_writes", "msr_writes_skipped", "interrupts", "spurious",
              "late", "lost")


@dataclass
class Calibration:
    """Guest TSC = rate * (ns since the trace's first line) + offset."""

    tsc_khz: int
    offset: int
    method: str
    pairs: int = 0
    residual_ns: float = 0.0

    def sim_tsc(self, value: np.ndarray) -> np.ndarray:
        """Recorded guest TSC values in the simulation's frame (TSC 0 at the trace start)."""
        return value - self.offset

    def as_dict(self) -> dict[str, object]:
        return {"tsc_khz": self.tsc_khz, "offset": self.offset, "method": self.method,
                "pairs": self.pairs, "residual_ns": round(self.residual_ns, 1)}


def _pairs(result: TraceResult, vcpus: list[int], to_ns=None) -> tuple[np.ndarray, np.ndarray]:
    """(armed deadline, interrupt time ns) for every timer interrupt after a write."""
    values, times = [], []
    for vcpu in vcpus:
        t, armed = result.armed_at_interrupts(vcpu)
        if to_ns is not None:
            t = to_ns(t)
        ok = armed > 0
        values.append(armed[ok])
        times.append(t[ok])
    if not values:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(values), np.concatenate(times)


def calibrate(
    result: TraceResult, vcpus: list[int], tsc_khz: int | None = None, to_ns=None
) -> Calibration:
    """Fit the guest TSC against trace time (see the module docstring)."""
    values, times = _pairs(result, vcpus, to_ns)
    if len(values) >= 2 and tsc_khz is None and np.ptp(times) > 0:
        # least squares on centred data (float64 keeps ~1 cycle after centring),
        # then once more without outliers (interrupts held off by a masked LVTT etc.)
        keep = np.ones(len(values), dtype=bool)
        rate = sigma = 0.0
        for _ in range(2):
            t = times[keep].astype(np.float64)
            v = values[keep].astype(np.float64)
            tc, vc = t - t.mean(), v - v.mean()
            denom = float(np.dot(tc, tc))
            if denom <= 0:
                break
            rate = float(np.dot(tc, vc)) / denom
            if not MIN_KHZ <= rate * 1e6 <= MAX_KHZ:
                break
            resid = values.astype(np.float64) - (v.mean() + rate * (times - t.mean()))
            dof = max(int(keep.sum()) - 2, 1)
            sigma = (float(np.dot(resid[keep], resid[keep])) / dof / denom) ** 0.5
            mad = float(np.median(np.abs(resid[keep] - np.median(resid[keep])))) or 1.0
            keep = np.abs(resid - np.median(resid[keep])) <= 6 * mad + rate * 1000
        khz = int(round(rate * 1e6))
        # a whole-MHz frequency within the fit's uncertainty is taken as the true one
        mhz = int(round(rate * 1e3)) * 1000
        if abs(mhz - rate * 1e6) <= max(3 * sigma * 1e6, 1.0):
            khz = mhz
        if MIN_KHZ <= khz <= MAX_KHZ and keep.sum() >= 2:
            return _offset_from_pairs(values[keep], times[keep], khz, "fit", int(keep.sum()))
    khz = tsc_khz or DEFAULT_TSC_KHZ
    if len(values):
        return _offset_from_pairs(values, times, khz, "interrupts", len(values))
    # no interrupt observed: the tightest deadline is taken as due at its write
    leads = []
    for vcpu in vcpus:
        t_w, val = result.deadline_writes(vcpu)
        if to_ns is not None:
            t_w = to_ns(t_w)
        nz = val > 0
        if nz.any():
            leads.append(int(np.min(val[nz] - t_w[nz] * khz // 1_000_000)))
    offset = min(leads) if leads else 0
    return Calibration(khz, offset, "earliest-deadline", 0, 0.0)


def _offset_from_pairs(
    values: np.ndarray, times: np.ndarray, khz: int, method: str, n: int
) -> Calibration:
    tsc_at = times * khz // 1_000_000
    diff = values - tsc_at
    offset = int(np.median(diff))
    resid_ns = float(np.median(np.abs(diff - offset))) * 1e6 / khz
    return Calibration(khz, offset, method, n, resid_ns)


@dataclass
class WhatIf:
    """Everything `lazytsc trace FILE --what-if lazy` reports."""

    recorded: dict
    classic: dict
    lazy: dict
    resulting: dict
    saved_tsc_deadline_exits: int
    added_spurious_interrupts: int
    added_timer_exits: int
    calibration: Calibration
    vcpus: dict[int, int]
    requests: int
    variant: str
    timer_backend: str
    warnings: list[str] = field(default_factory=list)
    # the replays' event logs ("classic", "lazy"), for the GUI's compare view
    logs: dict[str, EventLog] = field(default_factory=dict, repr=False)
    # False when the trace has no kvm_exit lines: `recorded` is then the classic replay
    exits_recorded: bool = True
    baseline_label: str = "recorded"
    rate_inferred: bool = True
    # the savings at other TSC rates when the rate was not inferred
    sensitivity: list[dict[str, int]] = field(default_factory=list)
    replayed: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "lazy",
            "variant": self.variant,
            "timer_backend": self.timer_backend,
            "requests": self.requests,
            "replayed": dict(self.replayed),
            "vcpus": {str(k): v for k, v in self.vcpus.items()},
            "calibration": self.calibration.as_dict(),
            "rate_inferred": self.rate_inferred,
            "sensitivity": list(self.sensitivity),
            "exits_recorded": self.exits_recorded,
            "tsc_deadline_exits_saved": self.saved_tsc_deadline_exits,
            "spurious_interrupts_added": self.added_spurious_interrupts,
            "timer_exits_added": self.added_timer_exits,
            "recorded": self.recorded,
            "resulting": self.resulting,
            "replay": {"classic": self.classic, "lazy": self.lazy},
            "warnings": list(self.warnings),
        }


def _core(summary: dict) -> dict:
    """The comparable part of a summary: events, sim_time_ns, exits, timer."""
    return {key: summary[key] for key in ("events", "sim_time_ns", "exits", "timer")}


def _delta_exits(recorded: dict, plus: dict, minus: dict) -> dict:
    """recorded + plus - minus for every reason and sub-reason, never below zero."""
    by = {
        name: max(0, recorded["by_reason"][name] + plus["by_reason"][name]
                  - minus["by_reason"][name])
        for name in EXIT_ORDER
    }
    msr = {
        name: max(0, recorded["msr_write"][name] + plus["msr_write"][name]
                  - minus["msr_write"][name])
        for name in MSR_SUB_ORDER
    }
    return {"total": sum(by.values()), "by_reason": by, "msr_write": msr}


def _subtract(a: dict, b: dict) -> dict:
    """Exit tables a - b (the replay minus its boot-only baseline)."""
    return {
        "total": a["total"] - b["total"],
        "by_reason": {k: a["by_reason"][k] - b["by_reason"][k] for k in EXIT_ORDER},
        "msr_write": {k: a["msr_write"][k] - b["msr_write"][k] for k in MSR_SUB_ORDER},
    }


def _timer_backend(result: TraceResult) -> str:
    acc = result.acc
    recorded = result.exits()["by_reason"]
    if recorded["preemption-timer"] or acc.hv_timer_on:
        return "hv"
    if acc.hv_timer_off:
        return "sw"
    return "hv"


_LAPIC_REG = {0x832: "lvtt", 0x838: "tmict", 0x83E: "tdcr"}


def _same(t):
    return t


def _counts_to_ns(khz: int):
    """Clock counts (TSC cycles at `khz`) to ns; works on ints and numpy arrays."""

    def convert(t):
        return t * 1_000_000 // khz

    return convert


def _to_ns_factory(result: TraceResult, tsc_khz: int | None) -> tuple[object, str | None]:
    """How trace times become ns: identity, or counts * 10^6 / kHz for raw TSC clocks."""
    acc = result.acc
    if not acc.clock_counts:
        return _same, None
    if tsc_khz:
        return _counts_to_ns(tsc_khz), (
            f"trace times are raw clock counts: converted to ns at {tsc_khz:,} kHz (--tsc-khz)")
    return None, None


def _lapic_ops(result: TraceResult, mapping: dict[int, int], to_ns) -> list[tuple[int, int, int, ScriptOp]]:
    out = []
    for seq, (t, v, msr, value) in enumerate(result.acc.lapic_writes):
        if v not in mapping or msr not in _LAPIC_REG:
            continue
        at = int(to_ns(t - result.acc.min_ns))
        reg = _LAPIC_REG[msr]
        out.append((at, mapping[v], 1, seq, ScriptOp(at, mapping[v], "write",
                                                     {"reg": reg, "value": int(value) & 0xFFFFFFFF})))
    return out


def _halt_ops(result: TraceResult, mapping: dict[int, int], to_ns, waker: int) -> tuple[list, int]:
    """HLT at each recorded halt exit; a wake-up no timer interrupt explains is an IPI
    from the helper vCPU `waker` at the recorded kvm_entry time."""
    out = []
    wakes = 0
    acc = result.acc
    for v, spans in acc.halts.items():
        if v not in mapping:
            continue
        times = acc.irq_times().get(v)
        irq = np.sort(np.frombuffer(times, dtype=np.int64)) if times else np.zeros(0, np.int64)
        for seq, (t_h, t_w) in enumerate(spans):
            at = int(to_ns(t_h - acc.min_ns))
            out.append((at, mapping[v], 2, seq, ScriptOp(at, mapping[v], "hlt", {})))
            if t_w < 0:
                continue
            k = np.searchsorted(irq, t_h)
            if k < len(irq) and irq[k] <= t_w:
                continue  # a recorded timer interrupt woke it: the replayed timer will
            wat = int(to_ns(t_w - acc.min_ns))
            out.append((wat, waker, 0, seq, ScriptOp(wat, waker, "ipi", {"dest": mapping[v], "vector": 0xFD})))
            wakes += 1
    return out, wakes


def build_scenario(
    result: TraceResult,
    calibration: Calibration,
    vcpus: list[int],
    backend: str,
    variant: str,
    max_requests: int,
    to_ns=None,
) -> tuple[Scenario, int, list[str], dict[str, int], int]:
    """The in-memory scenario: one sim vCPU per traced vCPU (+ a helper that only sends
    wake-up IPIs), ops in recorded order (see the module docstring).

    Returns (scenario, deadline requests, warnings, replayed op counts, helper vCPU or -1).
    """
    to_ns = to_ns or _same
    warnings: list[str] = []
    mapping = {v: i for i, v in enumerate(vcpus)}
    waker = len(vcpus)
    ops: list[tuple[int, int, int, int, ScriptOp]] = []
    n_dl = 0
    early = 0
    for v in vcpus:
        t_w, val = result.deadline_writes(v)
        if not len(t_w):
            continue
        sim = calibration.sim_tsc(val)
        early += int(np.count_nonzero((val != 0) & (sim <= 0)))
        for seq, (t, value, s_tsc) in enumerate(zip(t_w.tolist(), val.tolist(), sim.tolist(), strict=True)):
            at = int(to_ns(t))
            if value == 0:  # lapic_timer_shutdown writes 0: a raw disarm, not a clockevent request
                op = ScriptOp(at, mapping[v], "wrmsr_tsc_deadline", {"value": 0})
            else:
                op = ScriptOp(at, mapping[v], "set_deadline", {"tsc": max(int(s_tsc), 1)})
            ops.append((at, mapping[v], 3, seq, op))
            n_dl += 1
    lapic = _lapic_ops(result, mapping, to_ns)
    halts, wakes = _halt_ops(result, mapping, to_ns, waker)
    ops += lapic + halts
    ops.sort(key=lambda x: (x[0], x[1], x[2], x[3]))
    if len(ops) > max_requests:
        warnings.append(
            f"replayed the first {max_requests:,} of {len(ops):,} recorded timer operations"
            " (max_requests): the savings cover that window only"
        )
        ops = ops[:max_requests]
    if early:
        warnings.append(
            f"{early} recorded deadlines lie before the trace start in the calibrated TSC frame:"
            " replayed as already expired"
        )
    script = [op for *_k, op in ops]
    needs_waker = any(op.vcpu == waker for op in script)
    replayed = {
        "deadline_writes": sum(1 for op in script if op.op in ("set_deadline", "wrmsr_tsc_deadline")),
        "lapic_writes": sum(1 for op in script if op.op == "write"),
        "halts": sum(1 for op in script if op.op == "hlt"),
        "wakeup_ipis": sum(1 for op in script if op.op == "ipi"),
    }
    end = max((op.at for op in script), default=0)
    duration = max(end, int(to_ns(result.acc.sim_time_ns()))) + TAIL_NS
    cfgs = [VcpuConfig(tsc_khz=calibration.tsc_khz, timer_backend=backend, boot="linux",
                       reprogram_jitter_cycles=0, x2apic=not result.acc.xapic_writes)
            for _ in vcpus]
    if needs_waker:
        cfgs.append(VcpuConfig(tsc_khz=calibration.tsc_khz, boot="reset", pv_lazy=False,
                               reprogram_jitter_cycles=0))
    run = RunConfig(vcpus=cfgs, host=HostConfig(), variant=variant, duration_ns=duration)
    sc = Scenario(name=f"what-if: {result.path}", run=run, script=script, mode="both")
    return sc, replayed["deadline_writes"], warnings, replayed, waker if needs_waker else -1


def _exits_of(log: EventLog, n_traced: int) -> dict:
    """The exit table of the traced vCPUs only (the wake-up helper's exits left out)."""
    vcpu = log.column("vcpu")
    keep = (vcpu >= 0) & (vcpu < n_traced)
    return exit_table(log.column("exit")[keep], log.column("sub")[keep])


def _baseline(sc: Scenario, mode: str, n_traced: int) -> dict:
    """Exits of booting the same VM without any request (subtracted from the replay)."""
    empty = Scenario(name=sc.name, run=RunConfig(vcpus=sc.run.vcpus, host=sc.run.host,
                                                 variant=sc.run.variant, duration_ns=0),
                     script=[], mode=mode)
    e = Engine(empty, mode)
    e.run()
    return _exits_of(e.log, n_traced)


def _replay(sc: Scenario, n_traced: int) -> tuple[dict, dict, dict[str, EventLog]]:
    runs, logs = {}, {}
    for m in ("classic", "lazy"):
        e = Engine(sc, m)
        e.run()
        s = e.summary()
        s["exits_replay_only"] = _subtract(_exits_of(e.log, n_traced), _baseline(sc, m, n_traced))
        runs[m] = s
        logs[m] = e.log
    return runs["classic"], runs["lazy"], logs


def _saved(classic: dict, lazy: dict) -> int:
    return (classic["exits_replay_only"]["msr_write"]["tsc-deadline"]
            - lazy["exits_replay_only"]["msr_write"]["tsc-deadline"])


def what_if(
    result: TraceResult,
    mode: str = "lazy",
    tsc_khz: int | None = None,
    variant: str = "v2",
    max_requests: int = MAX_REQUESTS,
    require_rate: bool = False,
) -> WhatIf:
    """Replay the recorded timer programming in classic and lazy mode and compare.

    With `require_rate`, a trace whose guest TSC rate cannot be inferred (and no
    `tsc_khz` given) is a TraceError naming --tsc-khz, as the CLI needs.
    """
    if mode != "lazy":
        raise ValueError(f"what-if mode must be 'lazy', got {mode!r}")
    warnings: list[str] = []
    acc = result.acc
    candidates = set(acc.deadline_t) | set(acc.halts) | {w[1] for w in acc.lapic_writes}
    traced = sorted(v for v in candidates if v >= 0)
    if -1 in candidates and len(result.deadline_writes(-1)[0]):
        n = len(result.deadline_writes(-1)[0])
        warnings.append(f"{n} deadline writes of an unknown vCPU were left out of the replay")
    recorded_summary = result.summary()
    recorded = _core(recorded_summary)
    exits_recorded = bool(acc.tracepoints.get("kvm_exit")) or acc.perf_stat is not None
    if recorded["exits"]["msr_write"]["pv-lazy-tscdeadline"]:
        warnings.append(
            "the recorded guest wrote MSR_KVM_LAZY_TSCDEADLINE: it may already run lazy mode,"
            " so the recording is not a classic baseline"
        )
    has_deadlines = any(len(result.deadline_writes(v)[0]) for v in traced)
    if not has_deadlines:
        tmict = sum(1 for w in acc.lapic_writes if w[2] == 0x838)
        if tmict:
            warnings.append(
                f"no MSR 0x6e0 writes: the guest programs its LAPIC timer through TMICT ({tmict:,}"
                " one-shot writes), so lazy TSC-deadline has nothing to skip here"
            )
        else:
            warnings.append("no MSR 0x6e0 writes in the trace (record kvm:kvm_msr): nothing to replay")
    to_ns, note = _to_ns_factory(result, tsc_khz)
    if to_ns is None:
        td = acc.tracedat
        if td is not None and td.c.tsc2nsec is not None:
            mult, shift, _o = td.c.tsc2nsec
            khz_clock = int(round(1e6 * (1 << shift) / mult))
            to_ns = _counts_to_ns(khz_clock)
            note = f"trace times are TSC counts: converted to ns with the file's TSC2NSEC ({khz_clock:,} kHz)"
        elif has_deadlines and require_rate:
            raise TraceError(
                f"{result.path}: --tsc-khz: expected the guest TSC frequency: the trace clock counts"
                " TSC cycles, not ns, and the file does not say how fast they run"
            )
        else:
            to_ns = _same
            if has_deadlines:
                warnings.append("trace times are raw clock counts of unknown rate: taken as ns"
                                " (pass --tsc-khz)")
    if note:
        warnings.append(note)
    cal = calibrate(result, traced, None, to_ns)
    rate_inferred = cal.method == "fit"
    if rate_inferred and tsc_khz is not None and tsc_khz != cal.tsc_khz:
        warnings.append(f"--tsc-khz {tsc_khz:,} used; the trace's deadlines fit {cal.tsc_khz:,} kHz")
    if tsc_khz is not None:
        cal = calibrate(result, traced, tsc_khz, to_ns)
    elif not rate_inferred and has_deadlines:
        if require_rate:
            raise TraceError(
                f"{result.path}: --tsc-khz: expected the guest TSC frequency: the trace has no timer"
                " interrupt after a TSC-deadline write to fit the rate against (record"
                " kvm:kvm_apic_accept_irq, or pass --tsc-khz; the result is then shown at half and"
                " twice that rate)"
            )
        warnings.append(
            "no timer interrupts to calibrate the guest TSC against trace time: assumed"
            f" {cal.tsc_khz} kHz and the tightest deadline due at its write (pass --tsc-khz and"
            " record kvm:kvm_apic_accept_irq for a fit)"
        )
    backend = _timer_backend(result)
    mapping = {vcpu: i for i, vcpu in enumerate(traced)}
    n = len(traced)
    replayed: dict[str, int] = {}
    sensitivity: list[dict[str, int]] = []
    if traced:
        sc, n_ops, more, replayed, _waker = build_scenario(result, cal, traced, backend, variant,
                                                           max_requests, to_ns)
        warnings += more
        if replayed.get("wakeup_ipis"):
            warnings.append(
                f"{replayed['wakeup_ipis']:,} recorded wake-ups from HLT had no timer interrupt"
                " before them: replayed as IPIs from a helper vCPU (its exits are not counted)"
            )
        classic, lazy, logs = _replay(sc, n)
        if not rate_inferred and has_deadlines:
            for factor in (0.5, 2.0):
                khz = max(1_000, min(10_000_000, int(cal.tsc_khz * factor)))
                alt = calibrate(result, traced, khz, to_ns)
                sc2, *_rest = build_scenario(result, alt, traced, backend, variant, max_requests, to_ns)
                c2, l2, _logs = _replay(sc2, n)
                sensitivity.append({"tsc_khz": khz, "tsc_deadline_exits_saved": _saved(c2, l2),
                                    "spurious_interrupts_added": l2["timer"]["spurious"] - c2["timer"]["spurious"]})
            sensitivity.insert(1, {"tsc_khz": cal.tsc_khz, "tsc_deadline_exits_saved": _saved(classic, lazy),
                                   "spurious_interrupts_added": lazy["timer"]["spurious"] - classic["timer"]["spurious"]})
    else:
        n_ops = 0
        logs = {}
        zero = {"total": 0, "by_reason": dict.fromkeys(EXIT_ORDER, 0),
                "msr_write": dict.fromkeys(MSR_SUB_ORDER, 0)}
        empty = {"events": 0, "sim_time_ns": 0, "exits": zero, "exits_replay_only": zero,
                 "timer": dict.fromkeys(TIMER_KEYS, 0)}
        classic, lazy = dict(empty), dict(empty)
    c_ex, l_ex = classic["exits_replay_only"], lazy["exits_replay_only"]
    saved = _saved(classic, lazy)
    timer_exits = ("preemption-timer", "intr")
    added_timer = sum(l_ex["by_reason"][k] - c_ex["by_reason"][k] for k in timer_exits)
    ct, lt = classic["timer"], lazy["timer"]
    baseline_label = "recorded"
    if not exits_recorded and traced:
        # no recorded exit table: compare the replays with each other, never with zero
        recorded = {"events": classic["events"], "sim_time_ns": classic["sim_time_ns"],
                    "exits": c_ex, "timer": dict(ct)}
        baseline_label = "classic replay"
        warnings.append(
            "the trace has no kvm_exit lines, so it has no recorded exit table: the classic and"
            " lazy replays of its timer programming are compared with each other"
        )
    rt = recorded["timer"]
    resulting = {
        "events": recorded["events"],
        "sim_time_ns": recorded["sim_time_ns"],
        "exits": _delta_exits(recorded["exits"], l_ex, c_ex),
        "timer": {
            "deadline_requests": rt["deadline_requests"],
            "msr_writes": max(0, rt["msr_writes"] - saved),
            "msr_writes_skipped": lt["msr_writes_skipped"] - ct["msr_writes_skipped"],
            "interrupts": max(0, rt["interrupts"] + lt["interrupts"] - ct["interrupts"]),
            "spurious": lt["spurious"] - ct["spurious"],
            "late": lt["late"] - ct["late"],
            "lost": lt["lost"] - ct["lost"],
        },
    }
    if n_ops and abs(ct["msr_writes"] - n_ops) > n_ops // 100:
        warnings.append(
            f"the classic replay wrote MSR 0x6e0 {ct['msr_writes']:,} times for {n_ops:,}"
            " recorded writes (driver reprogramming after interrupts)"
        )
    return WhatIf(
        recorded=recorded,
        classic=classic,
        lazy=lazy,
        resulting=resulting,
        saved_tsc_deadline_exits=saved,
        added_spurious_interrupts=lt["spurious"] - ct["spurious"],
        added_timer_exits=added_timer,
        calibration=cal,
        vcpus=mapping,
        requests=n_ops,
        variant=variant,
        timer_backend=backend,
        warnings=warnings,
        logs=logs,
        exits_recorded=exits_recorded,
        baseline_label=baseline_label,
        rate_inferred=rate_inferred or tsc_khz is None and not has_deadlines,
        sensitivity=sensitivity,
        replayed=replayed,
    )


def format_what_if(w: WhatIf) -> str:
    """Recording (or the classic replay) and the lazy what-if side by side, then the headline."""
    from ..accounting import format_seed_table

    table = format_seed_table({w.baseline_label: w.recorded, "lazy (what-if)": w.resulting})
    cal = w.calibration
    rp = w.replayed
    out = [
        f"what-if: lazy TSC-deadline ({w.variant}, {w.timer_backend} timer) on {len(w.vcpus)} vCPU(s):"
        f" replayed {rp.get('deadline_writes', w.requests):,} deadline writes, {rp.get('lapic_writes', 0):,}"
        f" LVTT/TMICT/TDCR writes, {rp.get('halts', 0):,} HLTs through the engine",
        "",
        table,
        "",
        f"tsc-deadline exits saved:        {w.saved_tsc_deadline_exits:,}",
        f"early (spurious) interrupts added: {w.added_spurious_interrupts:,}",
        f"timer expiry exits added:        {w.added_timer_exits:,}",
    ]
    if w.exits_recorded:
        out.append(f"exits: {w.recorded['exits']['total']:,} recorded -> {w.resulting['exits']['total']:,}"
                   " with lazy")
    else:
        out.append(f"exits of the replayed timer operations: {w.recorded['exits']['total']:,} classic ->"
                   f" {w.resulting['exits']['total']:,} lazy (the trace recorded no exits)")
    how = "fitted to the trace" if w.rate_inferred else "given, not inferred"
    out.append(f"guest TSC: {cal.tsc_khz:,} kHz ({how}; {cal.method}, {cal.pairs} pairs,"
               f" median residual {cal.residual_ns:.0f} ns), offset {cal.offset:,}")
    if w.sensitivity:
        out.append("sensitivity to the TSC rate: " + ", ".join(
            f"{row['tsc_khz']:,} kHz: {row['tsc_deadline_exits_saved']:,} saved,"
            f" {row['spurious_interrupts_added']:,} early" for row in w.sensitivity))
    for warning in w.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out)


__all__ = ["Calibration", "WhatIf", "calibrate", "format_what_if", "what_if"]
