"""Shrinking a counterexample: fewest letters first, then the smallest parameters.

A candidate program reproduces a finding if applying its letters from the root state
(re-deriving every deadline from the state, as the search did) raises the same finding
and subclass, confirmed by the classic oracle where the finding needs it. Deletion tries
halves, quarters, ... down to single letters; then each parameter is tried at its
minimum and otherwise bisected down (the smallest value found that still reproduces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .alphabet import LETTERS
from .driver import Checkpoint, Driver, Step
from .invariants import ORACLE, Candidate
from .program import Word
from .search import SETTLE_NS, Oracle

MAX_REPLAYS = 600


@dataclass(frozen=True)
class Reproduction:
    words: tuple[Word, ...]
    index: int  # the step after which the finding is raised (len(words): in the program end)
    candidate: Candidate
    steps: tuple[Step, ...]  # the concrete steps, up to and including `index`
    detail: str

    @property
    def settled(self) -> bool:
        return self.index >= len(self.words)


class Shrinker:
    def __init__(self, driver: Driver, root: Checkpoint, oracle: Oracle) -> None:
        self.driver = driver
        self.root = root
        self.oracle = oracle
        self.replays = 0

    def reproduce(self, words: Sequence[Word], key: tuple[str, str]) -> Reproduction | None:
        """Apply `words` from the root; the first candidate with `key` (confirmed), or None."""
        self.replays += 1
        d = self.driver
        d.restore(self.root)
        for i, w in enumerate(words):
            letter = LETTERS.get(w.letter)
            if letter is None or w.vcpu >= d.nvcpus:
                return None
            if letter.scope == "guest" and d.waiting(w.vcpu):
                return None
            params = dict(w.params)
            move = letter.build(d, w.vcpu, params)
            if move is None:
                return None
            found = self._match(d.apply(letter, w.vcpu, move, params), key)
            if found is not None:
                return Reproduction(tuple(words), i, found[0], tuple(d.program), found[1])
            if d.stuck:
                return None
        found = self._match(d.settle(SETTLE_NS), key)
        if found is not None:
            return Reproduction(tuple(words), len(words), found[0], tuple(d.program), found[1])
        return None

    def _match(self, cands: list[Candidate], key: tuple[str, str]) -> tuple[Candidate, str] | None:
        for cand in cands:
            if cand.key != key:
                continue
            if cand.finding in ORACLE:
                ok, detail = self.oracle.confirms(tuple(self.driver.program), cand, self.driver.tolerance)
                if ok:
                    return cand, detail
                continue
            return cand, cand.detail
        return None

    def shrink(self, words: Sequence[Word], key: tuple[str, str]) -> Reproduction | None:
        best = self.reproduce(words, key)
        if best is None:
            return None
        best = self._truncate(best, key)
        changed = True
        while changed and self.replays < MAX_REPLAYS:
            changed = False
            smaller = self._delete(best, key)
            if smaller is not best:
                best, changed = smaller, True
            smaller = self._params(best, key)
            if smaller is not best:
                best, changed = smaller, True
        return best

    def _truncate(self, rep: Reproduction, key: tuple[str, str]) -> Reproduction:
        if rep.settled or rep.index == len(rep.words) - 1:
            return rep
        cut = self.reproduce(rep.words[: rep.index + 1], key)
        return cut if cut is not None else rep

    def _delete(self, rep: Reproduction, key: tuple[str, str]) -> Reproduction:
        size = max(1, len(rep.words) // 2)
        while size >= 1 and self.replays < MAX_REPLAYS:
            i = 0
            while i < len(rep.words) and self.replays < MAX_REPLAYS:
                trial = rep.words[:i] + rep.words[i + size :]
                found = self.reproduce(trial, key) if trial else None
                if found is not None:
                    rep = self._truncate(found, key)
                else:
                    i += size
            size //= 2
        return rep

    def _params(self, rep: Reproduction, key: tuple[str, str]) -> Reproduction:
        for i in range(len(rep.words)):
            specs = {p.name: p for p in LETTERS[rep.words[i].letter].params}
            for name, _value in rep.words[i].params:
                spec = specs[name]
                value = dict(rep.words[i].params)[name]  # as shrunk so far
                if value <= spec.minimum:
                    continue
                found = self.reproduce(_with_param(rep.words, i, name, spec.minimum), key)
                if found is not None:
                    rep = found
                    continue
                low, high = spec.minimum, value  # low fails, high reproduces
                while high - low > spec.step and self.replays < MAX_REPLAYS:
                    mid = (low + high) // 2
                    mid -= mid % spec.step
                    if mid <= low:
                        break
                    found = self.reproduce(_with_param(rep.words, i, name, mid), key)
                    if found is not None:
                        rep, high = found, mid
                    else:
                        low = mid
        return rep


def _with_param(words: tuple[Word, ...], i: int, name: str, value: int) -> tuple[Word, ...]:
    w = words[i]
    params = tuple((k, value if k == name else v) for k, v in w.params)
    return words[:i] + (Word(w.letter, w.vcpu, params),) + words[i + 1 :]
