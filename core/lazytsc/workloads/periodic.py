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
    from ..guest_kernel import GuestKernel


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

    def attach(self, k: GuestKernel) -> None:
        self.H_START = k.sched.register(lambda vid, _a: self.start(k, vid), guest=True)
        for vid in range(self.nvcpus):
            k.sched.at(0, self.H_START, vid, 0)

    def start(self, k: GuestKernel, vid: int) -> None:
        k.sched.begin(-1)
        k.boot(vid, self.tick_ns)
        if self.params["idle"]:
            k.idle_enter(vid, 0)

    def after_irq(self, k: GuestKernel, vid: int) -> None:
        if k.is_idle(vid) and self.params["idle"]:
            k.idle_enter(vid, 0)
