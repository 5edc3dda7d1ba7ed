"""A guest whose tick never stops (no NOHZ): the case lazy mode cannot help.

Every tick fires; `kick` finds `pending == armed`, disarms, and the guest's
reprogram then has to write the MSR (armed == 0). Optionally the vCPUs idle in
HLT between ticks (each tick then also costs a halt exit and a wake-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import RunConfig, Spec
from .base import Workload

if TYPE_CHECKING:
    from ..engine import Engine
    from ..vcpu import Vcpu


class PeriodicTick(Workload):
    kind = "periodic_tick"
    doc = "Periodic tick (CONFIG_HZ, no NOHZ) on every vCPU, busy or idle in HLT between ticks."
    PARAMS = (
        Spec("hz", "int", 1000, "Tick frequency.", 1, 100_000),
        Spec("idle", "bool", True, "HLT between ticks (else the vCPU stays busy)."),
    )

    def __init__(self, params: dict[str, Any], run: RunConfig) -> None:
        super().__init__(params, run)
        self.tick_ns = 1_000_000_000 // self.params["hz"]
        self.nohz = False

    def attach(self, eng: Engine) -> None:
        self.H_START = eng.register(lambda v, _a: self.start(eng, v))
        for vid in range(self.nvcpus):
            eng._at(0, self.H_START, vid, 0)

    def start(self, eng: Engine, v: Vcpu) -> None:
        eng.kernel_boot(v, self.tick_ns)
        if self.params["idle"]:
            eng.guest_hlt(v)

    def after_irq(self, eng: Engine, v: Vcpu) -> None:
        if v.guest_idle and self.params["idle"]:
            eng.guest_hlt(v)
