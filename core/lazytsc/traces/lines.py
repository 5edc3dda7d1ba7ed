"""Line grammar of the text tools print for KVM tracepoints.

Three line layouts carry the same tracepoint payloads (DESIGN.md section 6):

* ftrace `trace` / `trace_pipe` (kernel/trace/trace_output.c, `trace_print_context`
  with the default `irq-info` option): `COMM-PID [CPU] FLAGS SECS.USECS: EVENT: PAYLOAD`,
  optionally with a `(TGID)` column (`record-tgid`) and without FLAGS (`noirq-info`);
* `trace-cmd report`: `COMM-PID [CPU] SECS.USECS: EVENT:  PAYLOAD` (event name padded);
* `perf script` (tools/perf/builtin-script.c, default tracepoint fields
  comm,tid,cpu,time,event,trace): `COMM TID [CPU] SECS.USECS: SYS:EVENT: PAYLOAD`.

Every layout has ` [CPU] ` right before the timestamp, so one search anchored there
finds the header of all three without parsing the comm (which may hold spaces and
dashes, e.g. QEMU's `CPU 0/KVM`). The text before that anchor, the *thread key*,
names the host task; it is only looked at when the payload has no vCPU number.

Payloads follow each tracepoint's `TP_printk` in arch/x86/kvm/trace.h; the hot
ones (`kvm_exit`, `kvm_msr`, `kvm_entry`) are parsed by the same regex as the
header, the rest by `PAYLOADS`. A line that matches the header but not its
payload grammar is reported by `diagnose` with the first field that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX = r"[0-9a-fA-F]+"

# The full grammar of an event line as one regex. The importer's fast path
# (importer._scan) splits lines with str methods instead and falls back to this regex
# for anything unusual, so both must accept the same lines: values the accounting
# does not use (rip, info1 except on AMD `msr` exits, info2, intr_info) are only
# required to be present; the last
# field of the 5.12+ kvm_exit layout must have its full printed width (0x%08x),
# which catches lines cut short.
# Groups:
#   1 cpu (host CPU, unused: not validated)  2 irq flags (ftrace only)  3 seconds
#   4 fraction  5 perf `sys:` prefix
#   kvm_exit (TP_printk of kvm_exit, all three historical layouts):
#     before 5.5:  "reason %s rip 0x%lx info %llx %llx"
#     5.5 - 5.11:  "vcpu %u reason %s rip 0x%lx info %llx %llx"
#     5.12 on:     "vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2 0x%016llx
#                   intr_info 0x%08x error_code 0x%08x" (accepted without the last two)
#     6 vcpu  7 reason (raw, may carry VMX flags such as FAILED_VMENTRY)
#     8 info1 (5.12 layout)  9 info1 (older layouts)
#   kvm_msr ("msr_%s %x = 0x%llx%s", the %s being " (#GP)" on a fault):
#     10 w|r  11 msr (hex, no 0x)  12 value  13 " (#GP)"
#   kvm_entry ("vcpu %u" before 5.10, then "vcpu %u, rip 0x%lx%s", %s "[immediate exit]"):
#     14 vcpu
#   any other event: 15 name  16 payload
LINE_RE = re.compile(
    r" \[([^\]\s]*)\]\s+"
    r"(?:([^\s\]:]{4,6})\s+)?"
    r"(\d+)(?:\.(\d+))?:\s+"
    r"(?:\d+\s+)?(?:(\w+):)?"
    r"(?:"
    r"kvm_exit:\s+(?:vcpu (\d+) )?reason (\S.*?) rip \S+ info"
    r"(?:1 (\S+) info2 (?:\S{18} intr_info \S+ error_code \S{10}|\S{18})"
    r"| (\S+) \S+)"
    r"|kvm_msr:\s+msr_(w|r)(?:rite|ead) (" + HEX + r") = 0x(" + HEX + r")( \(#GP\))?"
    r"|kvm_entry:\s+vcpu (\d+)(?:, rip \S.*?)?"
    r"|(\w+):\s*(.*?)"
    r")\s*$"
)

# QEMU names vCPU threads "CPU %d/KVM" (cpus.c / accel/kvm: qemu_thread_create).
THREAD_VCPU_RE = re.compile(r"CPU (\d+)/KVM")

# Payload grammars of the other tracepoints we read (arch/x86/kvm/trace.h).
PAYLOADS: dict[str, re.Pattern[str]] = {
    # TP_printk("apicid %x vec %u (%s|%s)%s", apicid, vec, kvm_deliver_mode, edge/level,
    #           " (coalesced)" in kernels before 5.1)
    "kvm_apic_accept_irq": re.compile(
        r"apicid (" + HEX + r") vec (\d+) \((\w+)\|(edge|level)\)( \(coalesced\))?\s*$"
    ),
    # TP_printk("irq %u") before 6.1; then ("%s 0x%x%s", "IRQ"/"Soft/INTn", vector,
    #           " [reinjected]")
    "kvm_inj_virq": re.compile(
        r"(?:irq (\d+)|(IRQ|Soft/INTn) 0x(" + HEX + r"))( \[reinjected\])?\s*$"
    ),
    # TP_printk("apicid %x vector %d", apicid, vector)
    "kvm_eoi": re.compile(r"apicid (" + HEX + r") vector (\d+)\s*$"),
    # TP_printk("dst %x vec %u (%s|%s|%s|%s|%s)", dest_id, vector, delivery mode,
    #           logical/physical, assert/de-assert, edge/level, shorthand)
    "kvm_apic_ipi": re.compile(
        r"dst (" + HEX + r") vec (\d+) \((\w+)\|(logical|physical)\|(assert|de-assert)"
        r"\|(edge|level)\|(dst|self|all|all-but-self)\)\s*$"
    ),
    # TP_printk("vcpu_id %x hv_timer %x") (a stray "\n" before 4.20 is stripped)
    "kvm_hv_timer_state": re.compile(r"vcpu_id (" + HEX + r") hv_timer (" + HEX + r")\s*$"),
}
# Events LINE_RE parses itself; a line of theirs that falls through to the generic
# branch is garbled.
HOT_EVENTS = frozenset({"kvm_exit", "kvm_msr", "kvm_entry"})
KNOWN_EVENTS = HOT_EVENTS | frozenset(PAYLOADS)

# Lines without an event header that are part of a well-formed file.
_PREAMBLE_RE = re.compile(
    r"\s*(?:$|#|cpus=\d+\s*$|version = \d+\s*$|CPU \d+ is empty\s*$)"
)
# ftrace: "CPU:%d [LOST %lu EVENTS]"; trace-cmd: "CPU:%d [%llu EVENTS DROPPED]".
LOST_RE = re.compile(r"\s*CPU:?\s*(\d+)\s*\[(?:LOST (\d+) EVENTS|(\d+) EVENTS DROPPED)\]")

# A loose header, for saying which part of a rejected line is wrong.
_LOOSE_HEADER_RE = re.compile(r"\[\s*(\S*?)\s*\]\s+(?:\S{4,6}\s+)?(\S+?):\s+(?:(\w+):)?(\w+):")

STYLE_FTRACE = "ftrace"
STYLE_TRACE_CMD = "trace-cmd"
STYLE_PERF = "perf-script"

_NS_SCALE = tuple(10 ** (9 - k) for k in range(10))


def timestamp_ns(seconds: str, fraction: str | None) -> int:
    """Integer ns from the `SECS.FRACTION` text, never through a float.

    ftrace/trace-cmd print microseconds (6 digits), `perf script --ns` and
    `trace-cmd report -t` nanoseconds (9); more digits are truncated to ns. Without
    a fraction the number is a raw clock count (trace_clock x86-tsc or counter),
    taken as ns: the importer warns.
    """
    if not fraction:
        return int(seconds)
    k = len(fraction)
    if k <= 9:
        return int(seconds) * 1_000_000_000 + int(fraction) * _NS_SCALE[k]
    return int(seconds) * 1_000_000_000 + int(fraction[:9])


def thread_vcpu(thread_key: str) -> int:
    """The vCPU a host thread runs, from QEMU's `CPU N/KVM` thread name; -1 if not named so."""
    m = THREAD_VCPU_RE.search(thread_key)
    return int(m.group(1)) if m else -1


