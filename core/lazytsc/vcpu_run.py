"""The host's vCPU thread (arch/x86/kvm/x86.c): exits, vcpu_run(), vcpu_enter_guest(), vcpu_block().

A vCPU is in one of three places: running guest code (`in_guest`), in the host (after
an exit, until `in_host_until`: exit handling, then the timer_advance_ns busy-wait), or
blocked in vcpu_block() after HLT. Guest-side actions (instructions, the end of a
task's CPU time) wait while the vCPU is in the host; host-side ones (hrtimer callbacks,
IPIs from other vCPUs) do not.

Every exit costs `host.exit_cost_ns` of the vCPU's time; a guest task running meanwhile
finishes that much later. The host then runs, in KVM's order:
  vcpu_run(): kvm_inject_pending_timer_irqs()            (the loop tail after an exit)
  vcpu_enter_guest(): requests -- KVM_REQ_LAZY_TSCDEADLINE -> kick
                      event injection (without APICv: the highest IRR into the ISR)
                      kvm_wait_lapic_expire() busy-wait, VM entry.
A halted vCPU blocks unless an interrupt is allowed and pending (kvm_vcpu_has_events;
a pending *masked* timer expiry makes nothing pending), switching an hv timer to the
hrtimer first; kvm_vcpu_kick() wakes it after `host.wakeup_latency_ns`, and the entry
busy-waits like any other, so a TSC-deadline interrupt never arrives early.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .apic import InterruptController
from .config import HostConfig, VcpuConfig
from .sim import Scheduler
from .taxonomy import (
    SRC_IPI,
    WAKE_IPI,
    WAKE_OTHER,
    WAKE_SPURIOUS,
    WAKE_TIMER,
)
from .taxonomy import ExitInts as Exit
from .taxonomy import KindInts as Kind

if TYPE_CHECKING:  # the ports (ports.py) by their implementations: compiled calls are direct
    from .guest_cpu import GuestCpu
    from .lapic_timer import LapicTimer
    from .lazy_host import LazyHost

# RunState's attributes: its __slots__ and what clone() copies (a compiled class has no
# __slots__ to read back).
_RUN_STATE_FIELDS = (
    "in_host_until",
    "blocked",
    "halted",
    "entry_queued",
    "entry_parent",
    "wake_queued",
    "hv_at_block",
    "task_active",
    "task_end",
    "irq_window",
    "injected",
    "hlt_event",
    "guest_mode",
)


class RunState:
    __slots__ = _RUN_STATE_FIELDS

    def __init__(self) -> None:
        self.in_host_until = 0
        self.blocked = False
        self.halted = False
        self.entry_queued = False
        self.entry_parent = -1
        self.wake_queued = False
        self.hv_at_block = False
        self.task_active = False
        self.task_end = 0
        self.irq_window = False
        self.injected = -1
        self.hlt_event = -1
        self.guest_mode = True  # vcpu->mode == IN_GUEST_MODE

    def clone(self) -> RunState:
        new = RunState()  # a blank instance (compiled classes run __init__ in __new__)
        for name in _RUN_STATE_FIELDS:
            setattr(new, name, getattr(self, name))
        return new


class VcpuRunLoop:
    def __init__(self, sched: Scheduler, apic: InterruptController, cfgs: list[VcpuConfig], host: HostConfig, rngs: list[random.Random]) -> None:
        self.sched = sched
        self.rngs = rngs
        self.apic = apic
        self.cfgs = cfgs
        self.host = host
        self.exit_cost = host.exit_cost_ns
        self.s = [RunState() for _ in cfgs]
        self.timer: LapicTimer  # TimerPort
        self.lazy: LazyHost  # LazyPort
        self.guest: GuestCpu  # GuestPort
        self.H_ENTRY = sched.register(self._enter, guest=False)
        self.H_WAKE = sched.register(self._wake, guest=False)
        self.H_HOST_IRQ = sched.register(self._host_irq, guest=False)
        apic.on_accept = self.deliver_interrupt
        apic.on_event = self.request_event

    def save(self) -> list[RunState]:
        return [s.clone() for s in self.s]

    def restore(self, saved: list[RunState]) -> None:
        self.s = [s.clone() for s in saved]

    # ---- where the vCPU is -------------------------------------------------------------------
    def in_guest(self, vid: int) -> bool:
        """vcpu->mode == IN_GUEST_MODE: not blocked, not in the host handling an exit."""
        return self.s[vid].guest_mode

    def blocked(self, vid: int) -> bool:
        return self.s[vid].blocked

    def defer_to_entry(self, vid: int) -> int:
        return self.s[vid].in_host_until

    # ---- exits ----------------------------------------------------------------------------------
    def exit_taken(self, vid: int) -> None:
        """A VM exit: the vCPU is in the host for exit_cost_ns, then vcpu_run() re-enters."""
        r = self.s[vid]
        r.guest_mode = False
        now = self.sched.now
        start = r.in_host_until if r.in_host_until > now else now
        r.in_host_until = start + self.exit_cost
        if r.task_active:
            r.task_end += self.exit_cost
        self._queue_entry(vid)

    def _queue_entry(self, vid: int) -> None:
        r = self.s[vid]
        if r.entry_queued:
            return
        r.entry_queued = True
        r.entry_parent = self.sched.root if self.sched.root >= 0 else self.sched.cause_in
        self.sched.at(max(r.in_host_until, self.sched.now), self.H_ENTRY, vid, 0)

    def resume_after_restore(self, vid: int) -> None:
        """The VMM's KVM_RUN on a restored vCPU: vcpu_run() -> vcpu_enter_guest() (or vcpu_block()
        for a halted one), so an expiry latched or injected by the restore is taken at entry,
        after kvm_wait_lapic_expire()'s busy-wait, never at the restore itself."""
        self._queue_entry(vid)

    def steal(self, vid: int, ns: int) -> None:
        """The vCPU stays in the host `ns` longer (busy-wait): a running task loses that time."""
        r = self.s[vid]
        r.in_host_until = self.sched.now + ns
        if r.task_active:
            r.task_end += ns

    def halt(self, vid: int, hlt_event: int) -> None:
        """kvm_emulate_halt() -> kvm_vcpu_halt(): mp_state = HALTED; vcpu_block() runs at re-entry."""
        r = self.s[vid]
        r.halted = True
        r.hlt_event = hlt_event
        self.exit_taken(vid)

    def runnable(self, vid: int) -> bool:
        """kvm_arch_vcpu_runnable() of a halted vCPU: an interrupt is allowed and pending
        (kvm_vcpu_has_events: IF set, a vector above the PPR)."""
        return self.guest.interrupts_allowed(vid) and self.apic.has_interrupt(vid) >= 0

    def block_ends(self, vid: int) -> bool:
        """kvm_vcpu_check_block(): runnable, or an unmasked timer expiry is pending."""
        return self.runnable(vid) or (self.guest.interrupts_allowed(vid) and self.timer.has_pending_timer(vid))

    def _enter(self, vid: int, _arg: int) -> None:
        """vcpu_run() loop tail and vcpu_enter_guest(), then VM entry."""
        r = self.s[vid]
        r.entry_queued = False
        if r.blocked:
            return
        now = self.sched.now
        if now < r.in_host_until:
            self._queue_entry(vid)
            return
        self.sched.begin(r.entry_parent)
        self.timer.inject_pending_timer_irqs(vid)  # kvm_inject_pending_timer_irqs()
        if r.halted:
            # vcpu_block(), as often as vcpu_run() loops back to it.
            for _ in range(3):
                if self.runnable(vid):
                    break
                hv = self.timer.hv_in_use(vid)
                if hv:
                    self.timer.switch_to_sw_timer(vid)
                if not self.block_ends(vid):
                    r.blocked = True
                    r.hv_at_block = hv
                    r.guest_mode = False
                    self.sched.ev(vid, Kind.BLOCK)
                    return
                # The block ends at once (the switch expired the timer): back to the hv
                # timer, and the loop tail injects the expiry.
                if hv:
                    self.timer.switch_to_hv_timer(vid)
                self.timer.inject_pending_timer_irqs(vid)
            if not self.runnable(vid):
                r.blocked = True
                r.guest_mode = False
                self.sched.ev(vid, Kind.BLOCK)
                return
            r.halted = False
        self.lazy.serve_request(vid)
        if not self.cfgs[vid].apicv and r.injected < 0:
            # kvm_check_and_inject_events(): inject the highest IRR if the guest can take
            # it, else ask for an interrupt window.
            vector = self.apic.has_interrupt(vid)
            if vector >= 0:
                if self.guest.interrupts_allowed(vid):
                    self.apic.ack(vid, vector)
                    r.injected = vector
                else:
                    r.irq_window = True
        wait = self.timer.wait_lapic_expire(vid)
        if wait > 0:
            self.steal(vid, wait)
            self._queue_entry(vid)
            return
        r.guest_mode = True
        if self.timer.hv_expired_at_entry(vid):
            return
        injected = r.injected
        r.injected = -1
        self.guest.entered(vid, injected)

    # ---- waking and kicking ----------------------------------------------------------------------
    def kick(self, vid: int, cause: int) -> None:
        """kvm_vcpu_kick(): wake a blocked vCPU; a vCPU in guest mode gets an IPI (an `intr` exit)."""
        r = self.s[vid]
        if r.blocked:
            if not r.wake_queued:
                r.wake_queued = True
                self.sched.at(self.sched.now + self.host.wakeup_latency_ns, self.H_WAKE, vid, (cause, self.sched.root))
        elif self.in_guest(vid):
            self.sched.ev(vid, Kind.HOST_IRQ, Exit.INTR)
            self.exit_taken(vid)

    def _wake(self, vid: int, arg: tuple[int, int]) -> None:
        """kvm_vcpu_block() returns: vcpu_block() switches back to the hv timer and re-checks."""
        cause, parent = arg
        r = self.s[vid]
        r.wake_queued = False
        if not r.blocked:
            return
        r.blocked = False  # the vCPU thread runs again (in the host: guest_mode stays off)
        self.sched.begin(parent)
        if r.hv_at_block:
            r.hv_at_block = False
            self.timer.switch_to_hv_timer(vid)
        self.timer.inject_pending_timer_irqs(vid)
        if not self.runnable(vid):
            self.sched.ev(vid, Kind.WAKE, a=WAKE_SPURIOUS, b=cause)
            # Back to vcpu_block(): still halted; an hv timer moves to the hrtimer again.
            r.hv_at_block = self.timer.hv_in_use(vid)
            if r.hv_at_block:
                self.timer.switch_to_sw_timer(vid)
            if not self.block_ends(vid):
                r.blocked = True
                return
            self.timer.inject_pending_timer_irqs(vid)
            if not self.runnable(vid):
                r.blocked = True
                return
        r.halted = False
        self.sched.ev(vid, Kind.WAKE, a=cause)
        self._queue_entry(vid)

    # ---- interrupt delivery -------------------------------------------------------------------
    def deliver_interrupt(self, vid: int, vector: int, source: int) -> None:
        """vmx_deliver_interrupt(), after __apic_accept_irq set the IRR bit.

        APICv: a posted interrupt -- a running guest takes it without an exit, a blocked
        vCPU is woken. Without APICv: KVM_REQ_EVENT and a kick (a running guest exits).
        """
        idx = self.sched.ev(vid, Kind.IRQ_ACCEPT, a=vector, b=source)
        self.guest.note_cause(vid, vector, idx)
        r = self.s[vid]
        cause = WAKE_IPI if source == SRC_IPI else WAKE_TIMER if source == 0 else WAKE_OTHER
        if self.cfgs[vid].apicv:
            if r.blocked:
                self.kick(vid, cause)
            elif self.in_guest(vid):
                self.guest.posted(vid)
        else:
            self.kick(vid, cause)

    def request_event(self, vid: int) -> None:
        """KVM_REQ_EVENT after an EOI or TPR change: a lower pending interrupt may now be taken."""
        if self.cfgs[vid].apicv and self.in_guest(vid):
            self.guest.posted(vid)

    # ---- unrelated host interrupts ---------------------------------------------------------------
    def host_irq_next(self, vid: int) -> None:
        """Schedule the next unrelated host interrupt: exponential gaps at host_irq_rate_hz."""
        rate = self.cfgs[vid].host_irq_rate_hz
        if rate:
            gap = int(self.rngs[vid].expovariate(rate) * 1e9) + 1
            self.sched.at(self.sched.now + gap, self.H_HOST_IRQ, vid, 0)

    def _host_irq(self, vid: int, _arg: int) -> None:
        """An unrelated host interrupt: an `intr` exit if the vCPU is in guest mode."""
        if self.in_guest(vid):
            self.sched.ev(vid, Kind.HOST_IRQ, Exit.INTR)
            self.exit_taken(vid)
        self.host_irq_next(vid)
