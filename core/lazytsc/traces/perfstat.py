"""`perf kvm stat report` / `perf kvm stat live` tables.

Layout from tools/perf/builtin-kvm.c `print_result`:

    Analyze events for all VMs, all VCPUs:            (or "..., VCPU 3:")

                 VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time

               MSR_WRITE   10046340    79.62%    12.34%      0.50us    123.45us      1.23us ( +-   0.05% )
    ...
    Total Samples:12617503, Total events handled time:123456789.00us.

`live` prints one such table per display interval and resets its counters after
each (`perf_kvm__handle_timerfd`), so several tables in one file are summed.
Why cross-check: these tables are often pasted by hand; a row lost in copying
shows up as rows that do not sum to `Total Samples`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# perf 3.x printed no Min/Max columns (`Samples  Samples%  Time%  Avg time`)
HEADER_RE = re.compile(
    r"^\s*(?P<name>\S.*?)\s+Samples\s+Samples%\s+Time%\s+(?:Min Time\s+Max Time\s+)?Avg time\s*$"
)
_NUM = r"-?(?:\d+(?:\.\d*)?|nan|inf)"
# the `( +- x% )` tail may be cut (a mail client wraps it onto the next line) or missing
ROW_RE = re.compile(
    r"^\s*(?P<name>\S.*?)\s+(?P<samples>\d+)\s+(?P<spct>" + _NUM + r")%\s+"
    r"(?P<tpct>" + _NUM + r")%\s+(?:(?P<min>" + _NUM + r")us\s+(?P<max>" + _NUM + r")us\s+)?"
    r"(?P<avg>" + _NUM + r")us(?:\s+\(\s*(?:\+-\s*(?:(?P<sd>" + _NUM + r")%\s*\)?)?)?)?\s*$"
)
# the wrapped tail of a row: `0.10% )`
_TAIL_RE = re.compile(r"^\s*" + _NUM + r"%\s*\)\s*$")
# perf's own warnings printed into the report (tools/perf/util/kvm-stat.c get_exit_reason)
WARN_RE = re.compile(r"^\s*(?:Warning:\s*)?(?P<text>unknown kvm exit code:.*|Warning:.*)$", re.I)
MSR_TABLE = "MSR Access"
_MSR_KEY_RE = re.compile(r"^(0x[0-9a-fA-F]+):([RW])$")


def msr_row_key(name: str) -> tuple[int | None, bool]:
    """(MSR number, is write) of an `--event=msr` row name such as `0x6e0:W`."""
    m = _MSR_KEY_RE.match(name.strip())
    if m is None:
        return None, False
    return int(m.group(1), 16), m.group(2) == "W"
TOTAL_RE = re.compile(
    r"^\s*Total Samples:\s*(?P<total>\S+?),\s*Total events handled time:\s*(?P<time>\S+?)us\.?\s*$"
)
VCPU_RE = re.compile(r"^\s*Analyze events for .*?(?:all VCPUs|VCPU (?P<vcpu>\d+)):\s*$")
LOST_RE = re.compile(r"^\s*Lost events:\s*(?P<lost>\d+)\s*$")
# `perf kvm stat live` prints the time of day before each table.
_CLOCK_RE = re.compile(r"^\s*\d\d:\d\d:\d\d\.\d+\s*$")
VMEXIT_TABLE = "VM-EXIT"
_QUOTE_RE = re.compile(r"^[ \t]*(?:>[ \t]?)+")


@dataclass(slots=True)
class PerfStatRow:
    """One VM-EXIT row; times in microseconds as perf prints them."""

    name: str
    samples: int
    samples_pct: float
    time_pct: float
    min_us: float
    max_us: float
    avg_us: float
    line: int


@dataclass(slots=True)
class PerfStatTable:
    """One printed table: rows, the `Total Samples` line, and which vCPU it covers."""

    kind: str
    line: int
    vcpu: int | None = None
    rows: list[PerfStatRow] = field(default_factory=list)
    total_samples: int | None = None
    total_time_us: float | None = None
    lost_events: int = 0

    def rows_sum(self) -> int:
        return sum(row.samples for row in self.rows)


def is_header(line: str) -> bool:
    """True for a table header line (`VM-EXIT  Samples  Samples%  ...`)."""
    return "Samples%" in line and HEADER_RE.match(line) is not None


def starts_output(line: str) -> bool:
    """True for a line `perf kvm stat` prints before its first table row.

    That is the header, the `Analyze events for ...` line, or the time of day that
    `live` prints first; the importer switches to this parser there.
    """
    line = _QUOTE_RE.sub("", line, count=1)
    return (is_header(line) or bool(VCPU_RE.match(line)) or bool(_CLOCK_RE.match(line))
            or "unknown kvm exit code" in line)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _diagnose_row(line: str) -> str:
    tokens = line.split()
    numbers = [t for t in tokens if re.fullmatch(r"\d+", t)]
    if not numbers:
        return "perf kvm stat: samples: expected an integer sample count after the exit name"
    if "%" not in line:
        return "perf kvm stat: Samples%: expected a percentage after the sample count"
    if "us" not in line:
        return "perf kvm stat: Min Time: expected times in `us` (truncated row?)"
    return "perf kvm stat: row: expected NAME SAMPLES PCT% PCT% MINus MAXus AVGus"


class PerfStatParser:
    """Feeds lines of a `perf kvm stat` output; keeps tables, garbled rows and warnings."""

    def __init__(self) -> None:
        self.tables: list[PerfStatTable] = []
        self.skipped: list[tuple[int, str]] = []
        self.warnings: list[str] = []
        self.lines = 0
        self.parsed = 0
        self.continuations = 0
        self._vcpu: int | None = None
        self._table: PerfStatTable | None = None

    def feed(self, lineno: int, line: str) -> None:
        """One line; numbering is the file's, so messages point at the right place."""
        self.lines += 1
        text = _QUOTE_RE.sub("", line.rstrip("\n"), count=1)
        if _TAIL_RE.match(text):
            self.continuations += 1
            return
        w = WARN_RE.match(text)
        if w is not None:
            self.warnings.append(f"perf: {w.group('text').strip()}")
            return
        table = self._table
        if table is not None and table.total_samples is None:
            m = ROW_RE.match(text)
            if m is not None:
                table.rows.append(
                    PerfStatRow(
                        m.group("name"),
                        int(m.group("samples")),
                        _float(m.group("spct")),
                        _float(m.group("tpct")),
                        _float(m.group("min") or "nan"),
                        _float(m.group("max") or "nan"),
                        _float(m.group("avg")),
                        lineno,
                    )
                )
                self.parsed += 1
                return
            m = TOTAL_RE.match(text)
            if m is not None:
                try:
                    table.total_samples = int(m.group("total"))
                except ValueError:
                    self.skipped.append(
                        (lineno, "perf kvm stat: Total Samples: expected an integer, got "
                         f"{m.group('total')!r}")
                    )
                    table.total_samples = -1
                table.total_time_us = _float(m.group("time"))
                self.parsed += 1
                return
        m = VCPU_RE.match(text)
        if m is not None:
            self._vcpu = int(m.group("vcpu")) if m.group("vcpu") else None
            self.parsed += 1
            return
        m = HEADER_RE.match(text)
        if m is not None:
            self._table = PerfStatTable(m.group("name"), lineno, self._vcpu)
            self.tables.append(self._table)
            self.parsed += 1
            return
        m = LOST_RE.match(text)
        if m is not None and self._table is not None:
            self._table.lost_events += int(m.group("lost"))
            self.parsed += 1
            return
        if not text.strip() or _CLOCK_RE.match(text) or text.lstrip().startswith("#"):
            return
        if table is not None and table.total_samples is None:
            self.skipped.append((lineno, _diagnose_row(text)))
        else:
            self.skipped.append(
                (lineno, "perf kvm stat: line: expected a table header, row or Total line")
            )

    def finish(self, path: str) -> None:
        """Cross-check every table: rows must sum to `Total Samples`; warn where they don't."""
        for table in self.tables:
            where = f"{path}:{table.line}"
            if table.kind not in (VMEXIT_TABLE, MSR_TABLE):
                self.warnings.append(
                    f"{where}: table of {table.kind!r} events ignored (only VM-EXIT is accounted)"
                )
                continue
            total = table.total_samples
            got = table.rows_sum()
            if total is None:
                self.warnings.append(
                    f"{where}: Total Samples: missing (truncated table?); using the rows' sum {got}"
                )
            elif total >= 0 and got != total:
                self.warnings.append(
                    f"{where}: Total Samples: rows sum to {got}, the table says {total}"
                    f" (difference {total - got})"
                )
            elif total > 0:
                for row in table.rows:
                    want = 100.0 * row.samples / total
                    if row.samples_pct == row.samples_pct and abs(row.samples_pct - want) > 0.011:
                        self.warnings.append(
                            f"{path}:{row.line}: Samples%: {row.name} says {row.samples_pct:.2f}%,"
                            f" its count gives {want:.2f}%"
                        )
            if table.lost_events:
                self.warnings.append(
                    f"{where}: perf lost {table.lost_events} events: counts are lower bounds"
                )
        vm_tables = [t for t in self.tables if t.kind == VMEXIT_TABLE]
        for kind in {t.kind for t in self.tables if t.kind != VMEXIT_TABLE}:
            vm_tables_of = [t for t in self.tables if t.kind == kind]
            if len(vm_tables_of) > 1:
                self.warnings.append(f"{len(vm_tables_of)} {kind} tables summed")
        if len(vm_tables) > 1:
            self.warnings.append(
                f"{len(vm_tables)} VM-EXIT tables summed (perf kvm stat live prints one per"
                " interval and resets its counters after each)"
            )
        kinds = {t.vcpu is None for t in vm_tables}
        if len(kinds) > 1:
            self.warnings.append(
                "tables for all vCPUs and for single vCPUs are mixed: totals count some exits twice"
            )
