"""A canonical fingerprint of the engine state, with every time made relative to now.

Two states with the same fingerprint behave the same under every later program, so the
search explores one of them. Each field of each per-vCPU state class is classified in
FIELDS: a plain value, a simulated time (ns, made relative to now), a guest TSC value
(relative to that vCPU's TSC now; 0 stays "none"), or skipped -- generation counters
and event indices, which only name things (why for each is said beside it). A field the
table does not know is hashed as a plain value (VX): the search may then merge less, never
wrongly (tests/test_explore_canon.py fails on it so that the table is kept complete).

Values more than HORIZON_NS in the past keep only their order among themselves (their
rank): a deadline that long past compares the same way with everything later.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ..vcpu import NEVER

if TYPE_CHECKING:
    from .driver import Driver

HORIZON_NS = 400_000
V, VC, VX, NS, NS_FUTURE, TSC, SKIP, KEYS, NS_DICT = "v", "vc", "vx", "ns", "ns_future", "tsc", "skip", "keys", "ns_dict"
# V: an int or bool; VC: a dict of ints; VX: anything (a field the table does not know)
KINDS = (V, VC, VX, NS, NS_FUTURE, TSC, KEYS, NS_DICT)

FIELDS: dict[str, dict[str, str]] = {
    "TimerState": {
        "timer_mode": V, "tmict": V, "tdcr": V, "divide": V, "period": V, "target": NS,
        "tscdeadline": TSC, "pending": V,
        "pending_deadline": SKIP,  # only logged (timer_dropped.a)
        "expired_tscdeadline": TSC,
        "hv_in_use": V, "hv_gen": SKIP,  # generation tag of queued expiries (the queue is hashed by liveness)
        "hv_fire": NS,
        "hv_arm": SKIP,  # event index of the TIMER_ARM (only names the parent of a logged event)
        "hv_deadline": SKIP,  # only logged (timer_cancel.a)
        "sw_active": V,
        "sw_gen": SKIP,  # as hv_gen
        "sw_expires": NS,
        "posted_gen": SKIP,  # as hv_gen (the queued posted injection)
    },
    "PvState": {
        "msr_val": V, "mapped": V, "base": V, "cached_armed": TSC, "req": V,
        # only judged by the engine's hazard monitor or logged:
        "req_time": SKIP, "req_waits": SKIP, "req_deadline": SKIP, "ever": SKIP,
    },
    "ApicState": {
        "apic_base": V, "sw_enabled": V, "spiv": V, "tpr": V, "ppr": V, "irr": V, "isr": V, "tmr": V,
        "lvt": VC, "icr": V, "icr2": V, "ldr": V, "dfr": V, "xapic_id": V, "ipi_src": VC,
    },
    "RunState": {
        "in_host_until": NS_FUTURE, "blocked": V, "halted": V, "entry_queued": V,
        "entry_parent": SKIP,  # event index: the parent of the next entry's events
        "wake_queued": V, "hv_at_block": V, "task_active": V, "task_end": NS, "irq_window": V,
        "injected": V,
        "hlt_event": SKIP,  # event index of the HLT (parent of the wake-up)
        "guest_mode": V,
    },
    "CpuState": {
        "if_flag": V, "shadow": V, "halted_in_guest": V, "irq_scheduled": V, "in_irq": V,
        "causes": SKIP,  # vector -> event index: only the parent of logged events
    },
    "KernelState": {
        "timers": NS_DICT, "expires_next": NS, "in_hrtirq": V, "tick_stopped": V,
        "clockevent_stopped": V, "booted": V, "registered": V, "lazy_driver": V, "idle": V,
        "task_handler": V,
        "task_gen": SKIP,  # generation tag of the queued task end (the queue is hashed by liveness)
        "rng": SKIP,  # used only for reprogram jitter, which the explorer sets to 0
    },
    # The engine's hazard monitor only logs hazard events: it never changes what the
    # guest or the host does, so its state is not part of the fingerprint.
    "WantState": {"tsc": SKIP, "ns": SKIP, "mode": SKIP, "period_cycles": SKIP, "done": SKIP, "lost": SKIP, "stale_armed": SKIP},
}


Z = -(1 << 61)  # "none" (a zero time or deadline)
NEVER_MARK = Z + 1  # KTIME_MAX
FAR = Z + 2  # tag of a far-past time: (FAR, rank)
_FAR_NS = -HORIZON_NS
_FAR_TSC = -2 * HORIZON_NS * 8


def _text(x: str) -> int:
    """Strings as stable integers: hash() of a str changes from process to process."""
    return zlib.crc32(x.encode())


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return tuple(sorted((_plain(k), _plain(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_plain(v) for v in x)
    if isinstance(x, str):
        return _text(x)
    if x is None:
        return Z
    return x


class _Enc:
    """One fingerprint's encoder: relative times, with far-past values collected for ranking."""

    __slots__ = ("now", "far")

    def __init__(self, now: int) -> None:
        self.now = now
        self.far = False

    def ns(self, x: int) -> Any:
        if x == 0:
            return Z
        if x >= NEVER:
            return NEVER_MARK
        rel = x - self.now
        if rel < _FAR_NS:
            self.far = True
            return (FAR, rel)
        return rel

    def tsc(self, x: int, tsc_now: int) -> Any:
        if x == 0:
            return Z
        rel = x - tsc_now
        if rel < _FAR_TSC:
            self.far = True
            return (FAR, rel)
        return rel

    def obj(self, obj: Any, tsc_now: int) -> tuple:
        """The fields of one state object, grouped by kind (each group in slot order)."""
        groups = _plan(type(obj))
        out: list[Any] = []
        for kind, getter in groups:
            values = getter(obj)
            if kind == V:
                out.append(values)
            elif kind == VC:
                out.append(tuple(tuple(sorted(x.items())) for x in values))
            elif kind == VX:
                out.append(_plain(values))
            elif kind == NS:
                out.append(tuple(map(self.ns, values)))
            elif kind == TSC:
                out.append(tuple([self.tsc(x, tsc_now) for x in values]))
            elif kind == NS_FUTURE:
                now = self.now
                out.append(tuple(x - now if x > now else 0 for x in values))
            elif kind == KEYS:
                out.append(tuple(tuple(sorted(x)) for x in values))
            elif kind == NS_DICT:
                out.append(tuple(tuple(sorted((_text(k), self.ns(t)) for k, t in x.items())) for x in values))
        return tuple(out)


