"""Guest memory, as much of it as the protocol touches: 64-bit words by guest physical address.

The guest writes `pending` (and zeroes its struct at registration); the host writes
`armed` through a kernel mapping (kmap in kvm_lazy_tscdeadline_init), which bypasses
KVM's dirty logging. A page the guest dirtied is sent after the action that dirtied it
(a host write in the same exit -- `update` right after the guest's own write -- goes
with it); a host write in a later action (a kick at expiry, a clear) is not logged and
misses the copy until the guest writes the page again. `stale` keeps, per page, what
each such host-written word held when the page was last sent.
"""

from __future__ import annotations

from collections.abc import Callable

PAGE_SHIFT = 12
U64 = (1 << 64) - 1


class GuestMemory:
    __slots__ = ("words", "stale", "dirtied_by", "action")

    def __init__(self, action: Callable[[], int]) -> None:
        self.words: dict[int, int] = {}
        self.stale: dict[int, dict[int, int]] = {}  # page -> {address: value when last sent}
        self.dirtied_by: dict[int, int] = {}  # page -> the action (root event) that last dirtied it
        self.action = action

    def read64(self, addr: int) -> int:
        if addr & 7 == 0:
            return self.words.get(addr, 0)
        base = addr & ~7
        shift = (addr - base) * 8
        low = self.words.get(base, 0) >> shift
        high = self.words.get(base + 8, 0) << (64 - shift)
        return (low | high) & U64

    def _store(self, addr: int, value: int, host: bool) -> None:
        value &= U64
        if addr & 7 == 0:
            parts = ((addr, value, U64),)
        else:
            base = addr & ~7
            shift = (addr - base) * 8
            parts = (
                (base, (value << shift) & U64, (U64 << shift) & U64),
                (base + 8, value >> (64 - shift), (1 << shift) - 1),
            )
        for word, bits, mask in parts:
            old = self.words.get(word, 0)
            if host:
                page = word >> PAGE_SHIFT
                if self.dirtied_by.get(page, -2) != self.action():
                    self.stale.setdefault(page, {}).setdefault(word, old)
            self.words[word] = (old & ~mask) | bits

    def guest_write64(self, addr: int, value: int) -> None:
        """A guest store: dirty-logged, so a migration carries this page as it is now."""
        self._store(addr, value, host=False)
        action = self.action()
        for page in {addr >> PAGE_SHIFT, (addr + 7) >> PAGE_SHIFT}:
            self.stale.pop(page, None)
            self.dirtied_by[page] = action

    def host_write64(self, addr: int, value: int) -> None:
        """A host store through kmap: not dirty-logged."""
        self._store(addr, value, host=True)

    def migration_copy(self) -> dict[int, int]:
        """What a destination receives: every page as of the guest's last write to it."""
        out = dict(self.words)
        for words in self.stale.values():
            out.update(words)
        return out

    def save(self) -> tuple[dict[int, int], dict[int, dict[int, int]], dict[int, int]]:
        return dict(self.words), {p: dict(w) for p, w in self.stale.items()}, dict(self.dirtied_by)

    def restore(self, saved: tuple[dict[int, int], dict[int, dict[int, int]], dict[int, int]]) -> None:
        words, stale, dirtied = saved
        self.words = dict(words)
        self.stale = {p: dict(w) for p, w in stale.items()}
        self.dirtied_by = dict(dirtied)

    def load(self, words: dict[int, int]) -> None:
        """The destination's memory after a migration: current everywhere."""
        self.words = dict(words)
        self.stale = {}
        self.dirtied_by = {}
