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

Parameters are CPU times of the guest code paths, documented in PARAMS; every exit
keeps the vCPU in the host for `host.exit_cost_ns`, stolen from the task running, so
fewer exits make transactions faster -- nothing of the seed's table is written in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import RunConfig, Spec
from ..taxonomy import RESCHEDULE_VECTOR
from .base import Workload, WorkloadState

if TYPE_CHECKING:
    from ..guest_kernel import GuestKernel


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

    def attach(self, k: GuestKernel) -> None:
        self.H_START = k.sched.register(lambda vid, _a: self.start(k, vid), guest=True)
        self.T_CLIENT_SENT = k.register_task(lambda vid: self.client_sent(k, vid))
        self.T_SERVER_DONE = k.register_task(lambda vid: self.server_done(k, vid))
        self.T_CLIENT_RECV = k.register_task(lambda vid: self.client_received(k, vid))
        for vid in range(self.nvcpus):
            k.sched.at(0, self.H_START, vid, 0)

    def _work(self, k: GuestKernel, vid: int, duration: int, task: int) -> None:
        k.work(vid, self.jittered(self.state.rng, duration, self.params["service_jitter_pct"]), task)

    def _idle(self, k: GuestKernel, vid: int, fresh: bool) -> None:
        """Enter NOHZ idle; `fresh` after task work (its TCP timers moved the wheel's next timer)."""
        st = self.state
        if fresh or st.wheel[vid] <= k.now + self.tick_ns:
            lo, hi = self.params["wheel_next_min_ns"], self.params["wheel_next_max_ns"]
            at = k.now + lo + int(st.rng.random() * (max(lo, hi) - lo + 1))
            st.wheel[vid] = -(-at // self.tick_ns) * self.tick_ns
        k.idle_enter(vid, st.wheel[vid])

    def start(self, k: GuestKernel, vid: int) -> None:
        k.sched.begin(-1)
        k.boot(vid, self.tick_ns)
        if vid == self.client:
            self._work(k, vid, self.params["client_send_ns"], self.T_CLIENT_SENT)
        else:
            self._idle(k, vid, fresh=True)

    def client_sent(self, k: GuestKernel, vid: int) -> None:
        k.send_ipi(vid, self.server, RESCHEDULE_VECTOR)  # ttwu -> smp_send_reschedule
        self._idle(k, vid, fresh=True)

    def server_done(self, k: GuestKernel, vid: int) -> None:
        k.send_ipi(vid, self.client, RESCHEDULE_VECTOR)
        self._idle(k, vid, fresh=True)

    def client_received(self, k: GuestKernel, vid: int) -> None:
        self.state.transactions += 1
        self._work(k, vid, self.params["client_send_ns"], self.T_CLIENT_SENT)

    def on_ipi(self, k: GuestKernel, vid: int, vector: int) -> None:
        if vector == RESCHEDULE_VECTOR:
            self.state.need_resched[vid] = True

    def after_irq(self, k: GuestKernel, vid: int) -> None:
        if not k.is_idle(vid):
            return  # interrupted task work continues
        st = self.state
        if not st.need_resched[vid]:
            self._idle(k, vid, fresh=False)  # do_idle() loops: back to HLT
            return
        st.need_resched[vid] = False
        k.tick_nohz_idle_exit(vid)
        if vid == self.server:
            self._work(k, vid, self.params["server_proc_ns"], self.T_SERVER_DONE)
        elif vid == self.client:
            self._work(k, vid, self.params["client_recv_ns"], self.T_CLIENT_RECV)
        else:
            self._idle(k, vid, fresh=False)

    def report(self) -> dict[str, Any]:
        return {"transactions": self.state.transactions}
