"""Streaming accounting of an imported trace: counters and compact per-vCPU arrays only.

Why this shape: a recorded trace must answer the same questions as a simulated run,
so `summary()` returns the JSON of `lazytsc run --json` for one mode (DESIGN.md
section 4) plus what only a recording has (`per_vcpu`, `lines`, `parsed`,
`skipped`, `unknown_events`, `warnings`, `format`). Memory is bounded by the
number of vCPUs plus 16 bytes per TSC-deadline write and 8 per timer interrupt
(`array.array`), which the what-if replay needs; never one object per line.

Line accounting: `lines == parsed + skipped + ignored + sum(unknown_events.values())`,
where `ignored` are blank lines, comments and tool preambles, `unknown_events` are
well-formed lines of tracepoints we do not read, and `skipped` are garbled lines.
"""

from __future__ import annotations

from array import array

import numpy as np

from ..taxonomy import (
    EXIT_NAMES,
    EXIT_ORDER,
    MSR_SUB_NAMES,
    MSR_SUB_ORDER,
    Exit,
    Kind,
    MsrSub,
)
from . import reasons
from .source import quote_name

N_EXIT = max(int(e) for e in Exit) + 1  # exit codes 0..N_EXIT-1 index the counter list
SUB_BASE = N_EXIT  # msr-write sub-reason s is counted at SUB_BASE + s
N_COUNTERS = SUB_BASE + max(int(s) for s in MsrSub) + 1
UNKNOWN_VCPU = -1
MAX_SKIP_EXAMPLES = 10
MAX_UNKNOWN_NAMES = 256

# Row kinds used while importing for the two timer-interrupt sources; only one
# survives into the event log (see `TraceAccounting.timer_irq_source`).
ROW_ACCEPT_IRQ = -2
ROW_INJ_VIRQ = -3


def vcpu_key(vcpu: int, all_label: str = "unknown") -> str:
    """JSON key of a vCPU in `per_vcpu`: its number, or `unknown` when unattributed
    (`all` for a perf kvm stat table of all vCPUs)."""
    return str(vcpu) if vcpu >= 0 else all_label


def exits_dict(counters: list[int]) -> dict[str, object]:
    """The `exits` object of DESIGN.md section 4 from one counter list."""
    by_reason = {name: 0 for name in EXIT_ORDER}
    for code, name in EXIT_NAMES.items():
        by_reason[name] = counters[code]
    msr = {name: 0 for name in MSR_SUB_ORDER}
    for code, name in MSR_SUB_NAMES.items():
        msr[name] = counters[SUB_BASE + code]
    return {"total": sum(by_reason.values()), "by_reason": by_reason, "msr_write": msr}


class Spans:
    """(start, end) pairs kept in one array('q'): 16 bytes a pair instead of a tuple and
    two ints (~100 bytes), so a trace's HLT periods stay small. Iterates as tuples."""

    __slots__ = ("_a",)

    def __init__(self) -> None:
        self._a = array("q")

    def append(self, pair: tuple[int, int]) -> None:
        self._a.append(pair[0])
        self._a.append(pair[1])

    def extend_arrays(self, starts: np.ndarray, ends: np.ndarray) -> None:
        pairs = np.empty((len(starts), 2), dtype=np.int64)
        pairs[:, 0] = starts
        pairs[:, 1] = ends
        self._a.frombytes(pairs.tobytes())

    def prepend(self, other: Spans) -> None:
        self._a[:0] = other._a

    def __len__(self) -> int:
        return len(self._a) // 2

    def __iter__(self):
        a = self._a
        return zip(a[0::2], a[1::2], strict=True)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Spans | list) else NotImplemented


def spans_of(store: dict[int, Spans], key: int) -> Spans:
    """store[key], created empty on first use."""
    s = store.get(key)
    if s is None:
        s = store[key] = Spans()
    return s


