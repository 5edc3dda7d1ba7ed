"""The properties the explorer checks after every engine action, each with a name.

`wanted`: the guest wants a TSC deadline W from its set_next_event(W) while its
clockevent is live (LVTT unmasked in TSC-deadline mode, APIC software-enabled) until it
takes a timer interrupt at TSC >= W, programs another deadline, masks LVTT, leaves
TSC-deadline mode or is reset (INIT). Migration, PV disable and TSC writes do not change
what it wants.

- `lost_timer` -- no lost timer: while W is wanted and undelivered, something will
  deliver a timer interrupt: a host timer (hrtimer or VMX preemption timer) is armed, an
  expiry is latched (lapic_timer.pending), the timer vector is in IRR/ISR or a posted
  injection is on its way, or a KVM_REQ_LAZY_TSCDEADLINE is pending whose kick would
  re-arm (guard open, pending > armed); and W is delivered within `LOST_AFTER_NS` of its
  time. Counted only if classic mode, running the same program, delivers W (else the
  program itself, not the protocol, gave the timer up).
- `late_vs_classic` -- never later than classic: W is delivered no later than
  late_tolerance_ns after classic mode delivers it in the same program.
- `livelock` -- no livelock: fewer than driver.LIVELOCK_EVENTS events at one simulated
  instant (the engine itself stops a run with a `livelock` hazard at 20,000).
- `armed_backed` -- `armed != 0` in the guest page implies a host timer armed for that
  deadline, a latched expiry or a pending KVM_REQ_LAZY_TSCDEADLINE. Where the host keeps
  no copy of it (page unmapped, or cached_armed == 0 under a non-zero guest `armed`),
  kick and clear return at their guard and nothing will ever clear it: the patch's known
  hang, reported as the finding `known_hang` rather than as a violation.
- `no_phantom` -- no unwanted interrupt: lazy mode takes no more timer interrupts while
  the guest wants nothing (after the wanted one was delivered, or after it cancelled)
  than classic mode takes on the same program. (An early interrupt for a deadline the
  guest still wants is the V2 design, not a phantom.)
- `page_agrees` -- guest and host views of the page agree: while the host has the page
  mapped (PV MSR enabled, at the address the guest registered), the guest's `armed`
  equals the host's cached_armed after every host function.

Candidates of the first two need the classic oracle (search.Oracle); the others are
judged from the lazy engine's state alone: after every action, and reported if the state
still holds at the next letter (where the guest may act on it) -- a guest's re-registration
after INIT passes through a stale page for a few exits, which is no hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy_host import ARMED, PENDING
from ..vcpu import APIC_LVTT, LVT_MASKED

if TYPE_CHECKING:
    from .driver import Driver

LOST_AFTER_NS = 500_000  # a wanted deadline undelivered this long after its time is lost

INVARIANTS: dict[str, str] = {
    "lost_timer": "no lost timer: every wanted deadline is delivered (something will fire for it)",
    "late_vs_classic": "never an interrupt later than classic mode delivers it (beyond late_tolerance_ns)",
    "livelock": "no livelock: a bounded number of events per simulated instant",
    "armed_backed": "armed != 0 implies a host timer, a latched expiry or a pending request for it",
    "no_phantom": "no unwanted interrupt: no more interrupts while nothing is wanted than classic mode takes",
    "page_agrees": "guest and host views of the page agree (armed == cached_armed while mapped)",
}
FINDINGS: dict[str, str] = {
    **INVARIANTS,
    "known_hang": "the patch's known hang: a non-zero guest `armed` the host keeps no copy of (unmapped or cached_armed == 0)",
}
ORACLE = frozenset({"lost_timer", "late_vs_classic", "no_phantom"})


@dataclass(frozen=True)
class Candidate:
    """A possible violation, found after the action that logged events [first, last)."""

    finding: str
    detail: str
    vcpu: int
    time: int
    first: int
    last: int
    want: int = 0
    want_step: int = -1
    late_by: int = -1  # late_vs_classic: when lazy delivered W (or `time` if still undelivered)
    subclass: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.finding, self.subclass


def is_flag(cand: Candidate) -> bool:
    """The known hang and the page state that leads to it flag a state; they do not end a path."""
    return cand.finding == "known_hang" or (cand.finding == "page_agrees" and cand.subclass == "cached_armed == 0")


def phantom(d: Driver, v: int, event: int, ns: int) -> Candidate:
    """A timer interrupt the guest did not want (the oracle compares with classic mode)."""
    count = d.track.phantoms[v]
    return Candidate("no_phantom", f"vCPU {v}: timer interrupt {count} at {ns} ns while nothing is wanted", v, ns, event, event + 1, want=count, late_by=ns)


def will_deliver(d: Driver, v: int) -> bool:
    """Something will deliver a timer interrupt to vCPU v as things stand (see `lost_timer`)."""
    e = d.engine
    a = e.apic.s[v]
    lvtt = a.lvt[APIC_LVTT]
    if lvtt & LVT_MASKED or not e.apic.apic_enabled(v):
        return True  # the guest's own choice (it wants nothing then)
    t = e.timer.s[v]
    if t.sw_active or t.hv_in_use or t.pending:
        return True
    if ((a.irr | a.isr) >> (lvtt & 0xFF)) & 1:
        return True
    h = d.h_posted
    if any(item[2] == h and item[3] == v for item in e.sched.queue):
        return True
    p = e.lazy.s[v]
    if p.req and p.cached_armed and p.msr_val & 1 and p.mapped:
        return e.mem.read64(p.base + PENDING) > e.mem.read64(p.base + ARMED)
    return False


def _host_copyless(d: Driver, v: int) -> bool:
    p = d.engine.lazy.s[v]
    return not p.mapped or not p.cached_armed


def _backed(d: Driver, v: int, armed: int) -> bool:
    """A host timer for `armed`, a latched expiry, or a request whose kick can act (guard open)."""
    e = d.engine
    t = e.timer.s[v]
    if (t.sw_active or t.hv_in_use) and t.tscdeadline == armed:
        return True
    p = e.lazy.s[v]
    if t.pending or (p.req and p.cached_armed and p.mapped and p.msr_val & 1):
        return True
    h = d.h_posted
    return any(item[2] == h and item[3] == v for item in e.sched.queue)


def _held(d: Driver, cand: Candidate) -> None:
    """A state property is violated now: remember where it started (reported at the next letter)."""
    if cand.key not in d.held:
        d.held[cand.key] = cand


def check_state(d: Driver, first: int, last: int, now: int | None = None) -> list[Candidate]:
    """Every invariant, after the action that logged events [first, last).

    Returns the candidates of event properties (lost, late, livelock); state properties
    go to `d.held` while they hold, and `held_at_boundary` reports them.
    """
    e = d.engine
    if now is None:
        now = e.sched.now
    out: list[Candidate] = []
    tr = d.track
    mem = e.mem
    for v in range(d.nvcpus):
        armed = mem.read64(d.struct_gpa[v] + ARMED)
        copyless = bool(armed) and _host_copyless(d, v)
        if copyless and not tr.hang[v]:
            tr.hang[v] = d.program[-1].letter if d.program else "boot"  # the letter that left it so
        elif not copyless and tr.hang[v]:
            tr.hang[v] = ""
        hang = copyless and not _backed(d, v, armed)
        want = tr.want[v]
        if want:
            due = e.clock.ns_of(v, want)
            delivered = tr.delivered[v]
            flags = tr.flagged[v]
            if delivered < 0 and not flags & 1:
                lost = not will_deliver(d, v)
                why = "nothing will deliver it"
                if not lost and now > due + LOST_AFTER_NS:
                    lost, why = True, f"still undelivered {now - due} ns after its time"
                if lost:
                    tr.flagged[v] |= 1
                    sub = ""
                    if tr.hang[v] and not _backed(d, v, armed):
                        sub = f"known_hang after {tr.hang[v]}"
                    elif e.lazy.s[v].req:
                        sub = "request never served"
                    out.append(Candidate("lost_timer", f"vCPU {v} wants {want:#x}: {why}", v, now, first, last, want, tr.want_step[v], subclass=sub))
            if not flags & 2:
                # Undelivered and nothing will deliver it: lost (above), not late.
                late_at = delivered if delivered >= 0 else (now if now > due + d.tolerance and will_deliver(d, v) else -1)
                if late_at > due + d.tolerance:
                    tr.flagged[v] |= 2
                    state = "delivered" if delivered >= 0 else "still undelivered"
                    out.append(
                        Candidate("late_vs_classic", f"vCPU {v}: {want:#x} {state} {late_at - due} ns after its time", v, now, first, last, want, tr.want_step[v], late_at)
                    )
        if hang:
            _held(d, Candidate("known_hang", f"vCPU {v}: armed {armed:#x} stays: the host keeps no copy", v, now, first, last, subclass=f"after {tr.hang[v]}"))
        elif armed and not _backed(d, v, armed):
            cached = e.lazy.s[v].cached_armed
            _held(d, Candidate("armed_backed", f"vCPU {v}: armed {armed:#x} (cached_armed {cached:#x}) without a host timer for it", v, now, first, last))
        p = e.lazy.s[v]
        if p.mapped and p.msr_val & 1 and p.base == d.struct_gpa[v] and armed != p.cached_armed:
            sub = "cached_armed == 0" if not p.cached_armed else "stale cached_armed"
            _held(d, Candidate("page_agrees", f"vCPU {v}: guest armed {armed:#x}, host cached_armed {p.cached_armed:#x}", v, now, first, last, subclass=sub))
    if d.held:
        _release(d)
    if d.instant_events > d.livelock_events and not d.stuck:
        d.stuck = True
        out.append(Candidate("livelock", f"{d.instant_events} events at {now} ns", -1, now, first, last))
    return out


def _release(d: Driver) -> None:
    """Forget held state candidates whose property holds again."""
    e = d.engine
    for key in list(d.held):
        cand = d.held[key]
        v = cand.vcpu
        armed = e.mem.read64(d.struct_gpa[v] + ARMED)
        p = e.lazy.s[v]
        if key[0] == "known_hang":
            still = bool(armed) and bool(d.track.hang[v]) and f"after {d.track.hang[v]}" == key[1] and not _backed(d, v, armed)
        elif key[0] == "armed_backed":
            still = bool(armed) and not _backed(d, v, armed) and not _host_copyless(d, v)
        else:
            still = p.mapped and bool(p.msr_val & 1) and p.base == d.struct_gpa[v] and armed != p.cached_armed
            still = still and key[1] == ("cached_armed == 0" if not p.cached_armed else "stale cached_armed")
        if not still:
            del d.held[key]


def held_at_boundary(d: Driver) -> list[Candidate]:
    """The state candidates that still hold at a letter boundary."""
    if not d.held:
        return []
    _release(d)
    return list(d.held.values())
