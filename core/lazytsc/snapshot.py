"""Immutable views of engine state for the UI and tests.

The GUI never touches engine objects: it receives these frozen snapshots and
diffs consecutive ones to highlight the fields a step changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from .taxonomy import BACKEND_NAMES
from .vcpu import LVT_MASKED, MODE_NAMES, NEVER

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True, slots=True)
class VcpuSnapshot:
    vcpu: int
    tsc: int
    # shared page (guest memory) and host PV state
    pending: int
    armed: int
    cached_armed: int
    pv_msr: int
    pv_mapped: bool
    pv_registered: bool
    kick_requested: bool
    # LAPIC timer
    lvtt: int
    timer_mode: str
    lvtt_masked: bool
    tmict: int
    tmcct: int
    tdcr: int
    divisor: int
    spiv: int
    tsc_deadline_msr: int
    timer_armed: bool
    timer_target_ns: int
    timer_backend: str
    irq_latched: bool
    # run state and guest kernel
    halted: bool
    guest_idle: bool
    guest_wanted: int
    guest_next_event_ns: int
    tick_stopped: bool

    def changed_fields(self, other: VcpuSnapshot | None) -> frozenset[str]:
        """Names of fields whose value differs from `other` (all when other is None)."""
        names = [f.name for f in fields(self)]
        if other is None:
            return frozenset(names)
        return frozenset(n for n in names if getattr(self, n) != getattr(other, n) and n != "tsc")


@dataclass(frozen=True, slots=True)
class Snapshot:
    time_ns: int
    events: int
    mode: str
    variant: str
    done: bool
    vcpus: tuple[VcpuSnapshot, ...]


def take_snapshot(engine: Engine) -> Snapshot:
    vs = []
    for v in engine.vcpus:
        vs.append(
            VcpuSnapshot(
                vcpu=v.id,
                tsc=v.tsc(engine.now),
                pending=v.page_pending,
                armed=v.page_armed,
                cached_armed=v.cached_armed,
                pv_msr=v.msr_val,
                pv_mapped=v.mapped,
                pv_registered=v.pv_registered,
                kick_requested=v.req_lazy,
                lvtt=v.lvtt,
                timer_mode=MODE_NAMES[v.timer_mode],
                lvtt_masked=bool(v.lvtt & LVT_MASKED),
                tmict=v.tmict,
                tmcct=engine.apic_get_tmcct(v),
                tdcr=v.tdcr,
                divisor=v.divisor,
                spiv=v.spiv,
                tsc_deadline_msr=engine.get_tscdeadline_msr(v),
                timer_armed=v.timer_active,
                timer_target_ns=v.target_ns if v.timer_active else 0,
                timer_backend=BACKEND_NAMES[v.timer_backend] if v.timer_active else "",
                irq_latched=v.latched,
                halted=v.blocked,
                guest_idle=v.guest_idle,
                guest_wanted=v.wanted,
                guest_next_event_ns=v.expires_next if v.expires_next != NEVER else 0,
                tick_stopped=v.tick_stopped,
            )
        )
    return Snapshot(
        time_ns=engine.now,
        events=len(engine.log),
        mode=engine.mode,
        variant=engine.variant,
        done=engine.done,
        vcpus=tuple(vs),
    )
