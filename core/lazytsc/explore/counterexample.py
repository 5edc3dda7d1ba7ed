"""Counterexamples as ordinary scenario files, stopped at the violating event.

For a shrunk program: find the event after which the violated property first fails
(replaying the violating action with Engine.probe_event on each of its events), write
the scenario -- the setup, the program's `[[script]]`, a `[[breakpoint]]` on that event
(`kind` and `index == N`), and `[[expect]]` blocks of what lazy and classic mode report
(so `lazytsc check FILE` passes while the behaviour lasts and fails once it is fixed) --
then load the file and run it again to verify it replays the explorer's run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_text
from ..engine import Engine
from ..expect import evaluate, lookup, run_results
from ..lazy_host import ARMED
from ..scenario import load_scenario
from ..taxonomy import KIND_NAMES, Kind
from .alphabet import LETTERS
from .driver import Driver
from .invariants import FINDINGS, LOST_AFTER_NS, _backed, _host_copyless, will_deliver
from .program import script_text
from .search import SETTLE_NS
from .setups import SETUPS, header_text
from .shrink import Reproduction

HOST_FUNCTION_KINDS = frozenset(
    int(k) for k in (Kind.LAZY_UPDATE, Kind.LAZY_KICK, Kind.LAZY_CLEAR, Kind.LAZY_INIT, Kind.LAZY_EXIT, Kind.VMM_RESTORE, Kind.MIGRATE)
)
TAIL_NS = 200_000  # how long a counterexample runs past a violation of an event property


@dataclass(frozen=True)
class Counterexample:
    path: str
    title: str  # the one-line summary ("V2: lost timer after INIT without re-registration, 3 ops")
    event: int  # the breakpoint's event index
    kind: str
    time: int
    verified: bool
    problem: str = ""


def _violated(d: Driver, finding: str, v: int, want: int) -> bool:
    """The property, judged on the state as of one event (mid-action)."""
    e = d.engine
    armed = e.mem.read64(d.struct_gpa[v] + ARMED) if v >= 0 else 0
    if finding == "lost_timer":
        return not will_deliver(d, v)
    if finding == "known_hang":
        return bool(armed) and _host_copyless(d, v) and not _backed(d, v, armed)
    if finding == "armed_backed":
        return bool(armed) and not _backed(d, v, armed) and not _host_copyless(d, v)
    if finding == "page_agrees":
        p = e.lazy.s[v]
        return p.mapped and bool(p.msr_val & 1) and armed != p.cached_armed
    return False


def pinpoint(d: Driver, root, rep: Reproduction) -> int:
    """The index of the violating event in the replayed program (-1: the end of the run).

    Leaves the driver after the violating letter (its log holds the event)."""
    cand = rep.candidate
    d.restore(root)
    for w in rep.words[: rep.index]:
        letter = LETTERS[w.letter]
        params = dict(w.params)
        d.apply(letter, w.vcpu, letter.build(d, w.vcpu, params), params)
    before = d.save()

    def redo() -> None:
        if rep.settled:
            d.settle(SETTLE_NS)
        else:
            w = rep.words[rep.index]
            letter = LETTERS[w.letter]
            params = dict(w.params)
            d.apply(letter, w.vcpu, letter.build(d, w.vcpu, params), params)

    index = _pinpoint(d, cand, before, redo)
    d.restore(before)
    redo()
    return index


def _pinpoint(d: Driver, cand, before, redo) -> int:
    rows = d.engine.log
    if cand.first >= cand.last:
        return -1
    if cand.finding == "livelock":
        return cand.last - 1
    if cand.finding == "no_phantom":
        return cand.first
    if cand.finding == "late_vs_classic":
        redo()
        for i in range(cand.first, min(cand.last, len(rows))):
            ev = rows.event(i)  # (never log.column() on a branching engine: its cache is by length)
            if ev.kind == int(Kind.GUEST_TIMER_IRQ) and ev.vcpu == cand.vcpu and ev.a >= cand.want:
                return i
        return cand.first
    hits: list[int] = []
    for i in range(cand.first, cand.last):
        d.restore(before)
        d.engine.probe_event(i, lambda _e, i=i: hits.append(i) if _violated(d, cand.finding, cand.vcpu, cand.want) else None)
        redo()
        d.engine.probe_event(i, None)
        if hits:
            break
    if not hits:
        return cand.last - 1
    index = hits[0]
    if cand.finding == "page_agrees":
        log = d.engine.log
        for i in range(index, cand.last):
            if log.event(i).kind in HOST_FUNCTION_KINDS:
                return i  # judged after a host function
    return index


CAUSES = {
    "init": "INIT without re-registration",
    "init_rereg": "INIT with re-registration",
    "mig_novmm": "migration without VMM support",
    "mig_vmm": "migration with VMM support (a host write of armed is not migrated)",
    "mig_vmm_late_pv": "restoring the TSC deadline before the PV MSR",
    "mig_vmm_tsc_last": "restoring IA32_TSC last",
    "save": "a save",
    "restore": "restoring a snapshot",
    "pv_enable": "PV re-enable",
    "pv_disable": "PV disable",
    "tsc_fwd": "a TSC write forward",
    "tsc_back": "a TSC write back",
}


def _cause(letter: str) -> str:
    return CAUSES.get(letter, f"`{letter}`")


def describe(finding: str, subclass: str) -> str:
    """What went wrong, in words: "lost timer after INIT without re-registration (the known hang)"."""
    if finding == "lost_timer":
        if subclass.startswith("known_hang after "):
            return f"lost timer after {_cause(subclass.split('after ', 1)[1])} (the known hang)"
        if subclass == "request never served":
            return "lost timer: the KVM_REQ_LAZY_TSCDEADLINE request is never served (no unrelated exit)"
        return "lost timer"
    if finding == "known_hang":
        return f"known hang after {_cause(subclass.split('after ', 1)[1])}: armed stays with no host copy" if subclass else "known hang"
    what = {
        "late_vs_classic": "interrupt later than classic mode delivers it",
        "livelock": "livelock",
        "armed_backed": "armed without a host timer for it",
        "page_agrees": "guest and host views of the page disagree",
        "no_phantom": "an unwanted interrupt classic mode does not take",
    }[finding]
    return f"{what} ({subclass})" if subclass else what


def summary_line(variant: str, finding: str, subclass: str, nops: int, setup: str) -> str:
    return f"{variant.upper()} [{setup}]: {describe(finding, subclass)}, {nops} op{'s' if nops != 1 else ''}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


EXPECT_PATHS = {
    "lost_timer": ("timer.lost", "timer.interrupts", "hazards.stale_armed", "hazards.sw_kick_delayed"),
    "late_vs_classic": ("timer.late", "timer.lost", "timer.interrupts", "hazards.sw_kick_delayed"),
    "known_hang": ("hazards.stale_armed", "timer.lost"),
    "armed_backed": ("timer.lost", "hazards.stale_armed"),
    "page_agrees": ("hazards.stale_armed",),
    "livelock": ("kinds.livelock",),
    "no_phantom": ("timer.interrupts", "timer.spurious"),
}


def write(
    d: Driver, root, rep: Reproduction, variant: str, setup: str, out_dir: str | Path, command: str = ""
) -> Counterexample:
    """Pinpoint, write and verify one counterexample file."""
    cand = rep.candidate
    nops = sum(1 for w in rep.words)
    title = summary_line(variant, cand.finding, cand.subclass, nops, setup)
    index = pinpoint(d, root, rep)
    log = d.engine.log
    steps = rep.steps
    last_at = steps[-1].at if steps else 0
    if cand.finding in ("lost_timer", "late_vs_classic", "livelock", "no_phantom"):
        end = max(cand.time, last_at) + TAIL_NS
        if rep.settled:
            end = max(end, last_at + SETTLE_NS)
        if cand.finding == "lost_timer":
            end = max(end, d.engine.clock.ns_of(cand.vcpu, cand.want) + LOST_AFTER_NS + TAIL_NS)
    else:
        end = max(cand.time, last_at) + 1
    if index >= 0:
        ev = log.event(index)
        kind, vcpu, time = ev.kind_name, ev.vcpu, ev.time
    else:
        kind, vcpu, time = "end", -1, end
    nvcpus = d.nvcpus
    program = ", ".join(w.label(nvcpus) for w in rep.words)
    path = Path(out_dir) / f"{variant}-{setup}-{_slug(cand.finding + ' ' + cand.subclass)}.toml"
    s = SETUPS[setup]
    description = f"{title}. {rep.detail}."
    explain = "\n".join(
        [
            f"**{FINDINGS[cand.finding]}** -- violated.",
            "",
            f"Found by `lazytsc explore`{(' (' + command + ')') if command else ''}: variant {variant.upper()}, host setup `{setup}` ({s.description}).",
            "",
            f"Program ({nops} letters, shrunk): {program}" + ("; then no more letters" if rep.settled else "") + ".",
            "",
            *[f"{i}. `{st.letter}`{'' if nvcpus == 1 else f' on vCPU {st.vcpu}'} at {st.at} ns: {st.comment}" for i, st in enumerate(steps, start=1)],
            "",
            f"What goes wrong: {rep.detail}.",
            f"The breakpoint stops at event {index} ({kind}), the first after which the property fails." if index >= 0 else "It shows at the end of the run.",
        ]
    )
    head = header_text(s, variant, nvcpus, end, "both", f"explore: {title}", description)
    head = head.replace("\n\n[defaults]", '\nexplain = """\n' + explain.replace('"""', "'''") + '\n"""\n\n[defaults]', 1)
    text = head + "\n" + script_text(steps, nvcpus)
    bp_name = f"explore: {cand.finding}"
    if index >= 0:
        text += f'[[breakpoint]]\nname = "{bp_name}"\nkind = "{kind}"\n' + (f"vcpu = {vcpu}\n" if vcpu >= 0 else "") + f'condition = "index == {index}"\n'
    else:
        text += f'[[breakpoint]]\nname = "{bp_name}"\nkind = "end"\n'
    text += _expects(text, path, cand.finding, cand.vcpu)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    ok, problem = verify(path, index, kind, time)
    return Counterexample(str(path), title, index, kind, time, ok, problem)


