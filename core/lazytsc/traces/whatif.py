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

Guest TSC vs trace time: the recorded values are guest TSC deadlines, the recorded
times host trace-clock ns. `calibrate` fits `tsc = rate * t + offset` on pairs of
(armed deadline, timer interrupt time) — every LAPIC timer interrupt fires the
deadline armed last — or, without interrupts, takes the given or default TSC rate
and assumes the tightest recorded deadline was due at once (and says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import HostConfig, RunConfig, VcpuConfig
from ..engine import Engine
from ..eventlog import EventLog
from ..scenario import Scenario
from ..script import ScriptOp
from ..taxonomy import EXIT_ORDER, MSR_SUB_ORDER
from .importer import TraceResult

DEFAULT_TSC_KHZ = VcpuConfig().tsc_khz
MIN_KHZ, MAX_KHZ = 100_000, 10_000_000
MAX_REQUESTS = 250_000  # one ScriptOp object (~0.4 KB) per request: bound the replay's memory
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


def _pairs(result: TraceResult, vcpus: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(armed deadline, interrupt time ns) for every timer interrupt after a write."""
    values, times = [], []
    for vcpu in vcpus:
        t, armed = result.armed_at_interrupts(vcpu)
        ok = armed > 0
        values.append(armed[ok])
        times.append(t[ok])
    if not values:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(values), np.concatenate(times)


def calibrate(result: TraceResult, vcpus: list[int], tsc_khz: int | None = None) -> Calibration:
    """Fit the guest TSC against trace time (see the module docstring)."""
    values, times = _pairs(result, vcpus)
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

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "lazy",
            "variant": self.variant,
            "timer_backend": self.timer_backend,
            "requests": self.requests,
            "vcpus": {str(k): v for k, v in self.vcpus.items()},
            "calibration": self.calibration.as_dict(),
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


def build_scenario(
    result: TraceResult,
    calibration: Calibration,
    vcpus: list[int],
    backend: str,
    variant: str,
    max_requests: int,
) -> tuple[Scenario, int, list[str]]:
    """The in-memory scenario: one sim vCPU per traced vCPU, one `set_deadline` per write."""
    warnings: list[str] = []
    ats, idx, tscs = [], [], []
    for i, vcpu in enumerate(vcpus):
        t_w, val = result.deadline_writes(vcpu)
        ats.append(t_w)
        idx.append(np.full(len(t_w), i, dtype=np.int64))
        tscs.append(val)
    at = np.concatenate(ats) if ats else np.zeros(0, dtype=np.int64)
    vc = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
    raw = np.concatenate(tscs) if tscs else np.zeros(0, dtype=np.int64)
    order = np.lexsort((vc, at))
    at, vc, raw = at[order], vc[order], raw[order]
    if len(at) > max_requests:
        warnings.append(
            f"replayed the first {max_requests:,} of {len(at):,} deadline writes (max_requests):"
            " the savings cover that window only"
        )
        at, vc, raw = at[:max_requests], vc[:max_requests], raw[:max_requests]
    sim = calibration.sim_tsc(raw)
    early = int(np.count_nonzero((raw != 0) & (sim <= 0)))
    if early:
        warnings.append(
            f"{early} recorded deadlines lie before the trace start in the calibrated TSC frame:"
            " replayed as already expired"
        )
    ops: list[ScriptOp] = []
    for t, v, value, s in zip(at.tolist(), vc.tolist(), raw.tolist(), sim.tolist(), strict=True):
        if value == 0:  # lapic_timer_shutdown writes 0: a raw disarm, not a clockevent request
            ops.append(ScriptOp(t, v, "wrmsr_tsc_deadline", {"value": 0}))
        else:
            ops.append(ScriptOp(t, v, "set_deadline", {"tsc": max(int(s), 1)}))
    end = int(at[-1]) if len(at) else 0
    duration = max(end, result.acc.sim_time_ns()) + TAIL_NS
    run = RunConfig(
        vcpus=[
            VcpuConfig(tsc_khz=calibration.tsc_khz, timer_backend=backend, boot="linux")
            for _ in vcpus
        ],
        host=HostConfig(),
        variant=variant,
        duration_ns=duration,
    )
    sc = Scenario(name=f"what-if: {result.path}", run=run, script=ops, mode="both")
    return sc, len(ops), warnings


def _baseline(sc: Scenario, mode: str) -> dict:
    """Exits of booting the same VM without any request (subtracted from the replay)."""
    empty = Scenario(name=sc.name, run=RunConfig(vcpus=sc.run.vcpus, host=sc.run.host,
                                                 variant=sc.run.variant, duration_ns=0),
                     script=[], mode=mode)
    e = Engine(empty, mode)
    e.run()
    return e.summary()["exits"]


def what_if(
    result: TraceResult,
    mode: str = "lazy",
    tsc_khz: int | None = None,
    variant: str = "v2",
    max_requests: int = MAX_REQUESTS,
) -> WhatIf:
    """Replay the recorded 0x6e0 writes in classic and lazy mode and compare (module doc)."""
    if mode != "lazy":
        raise ValueError(f"what-if mode must be 'lazy', got {mode!r}")
    warnings: list[str] = []
    traced = [v for v in result.vcpus if len(result.deadline_writes(v)[0])]
    if -1 in traced:
        n = len(result.deadline_writes(-1)[0])
        warnings.append(f"{n} deadline writes of an unknown vCPU were left out of the replay")
        traced.remove(-1)
    recorded = _core(result.summary())
    if recorded["exits"]["msr_write"]["pv-lazy-tscdeadline"]:
        warnings.append(
            "the recorded guest wrote MSR_KVM_LAZY_TSCDEADLINE: it may already run lazy mode,"
            " so the recording is not a classic baseline"
        )
    if not traced:
        warnings.append("no MSR 0x6e0 writes in the trace (record kvm:kvm_msr): nothing to replay")
    cal = calibrate(result, traced, tsc_khz)
    if cal.method == "earliest-deadline":
        warnings.append(
            "no timer interrupts to calibrate the guest TSC against trace time: assumed"
            f" {cal.tsc_khz} kHz and the tightest deadline due at its write (pass --tsc-khz and"
            " record kvm:kvm_apic_accept_irq for a fit)"
        )
    backend = _timer_backend(result)
    mapping = {vcpu: i for i, vcpu in enumerate(traced)}
    if traced:
        sc, n_ops, more = build_scenario(result, cal, traced, backend, variant, max_requests)
        warnings += more
        runs = {}
        logs: dict[str, EventLog] = {}
        for m in ("classic", "lazy"):
            e = Engine(sc, m)
            e.run()
            s = e.summary()
            s["exits_replay_only"] = _subtract(s["exits"], _baseline(sc, m))
            runs[m] = s
            logs[m] = e.log
        classic, lazy = runs["classic"], runs["lazy"]
    else:
        n_ops = 0
        logs = {}
        zero = {"total": 0, "by_reason": dict.fromkeys(EXIT_ORDER, 0),
                "msr_write": dict.fromkeys(MSR_SUB_ORDER, 0)}
        empty = {"events": 0, "sim_time_ns": 0, "exits": zero, "exits_replay_only": zero,
                 "timer": dict.fromkeys(TIMER_KEYS, 0)}
        classic, lazy = dict(empty), dict(empty)
    c_ex, l_ex = classic["exits_replay_only"], lazy["exits_replay_only"]
    resulting_exits = _delta_exits(recorded["exits"], l_ex, c_ex)
    rt, ct, lt = recorded["timer"], classic["timer"], lazy["timer"]
    saved = c_ex["msr_write"]["tsc-deadline"] - l_ex["msr_write"]["tsc-deadline"]
    timer_exits = ("preemption-timer", "intr")
    added_timer = sum(l_ex["by_reason"][k] - c_ex["by_reason"][k] for k in timer_exits)
    resulting = {
        "events": recorded["events"],
        "sim_time_ns": recorded["sim_time_ns"],
        "exits": resulting_exits,
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
    )


def format_what_if(w: WhatIf) -> str:
    """Recording and lazy what-if side by side in the seed's layout, then the headline."""
    from ..accounting import format_seed_table

    table = format_seed_table({"recorded": w.recorded, "lazy (what-if)": w.resulting})
    cal = w.calibration
    out = [
        f"what-if: lazy TSC-deadline ({w.variant}, {w.timer_backend} timer), {w.requests:,}"
        f" recorded deadline writes on {len(w.vcpus)} vCPU(s) replayed through the engine",
        "",
        table,
        "",
        f"tsc-deadline exits saved:        {w.saved_tsc_deadline_exits:,}",
        f"early (spurious) interrupts added: {w.added_spurious_interrupts:,}",
        f"timer expiry exits added:        {w.added_timer_exits:,}",
        f"exits: {w.recorded['exits']['total']:,} recorded -> {w.resulting['exits']['total']:,}"
        " with lazy",
        f"guest TSC: {cal.tsc_khz:,} kHz, offset {cal.offset:,} ({cal.method}, {cal.pairs} pairs,"
        f" median residual {cal.residual_ns:.0f} ns)",
    ]
    for warning in w.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out)


__all__ = ["Calibration", "WhatIf", "calibrate", "format_what_if", "what_if"]
