"""What a generated guest workload provides: the programs that run on the guest's Linux.

A workload drives the guest kernel model (hrtimers, NOHZ idle, IPIs, tasks) through
GuestKernel's methods and never touches host state. Its mutable state lives in
`self.state` (deep-copied at checkpoints); everything else is fixed parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..config import RunConfig, Spec

if TYPE_CHECKING:
    from ..guest_kernel import GuestKernel


class WorkloadState:
    """Plain attribute bag: deep-copyable, no references to the engine."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class Workload:
    kind: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Spec, ...]] = ()

    def __init__(self, params: dict[str, Any], run: RunConfig) -> None:
        self.params = {spec.name: params.get(spec.name, spec.default) for spec in self.PARAMS}
        self.nvcpus = len(run.vcpus)
        self.vcpus: frozenset[int] = frozenset(range(self.nvcpus))
        self.tick_ns = 0
        self.nohz = True
        self.state = WorkloadState()

    def attach(self, k: GuestKernel) -> None:
        """Register task handlers and queue the first actions (at t=0, after boot)."""

    def on_ipi(self, k: GuestKernel, vid: int, vector: int) -> None:
        """An IPI reached the guest handler on `vid`."""

    def after_irq(self, k: GuestKernel, vid: int) -> None:
        """An interrupt handler returned on `vid`: idle loop or task continues."""

    def timer_callback(self, k: GuestKernel, vid: int, name: str) -> None:
        """One of the workload's own hrtimers expired."""

    def report(self) -> dict[str, Any]:
        """Workload-level figures for summaries (e.g. transactions)."""
        return {}

    def jittered(self, rng: Any, duration: int, pct: int) -> int:
        """duration * (1 ± pct%), integer ns."""
        if not pct:
            return duration
        return duration * (100 - pct + int(rng.random() * (2 * pct + 1))) // 100
