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
    # interrupt controller and guest CPU
    irr: int = 0
    isr: int = 0
    tpr: int = 0
    ppr: int = 0
    if_flag: bool = True
    apic_base: int = 0
    x2apic: bool = True
    in_host: bool = False
    kick_guard_open: bool = False

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
    now = engine.now
    vs = []
    for vid in range(engine.nvcpus):
        a = engine.apic.s[vid]
        t = engine.timer.s[vid]
        p = engine.lazy.s[vid]
        k = engine.kernel.s[vid]
        r = engine.run_loop.s[vid]
        lvtt = a.lvt[0x320]
        armed_timer = t.sw_active or t.hv_in_use
        vs.append(
            VcpuSnapshot(
                vcpu=vid,
                tsc=engine.clock.tsc(vid, now),
                pending=engine.kernel.page_pending(vid),
                armed=engine.kernel.page_armed(vid),
                cached_armed=p.cached_armed,
                pv_msr=p.msr_val,
                pv_mapped=p.mapped,
                pv_registered=k.registered,
                kick_requested=p.req,
                lvtt=lvtt,
                timer_mode=MODE_NAMES[t.timer_mode],
                lvtt_masked=bool(lvtt & LVT_MASKED),
                tmict=t.tmict,
                tmcct=engine.timer.read_tmcct(vid),
                tdcr=t.tdcr,
                divisor=t.divide,
                spiv=a.spiv,
                tsc_deadline_msr=engine.timer.get_tscdeadline_msr(vid),
                timer_armed=armed_timer,
                timer_target_ns=(t.hv_fire if t.hv_in_use else t.sw_expires) if armed_timer else 0,
                timer_backend=BACKEND_NAMES[0 if t.hv_in_use else 1] if armed_timer else "",
                irq_latched=bool(t.pending),
                halted=r.blocked,
                guest_idle=k.idle or engine.script.waiting[vid],
                guest_wanted=engine.hazards.wanted(vid),
                guest_next_event_ns=k.expires_next if k.expires_next != NEVER else 0,
                tick_stopped=k.tick_stopped,
                irr=a.irr,
                isr=a.isr,
                tpr=a.tpr,
                ppr=engine.apic.update_ppr(vid),
                if_flag=engine.cpu.s[vid].if_flag,
                apic_base=a.apic_base,
                x2apic=a.x2apic,
                in_host=not r.guest_mode,
                kick_guard_open=bool(p.cached_armed) and bool(p.msr_val & 1) and p.mapped,
            )
        )
    return Snapshot(
        time_ns=now,
        events=len(engine.log),
        mode=engine.mode,
        variant=engine.variant,
        done=engine.done,
        vcpus=tuple(vs),
    )
