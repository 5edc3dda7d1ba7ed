"""The lenient grammar of pasted trace text: the importer's slow path.

The fast path (importer._scan) reads the layouts tools print; this module reads what
people paste: lines that start at the timestamp (`6204.951632: kvm_exit: ...`), body-only
lines (`  kvm_exit:   reason ...`), perf script without TID or `[CPU]`, raw clock counts
(`[005]303280081900681:`), mail quote markers (`> > `), payloads without `rip`/`info`,
extra trailing fields (`intr 0`), and lines a mail client wrapped (the importer joins a
known event that ends early with the continuation line after it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import lines as L

INT64_MAX = (1 << 63) - 1
MAX_VCPU = 32767  # the event log stores vCPUs as int16
MAX_TS_DIGITS = 19
QUOTE_RE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
# `TASK [CPU] [FLAGS] TS: rest` and `TASK TID [CPU] TS: rest`; an integer TS (raw clock
# count) only after a `[CPU]`, so `vcpu 0: ...` inside a payload is never a timestamp
_CPU_HEADER_RE = re.compile(
    r"^(?P<task>.*?)\s*\[\s*(?P<cpu>\d+)\s*\]\s*(?:(?P<flags>[^\s\d:][^\s:]{2,5})\s+)?"
    r"(?P<ts>\d+(?:\.\d+)?):\s+(?P<rest>.*)$"
)
# `[TASK ]SECS.FRAC: rest` (timestamp-first pastes, perf script without TID/CPU)
_TS_HEADER_RE = re.compile(r"^(?P<task>(?:.*?\s)?)(?P<ts>\d+\.\d+):\s+(?P<rest>.*)$")
# an event token: `name:`, `sys:name:`, trace-cmd 3.x `name` padded without a colon,
# custom names such as `<hack>:`
_EVENT_RE = re.compile(r"^(?:(?P<sys>\w+):)?(?P<name>[^\s:]+)(?P<colon>:?)(?:\s+(?P<payload>.*))?$")
# body-only lines: `  kvm_exit:   reason ...` (event names contain `_`; continuation
# lines such as `    nrip: 0x...` do not)
_BODY_RE = re.compile(r"^\s*(?:(?P<sys>[a-z]\w*):)?(?P<name>[a-z][a-z0-9]*_[a-z0-9_]+)(?P<colon>:?)\s+(?P<payload>.*)$")
KNOWN = L.KNOWN_EVENTS | {"kvm_apic"}
_NAME_RE = re.compile(r"[A-Za-z_][\w\-]*")
# the thread of lines pasted without task columns: one (unknown) thread, so kvm_entry
# lines still attribute the exits around them
NO_TASK = "(no task column)"


class Incomplete(ValueError):
    """A known event whose payload stops before a required value (cut or wrapped)."""


@dataclass(frozen=True, slots=True)
class Header:
    key: str  # host thread text (COMM-PID, COMM TID), "" when the line has none
    ts: str | None  # None: body-only line
    sys: str | None
    name: str
    payload: str
    flags: bool = False  # an irq-flags column (ftrace prints one, trace-cmd does not)


def strip_quotes(line: str) -> str:
    m = QUOTE_RE.match(line)
    return line[m.end() :] if m else line


def parse_header(line: str) -> Header | None:
    """Split any supported line into thread, timestamp text, event and payload."""
    m = _CPU_HEADER_RE.match(line)
    if m is None:
        b = _BODY_RE.match(line)
        if b is not None and (b.group("colon") or b.group("name") in KNOWN):
            return Header(NO_TASK, None, b.group("sys"), b.group("name"), b.group("payload") or "")
        m = _TS_HEADER_RE.match(line)
        if m is None:
            return None
    e = _EVENT_RE.match(m.group("rest").strip())
    if e is None:
        return None
    name = e.group("name")
    if not e.group("colon") and _NAME_RE.fullmatch(name) is None:
        return None  # trace-cmd 3.x pads the name without a colon: it must look like one
    return Header(m.group("task").strip() or NO_TASK, m.group("ts"), e.group("sys"), name,
                  e.group("payload") or "", bool(m.groupdict().get("flags")))


def timestamp(ts: str) -> tuple[int, bool]:
    """(time, is_raw_count) from `SECS.FRACTION` (-> ns) or an integer clock count."""
    sec, _, frac = ts.partition(".")
    if len(sec) > MAX_TS_DIGITS or not sec.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"timestamp: expected at most {MAX_TS_DIGITS} digits of seconds"
                         f" (and a decimal fraction), got {ts[:40]!r}")
    if not frac:
        t, raw = int(sec), True
    else:
        frac = frac[:9]
        t, raw = int(sec) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac)), False
    if t > INT64_MAX:
        raise ValueError(f"timestamp: expected a time below 2^63 ns (292 years), got {ts[:40]!r}")
    return t, raw


_EXIT_KEYS = frozenset({"rip", "info", "info1", "info2", "intr_info", "error_code", "intr", "isa"})
_WIDTH = {"info1": 18, "info2": 18, "intr_info": 10, "error_code": 10}
_ARM_RE = re.compile(r"^\s*(?:[A-Z][A-Z_]*:(?:\s|$)|(?:HSR_EC|ESR_EC)\b|PC: )")


def is_arm_exit(payload: str) -> bool:
    """arm64's kvm_exit: `TRAP: HSR_EC: 0x0018 (SYS64), PC: 0x...` (`IRQ: ...`, `PC: ...`)."""
    return _ARM_RE.match(payload) is not None


