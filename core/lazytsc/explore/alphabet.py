"""The alphabet of guest programs: each letter is one thing a guest or its VMM does.

A letter reads the state it is applied in (the shared page's `armed`/`pending`, the
LVTT, whether the vCPU halts) and becomes ordinary script operations at the current
time, so a program of letters is an ordinary scenario. Deadlines are chosen relative
to the state: below, equal to or above the current `armed` (or `pending` when nothing
is armed), already past, or a fresh one ahead. Numeric parameters (deltas, jumps, idle
times) have a default used by the search and a minimum the shrinker may reduce to.

An alphabet file (`--alphabet FILE`, TOML) picks letters and overrides parameters:

    format = 1
    letters = ["dl_far", "dl_above", "mask", "hlt", "wait", "idle"]
    [params.dl_far]
    delta_cycles = 20000
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..scenario import ScenarioError, locate_keys
from ..taxonomy import LOCAL_TIMER_VECTOR, RESCHEDULE_VECTOR
from ..vcpu import LVT_MASKED, MODE_TSCDEADLINE, SPIV_APIC_ENABLED, TIMER_MODE_SHIFT

TSC_DIVISOR = 8  # deadlines are whole clockevent ticks, as kvm_lapic_next_deadline computes them
LVTT_TSCDEADLINE = (MODE_TSCDEADLINE << TIMER_MODE_SHIFT) | LOCAL_TIMER_VECTOR  # 0x400ec
LVTT_ONESHOT = LOCAL_TIMER_VECTOR
GAP_NS = 2_000  # time from one letter to the next (more than an exit and its busy-wait)
MSR_IA32_TSC = 0x10
DEFAULT_ORDER = ("apic_base", "lapic", "tsc", "pv_msr", "tsc_deadline")
LATE_PV_ORDER = ("apic_base", "lapic", "tsc", "tsc_deadline", "pv_msr")
TSC_LAST_ORDER = ("apic_base", "lapic", "pv_msr", "tsc_deadline", "tsc")


class Ctx(Protocol):
    """What a letter may read of the state it is applied in (the driver provides it)."""

    nvcpus: int
    now: int

    def tsc(self, vid: int) -> int: ...
    def armed(self, vid: int) -> int: ...
    def pending(self, vid: int) -> int: ...
    def lvtt(self, vid: int) -> int: ...
    def apic_enabled(self, vid: int) -> bool: ...
    def registered(self, vid: int) -> bool: ...
    def waiting(self, vid: int) -> bool: ...
    def next_host_timer_ns(self) -> int | None: ...


@dataclass(frozen=True)
class Param:
    name: str
    default: int
    minimum: int
    step: int = 1  # values are multiples of this (TSC_DIVISOR for deadline offsets)
    doc: str = ""


@dataclass(frozen=True)
class Move:
    """What applying a letter does: script ops now, what the guest then wants, how long until the next letter."""

    ops: tuple[tuple[str, dict], ...] = ()
    want: int | None = None  # a new wanted TSC deadline; 0: the guest wants nothing now; None: unchanged
    gap: int = GAP_NS
    until: int | None = None  # advance to this absolute time instead of `gap`
    comment: str = ""


Build = Callable[[Ctx, int, dict[str, int]], Move | None]


@dataclass(frozen=True)
class Letter:
    name: str
    scope: str  # "guest": an instruction of a running vCPU; "host": the VMM, any time; "time": no vCPU
    doc: str
    build: Build
    params: tuple[Param, ...] = ()
    per_vcpu: bool = True

    def defaults(self) -> dict[str, int]:
        return {p.name: p.default for p in self.params}


def _align(tsc: int) -> int:
    return tsc - tsc % TSC_DIVISOR


def _timer_on(ctx: Ctx, v: int) -> bool:
    """The guest's clockevent is live: LVTT unmasked in TSC-deadline mode, APIC software-enabled."""
    return ctx.lvtt(v) == LVTT_TSCDEADLINE and ctx.apic_enabled(v)


def _deadline(ctx: Ctx, v: int, tsc: int, comment: str) -> Move:
    """set_next_event() for an absolute TSC deadline: the guest wants it if its clockevent is live."""
    return Move(ops=(("set_deadline", {"tsc": tsc}),), want=tsc if _timer_on(ctx, v) else 0, comment=comment)


def _reference(ctx: Ctx, v: int) -> tuple[int, str]:
    armed = ctx.armed(v)
    if armed:
        return armed, "armed"
    return ctx.pending(v), "pending"


