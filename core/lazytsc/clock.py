"""Guest TSC per vCPU: frequency and offset, integer conversions only.

guest_tsc(ns) = ns * tsc_khz / 10^6 + offset. A write of IA32_TSC changes the offset
(kvm_set_msr_common -> kvm_synchronize_tsc / adjust_tsc_offset_guest); deadlines
written later compare against the new TSC, while a host timer already armed keeps the
host time it was armed for (KVM never re-arms the hrtimer or the VMX preemption timer
on a TSC offset change).
"""

from __future__ import annotations


class TscClock:
    __slots__ = ("khz", "offset")

    def __init__(self, khz: list[int]) -> None:
        self.khz = list(khz)
        self.offset = [0] * len(khz)

    def tsc(self, vid: int, ns: int) -> int:
        """Guest TSC at simulated time `ns`."""
        return ns * self.khz[vid] // 1_000_000 + self.offset[vid]

    def ns_of(self, vid: int, tsc: int) -> int:
        """Earliest simulated ns at which the guest TSC reaches `tsc`."""
        return -((-(tsc - self.offset[vid]) * 1_000_000) // self.khz[vid])

    def cycles(self, vid: int, ns: int) -> int:
        """nsec_to_cycles(): a duration in guest TSC cycles (truncated)."""
        return ns * self.khz[vid] // 1_000_000

    def ns_for_cycles(self, vid: int, cycles: int) -> int:
        """(cycles * 10^6) / virtual_tsc_khz, truncated: start_sw_tscdeadline's do_div."""
        return cycles * 1_000_000 // self.khz[vid]

    def write(self, vid: int, now: int, value: int) -> None:
        """IA32_TSC := value at `now`: only the offset changes."""
        self.offset[vid] = value - now * self.khz[vid] // 1_000_000

    def save(self) -> list[int]:
        return list(self.offset)

    def restore(self, offset: list[int]) -> None:
        self.offset = list(offset)