def parse_exit(payload: str) -> tuple[int | None, str, str | None]:
    """(vcpu or None, raw reason, info1 text or None) of any kvm_exit layout.

    Fields after the reason may be missing (old kernels, edited traces) or extra
    (`intr 0`); a field printed with a fixed width (`info1 0x%016llx`...) must have it
    (a shorter one is a line cut short). Raises Incomplete when the payload ends where a
    value must follow, ValueError naming the field otherwise.
    """
    tk = payload.split()
    i = 0
    vcpu = None
    if tk and tk[0] == "vcpu":
        if len(tk) < 2:
            raise Incomplete("vcpu: expected a decimal number, got end of line")
        if not tk[1].isdigit():
            raise ValueError(f"vcpu: expected a decimal number, got {tk[1]!r}")
        vcpu = int(tk[1])
        if vcpu > MAX_VCPU:
            raise ValueError(f"vcpu: expected a vCPU number up to {MAX_VCPU}, got {tk[1][:20]}")
        i = 2
    if i >= len(tk):
        raise Incomplete("reason: expected `reason NAME`, got end of line")
    if tk[i] != "reason":
        raise ValueError(f"reason: expected `reason`, got {tk[i]!r}")
    i += 1
    j = i
    while j < len(tk) and tk[j] not in _EXIT_KEYS:
        j += 1
    if j == i:
        raise Incomplete("reason: expected a reason name, got end of line" if j >= len(tk)
                         else f"reason: expected a reason name, got {tk[j]!r}")
    reason = " ".join(tk[i:j])
    info1 = None
    while j < len(tk):
        key = tk[j]
        if key == "info":
            if j + 2 >= len(tk):
                raise Incomplete("info: expected `info A B`, got end of line")
            info1 = tk[j + 1]
            j += 3
            continue
        if key not in _EXIT_KEYS:
            j += 1  # a symbol after rip (`rip 0x... func+0x1`) or an unknown field
            continue
        if j + 1 >= len(tk):
            raise Incomplete(f"{key}: expected a value, got end of line")
        value = tk[j + 1]
        width = _WIDTH.get(key)
        if width is not None and len(value) != width and value.startswith("0x") and vcpu is not None:
            raise ValueError(f"{key}: expected 0x and {width - 2} hex digits (printed as 0x%0{width - 2}"
                             "llx; truncated?)")
        if key == "info1":
            info1 = value
        j += 2
    if reason in ("msr", "EXIT_MSR") and info1 is not None:
        try:
            int(info1, 16)
        except ValueError:
            raise ValueError("info1: expected a hex number (AMD msr exits: 1 = WRMSR, 0 = RDMSR)") from None
    return vcpu, reason, info1


def parse_entry(payload: str) -> int:
    """kvm_entry: `vcpu N`, `vcpu N, rip 0x...` (5.10+), `vcpu N rip 0x...` (libtraceevent)."""
    tk = payload.replace(",", " ").split()
    if not tk:
        raise Incomplete("vcpu: expected `vcpu N`, got end of line")
    if tk[0] != "vcpu":
        raise ValueError(f"vcpu: expected `vcpu`, got {tk[0]!r}")
    if len(tk) < 2:
        raise Incomplete("vcpu: expected a decimal number, got end of line")
    if not tk[1].isdigit():
        raise ValueError(f"vcpu: expected a decimal number, got {payload.split()[1]!r}")
    v = int(tk[1])
    if v > MAX_VCPU:
        raise ValueError(f"vcpu: expected a vCPU number up to {MAX_VCPU}, got {tk[1][:20]}")
    return v


_MSR_RE = re.compile(r"^msr_(write|read) ([0-9a-fA-F]+) = 0x([0-9a-fA-F]+)( \(#GP\))?\s*$")


def parse_msr(payload: str) -> tuple[int, int, int]:
    """kvm_msr: (direction 0 read / 1 write / 2 faulting write, msr, value)."""
    p = payload.strip()
    m = _MSR_RE.match(p)
    if m is None:
        tk = p.split()
        if len(tk) <= 3 and (not tk or tk[0] in ("msr_write", "msr_read")):
            raise Incomplete(L.diagnose("kvm_msr", payload).split(": ", 1)[1])
        raise ValueError(L.diagnose("kvm_msr", payload).split(": ", 1)[1])
    msr = int(m.group(2), 16)
    if msr > 0xFFFFFFFF:
        raise ValueError(f"msr: expected a 32-bit MSR number, got {m.group(2)[:20]}")
    value = int(m.group(3), 16)
    direction = (2 if m.group(4) else 1) if m.group(1) == "write" else 0
    return direction, msr, value


# kvm_apic: TP_printk("apic_%s %s = 0x%x", rw ? "write" : "read", register name, value)
_APIC_RE = re.compile(r"^apic_(write|read) (\S+) = 0x([0-9a-fA-F]+)\s*$")
XAPIC_TIMER_REGS = {"APIC_LVTT": 0x832, "APIC_TMICT": 0x838, "APIC_TDCR": 0x83E}


def parse_apic(payload: str) -> tuple[bool, str, int]:
    m = _APIC_RE.match(payload.strip())
    if m is None:
        raise ValueError("kvm_apic: expected `apic_write REG = 0x...`")
    return m.group(1) == "write", m.group(2), int(m.group(3), 16)


def is_continuation(line: str) -> bool:
    """A line that cannot start anything: the tail of the line before (mail wrapping)."""
    s = line.strip()
    if not s or s.startswith("#") or L.LOST_RE.match(line):
        return False
    return parse_header(line) is None