def _dl_far(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    tsc = _align(ctx.tsc(v)) + p["delta_cycles"]
    return _deadline(ctx, v, tsc, f"set_next_event: now + {p['delta_cycles']} cycles")


def _dl_below(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    ref, what = _reference(ctx, v)
    tsc = ref - p["step_cycles"]
    if not ref or tsc <= ctx.tsc(v):
        return None  # not below a future reference: dl_past covers it
    return _deadline(ctx, v, tsc, f"set_next_event: {what} - {p['step_cycles']} cycles")


def _dl_equal(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    ref, what = _reference(ctx, v)
    if not ref:
        return None
    return _deadline(ctx, v, ref, f"set_next_event: equal to {what}")


def _dl_above(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    ref, what = _reference(ctx, v)
    if not ref:
        return None
    return _deadline(ctx, v, ref + p["step_cycles"], f"set_next_event: {what} + {p['step_cycles']} cycles")


def _dl_past(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    tsc = _align(ctx.tsc(v)) - p["ago_cycles"]
    return _deadline(ctx, v, max(tsc, TSC_DIVISOR), f"set_next_event: already past (now - {p['ago_cycles']} cycles)")


def _write_lvtt(value: int, want: int | None, comment: str) -> Move:
    return Move(ops=(("write", {"reg": "lvtt", "value": value}),), want=want, comment=comment)


# Linux shuts its clockevent down (and switches its mode) only with no hrtimer left to
# program: the letters cancel the program's hrtimer first, so the guest kernel does not
# reprogram it by itself after a later interrupt.
_CANCEL = ("hrtimer_cancel", {"name": "script"})


def _mask(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    if ctx.lvtt(v) != LVTT_TSCDEADLINE:
        return None
    return Move(ops=(_CANCEL, ("write", {"reg": "lvtt", "value": LVTT_TSCDEADLINE | LVT_MASKED})), want=0, comment="last hrtimer cancelled, LVTT masked (clockevent shutdown)")


def _unmask(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    if ctx.lvtt(v) == LVTT_TSCDEADLINE:
        return None
    return _write_lvtt(LVTT_TSCDEADLINE, None, "LVTT unmasked in TSC-deadline mode")


def _oneshot(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    if ctx.lvtt(v) & ~LVT_MASKED != LVTT_TSCDEADLINE:
        return None
    return Move(ops=(_CANCEL, ("write", {"reg": "lvtt", "value": LVTT_ONESHOT})), want=0, comment="last hrtimer cancelled, LVTT switched to one-shot mode (leaves TSC-deadline mode)")


def _pv_disable(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    if not ctx.registered(v):
        return None
    return Move(ops=(("pv_disable", {}),), comment="kvm_guest_cpu_offline: PV MSR = 0")


def _pv_enable(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    what = "re-registers while registered" if ctx.registered(v) else "registers again"
    return Move(ops=(("pv_enable", {}),), comment=f"kvm_guest_cpu_init: zero the page, PV MSR = GPA|1 ({what})")


def _hlt(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    return Move(ops=(("hlt", {}),), comment="HLT: later guest letters wait for the wake-up")


def _ipi(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    if ctx.nvcpus == 1:
        return Move(ops=(("ipi", {"shorthand": "self", "vector": RESCHEDULE_VECTOR}),), comment="self-IPI (an exit unrelated to the timer)")
    dest = 1 - v if ctx.nvcpus == 2 else (v + 1) % ctx.nvcpus
    return Move(ops=(("ipi", {"dest": dest, "vector": RESCHEDULE_VECTOR}),), comment=f"reschedule IPI to vCPU {dest}")


_GUEST_BOOT = (("sti", {}), ("write", {"reg": "spiv", "value": SPIV_APIC_ENABLED | 0xFF}), ("write", {"reg": "lvtt", "value": LVTT_TSCDEADLINE}))


def _init(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    return Move(
        ops=(("reset", {}),) + _GUEST_BOOT,
        want=0,
        comment="INIT (kvm_vcpu_reset); the guest comes back (STI, APIC, LVTT) without re-registering the PV page",
    )


def _init_rereg(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    return Move(
        ops=(("reset", {}),) + _GUEST_BOOT + (("pv_enable", {}),),
        want=0,
        comment="INIT (kvm_vcpu_reset); the guest comes back and re-registers the PV page",
    )


def _migrate(vmm: bool, order: tuple[str, ...], comment: str) -> Build:
    def build(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
        args: dict = {"vmm_support": vmm}
        if order != DEFAULT_ORDER:
            args["order"] = list(order)
        return Move(ops=(("migrate", args),), comment=comment)

    return build


def _save(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    return Move(ops=(("save", {}),), comment="VMM saves the vCPU and guest memory")


def _restore(vmm: bool, order: tuple[str, ...], comment: str) -> Build:
    def build(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
        args: dict = {"vmm_support": vmm}
        if order != DEFAULT_ORDER:
            args["order"] = list(order)
        return Move(ops=(("restore", args),), comment=comment)

    return build


def _tsc_write(sign: int) -> Build:
    def build(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
        value = ctx.tsc(v) + sign * p["jump_cycles"]
        if value <= 0:
            return None
        word = "forward" if sign > 0 else "back"
        return Move(ops=(("vmm_set_msr", {"msr": MSR_IA32_TSC, "value": value}),), comment=f"VMM sets IA32_TSC {p['jump_cycles']} cycles {word}")

    return build


def _wait(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    nxt = ctx.next_host_timer_ns()
    if nxt is None:
        return None
    return Move(until=max(nxt + 1, ctx.now + 1), comment="time passes to just after the next host timer expiry")


def _idle(ctx: Ctx, v: int, p: dict[str, int]) -> Move | None:
    return Move(gap=p["gap_ns"], comment=f"{p['gap_ns']} ns pass without guest activity")


DELTA = Param("delta_cycles", 80_000, TSC_DIVISOR, TSC_DIVISOR, "deadline distance from now (TSC cycles)")
STEP = Param("step_cycles", 20_000, TSC_DIVISOR, TSC_DIVISOR, "distance from the reference (TSC cycles)")
AGO = Param("ago_cycles", TSC_DIVISOR, TSC_DIVISOR, TSC_DIVISOR, "how far in the past (TSC cycles)")
JUMP = Param("jump_cycles", 40_000, TSC_DIVISOR, TSC_DIVISOR, "TSC jump (cycles)")
IDLE = Param("gap_ns", 100_000, 1_000, 1_000, "idle time (ns)")

LETTERS: dict[str, Letter] = {
    letter.name: letter
    for letter in (
        Letter("dl_far", "guest", "set_next_event: a deadline ahead of now", _dl_far, (DELTA,)),
        Letter("dl_below", "guest", "set_next_event: below `armed` (or `pending` when nothing is armed)", _dl_below, (STEP,)),
        Letter("dl_equal", "guest", "set_next_event: equal to `armed` (or `pending`)", _dl_equal),
        Letter("dl_above", "guest", "set_next_event: above `armed` (or `pending`)", _dl_above, (STEP,)),
        Letter("dl_past", "guest", "set_next_event: a deadline already past", _dl_past, (AGO,)),
        Letter("mask", "guest", "LVTT masked (the clockevent is shut down)", _mask),
        Letter("unmask", "guest", "LVTT unmasked in TSC-deadline mode", _unmask),
        Letter("oneshot", "guest", "LVTT switched to one-shot mode", _oneshot),
        Letter("pv_disable", "guest", "PV MSR = 0 (kvm_guest_cpu_offline)", _pv_disable),
        Letter("pv_enable", "guest", "zero the page, PV MSR = GPA|1 (kvm_guest_cpu_init)", _pv_enable),
        Letter("hlt", "guest", "HLT (the vCPU is halted until an interrupt)", _hlt),
        Letter("ipi", "guest", "an IPI (self-IPI with one vCPU): an exit unrelated to the timer", _ipi),
        Letter("init", "host", "INIT without re-registration of the PV page", _init),
        Letter("init_rereg", "host", "INIT, then the guest re-registers the PV page", _init_rereg),
        Letter("mig_vmm", "host", "migration, VMM migrates the PV MSR (default restore order)", _migrate(True, DEFAULT_ORDER, "migration with VMM support (PV MSR restored before the TSC deadline)")),
        Letter(
            "mig_vmm_late_pv", "host", "migration, VMM restores the TSC deadline before the PV MSR",
            _migrate(True, LATE_PV_ORDER, "migration with VMM support, TSC deadline restored before the PV MSR"),
        ),
        Letter("mig_novmm", "host", "migration without VMM support (PV MSR not migrated)", _migrate(False, DEFAULT_ORDER, "migration without VMM support")),
        Letter(
            "mig_vmm_tsc_last", "host", "migration, VMM restores IA32_TSC last",
            _migrate(True, TSC_LAST_ORDER, "migration with VMM support, IA32_TSC restored last"),
        ),
        Letter("save", "host", "VMM saves the vCPU (a snapshot)", _save),
        Letter("restore", "host", "VMM restores the last save (default order)", _restore(True, DEFAULT_ORDER, "VMM restores the snapshot")),
        Letter("tsc_fwd", "host", "VMM writes IA32_TSC forward (kvm_synchronize_tsc)", _tsc_write(1), (JUMP,)),
        Letter("tsc_back", "host", "VMM writes IA32_TSC back (kvm_synchronize_tsc)", _tsc_write(-1), (JUMP,)),
        Letter("wait", "time", "time passes to just after the next host timer expiry", _wait, per_vcpu=False),
        Letter("idle", "time", "time passes without guest activity", _idle, (IDLE,), per_vcpu=False),
    )
}

DEFAULT_LETTERS = (
    "dl_far", "dl_below", "dl_equal", "dl_above", "dl_past",
    "mask", "unmask", "oneshot", "pv_disable", "pv_enable", "hlt", "ipi",
    "init", "init_rereg", "mig_vmm", "mig_vmm_late_pv", "mig_novmm",
    "tsc_fwd", "tsc_back", "wait", "idle",
)  # fmt: skip


@dataclass(frozen=True)
class Alphabet:
    """The letters of a search, in the order they are tried, with their parameters."""

    letters: tuple[Letter, ...]
    params: dict[str, dict[str, int]] = field(default_factory=dict)

    def params_of(self, name: str) -> dict[str, int]:
        return {**LETTERS[name].defaults(), **self.params.get(name, {})}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(letter.name for letter in self.letters)


def make_alphabet(names: Sequence[str] = DEFAULT_LETTERS, params: dict[str, dict[str, int]] | None = None) -> Alphabet:
    unknown = [n for n in names if n not in LETTERS]
    if unknown:
        raise KeyError(unknown[0])
    return Alphabet(tuple(LETTERS[n] for n in names), dict(params or {}))


def load_alphabet(path: str | Path) -> Alphabet:
    """Read an alphabet file; a bad one raises ScenarioError naming file, line and field."""
    p = Path(path)
    name = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(name, 0, "", f"a readable UTF-8 alphabet file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 0) or 0
        raise ScenarioError(name, line, "", f"valid TOML ({str(exc).split(' (at line')[0]})") from None
    where = locate_keys(text)

    def fail(path: tuple, expected: str) -> ScenarioError:
        line = 0
        for end in range(len(path), 0, -1):
            line = where.get(path[:end], 0)
            if line:
                break
        return ScenarioError(name, line, ".".join(str(x) for x in path), expected)

    for key in data:
        if key not in ("format", "letters", "params"):
            raise fail((key,), "one of format, letters, params")
    if data.get("format", 1) != 1:
        raise fail(("format",), "1")
    letters = data.get("letters", list(DEFAULT_LETTERS))
    if not isinstance(letters, list) or not letters or not all(isinstance(x, str) for x in letters):
        raise fail(("letters",), "a non-empty list of letter names")
    for n in letters:
        if n not in LETTERS:
            raise fail(("letters",), f"letter names among {', '.join(LETTERS)} (got {n!r})")
    if len(set(letters)) != len(letters):
        raise fail(("letters",), "each letter once")
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        raise fail(("params",), "a table of letter names")
    params: dict[str, dict[str, int]] = {}
    for letter_name, table in raw_params.items():
        if letter_name not in LETTERS:
            raise fail(("params", letter_name), f"a letter name among {', '.join(LETTERS)}")
        specs = {prm.name: prm for prm in LETTERS[letter_name].params}
        if not isinstance(table, dict):
            raise fail(("params", letter_name), "a table of parameters")
        for key, value in table.items():
            if key not in specs:
                allowed = ", ".join(specs) or "none"
                raise fail(("params", letter_name, key), f"a parameter of {letter_name} ({allowed})")
            spec = specs[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < spec.minimum or value > 10**12 or value % spec.step:
                raise fail(("params", letter_name, key), f"an integer >= {spec.minimum}, a multiple of {spec.step}")
            params.setdefault(letter_name, {})[key] = value
    return make_alphabet(letters, params)
