"""Random hrtimer start/cancel traffic: the generator behind the protocol properties.

Each vCPU, at exponentially distributed intervals, starts (or moves) or cancels
one of a pool of hrtimers with a random expiry. The hrtimer layer reprograms the
clockevent only when the earliest expiry changes, so deadlines move both earlier
and later, which exercises every branch of the lazy driver and of `kick`.
Every expiry is recorded, so tests can check that none is lost or late.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..config import RunConfig, Spec
from .base import Workload, WorkloadState

if TYPE_CHECKING:
    from ..guest_kernel import GuestKernel


class RandomReprogram(Workload):
    kind = "random_reprogram"
    doc = "Random hrtimer start/cancel on every vCPU (property-test generator)."
    PARAMS = (
        Spec("rate_hz", "int", 20_000, "hrtimer operations per second per vCPU.", 1, 10_000_000),
        Spec("timers", "int", 4, "Size of the pool of named hrtimers.", 1, 64),
        Spec("min_delta_ns", "duration", 10_000, "Shortest expiry from now.", 1, 10_000_000_000),
        Spec("max_delta_ns", "duration", 2_000_000, "Longest expiry from now.", 1, 10_000_000_000),
        Spec("cancel_pct", "int", 30, "Percent of operations that cancel instead of start.", 0, 100),
        Spec("hz", "int", 0, "Also run a NOHZ-less tick at this rate (0: none).", 0, 100_000),
    )

    def __init__(self, params: dict[str, Any], run: RunConfig) -> None:
        super().__init__(params, run)
        hz = self.params["hz"]
        self.tick_ns = 1_000_000_000 // hz if hz else 0
        self.nohz = False
        self.state = WorkloadState(
            rng=random.Random(run.seed * 104729 + 3),
            expired=[0] * self.nvcpus,
            max_late_ns=[0] * self.nvcpus,
            expiries={},
        )

    def attach(self, k: GuestKernel) -> None:
        self.H_START = k.sched.register(lambda vid, _a: self.start(k, vid), guest=True)
        self.H_OP = k.sched.register(lambda vid, _a: self.operate(k, vid), guest=True)
        for vid in range(self.nvcpus):
            k.sched.at(0, self.H_START, vid, 0)

    def start(self, k: GuestKernel, vid: int) -> None:
        k.sched.begin(-1)
        k.boot(vid, self.tick_ns)
        self._next(k, vid)

    def _next(self, k: GuestKernel, vid: int) -> None:
        gap = int(self.state.rng.expovariate(self.params["rate_hz"]) * 1e9) + 1
        k.sched.at(k.now + gap, self.H_OP, vid, 0)

    def operate(self, k: GuestKernel, vid: int) -> None:
        k.sched.begin(-1)
        st = self.state
        p = self.params
        name = f"t{st.rng.randrange(p['timers'])}"
        if st.rng.randrange(100) < p["cancel_pct"]:
            k.hrtimer_cancel(vid, name)
            st.expiries.pop((vid, name), None)
        else:
            expires = k.now + st.rng.randint(p["min_delta_ns"], max(p["min_delta_ns"], p["max_delta_ns"]))
            k.hrtimer_start(vid, name, expires)
            st.expiries[(vid, name)] = expires
        self._next(k, vid)

    def timer_callback(self, k: GuestKernel, vid: int, name: str) -> None:
        st = self.state
        expires = st.expiries.pop((vid, name), k.now)
        st.expired[vid] += 1
        late = k.now - expires
        if late > st.max_late_ns[vid]:
            st.max_late_ns[vid] = late

    def report(self) -> dict[str, Any]:
        return {"expired": sum(self.state.expired), "max_late_ns": max(self.state.max_late_ns, default=0)}