def line_style(has_sys: bool, has_flags: bool, file_hint: str | None = None) -> str:
    """Which tool printed a line.

    perf script prints `sys:event:`. ftrace and trace-cmd share a layout; the file's
    preamble decides when there is one (`# tracer:` is ftrace, `cpus=` trace-cmd),
    else the irq-flags column, which ftrace prints by default and trace-cmd does not.
    """
    if has_sys:
        return STYLE_PERF
    if file_hint is not None:
        return file_hint
    return STYLE_FTRACE if has_flags else STYLE_TRACE_CMD


def is_preamble(line: str) -> bool:
    """Blank lines, `#` comments and trace-cmd's `cpus=`/`version =` lines: not data."""
    return _PREAMBLE_RE.match(line) is not None


# ---------------------------------------------------------------------------
# Diagnostics (slow path: only for lines the hot path rejected)
# ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\S+")


def _word(text: str, pos: int) -> str:
    m = _TOKEN_RE.match(text, pos)
    return m.group(0) if m else "end of line (truncated?)"


def _show(value: str) -> str:
    return value if value.startswith("end of line") else repr(value)


class _Cursor:
    """Walks a payload field by field, naming the first one that is wrong."""

    def __init__(self, text: str) -> None:
        self.text = text.rstrip()
        self.pos = 0

    def keyword(self, word: str) -> str | None:
        """Consume `word ` (or `word` at the end); an error string if it is not there."""
        t = self.text
        while self.pos < len(t) and t[self.pos] == " ":
            self.pos += 1
        if t.startswith(word, self.pos):
            end = self.pos + len(word)
            if end == len(t) or t[end] in " ,=":
                self.pos = end
                return None
        return f"{word}: expected `{word}`, got {_show(_word(t, self.pos))}"

    def value(self, field: str, pattern: str, expected: str) -> tuple[str | None, str | None]:
        """Consume one value token matching `pattern`; (value, None) or (None, error)."""
        t = self.text
        while self.pos < len(t) and t[self.pos] in " ,=":
            self.pos += 1
        m = re.compile(pattern).match(t, self.pos)
        if m is None or (m.end() < len(t) and t[m.end()] not in " ,("):
            return None, f"{field}: expected {expected}, got {_show(_word(t, self.pos))}"
        self.pos = m.end()
        return m.group(0), None

    def rest(self) -> str:
        return self.text[self.pos :].strip()

    def at(self, word: str) -> bool:
        return self.text[self.pos :].lstrip().startswith(word)


