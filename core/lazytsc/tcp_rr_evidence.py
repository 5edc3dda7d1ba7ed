"""Event-level evidence for the tcp_rr mechanism in docs/model.md: counted from event logs.

    python -m lazytsc.tcp_rr_evidence [--seeds 3] [--duration 50ms] [--jobs N]
        [-o FILE | --update docs/model.md]

Why: the claim "lazy mode's extra timer interrupts are the stale armed tick firing on a
halted vCPU, and V3 only removes the few that fire on a running vCPU in idle" must be
checkable. Every armed host timer that fires (or a deadline found expired when armed)
starts a *boundary*; the events it caused (the `parent` chain: the kick's re-arm and its
second preemption timer, the injected interrupt, the guest's handler, its reprogramming,
an extra HLT) belong to it. Each boundary is classified by where the vCPU was when the
timer fired: running with its tick due (hv path), running in idle with the tick stopped
(hv path: the V2/V3 difference), halted (sw path), or an expiry at arm time. The tables
give per 1000 transactions how many boundaries of each kind there were and what they
cost, and per transaction where every exit and every tsc-deadline write came from.
`--update FILE` rewrites only the text between the markers below.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent import futures

import numpy as np

from .docblock import emit
from .eventlog import EventLog
from .scenario import Scenario, ScenarioError, load_scenario, resolve_scenario_path
from .sweep import build_points, parse_setting
from .taxonomy import BACKEND_HV, EXIT_NAMES, LOCAL_TIMER_VECTOR, SRC_TIMER, Exit, Kind, MsrSub

BEGIN = "<!-- tcp_rr-evidence:begin -->"
END = "<!-- tcp_rr-evidence:end -->"
MODES = ("classic", "lazy")

# The host of V3's own measurement (DESIGN.md section 1, host 6.5-rc1), as the model infers
# it: the same guest and workload, every exit four times as costly (docs/model.md, "tcp_rr").
V3_HOST: dict[str, str] = {"host.exit_cost_ns": "2us"}

# (label, built-in scenario, settings on top of it)
CASES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("V2, seed host", "tcp_rr", {}),
    ("V3, seed host", "tcp_rr_v3", {}),
    ("V3, V3 host", "tcp_rr_v3", V3_HOST),
)

# Where the vCPU was when a boundary began.
CONTEXTS = ("hv: tick due", "hv: idle, tick stopped", "sw: halted", "sw: running", "expired at arm")
# What a boundary's events are counted as.
COSTS = ("interrupts", "spurious", "preemption-timer", "halt", "tsc-deadline", "host expiries")
# tsc-deadline writes by the guest code path that made them.
WRITE_CAUSES = ("idle exit (tick restart)", "idle entry (tick stop)", "timer interrupt (hrtimer_interrupt)", "other")


def scenario_for(name: str, settings: dict[str, str], seed: int | None = None, duration: str = "") -> Scenario:
    """A built-in scenario with `settings` (sweep keys) applied, validated like a file."""
    base = load_scenario(resolve_scenario_path(name))
    items = dict(settings)
    if seed is not None:
        items["seed"] = str(seed)
    if duration:
        items["duration"] = duration
    sets = [parse_setting(f"{k}={v}") for k, v in items.items()]
    return build_points(base.text, base.path, sets)[0].scenario


def _effective_parents(kind: np.ndarray, parent: np.ndarray, vcpu: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`parent`, with two links the log leaves to the action that happened to run them.

    A preemption timer already expired at VM entry fires without naming its arm
    (lapic_timer.hv_expired_at_entry): the timer that fired is the last one armed on
    that backend of that vCPU. A timer interrupt injected by the run loop
    (kvm_inject_pending_timer_irqs at a wake-up an IPI started) names that wake-up:
    what it delivers is the vCPU's last latched expiry.
    """
    eff = parent.astype(np.int64).copy()
    timer_irq = np.nonzero((kind == Kind.IRQ_ACCEPT) & (a == LOCAL_TIMER_VECTOR) & (b == SRC_TIMER))[0]
    for vid in np.unique(vcpu[timer_irq]) if timer_irq.size else ():
        mine = timer_irq[vcpu[timer_irq] == vid]
        expiries = np.nonzero((kind == Kind.TIMER_EXPIRED) & (vcpu == vid))[0]
        eff[mine] = np.where(_last_of(expiries, mine) >= 0, _last_of(expiries, mine), eff[mine])
    orphan = np.nonzero((kind == Kind.TIMER_FIRE) & (parent < 0))[0]
    for vid in np.unique(vcpu[orphan]) if orphan.size else ():
        for backend in np.unique(b[orphan]):
            mine = orphan[(vcpu[orphan] == vid) & (b[orphan] == backend)]
            arms = np.nonzero((kind == Kind.TIMER_ARM) & (vcpu == vid) & (b == backend))[0]
            eff[mine] = _last_of(arms, mine)
    return eff


