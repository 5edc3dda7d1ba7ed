"""Per-vCPU state: host LAPIC timer, host PV state, the shared page, the guest kernel.

Plain mutable attributes (with __slots__) because the engine's hot path reads
and writes them millions of times; the UI never sees this object, only the
immutable `Snapshot` built from it.
"""

from __future__ import annotations

import random

from .config import VcpuConfig

NEVER = (1 << 63) - 1  # "no expiry" for ns times (KTIME_MAX)

# LVTT fields (Intel SDM vol. 3 10.5.1)
LVT_MASKED = 1 << 16
TIMER_MODE_SHIFT = 17
MODE_ONESHOT = 0
MODE_PERIODIC = 1
MODE_TSCDEADLINE = 2
MODE_RESERVED = 3
MODE_NAMES = {MODE_ONESHOT: "one-shot", MODE_PERIODIC: "periodic", MODE_TSCDEADLINE: "tsc-deadline", MODE_RESERVED: "reserved"}
SPIV_APIC_ENABLED = 1 << 8
LVTT_RESET = LVT_MASKED  # kvm_lapic_reset: LVTT = 0x00010000
SPIV_RESET = 0xFF


def divide_count(tdcr: int) -> int:
    """update_divide_count(): TDCR bits 0,1,3 -> 2,4,8,16,32,64,128,1."""
    tmp = ((tdcr & 0x3) | ((tdcr & 0x8) >> 1)) + 1
    return 1 << (tmp & 0x7)


class Vcpu:
    """All state of one vCPU; see module docstring."""

    __slots__ = (
        "id",
        "cfg",
        "khz",
        "jitter_steps",
        "rng",
        # host LAPIC (struct kvm_lapic / kvm_timer)
        "lvtt",
        "tmict",
        "tdcr",
        "spiv",
        "divisor",
        "timer_mode",
        "tscdeadline",
        "period_ns",
        "target_ns",
        "timer_gen",
        "timer_active",
        "timer_backend",
        "latched",
        "irq_pending_at",
        # host PV lazy state
        "msr_val",
        "mapped",
        "cached_armed",
        "req_lazy",
        "req_time",
        "req_waits",
        # guest memory: the shared page
        "page_pending",
        "page_armed",
        # vCPU run state
        "blocked",
        "guest_idle",
        "wake_pending",
        "penalty_ns",
        "stall_until",
        # guest kernel
        "pv_registered",
        "timers",
        "expires_next",
        "in_hrtirq",
        "tick_stopped",
        "wanted",
        "wanted_ns",
        "wanted_done",
        "wanted_lost",
        "clockevent_stopped",
        "kernel_booted",
        "deferred",
        "ipi_pending",
        "owner",
        "saved",
    )

    def __init__(self, vcpu_id: int, cfg: VcpuConfig, seed: int) -> None:
        self.id = vcpu_id
        self.cfg = cfg
        self.khz = cfg.tsc_khz
        self.jitter_steps = cfg.reprogram_jitter_cycles // 8  # in TSC_DIVISOR steps
        # One RNG per vCPU, derived from the scenario seed: adding a vCPU never
        # changes the random stream of another.
        self.rng = random.Random((seed << 8) ^ (vcpu_id * 0x9E3779B1) ^ 0x1A27)
        self.reset_lapic()
        self.msr_val = 0
        self.mapped = False
        self.cached_armed = 0
        self.req_lazy = False
        self.req_time = 0
        self.req_waits = False
        self.page_pending = 0
        self.page_armed = 0
        self.blocked = False
        self.guest_idle = False
        self.wake_pending = False
        self.penalty_ns = 0
        self.stall_until = -1  # ns until which the vCPU busy-waits in the host (-1: none)
        self.pv_registered = False
        self.timers: dict[str, int] = {}
        self.expires_next = NEVER
        self.in_hrtirq = False
        self.tick_stopped = False
        self.wanted = 0
        self.wanted_ns = 0
        self.wanted_done = True
        self.wanted_lost = False
        self.clockevent_stopped = False
        self.kernel_booted = False
        self.deferred: list = []
        self.ipi_pending: list[tuple[int, int]] = []
        self.owner = None
        self.saved = None

    def reset_lapic(self) -> None:
        """kvm_lapic_reset(): register reset values (DESIGN.md section 2)."""
        self.lvtt = LVTT_RESET
        self.tmict = 0
        self.tdcr = 0
        self.spiv = SPIV_RESET
        self.divisor = divide_count(0)
        self.timer_mode = MODE_ONESHOT
        self.tscdeadline = 0
        self.period_ns = 0
        self.target_ns = 0
        self.timer_gen = getattr(self, "timer_gen", 0) + 1
        self.timer_active = False
        self.timer_backend = 0
        self.latched = False
        self.irq_pending_at = 0

    # time conversions (integer only) -------------------------------------------------
    def tsc(self, ns: int) -> int:
        """Guest TSC at simulated time `ns` (TSC offset 0, no scaling error)."""
        return ns * self.khz // 1_000_000

    def ns_of_tsc(self, tsc: int) -> int:
        """Earliest simulated ns at which the guest TSC reaches `tsc`."""
        return -((-tsc * 1_000_000) // self.khz)

    @property
    def masked(self) -> bool:
        return bool(self.lvtt & LVT_MASKED)

    def clone(self) -> Vcpu:
        """An independent copy for checkpoints (mutable containers and the RNG copied)."""
        new = Vcpu.__new__(Vcpu)
        for name in Vcpu.__slots__:
            setattr(new, name, getattr(self, name))
        new.timers = dict(self.timers)
        new.deferred = list(self.deferred)
        new.ipi_pending = list(self.ipi_pending)
        new.rng = random.Random()
        new.rng.setstate(self.rng.getstate())
        return new