_DEC = (r"\d+", "a decimal number")
_HEX0X = (r"0x[0-9a-fA-F]+", "a 0x-prefixed hex number")
_HEXBARE = (r"[0-9a-fA-F]+", "a hex number")
_ANY = (r"\S+", "a value")
_W18 = (r"\S{18}", "0x and 16 hex digits (printed as 0x%016llx; truncated?)")
_W10 = (r"\S{10}", "0x and 8 hex digits (printed as 0x%08x; truncated?)")


def _diag_kvm_exit(payload: str) -> str:
    c = _Cursor(payload)
    if c.at("vcpu"):
        c.keyword("vcpu")
        _, err = c.value("vcpu", *_DEC)
        if err:
            return err
    err = c.keyword("reason")
    if err:
        return err
    idx = c.text.find(" rip ", c.pos)
    if idx < 0 or not c.text[c.pos : idx].strip():
        return "reason: expected `reason NAME rip 0x...`, got " + _show(_word(c.text, c.pos))
    c.pos = idx
    fields: list[tuple[str, tuple[str, str]]] = [("rip", _ANY)]
    if c.text.find(" info1 ", c.pos) >= 0:
        fields += [("info1", _ANY), ("info2", _W18)]
        if c.text.find("intr_info", c.pos) >= 0 or c.text.find("error_code", c.pos) >= 0:
            fields += [("intr_info", _ANY), ("error_code", _W10)]
    for field, spec in fields:
        err = c.keyword(field)
        if err:
            return err
        _, err = c.value(field, *spec)
        if err:
            return err
    if not c.at("info1") and fields[-1][0] == "rip":
        err = c.keyword("info")
        if err:
            return "info: expected `info A B` or `info1 0x... info2 0x...`, got " + _show(
                _word(c.text, c.pos)
            )
        for field in ("info1", "info2"):
            _, err = c.value(field, *_ANY)
            if err:
                return err
    if c.rest():
        return f"end: expected end of line after the last field, got {c.rest()!r}"
    return "payload: does not match kvm_exit's TP_printk"


