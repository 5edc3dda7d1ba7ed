"""netperf TCP_RR on loopback inside a 2+ vCPU guest, from first principles.

One transaction. netperf (vCPU `client_vcpu`) sends the request: tcp_sendmsg runs the
loopback receive path in the softirq of the same CPU, whose sk_data_ready wakes
netserver, asleep in recv() on `server_vcpu`: an IPI to an idle CPU (ttwu_queue_wakelist,
an apic-icr write). netperf then finishes send(), calls recv(), blocks and its CPU goes
idle. netserver's vCPU handles the IPI, leaves idle, runs netserver: recv() returns the
request, send() the reply wakes netperf the same way. A task that has not blocked yet
when its data arrives finds it in recv() without sleeping (ttwu_runnable: no IPI).

Each idle period is NOHZ idle without a cpuidle driver (default_idle_call: the tick is
always stopped), so every halt costs
  - idle entry, tick_nohz_stop_tick: the tick moves later (one reprogram), then HLT;
  - idle exit, tick_nohz_restart: hrtimer_cancel(sched_timer) reprograms to the next
    timer (later), hrtimer_start(sched_timer) to the next tick (earlier)
-- 3 TSC-deadline writes and 1 apic-icr write per halt (DESIGN.md section 1). Under lazy
mode the later deadlines are skipped (`tsc >= armed`) and the tick's deadline, computed
again on every restart within a tick period, is skipped unless its jitter puts it below
`armed` (VcpuConfig.reprogram_jitter_cycles): the armed tick stays armed and fires once
per tick period whatever the vCPU is doing (docs/model.md, "tcp_rr").

Every parameter is a guest CPU time (PARAMS) or HZ; every exit keeps the vCPU in the host
for `host.exit_cost_ns`, which the work in progress waits for, so fewer exits make
transactions faster. Nothing of the published tables is written in.
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
        Spec(
            "client_send_ns",
            "duration",
            3000,
            "Client CPU time from send() to netserver's wake-up (tcp_sendmsg, loopback, the receive softirq up to sk_data_ready).",
            0,
            10_000_000,
        ),
        Spec(
            "server_proc_ns",
            "duration",
            6000,
            "Server CPU time from being scheduled in to netperf's wake-up: recv() returns the request, send() the reply through loopback.",
            0,
            10_000_000,
        ),
        Spec(
            "client_recv_ns",
            "duration",
            3000,
            "Client CPU time from being scheduled in to recv() returning the reply.",
            0,
            10_000_000,
        ),
        Spec(
            "post_send_ns",
            "duration",
            4000,
            "CPU time after waking the peer (both sides): the rest of the softirq and send(), recv() until it blocks, the switch to the idle task.",
            0,
            10_000_000,
        ),
        Spec(
            "wake_ipi_ns",
            "duration",
            1000,
            "CPU time of the wake-up IPI on an idle vCPU (sysvec_call_function_single -> sched_ttwu_pending, irq_exit) until the idle loop sees need_resched and restarts the tick.",
            0,
            10_000_000,
        ),
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
            data_ready=[False] * self.nvcpus,
            leaving_idle=[False] * self.nvcpus,
            wheel=[0] * self.nvcpus,
            transactions=0,
        )

    def attach(self, k: GuestKernel) -> None:
        self.H_START = k.sched.register(lambda vid, _a: self.start(k, vid), guest=True)
        self.T_CLIENT_SENT = k.register_task(lambda vid: self.client_sent(k, vid))
        self.T_SERVER_DONE = k.register_task(lambda vid: self.server_done(k, vid))
        self.T_CLIENT_RECV = k.register_task(lambda vid: self.client_received(k, vid))
        self.T_BLOCKS = k.register_task(lambda vid: self.blocks(k, vid))
        self.T_IDLE_EXIT = k.register_task(lambda vid: self.idle_exit(k, vid))
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

    def _wake(self, k: GuestKernel, vid: int, dest: int) -> None:
        """sk_data_ready -> try_to_wake_up() of the task blocked in recv() on `dest`.

        A task that has not blocked yet (still on its way to recv()) finds the data
        itself: ttwu_runnable(), no IPI. A task asleep on an idle CPU is queued there
        with an IPI (ttwu_queue_wakelist -> send_call_function_single_ipi).
        """
        if k.is_idle(dest):
            k.send_ipi(vid, dest, RESCHEDULE_VECTOR)
        else:
            self.state.data_ready[dest] = True

    def _after_send(self, k: GuestKernel, vid: int) -> None:
        """The rest of send() and recv() up to the point where the task blocks."""
        self._work(k, vid, self.params["post_send_ns"], self.T_BLOCKS)

    def _run_woken(self, k: GuestKernel, vid: int) -> None:
        """The woken task runs: netserver processes the request, netperf reads the reply."""
        if vid == self.server:
            self._work(k, vid, self.params["server_proc_ns"], self.T_SERVER_DONE)
        elif vid == self.client:
            self._work(k, vid, self.params["client_recv_ns"], self.T_CLIENT_RECV)

    def start(self, k: GuestKernel, vid: int) -> None:
        k.sched.begin(-1)
        k.boot(vid, self.tick_ns)
        if vid == self.client:
            self._work(k, vid, self.params["client_send_ns"], self.T_CLIENT_SENT)
        else:
            self._idle(k, vid, fresh=True)

    def client_sent(self, k: GuestKernel, vid: int) -> None:
        self._wake(k, vid, self.server)
        self._after_send(k, vid)

    def server_done(self, k: GuestKernel, vid: int) -> None:
        self._wake(k, vid, self.client)
        self._after_send(k, vid)

    def blocks(self, k: GuestKernel, vid: int) -> None:
        """recv(): data already queued -> no sleep; otherwise the CPU goes idle."""
        st = self.state
        if st.data_ready[vid]:
            st.data_ready[vid] = False
            self._run_woken(k, vid)
            return
        self._idle(k, vid, fresh=True)

    def client_received(self, k: GuestKernel, vid: int) -> None:
        self.state.transactions += 1
        self._work(k, vid, self.params["client_send_ns"], self.T_CLIENT_SENT)

    def on_ipi(self, k: GuestKernel, vid: int, vector: int) -> None:
        if vector == RESCHEDULE_VECTOR:
            self.state.need_resched[vid] = True

    def after_irq(self, k: GuestKernel, vid: int) -> None:
        st = self.state
        if not k.is_idle(vid) or st.leaving_idle[vid]:
            return  # interrupted work (a task, or the wake-up IPI's own handling) continues
        if not st.need_resched[vid]:
            self._idle(k, vid, fresh=False)  # do_idle() loops: back to HLT
            return
        st.need_resched[vid] = False
        st.leaving_idle[vid] = True
        self._work(k, vid, self.params["wake_ipi_ns"], self.T_IDLE_EXIT)

    def idle_exit(self, k: GuestKernel, vid: int) -> None:
        """do_idle() sees need_resched: tick_nohz_idle_exit(), then schedule() to the woken task."""
        self.state.leaving_idle[vid] = False
        k.tick_nohz_idle_exit(vid)
        if vid in (self.server, self.client):
            self._run_woken(k, vid)
        else:
            self._idle(k, vid, fresh=False)

    def report(self) -> dict[str, Any]:
        return {"transactions": self.state.transactions}
