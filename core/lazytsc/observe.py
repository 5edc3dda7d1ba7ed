"""Named per-vCPU state values: what breakpoint conditions, watchpoints and the GUI may read.

One table maps a stable public name to a getter over the engine's components, so
readers outside the engine (debugger conditions, watchpoints, tests) never depend on
how the engine stores it. `FIELD_TYPES` gives each name's type for type-checked
conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .vcpu import APIC_LVTT, LVT_MASKED, MODE_NAMES

if TYPE_CHECKING:
    from .engine import Engine


def _lvtt(e: Engine, v: int) -> int:
    return e.apic.s[v].lvt[APIC_LVTT]


STATE_GETTERS: dict[str, Callable[[Engine, int], Any]] = {
    "pending": lambda e, v: e.kernel.page_pending(v),
    "armed": lambda e, v: e.kernel.page_armed(v),
    "cached_armed": lambda e, v: e.lazy.s[v].cached_armed,
    "now": lambda e, v: e.clock.tsc(v, e.now),
    "tsc": lambda e, v: e.clock.tsc(v, e.now),
    "now_ns": lambda e, v: e.now,
    "lvtt": _lvtt,
    "masked": lambda e, v: int(bool(_lvtt(e, v) & LVT_MASKED)),
    "mode": lambda e, v: MODE_NAMES[e.timer.s[v].timer_mode],
    "tmict": lambda e, v: e.timer.s[v].tmict,
    "tmcct": lambda e, v: e.timer.read_tmcct(v),
    "tdcr": lambda e, v: e.timer.s[v].tdcr,
    "tsc_deadline": lambda e, v: e.timer.get_tscdeadline_msr(v),
    "timer_armed": lambda e, v: int(e.timer.armed(v)),
    "halted": lambda e, v: int(e.run_loop.s[v].blocked),
    "idle": lambda e, v: int(e.kernel.s[v].idle or e.script.waiting[v]),
    "wanted": lambda e, v: e.hazards.wanted(v),
    "pv_msr": lambda e, v: e.lazy.s[v].msr_val,
    "mapped": lambda e, v: int(e.lazy.s[v].mapped),
    "registered": lambda e, v: int(e.kernel.s[v].registered),
    "latched": lambda e, v: e.timer.s[v].pending,
    "requested": lambda e, v: int(e.lazy.s[v].req),
    "irr": lambda e, v: e.apic.s[v].irr & ((1 << 63) - 1),
    "isr": lambda e, v: e.apic.s[v].isr & ((1 << 63) - 1),
    "tpr": lambda e, v: e.apic.s[v].tpr,
    "ppr": lambda e, v: e.apic.update_ppr(v),
    "if": lambda e, v: int(e.cpu.s[v].if_flag),
    "hv_timer": lambda e, v: int(e.timer.s[v].hv_in_use),
    "in_host": lambda e, v: int(not e.run_loop.s[v].guest_mode),
}
# "int" values compare with integers; "mode" with the names in vcpu.MODE_NAMES.
FIELD_TYPES: dict[str, str] = {name: ("mode" if name == "mode" else "int") for name in STATE_GETTERS}