def _diag_kvm_msr(payload: str) -> str:
    c = _Cursor(payload)
    word = _word(c.text, 0)
    if word not in ("msr_write", "msr_read"):
        return f"direction: expected `msr_write` or `msr_read`, got {_show(word)}"
    c.keyword(word)
    _, err = c.value("msr", *_HEXBARE)
    if err:
        return err
    if not c.at("="):
        return f"=: expected `= 0x<value>`, got {_show(_word(c.text, c.pos))}"
    c.pos = c.text.index("=", c.pos) + 1
    _, err = c.value("value", *_HEX0X)
    if err:
        return err
    rest = c.rest()
    if rest and rest != "(#GP)":
        return f"end: expected end of line or ` (#GP)`, got {rest!r}"
    return "payload: does not match kvm_msr's TP_printk"


def _diag_kvm_entry(payload: str) -> str:
    c = _Cursor(payload)
    err = c.keyword("vcpu")
    if err:
        return err
    _, err = c.value("vcpu", *_DEC)
    if err:
        return err
    if c.at(","):
        c.pos = c.text.index(",", c.pos) + 1
        err = c.keyword("rip")
        if err:
            return err
        _, err = c.value("rip", *_HEX0X)
        if err:
            return err
    rest = c.rest()
    if rest and rest != "[immediate exit]":
        return f"end: expected end of line after the rip, got {rest!r}"
    return "payload: does not match kvm_entry's TP_printk"


def _diag_fields(payload: str, fields: list[tuple[str, tuple[str, str]]], event: str) -> str:
    c = _Cursor(payload)
    for field, spec in fields:
        err = c.keyword(field)
        if err:
            return err
        _, err = c.value(field, *spec)
        if err:
            return err
    rest = c.rest()
    if not rest:
        return f"end: expected more fields after {fields[-1][0]} (truncated?)"
    return f"{fields[-1][0]}: unexpected text after it for {event}: {rest!r}"


def _diag_inj_virq(payload: str) -> str:
    word = _word(payload.strip(), 0)
    if word in ("irq",):
        return _diag_fields(payload, [("irq", _DEC)], "kvm_inj_virq")
    if word in ("IRQ", "Soft/INTn"):
        c = _Cursor(payload)
        c.keyword(word)
        _, err = c.value("vector", *_HEX0X)
        if err:
            return err
        rest = c.rest()
        return f"end: expected end of line or ` [reinjected]`, got {rest!r}"
    return f"irq: expected `irq N` or `IRQ 0xNN`, got {_show(word)}"


_DIAG_FIELDS: dict[str, list[tuple[str, tuple[str, str]]]] = {
    "kvm_apic_accept_irq": [("apicid", _HEXBARE), ("vec", _DEC)],
    "kvm_eoi": [("apicid", _HEXBARE), ("vector", _DEC)],
    "kvm_apic_ipi": [("dst", _HEXBARE), ("vec", _DEC)],
    "kvm_hv_timer_state": [("vcpu_id", _HEXBARE), ("hv_timer", _HEXBARE)],
}


def diagnose(event: str, payload: str) -> str:
    """Why a known event's payload failed its grammar: `event: field: what was expected`."""
    if event == "kvm_exit":
        why = _diag_kvm_exit(payload)
    elif event == "kvm_msr":
        why = _diag_kvm_msr(payload)
    elif event == "kvm_entry":
        why = _diag_kvm_entry(payload)
    elif event == "kvm_inj_virq":
        why = _diag_inj_virq(payload)
    elif event in _DIAG_FIELDS:
        why = _diag_fields(payload, _DIAG_FIELDS[event], event)
        if event in ("kvm_apic_accept_irq", "kvm_apic_ipi") and why.startswith("end:"):
            why = "flags: expected the `(mode|...)` group of the TP_printk, got end of line"
    else:
        why = "payload: unexpected layout"
    return f"{event}: {why}"


