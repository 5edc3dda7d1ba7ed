"""netperf TCP_RR on loopback inside a 2+ vCPU guest, from first principles.

One transaction: the client (vCPU `client_vcpu`) sends a request, which wakes
netserver on `server_vcpu` by a reschedule IPI (an apic-icr write), and the
client goes idle; the server processes, replies with an IPI to the client and
goes idle. Each idle period is NOHZ idle in a guest without a cpuidle driver
(default_idle_call: the tick is always stopped), so every halt costs:
  - idle entry, tick_nohz_stop_tick: the tick moves later (one reprogram), then HLT;
  - idle exit, tick_nohz_restart: hrtimer_cancel(sched_timer) reprograms to the
    next timer (later), hrtimer_start(sched_timer) to the next tick (earlier).
That is ~3 TSC-deadline writes and 1 apic-icr write per halt (DESIGN.md section 1).
Under lazy mode the later deadlines are skipped (`tsc >= armed`) and the tick
deadline recomputed within one tick period is skipped unless its jitter puts it
below `armed` (VcpuConfig.reprogram_jitter_cycles).

Parameters are CPU times of the guest code paths, documented in PARAMS; exits
add `host.exit_cost_ns` each to the work in progress, so fewer exits make
transactions faster -- nothing of the seed's table is written in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import RunConfig, Spec
from ..taxonomy import RESCHEDULE_VECTOR
from .base import Workload, WorkloadState

if TYPE_CHECKING:
    from ..engine import Engine
    from ..vcpu import Vcpu


class TcpRR(Workload):
    kind = "tcp_rr"
    doc = "netperf TCP_RR on loopback: request/response between two vCPUs woken by IPIs, NOHZ idle between."
    PARAMS = (
        Spec("client_vcpu", "int", 0, "vCPU running netperf (the client).", 0, 255),
        Spec("server_vcpu", "int", 1, "vCPU running netserver.", 0, 255),
        Spec("hz", "int", 1000, "Guest CONFIG_HZ: the tick period is 1/hz.", 1, 10_000),
        Spec("client_send_ns", "duration", 4000, "Client CPU time to send a request (syscall + loopback TCP).", 0, 10_000_000),
        Spec("server_proc_ns", "duration", 8000, "Server CPU time from wake-up to sending the reply.", 0, 10_000_000),
        Spec("client_recv_ns", "duration", 4000, "Client CPU time from wake-up to having read the reply.", 0, 10_000_000),
        Spec("service_jitter_pct", "int", 20, "Each CPU time above varies uniformly by ± this percent.", 0, 99),
        Spec("wheel_next_min_ns", "duration", 2_000_000, "Nearest timer-wheel timer (TCP delack/RTO, ...) seen at tick stop: minimum.", 0, 10_000_000_000),
        Spec("wheel_next_max_ns", "duration", 50_000_000, "... and maximum (drawn uniformly, rounded up to a tick).", 0, 10_000_000_000),
    )

    def __init__(self, params: dict[str, Any], run: RunConfig) -> None:
        super().__init__(params, run)
        p = self.params
        self.tick_ns = 1_000_000_000 // p["hz"]
        self.client = p["client_vcpu"]
        self.server = p["server_vcpu"]
        import random

        self.state = WorkloadState(
            rng=random.Random(run.seed * 7919 + 17),
            need_resched=[False] * self.nvcpus,
            wheel=[0] * self.nvcpus,
            transactions=0,
        )

    def attach(self, eng: Engine) -> None:
        self.H_START = eng.register(lambda v, _a: self.start(eng, v))
        self.H_CLIENT_SENT = eng.register(lambda v, _a: self.client_sent(eng, v))
        self.H_SERVER_DONE = eng.register(lambda v, _a: self.server_done(eng, v))
        self.H_CLIENT_RECV = eng.register(lambda v, _a: self.client_received(eng, v))
        for vid in range(self.nvcpus):
            eng._at(0, self.H_START, vid, 0)

    def _work(self, eng: Engine, v: Vcpu, duration: int, handler: int) -> None:
        eng.guest_work(v, self.jittered(self.state.rng, duration, self.params["service_jitter_pct"]), handler)

    def _idle(self, eng: Engine, v: Vcpu, fresh: bool) -> None:
        """Enter NOHZ idle; `fresh` after task work (its TCP timers moved the wheel's next timer)."""
        st = self.state
        if fresh or st.wheel[v.id] <= eng.now + self.tick_ns:
            lo, hi = self.params["wheel_next_min_ns"], self.params["wheel_next_max_ns"]
            at = eng.now + lo + int(st.rng.random() * (max(lo, hi) - lo + 1))
            st.wheel[v.id] = -(-at // self.tick_ns) * self.tick_ns
        eng.guest_idle_enter(v, st.wheel[v.id])

    def start(self, eng: Engine, v: Vcpu) -> None:
        eng.kernel_boot(v, self.tick_ns)
        if v.id == self.client:
            self._work(eng, v, self.params["client_send_ns"], self.H_CLIENT_SENT)
        else:
            self._idle(eng, v, fresh=True)

    def client_sent(self, eng: Engine, v: Vcpu) -> None:
        eng.guest_send_ipi(v, self.server, RESCHEDULE_VECTOR)  # ttwu -> smp_send_reschedule
        self._idle(eng, v, fresh=True)

    def server_done(self, eng: Engine, v: Vcpu) -> None:
        eng.guest_send_ipi(v, self.client, RESCHEDULE_VECTOR)
        self._idle(eng, v, fresh=True)

    def client_received(self, eng: Engine, v: Vcpu) -> None:
        self.state.transactions += 1
        self._work(eng, v, self.params["client_send_ns"], self.H_CLIENT_SENT)

    def on_ipi(self, eng: Engine, v: Vcpu, vector: int, source: int) -> None:
        if vector == RESCHEDULE_VECTOR:
            self.state.need_resched[v.id] = True

    def after_irq(self, eng: Engine, v: Vcpu) -> None:
        if not v.guest_idle:
            return  # interrupted task work continues
        st = self.state
        if not st.need_resched[v.id]:
            self._idle(eng, v, fresh=False)  # do_idle() loops: back to HLT
            return
        st.need_resched[v.id] = False
        eng.tick_nohz_idle_exit(v)
        if v.id == self.server:
            self._work(eng, v, self.params["server_proc_ns"], self.H_SERVER_DONE)
        elif v.id == self.client:
            self._work(eng, v, self.params["client_recv_ns"], self.H_CLIENT_RECV)
        else:
            self._idle(eng, v, fresh=False)

    def report(self) -> dict[str, Any]:
        return {"transactions": self.state.transactions}
