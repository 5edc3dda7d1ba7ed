"""Named per-vCPU state values: what breakpoint conditions, watchpoints and the GUI may read.

One table maps a stable public name to a getter over the engine's internal state, so
readers outside the engine (debugger conditions, watchpoints, tests) never depend on how
the engine stores it. `FIELD_TYPES` gives each name's type for type-checked conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .vcpu import LVT_MASKED, MODE_NAMES

if TYPE_CHECKING:
    from .engine import Engine
    from .vcpu import Vcpu

STATE_GETTERS: dict[str, Callable[[Engine, Vcpu], Any]] = {
    "pending": lambda e, v: v.page_pending,
    "armed": lambda e, v: v.page_armed,
    "cached_armed": lambda e, v: v.cached_armed,
    "now": lambda e, v: v.tsc(e.now),
    "tsc": lambda e, v: v.tsc(e.now),
    "now_ns": lambda e, v: e.now,
    "lvtt": lambda e, v: v.lvtt,
    "masked": lambda e, v: int(bool(v.lvtt & LVT_MASKED)),
    "mode": lambda e, v: MODE_NAMES[v.timer_mode],
    "tmict": lambda e, v: v.tmict,
    "tmcct": lambda e, v: e.apic_get_tmcct(v),
    "tdcr": lambda e, v: v.tdcr,
    "tsc_deadline": lambda e, v: e.get_tscdeadline_msr(v),
    "timer_armed": lambda e, v: int(v.timer_active),
    "halted": lambda e, v: int(v.blocked),
    "idle": lambda e, v: int(v.guest_idle),
    "wanted": lambda e, v: v.wanted,
    "pv_msr": lambda e, v: v.msr_val,
    "mapped": lambda e, v: int(v.mapped),
    "registered": lambda e, v: int(v.pv_registered),
    "latched": lambda e, v: int(v.latched),
    "requested": lambda e, v: int(v.req_lazy),
}
# "int" values compare with integers; "mode" with the names in vcpu.MODE_NAMES.
FIELD_TYPES: dict[str, str] = {name: ("mode" if name == "mode" else "int") for name in STATE_GETTERS}