_PLANS: dict[type, tuple[tuple[str, Callable[[Any], tuple]], ...]] = {}


def _getter(names: list[str]) -> Callable[[Any], tuple]:
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


def _plan(cls: type) -> tuple[tuple[str, Callable[[Any], tuple]], ...]:
    """Per class: for each kind, one attrgetter fetching all its fields at once."""
    plan = _PLANS.get(cls)
    if plan is None:
        kinds = FIELDS.get(cls.__name__, {})
        by_kind: dict[str, list[str]] = {}
        # a compiled (mypyc) class has no __slots__ to read back: the table names its fields
        for name in getattr(cls, "__slots__", None) or tuple(kinds):
            kind = kinds.get(name, VX)
            if kind != SKIP:
                by_kind.setdefault(kind, []).append(name)
        plan = _PLANS[cls] = tuple((kind, _getter(by_kind[kind])) for kind in KINDS if kind in by_kind)
    return plan


_SIMPLE = {name: i for i, name in enumerate(("_enter", "_host_irq", "_shadow_end", "_boot"))}


def _queue(d: Driver, enc: _Enc) -> tuple:
    """Queued actions that will do something, in the order they will run."""
    e = d.engine
    sched = e.sched
    now = enc.now
    out = []
    for time, _seq, h, vid, arg in sorted(sched.queue):
        if time >= d.sentinel_ns:
            continue
        name = sched.handlers[h].__name__
        rel = time - now
        if name == "apic_timer_fn":
            t = e.timer.s[vid]
            if arg[0] == t.sw_gen and t.sw_active:
                out.append((rel, 1, vid))
        elif name == "hv_timer_exit":
            t = e.timer.s[vid]
            if arg[0] == t.hv_gen and t.hv_in_use:
                out.append((rel, 2, vid))
        elif name == "_task_done":
            if arg == e.kernel.s[vid].task_gen and e.run_loop.s[vid].task_active:
                out.append((rel, 3, vid))
        elif name == "_spin_timeout":
            spin = e.script.spin[vid]
            if spin[0] >= 0 and spin[3] == arg:
                out.append((rel, 4, vid))
        elif name == "_op":
            op = e.script.ops[arg]
            out.append((rel, 5, vid, _text(op.op), _plain(op.args)))
        elif name == "_posted_inject":
            if arg[0] == e.timer.s[vid].posted_gen:
                out.append((rel, 7, vid))
        elif name == "_wake":
            out.append((rel, 6, vid, arg[0]))
        elif name in _SIMPLE:
            out.append((rel, 10 + _SIMPLE[name], vid))
        else:
            out.append((rel, _text(name), vid, _text(repr(arg))))
    return tuple(out)