def diagnose_header(line: str) -> str:
    """Why a non-comment line is not an event line of any supported tool."""
    text = line.rstrip("\n")
    m = _LOOSE_HEADER_RE.search(text)
    if m is None:
        if "[" not in text:
            return (
                "header: expected `COMM-PID [CPU] TIMESTAMP: EVENT: ...` (ftrace, trace-cmd)"
                " or `COMM TID [CPU] TIMESTAMP: SYS:EVENT: ...` (perf script)"
            )
        return "header: expected `[CPU] TIMESTAMP: EVENT:` after the task name (truncated?)"
    cpu, ts = m.group(1), m.group(2)
    if not cpu.isdigit():
        return f"cpu: expected a decimal CPU number in `[...]`, got {cpu!r}"
    if re.fullmatch(r"\d+(?:\.\d+)?", ts) is None:
        return f"timestamp: expected SECONDS.FRACTION digits, got {ts!r}"
    return "header: expected `EVENT: ` after the timestamp"


# ---------------------------------------------------------------------------
# A friendly one-line parser (tests, GUI inspectors); the importer uses LINE_RE.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One decoded event line. `fields` holds the payload values by TP_printk name."""

    thread: str
    cpu: int
    time_ns: int
    event: str
    style: str
    fields: dict[str, object]


def parse_line(line: str) -> TraceLine | str | None:
    """Decode one line: a TraceLine, None for preamble/comments, or the reason it is garbled."""
    m = LINE_RE.search(line)
    if m is None:
        if is_preamble(line) or LOST_RE.match(line):
            return None
        return _parse_lenient(line)
    g = m.groups()
    thread = line[: m.start()].strip()
    time_ns = timestamp_ns(g[2], g[3])
    style = line_style(g[4] is not None, g[1] is not None)
    fields: dict[str, object]
    if g[6] is not None:
        event = "kvm_exit"
        info1 = g[7] if g[7] is not None else g[8]
        if g[6] == "msr" and re.fullmatch(r"(?:0x)?[0-9a-fA-F]+", info1) is None:
            return "kvm_exit: info1: expected a hex number (AMD msr exits: 1 = WRMSR, 0 = RDMSR)"
        fields = {"reason": g[6], "info1": info1}
        if g[5] is not None:
            fields["vcpu"] = int(g[5])
    elif g[9] is not None:
        event = "kvm_msr"
        fields = {
            "write": g[9] == "w",
            "msr": int(g[10], 16),
            "value": int(g[11], 16),
            "gp": g[12] is not None,
        }
    elif g[13] is not None:
        event = "kvm_entry"
        fields = {"vcpu": int(g[13])}
    else:
        event, payload = g[14], g[15]
        if event in HOT_EVENTS:
            return diagnose(event, payload)
        grammar = PAYLOADS.get(event)
        if grammar is None:
            fields = {"payload": payload}
        else:
            p = grammar.match(payload)
            if p is None:
                return diagnose(event, payload)
            fields = {"groups": p.groups()}
    cpu = int(g[0]) if g[0].isdigit() else -1
    return TraceLine(thread, cpu, time_ns, event, style, fields)


def _parse_lenient(line: str) -> TraceLine | str:
    """Layouts only the importer's lenient grammar reads (trace-cmd 3.x, body-only,
    timestamp-first, raw clock counts, quoted): a TraceLine or why the line is garbled."""
    from . import textgrammar as G

    text = G.strip_quotes(line.rstrip("\n"))
    h = G.parse_header(text)
    if h is None:
        return diagnose_header(line)
    time_ns = 0
    if h.ts is not None:
        try:
            time_ns, _raw = G.timestamp(h.ts)
        except ValueError as exc:
            return str(exc)
    style = STYLE_PERF if h.sys is not None else (STYLE_FTRACE if h.flags else STYLE_TRACE_CMD)
    fields: dict[str, object] = {"payload": h.payload}
    try:
        if h.name == "kvm_exit" and not G.is_arm_exit(h.payload):
            vcpu, reason, info1 = G.parse_exit(h.payload)
            fields = {"reason": reason, "info1": info1 or "0"}
            if vcpu is not None:
                fields["vcpu"] = vcpu
        elif h.name == "kvm_entry" and not G.is_arm_exit(h.payload):
            fields = {"vcpu": G.parse_entry(h.payload)}
        elif h.name == "kvm_msr":
            direction, msr, value = G.parse_msr(h.payload)
            fields = {"write": direction > 0, "msr": msr, "value": value, "gp": direction == 2}
    except ValueError as exc:
        return f"{h.name}: {exc}"
    return TraceLine(h.key, -1, time_ns, h.name, style, fields)