def _boundary_roots(kind: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Events that start a boundary: timer fires and expiries not caused by another fire.

    A fire whose arm was made while handling a fire (the kick's re-arm) belongs to the
    first one; an expiry logged while handling a fire is that fire's own.
    """
    fire = kind == Kind.TIMER_FIRE
    p = np.where(parent >= 0, parent, 0)
    pp = np.where(parent[p] >= 0, parent[p], 0)
    rearmed = fire & (parent >= 0) & (kind[p] == Kind.TIMER_ARM) & (parent[p] >= 0) & (kind[pp] == Kind.TIMER_FIRE)
    expired = (kind == Kind.TIMER_EXPIRED) & ~((parent >= 0) & (kind[p] == Kind.TIMER_FIRE))
    return (fire & ~rearmed) | expired


def _families(kind: np.ndarray, parent: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """Each event's nearest boundary root up its `parent` chain (-1: none)."""
    n = kind.size
    fam = np.where(roots, np.arange(n), -1)
    p = parent.astype(np.int64).copy()
    open_ = (fam < 0) & (p >= 0)
    for _ in range(256):
        if not open_.any():
            break
        at = p[open_]
        hit = roots[at]
        sel = np.nonzero(open_)[0]
        fam[sel[hit]] = at[hit]
        p[sel] = np.where(hit, -1, parent[at])
        open_ = (fam < 0) & (p >= 0)
    return fam


def _last_of(indices: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each position in `at`, the last of `indices` before it (-1: none)."""
    pos = np.searchsorted(indices, at) - 1
    return np.where(pos >= 0, indices[np.maximum(pos, 0)], -1)


def mechanism_counts(log: EventLog, transactions: int) -> dict[str, int]:
    """Counts of one run: boundaries by context and their costs, exits and writes by cause."""
    kind = log.column("kind")
    parent = log.column("parent")
    vcpu = log.column("vcpu")
    b = log.column("b")
    exit_col = log.column("exit")
    sub = log.column("sub")
    time = log.column("time")
    out: dict[str, int] = {"transactions": transactions, "sim_time_ns": int(time[-1]) if time.size else 0}
    parent = _effective_parents(kind, parent, vcpu, log.column("a"), b)
    roots = _boundary_roots(kind, parent)
    fam = _families(kind, parent, roots)
    root_idx = np.nonzero(roots)[0]
    # Where each root's vCPU was: the last tick stop/restart and block/wake before it.
    context = np.full(kind.size, -1, dtype=np.int64)
    for vid in np.unique(vcpu[root_idx]):
        mine = root_idx[vcpu[root_idx] == vid]
        ticks = np.nonzero((vcpu == vid) & ((kind == Kind.TICK_STOP) | (kind == Kind.TICK_RESTART)))[0]
        blocks = np.nonzero((vcpu == vid) & ((kind == Kind.BLOCK) | (kind == Kind.WAKE)))[0]
        last_tick = _last_of(ticks, mine)
        last_block = _last_of(blocks, mine)
        stopped = (last_tick >= 0) & (kind[np.maximum(last_tick, 0)] == Kind.TICK_STOP)
        halted = (last_block >= 0) & (kind[np.maximum(last_block, 0)] == Kind.BLOCK)
        is_fire = kind[mine] == Kind.TIMER_FIRE
        hv = is_fire & (b[mine] == BACKEND_HV)
        ctx = np.where(~is_fire, 4, np.where(hv, np.where(stopped, 1, 0), np.where(halted, 2, 3)))
        context[mine] = ctx
    spurious_of = np.zeros(kind.size, dtype=bool)
    spur = np.nonzero(kind == Kind.HAZ_SPURIOUS)[0]
    spurious_of[parent[spur][parent[spur] >= 0]] = True
    member = fam >= 0
    fam_ctx = np.where(member, context[np.maximum(fam, 0)], -1)
    for c, name in enumerate(CONTEXTS):
        in_ctx = member & (fam_ctx == c)
        out[f"boundaries.{name}"] = int(np.sum(roots & (context == c)))
        out[f"{name}.interrupts"] = int(np.sum(in_ctx & (kind == Kind.GUEST_TIMER_IRQ)))
        out[f"{name}.spurious"] = int(np.sum(in_ctx & (kind == Kind.GUEST_TIMER_IRQ) & spurious_of))
        out[f"{name}.preemption-timer"] = int(np.sum(in_ctx & (exit_col == Exit.PREEMPTION_TIMER)))
        out[f"{name}.halt"] = int(np.sum(in_ctx & (exit_col == Exit.HALT)))
        out[f"{name}.tsc-deadline"] = int(np.sum(in_ctx & (exit_col == Exit.MSR_WRITE) & (sub == MsrSub.TSC_DEADLINE)))
        out[f"{name}.host expiries"] = int(np.sum(in_ctx & ((kind == Kind.TIMER_EXPIRED) | (kind == Kind.TIMER_COALESCED))))
    # V3's rule at work: hv fires whose kick re-armed, and whether an expiry was
    # injected before the kick (V2: apic_timer_expired first; V3: only if not re-armed).
    raw = log.column("parent")
    kicks = np.nonzero((kind == Kind.LAZY_KICK) & (b == 1))[0]
    kp = raw[kicks]
    hv_kick = kicks[(kp >= 0) & (kind[np.maximum(kp, 0)] == Kind.TIMER_FIRE) & (b[np.maximum(kp, 0)] == BACKEND_HV)]
    expired = np.nonzero(kind == Kind.TIMER_EXPIRED)[0]
    first_expiry = {}
    for i in expired[::-1]:
        if raw[i] >= 0:
            first_expiry[int(raw[i])] = int(i)
    before = np.array([first_expiry.get(int(raw[k]), 1 << 62) < k for k in hv_kick], dtype=bool)
    out["hv kicks that re-armed"] = int(hv_kick.size)
    out["hv kicks that re-armed, nothing injected"] = int(np.sum(~before)) if hv_kick.size else 0
    # Exits and tsc-deadline writes by guest code path.
    for code, name in EXIT_NAMES.items():
        out[f"exits.{name}"] = int(np.sum(exit_col == code))
    out["exits.total"] = int(np.sum(exit_col >= 0))
    out["exits.apic-icr"] = int(np.sum((exit_col == Exit.MSR_WRITE) & (sub == MsrSub.APIC_ICR)))
    writes = np.nonzero((kind == Kind.WRMSR_TSC_DEADLINE) & (exit_col == Exit.MSR_WRITE))[0]
    markers = np.nonzero(np.isin(kind, (Kind.TICK_RESTART, Kind.TICK_STOP, Kind.GUEST_TIMER_IRQ)))[0]
    cause = np.full(writes.size, 3)
    for vid in np.unique(vcpu[writes]) if writes.size else ():
        w = writes[vcpu[writes] == vid]
        m = markers[vcpu[markers] == vid]
        last = _last_of(m, w)
        same = (last >= 0) & (time[np.maximum(last, 0)] == time[w])
        k = kind[np.maximum(last, 0)]
        cw = np.where(~same, 3, np.where(k == Kind.TICK_RESTART, 0, np.where(k == Kind.TICK_STOP, 1, 2)))
        cause[np.searchsorted(writes, w)] = cw
    for c, name in enumerate(WRITE_CAUSES):
        out[f"writes.{name}"] = int(np.sum(cause == c))
    timer_irq = kind == Kind.GUEST_TIMER_IRQ
    out["timer.interrupts"] = int(np.sum(timer_irq))
    out["timer.spurious"] = int(np.sum(timer_irq & spurious_of))
    out["halts blocked"] = int(np.sum(kind == Kind.BLOCK))
    return out


def run_one(name: str, settings: dict[str, str], seed: int, duration: str, mode: str) -> dict[str, float]:
    """One run's figures: the summary's (`exits.total`, `timer.interrupts`, ...), the
    workload's (`workload.transactions`) and the mechanism counts (`mech.*`)."""
    from .engine import Engine
    from .sweep_run import flatten

    engine = Engine(scenario_for(name, settings, seed, duration), mode)
    engine.run()
    figures: dict[str, float] = {}
    summary = engine.summary()
    summary.pop("mode", None)
    flatten("", summary, figures)
    report = engine.workload.report() if engine.workload else {}
    flatten("workload", report, figures)
    for key, value in mechanism_counts(engine.log, int(report.get("transactions", 0))).items():
        figures[f"mech.{key}"] = value
    return figures


def collect(seeds: int, duration: str, jobs: int | None,
            cases: Sequence[tuple[str, str, dict[str, str]]] = CASES) -> dict[str, dict[str, dict[str, float]]]:
    """{case label: {mode: counts pooled over seeds 1..N}}."""
    tasks = [(label, name, settings, seed, mode) for label, name, settings in cases
             for seed in range(1, seeds + 1) for mode in MODES]
    if jobs == 1:
        results = [run_one(n, s, sd, duration, m) for _l, n, s, sd, m in tasks]
    else:
        with futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(run_one, *zip(*[(n, s, sd, duration, m) for _l, n, s, sd, m in tasks], strict=True)))
    pooled: dict[str, dict[str, dict[str, int]]] = {}
    for (label, _n, _s, _sd, mode), counts in zip(tasks, results, strict=True):
        into = pooled.setdefault(label, {}).setdefault(mode, {})
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value
    return pooled


def _per(counts: dict[str, float], key: str, per: int) -> str:
    tx = counts.get("mech.transactions", 0)
    return f"{per * counts.get(key, 0) / tx:.2f}" if tx else "—"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "per1000":
        return f"{1000 * value:.1f}"
    return f"{100 * value:.1f}%" if kind in ("cut", "share") else f"{value:.2f}"


def _per_halt(mode: str, name: str):
    def compute(c: dict[str, dict[str, float]]) -> float | None:
        part, halts = c.get(mode, {}).get(name), c.get(mode, {}).get("exits.by_reason.halt")
        return None if part is None or not halts else part / halts

    return compute


def _extra_figures() -> list:
    """Per-halt rates the published tables allow: how long a vCPU runs with its tick due."""
    from .sensitivity import Figure

    return [
        Figure("classic: guest timer interrupts per 1000 halts", "per1000", _per_halt("classic", "timer.interrupts")),
        Figure("lazy: guest timer interrupts per 1000 halts", "per1000", _per_halt("lazy", "timer.interrupts")),
        Figure("classic: preemption-timer exits per 1000 halts", "per1000",
               _per_halt("classic", "exits.by_reason.preemption-timer")),
        Figure("lazy: preemption-timer exits per 1000 halts", "per1000", _per_halt("lazy", "exits.by_reason.preemption-timer")),
        Figure("classic: intr exits per 1000 halts", "per1000", _per_halt("classic", "exits.by_reason.intr")),
        Figure("lazy: intr exits per 1000 halts", "per1000", _per_halt("lazy", "exits.by_reason.intr")),
    ]


# Why each calibrated value is physically plausible (rendered beside the value the file has).
WHY: dict[str, str] = {
    "host.exit_cost_ns": "VM exit, the WRMSR/ICR handling (hrtimer or preemption-timer reprogramming) and VM entry "
                         "on a recent Xeon: about half a microsecond",
    "host.wakeup_latency_ns": "KVM halt polling (halt_poll_ns 200 µs by default): the halted vCPU's thread is still "
                              "spinning when the IPI comes, so waking is detection plus VM entry",
    "defaults.reprogram_jitter_cycles": "clockevents_program_event: ktime_get(), the ns->cycles conversion, then "
                                        "rdtsc() in lapic_next_deadline; tens of ns between them vary with caches",
    "defaults.host_irq_rate_hz": "the host's own tick (CONFIG_HZ=1000) on the pCPU that runs the vCPU: an `intr` exit "
                                 "when it fires in guest mode (the seed's intr row)",
    "workload.hz": "guest CONFIG_HZ=1000 (distribution server kernels)",
    "workload.client_send_ns": "send(): tcp_sendmsg, loopback xmit and the receive softirq up to sk_data_ready",
    "workload.server_proc_ns": "netserver scheduled in, recv() returns the request, send() the reply through loopback",
    "workload.client_recv_ns": "netperf scheduled in, recv() returns the reply",
    "workload.post_send_ns": "after the wake-up: the rest of the softirq and send(), recv() until it blocks, the "
                             "switch to idle (both sides)",
    "workload.wake_ipi_ns": "the wake-up IPI in idle: sysvec_call_function_single, sched_ttwu_pending, irq_exit",
    "workload.service_jitter_pct": "cache and branch effects on each of those CPU times",
}


def _parameters(name: str) -> list[str]:
    from .sweep import current_value

    scenario = load_scenario(resolve_scenario_path(name))
    rows = []
    for key, why in WHY.items():
        value = current_value(scenario, key)
        shown = f"{value} ns" if key.endswith("_ns") else str(value)
        if key in V3_HOST:
            shown += f" (V3 host: {V3_HOST[key]})"
        rows.append([f"`{key}`", shown, why])
    return _table(["parameter", "value", "why it is plausible"], rows)


def _shape(pooled: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Both published tables beside the model, figure by figure (the sensitivity module's figures)."""
    from .sensitivity import FIGURES, PUBLISHED

    labels = list(pooled)
    head = ["figure", "V2 published"] + [f"{lab}" for lab in labels if lab.startswith("V2")] + ["V3 published"] + [
        f"{lab}" for lab in labels if lab.startswith("V3")]
    rows = []
    for fig in [*FIGURES, *_extra_figures()]:
        row = [fig.label, _fmt(fig.compute(PUBLISHED["v2"]), fig.kind)]
        row += [_fmt(fig.compute(pooled[lab]), fig.kind) for lab in labels if lab.startswith("V2")]
        row.append(_fmt(fig.compute(PUBLISHED["v3"]), fig.kind))
        row += [_fmt(fig.compute(pooled[lab]), fig.kind) for lab in labels if lab.startswith("V3")]
        rows.append(row)
    return _table(head, rows)


def render(pooled: dict[str, dict[str, dict[str, float]]], seeds: int, duration: str) -> str:
    labels = list(pooled)
    cols = [(label, mode) for label in labels for mode in MODES]
    lines = [
        BEGIN,
        "<!-- Generated by `python -m lazytsc.tcp_rr_evidence`; do not edit by hand. -->",
        "",
        "Parameters (both built-ins, `tcp_rr` and `tcp_rr_v3`, have the same; *V3 host* changes only what it says):",
        "",
        *_parameters("tcp_rr"),
        "",
        f"Runs: seeds 1..{seeds} x {duration or 'the scenario duration'} per case, both drivers, counts pooled over the "
        f"seeds. *V3 host*: `tcp_rr_v3` with {', '.join(f'`{k} = {v}`' for k, v in V3_HOST.items())}.",
        "",
        *_shape(pooled),
        "",
        "Where exits and tsc-deadline writes come from, per transaction:",
        "",
    ]
    head = ["per transaction"] + [f"{label}: {mode}" for label, mode in cols]
    rows = [["µs per transaction"] + [
        f"{pooled[lab][m]['mech.sim_time_ns'] / pooled[lab][m]['mech.transactions'] / 1000:.2f}"
        if pooled[lab][m]["mech.transactions"] else "—" for lab, m in cols]]
    for key, label in (("exits.total", "exits"), ("exits.halt", "halt exits"), ("halts blocked", "halts that blocked"),
                       ("exits.apic-icr", "apic-icr writes (IPIs)"), ("exits.msr-write", "msr-write exits"),
                       ("exits.preemption-timer", "preemption-timer exits"), ("exits.intr", "intr exits")):
        rows.append([label] + [_per(pooled[lab][m], f"mech.{key}", 1) for lab, m in cols])
    for name in WRITE_CAUSES:
        rows.append([f"tsc-deadline writes: {name}"] + [_per(pooled[lab][m], f"mech.writes.{name}", 1) for lab, m in cols])
    lines += _table(head, rows)
    lines += ["", "Per 1000 transactions: timer boundaries (an armed host timer firing, or a deadline expired when "
              "armed) by where the vCPU was, and what each kind caused (its events down the `parent` chain).", ""]
    head = ["per 1000 transactions"] + [f"{label}: {mode}" for label, mode in cols]
    rows = []
    for name in CONTEXTS:
        if not any(pooled[lab][m].get(f"mech.boundaries.{name}", 0) for lab, m in cols):
            continue
        rows.append([f"**{name}**: boundaries"] + [_per(pooled[lab][m], f"mech.boundaries.{name}", 1000) for lab, m in cols])
        for cost in COSTS:
            rows.append([f"{name}: {cost}"] + [_per(pooled[lab][m], f"mech.{name}.{cost}", 1000) for lab, m in cols])
    for key, label in (("timer.interrupts", "guest timer interrupts"), ("timer.spurious", "of which spurious"),
                       ("hv kicks that re-armed", "hv kicks that re-armed"),
                       ("hv kicks that re-armed, nothing injected", "… and injected nothing")):
        rows.append([label] + [_per(pooled[lab][m], f"mech.{key}", 1000) for lab, m in cols])
    lines += _table(head, rows)
    lines += ["", END]
    return "\n".join(lines) + "\n"



def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lazytsc.tcp_rr_evidence", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    parser.add_argument("--duration", default="", help="simulated time per run (default: the scenario's)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", help="write the Markdown to FILE (default: stdout)")
    out.add_argument("--update", metavar="FILE", help="replace the marked block of FILE (e.g. docs/model.md)")
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ScenarioError("--seeds", 0, "", f"at least 1 seed (got {args.seeds})")
        markdown = render(collect(args.seeds, args.duration, args.jobs), args.seeds, args.duration)
        emit(markdown, args.update, args.output, BEGIN, END)
    except (ScenarioError, OSError) as exc:
        print(f"lazytsc: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