def _expects(text: str, path: Path, finding: str, vcpu: int) -> str:
    """[[expect]] blocks of what each mode reports, from running the text as it is."""
    from ..scenario import parse_scenario

    sc = parse_scenario(text, str(path))
    results = {}
    for mode in ("lazy", "classic"):
        e = Engine(sc, mode)
        e.run()
        results[mode] = run_results(e)
    out = []
    for n, what in enumerate(EXPECT_PATHS[finding]):
        try:
            values = {mode: lookup(results[mode], what) for mode in ("lazy", "classic")}
        except LookupError:
            continue
        if n and values["lazy"] == values["classic"]:
            continue  # the same in both modes: says nothing about this finding
        for mode, value in values.items():
            out.append(f'[[expect]]\nmode = "{mode}"\nwhat = "{what}"\nequals = {int(value)}\n')
    if finding in ("page_agrees", "armed_backed", "known_hang") and vcpu >= 0:
        for field in ("armed", "cached_armed"):
            value = lookup(results["lazy"], f"final.vcpu{vcpu}.{field}")
            out.append(f'[[expect]]\nmode = "lazy"\nwhat = "final.vcpu{vcpu}.{field}"\nequals = {int(value)}\n')
    return "\n" + "\n".join(out)


def verify(path: str | Path, index: int, kind: str, time: int) -> tuple[bool, str]:
    """Load the file as any user would, run it, and check the breakpoint event and the expectations."""
    sc = load_scenario(path)
    e = Engine(sc, "lazy")
    e.run()
    if index >= 0:
        if index >= len(e.log):
            return False, f"the run has {len(e.log)} events, no event {index}"
        ev = e.log.event(index)
        if ev.kind_name != kind or ev.time != time:
            return False, f"event {index} is {ev.kind_name} at {ev.time} ns, the explorer saw {kind} at {time} ns"
    per_mode = {"lazy": run_results(e)}
    c = Engine(sc, "classic")
    c.run()
    per_mode["classic"] = run_results(c)
    failed = [o for o in evaluate(sc, per_mode) if not o.ok]
    if failed:
        o = failed[0]
        return False, f"{o.expectation.describe()}: expected {o.expected}, got {o.got}"
    return True, ""


__all__ = ["Counterexample", "KIND_NAMES", "pinpoint", "summary_line", "verify", "write"]