class TraceAccounting:
    """Everything an import keeps. The importer's loop writes the fields directly."""

    def __init__(self, path: str, keep_events: bool = False) -> None:
        self.path = path
        self.lines = 0
        self.parsed = 0
        self.skipped = 0
        self.ignored = 0
        self.skip_examples: list[tuple[int, str]] = []
        self.unknown_events: dict[str, int] = {}
        self.warnings: list[str] = []
        self.tracepoints: dict[str, int] = {}
        self.format = "unknown"
        self.compressed: str | None = None
        self.file_hint: str | None = None
        # style -> event lines printed in that layout (lines.STYLE_*)
        self.styles: dict[str, int] = {}
        # vcpu -> counters (exit codes, then msr-write sub-reasons)
        self.vcpus: dict[int, list[int]] = {}
        # host thread -> vCPU: from the `CPU N/KVM` name (fixed), from kvm_entry (latest)
        self.thread_name_vcpu: dict[str, int] = {}
        self.thread_entry_vcpu: dict[str, int] = {}
        # reason text -> exit code (names only; numbers depend on the ISA seen)
        self.reason_codes: dict[str, int] = {}
        self.isa = reasons.ISA_UNKNOWN
        self.other_reasons: dict[str, int] = {}
        self.note_names: list[str] = []
        self._note_index: dict[str, int] = {}
        # time (absolute ns of the trace clock)
        self.first_ns: int | None = None
        self.min_ns = 0
        self.max_ns = 0
        self.nonmonotonic = 0
        self.integer_timestamps = 0
        # per-vCPU compact arrays for the what-if replay and the timeline
        self.deadline_t: dict[int, array] = {}
        self.deadline_v: dict[int, array] = {}
        self.accept_t: dict[int, array] = {}
        self.inj_t: dict[int, array] = {}
        # per timer interrupt: how many 0x6e0 writes of its vCPU came before it in the
        # file, so the what-if pairs it with the armed deadline by line order, not by
        # timestamps that tie at the trace clock's resolution
        self.accept_k: dict[int, array] = {}
        self.inj_k: dict[int, array] = {}
        # tracepoint-specific counters
        self.entries = 0
        self.msr_reads = 0
        self.msr_faults = 0
        self.unpaired_msr_writes = 0
        self.msr_exits_without_msr = 0
        self.deadline_values_clamped = 0
        self.accept_lines = 0
        self.inj_lines = 0
        self.coalesced = 0
        self.timer_eois = 0
        self.ipis = 0
        self.hv_timer_on = 0
        self.hv_timer_off = 0
        self.lost_events = 0
        self.lost_event_lines = 0
        self.perf_stat: dict[str, object] | None = None
        # raw reason text -> exits (every exit, whatever its seed reason) and its seed code
        self.raw_reasons: dict[str, int] = {}
        self.raw_reason_code: dict[str, int] = {}
        # timestamps are raw clock counts (x86-tsc, counter), not ns
        self.clock_counts = False
        # (time, vcpu, x2APIC MSR, value) of LVTT/TMICT/TDCR writes (x2APIC MSR or xAPIC MMIO)
        self.lapic_writes: list[tuple[int, int, int, int]] = []
        self.xapic_writes = 0
        # vcpu -> [(halt exit time, next entry time or -1)]
        self.halts: dict[int, Spans] = {}
        # kvm_exit lines that are not x86 exits (arm64 `TRAP: HSR_EC ...`)
        self.non_x86_exits = 0
        self.garbled_exits = 0
        self.untimed_lines = 0
        self.continuation_lines = 0
        self.overlong_lines = 0
        self.bulk_lines = 0  # lines the block path read (the rest: the per-line loop)
        self.vcpu_alias: dict[int, int] = {}
        # host thread -> provisional vCPU id, until the thread's first kvm_entry
        self.thread_provisional: dict[str, int] = {}
        # the `0x6e0:W` count of a `perf kvm stat --event=msr` table
        self.perf_msr_deadline_writes: int | None = None
        self.tracedat = None  # the TraceDat a binary trace was read from
        # optional event rows (absolute ns; see to_columns)
        self.keep_events = keep_events
        self.rows: dict[str, array] | None = (
            {
                "time": array("q"),
                "vcpu": array("h"),
                "kind": array("h"),
                "exit": array("b"),
                "sub": array("b"),
                "a": array("q"),
                "b": array("q"),
                "line": array("q"),  # the file line each row was read from
            }
            if keep_events
            else None
        )

    # -- helpers the importer calls on slow paths ------------------------------------

    def counters(self, vcpu: int) -> list[int]:
        """The counter list of a vCPU, created on first use."""
        c = self.vcpus.get(vcpu)
        if c is None:
            c = self.vcpus[vcpu] = [0] * N_COUNTERS
        return c

    def skip(self, lineno: int, why: str) -> None:
        """Count a garbled line; keep the first few reasons as examples."""
        self.skipped += 1
        if len(self.skip_examples) < MAX_SKIP_EXAMPLES:
            self.skip_examples.append((lineno, why))

    def unknown(self, event: str) -> None:
        """Count a well-formed line of a tracepoint we do not read."""
        u = self.unknown_events
        if event in u or len(u) < MAX_UNKNOWN_NAMES:
            u[event] = u.get(event, 0) + 1
        else:
            u["(other)"] = u.get("(other)", 0) + 1

    def unknown_n(self, event: str, n: int) -> None:
        """`unknown(event)` n times (the block path counts a block's lines at once)."""
        u = self.unknown_events
        if event in u or len(u) < MAX_UNKNOWN_NAMES:
            u[event] = u.get(event, 0) + n
        else:
            u["(other)"] = u.get("(other)", 0) + n

    def classify(self, raw: str) -> int:
        """Exit code (or reasons.SVM_MSR) of a reason text; names are cached, numbers not."""
        number = reasons.parse_code(raw)
        if number is not None:
            code, isa = reasons.classify_code(number, self.isa)
        else:
            code, isa = reasons.classify_name(raw)
            self.reason_codes[raw] = code
        if self.isa == reasons.ISA_UNKNOWN and isa != reasons.ISA_UNKNOWN:
            self.isa = isa
        return code

    def note_index(self, raw: str) -> int:
        """Index of a raw reason name in `note_names` (NOTE rows carry it in column a)."""
        i = self._note_index.get(raw)
        if i is None:
            i = self._note_index[raw] = len(self.note_names)
            self.note_names.append(raw)
        return i

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    # -- results ---------------------------------------------------------------------

    def timer_irq_source(self) -> str:
        """Which tracepoint counts timer interrupts.

        `kvm_apic_accept_irq` fires for every LAPIC timer interrupt (lapic.c
        `__apic_accept_irq`, also with posted interrupts); `kvm_inj_virq` only when
        KVM injects through the VMCS/VMCB. Both in one trace would count each
        interrupt twice, so accept_irq wins whenever it was recorded.
        """
        if self.accept_lines:
            return "kvm_apic_accept_irq"
        if self.inj_lines:
            return "kvm_inj_virq"
        return "none"

    def irq_times(self) -> dict[int, array]:
        return self.inj_t if self.timer_irq_source() == "kvm_inj_virq" else self.accept_t

    def irq_write_counts(self) -> dict[int, array]:
        """Per timer interrupt, the number of the vCPU's 0x6e0 writes before it."""
        return self.inj_k if self.timer_irq_source() == "kvm_inj_virq" else self.accept_k

    def total_counters(self) -> list[int]:
        total = [0] * N_COUNTERS
        for c in self.vcpus.values():
            for i, n in enumerate(c):
                total[i] += n
        return total

    def deadline_writes(self) -> int:
        if self.perf_msr_deadline_writes is not None:
            return self.perf_msr_deadline_writes
        return sum(len(a) for a in self.deadline_t.values())

    def raw_reason_table(self) -> dict[str, dict[str, object]]:
        """Every exit reason as the trace printed it, with its count and seed reason,
        most frequent first: `other` in the seed table never hides a name."""
        out: dict[str, dict[str, object]] = {}
        for raw, n in sorted(self.raw_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            code = self.raw_reason_code.get(raw)
            if code is None:
                code = self.reason_codes.get(raw)
            if code is None:
                code = reasons.classify_perf_stat(raw)
            if code == reasons.SVM_MSR:
                name = "msr-write/msr-read"
            else:
                name = EXIT_NAMES.get(int(code), "other")
            out[raw] = {"count": n, "reason": name}
        return out

    def timer_interrupts(self) -> int:
        return sum(len(a) for a in self.irq_times().values())

    def event_rows(self) -> int:
        """Rows `to_columns` produces: exits, kvm_msr writes without an exit, timer IRQs, END."""
        if self.perf_stat is not None:
            return 0
        total = sum(self.total_counters()[:N_EXIT])
        n = total + self.unpaired_msr_writes + self.timer_interrupts()
        return n + 1 if self.first_ns is not None else n

    def sim_time_ns(self) -> int:
        if self.first_ns is None:
            return 0
        return max(self.max_ns, self.min_ns) - self.min_ns

    def summary(self) -> dict[str, object]:
        """The JSON object of `lazytsc trace --json` (DESIGN.md sections 4 and 6)."""
        total = self.total_counters()
        per_vcpu: dict[str, object] = {}
        label = "all" if self.perf_stat is not None else "unknown"
        for vcpu in sorted(self.vcpus):
            entry = exits_dict(self.vcpus[vcpu])
            entry["tsc_deadline_writes"] = len(self.deadline_t.get(vcpu, ()))
            entry["timer_interrupts"] = len(self.irq_times().get(vcpu, ()))
            per_vcpu[vcpu_key(vcpu, label)] = entry
        for vcpu in sorted(set(self.deadline_t) | set(self.irq_times())):
            if vcpu not in self.vcpus:
                entry = exits_dict([0] * N_COUNTERS)
                entry["tsc_deadline_writes"] = len(self.deadline_t.get(vcpu, ()))
                entry["timer_interrupts"] = len(self.irq_times().get(vcpu, ()))
                per_vcpu[vcpu_key(vcpu)] = entry
        writes = self.deadline_writes()
        out: dict[str, object] = {
            "events": self.event_rows(),
            "sim_time_ns": self.sim_time_ns(),
            "exits": exits_dict(total),
            "timer": {
                "deadline_requests": writes,
                "msr_writes": writes,
                "msr_writes_skipped": 0,
                "interrupts": self.timer_interrupts(),
                "spurious": 0,
                "late": 0,
                "lost": 0,
            },
            "per_vcpu": per_vcpu,
            "format": self.format,
            "lines": self.lines,
            "parsed": self.parsed,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "unknown_events": dict(sorted(self.unknown_events.items())),
            "skipped_examples": [
                f"{quote_name(self.path)}:{line}: {why}" for line, why in self.skip_examples
            ],
            "warnings": list(self.warnings),
            "tracepoints": dict(sorted(self.tracepoints.items())),
            "timer_irq_source": self.timer_irq_source(),
            "other_reasons": dict(sorted(self.other_reasons.items())),
            "compressed": self.compressed,
            "raw_reasons": self.raw_reason_table(),
            "time_unit": "clock counts" if self.clock_counts else "ns",
        }
        if self.perf_stat is not None:
            out["perf_stat"] = self.perf_stat
        return out

    def to_columns(self) -> dict[str, np.ndarray]:
        """Event-log columns (time relative to the earliest line, sorted stably by time)."""
        rows = self.rows
        if rows is None:
            raise ValueError("rows were not kept: import with keep_events=True")
        cols = {name: np.frombuffer(arr, dtype=arr.typecode).copy() if len(arr) else
                np.zeros(0, dtype=np.dtype(arr.typecode)) for name, arr in rows.items()}
        kind = cols["kind"]
        drop = ROW_INJ_VIRQ if self.timer_irq_source() != "kvm_inj_virq" else ROW_ACCEPT_IRQ
        keep = kind != drop
        cols = {name: col[keep] for name, col in cols.items()}
        for tmp, v in self.vcpu_alias.items():
            cols["vcpu"][cols["vcpu"] == tmp] = v
        kind = cols["kind"]
        kind[(kind == ROW_ACCEPT_IRQ) | (kind == ROW_INJ_VIRQ)] = int(Kind.GUEST_TIMER_IRQ)
        if self.first_ns is not None:
            end = {
                "time": np.array([max(self.max_ns, self.min_ns)], dtype=np.int64),
                "vcpu": np.array([-1], dtype=np.int16),
                "kind": np.array([int(Kind.END)], dtype=np.int16),
                "exit": np.array([-1], dtype=np.int8),
                "sub": np.array([-1], dtype=np.int8),
                "a": np.array([self.sim_time_ns()], dtype=np.int64),
                "b": np.array([0], dtype=np.int64),
                "line": np.array([-1], dtype=np.int64),
            }
            cols = {name: np.concatenate([col, end[name]]) for name, col in cols.items()}
        order = np.argsort(cols["time"], kind="stable")
        cols = {name: col[order] for name, col in cols.items()}
        cols["time"] = cols["time"] - self.min_ns
        cols["parent"] = np.full(len(cols["time"]), -1, dtype=np.int32)
        return cols