def _memory(d: Driver, enc: _Enc, words: dict[int, int], tscs: list[int]) -> tuple:
    out = []
    for addr in sorted(words):
        value = words[addr]
        owner = -1
        for v, base in enumerate(d.struct_gpa):
            if base <= addr < base + 64:
                owner = v
        out.append((addr, enc.tsc(value, tscs[owner]) if owner >= 0 else value))
    return tuple(out)


def state_tuple(d: Driver) -> tuple:
    """The canonical form of the state (far-past times ranked)."""
    e = d.engine
    now = e.sched.now
    enc = _Enc(now)
    n = d.nvcpus
    tscs = [e.clock.tsc(v, now) for v in range(n)]
    script = e.script
    per_vcpu = []
    for v in range(n):
        tn = tscs[v]
        saved = e.vmm.saved[v]
        saved_key: Any = Z
        if saved is not None:
            saved_key = (
                enc.obj(saved.apic, tn), saved.tmict, saved.tdcr, saved.tmcct, enc.tsc(saved.tsc, tn),
                enc.tsc(saved.tsc_deadline, tn), saved.apic_base, saved.pv_msr, _memory(d, enc, saved.memory, tscs),
            )
        spin = script.spin[v]
        per_vcpu.append(
            (
                enc.obj(e.timer.s[v], tn), enc.obj(e.lazy.s[v], tn), enc.obj(e.apic.s[v], tn),
                enc.obj(e.run_loop.s[v], tn), enc.obj(e.cpu.s[v], tn), enc.obj(e.kernel.s[v], tn),
                saved_key, script.waiting[v],
                tuple((_text(script.ops[i].op), _plain(script.ops[i].args)) for i in script.deferred[v]),
                (enc.ns(spin[0]) if spin[0] >= 0 else -1, spin[1], spin[2]),
                # script.irqs_taken only counts interrupts for [[handler]] eoi_limit and
                # `spin until_irqs`, neither of which the explorer's programs use.
            )
        )
    mem = e.mem
    stale = tuple(sorted((page, _memory(d, enc, words, tscs)) for page, words in mem.stale.items()))
    track = d.track
    canon = (
        tuple(per_vcpu), tuple(e.struct_gpa), _memory(d, enc, mem.words, tscs), stale, tuple(e.host.tsc_adjust),
        _plain(script.reads), _plain(script.faults), e.done, _queue(d, enc), d.stuck,
        # the explorer's bookkeeping: wanted and requested deadlines relative to the TSC
        tuple(enc.tsc(w, tscs[v]) for v, w in enumerate(track.want)),
        tuple(enc.tsc(w, tscs[v]) if w > 0 else w for v, w in enumerate(track.asked)),
        tuple(x >= 0 for x in track.delivered), tuple(track.flagged), tuple(_text(h) for h in track.hang),
    )
    return _rank(canon) if enc.far else canon


def _rank(canon: tuple) -> tuple:
    """Far-past times keep only their order: each becomes (FAR, rank)."""
    far: list[int] = []

    def collect(x: Any) -> None:
        if type(x) is tuple:
            if len(x) == 2 and x[0] == FAR:
                far.append(x[1])
            else:
                for y in x:
                    collect(y)

    collect(canon)
    ranks = {value: i for i, value in enumerate(sorted(set(far)))}

    def replace(x: Any) -> Any:
        if type(x) is tuple:
            if len(x) == 2 and x[0] == FAR:
                return (FAR, ranks[x[1]])
            return tuple(replace(y) for y in x)
        return x

    return replace(canon)


def fingerprint(d: Driver) -> int:
    """A 64-bit identity of the state up to time translation (the same in every process).

    Everything in the canonical tuple is an int, bool or tuple (strings were turned into
    CRC32s, None into a marker), whose hash() does not depend on the process.
    """
    return hash(state_tuple(d))
