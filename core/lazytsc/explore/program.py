"""A guest program as letters, and as the scenario text that replays it.

`Program` is what the shrinker edits: letters with their vCPU and parameters, whose
concrete operations are recomputed from the state each time it is applied. The steps a
Driver recorded (driver.Step) carry the concrete operations and times; `script_text`
turns them into ordinary `[[script]]` entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .driver import Step


@dataclass(frozen=True)
class Word:
    """One letter of a program: which, on which vCPU, with which parameters."""

    letter: str
    vcpu: int = 0
    params: tuple[tuple[str, int], ...] = ()

    def label(self, nvcpus: int) -> str:
        text = self.letter if nvcpus == 1 else f"{self.letter}@{self.vcpu}"
        if self.params:
            text += "(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"
        return text


def words_of(steps: Sequence[Step]) -> tuple[Word, ...]:
    return tuple(Word(s.letter, s.vcpu, s.params) for s in steps)


def _value(x: object) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, str):
        return '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in x) + "]"
    raise TypeError(f"cannot write {x!r} in a scenario")


def script_text(steps: Sequence[Step], nvcpus: int) -> str:
    """`[[script]]` entries for the steps, each letter introduced by a comment."""
    out = []
    for i, step in enumerate(steps, start=1):
        who = "" if nvcpus == 1 else f" (vCPU {step.vcpu})"
        out.append(f"# {i}. {step.letter}{who}: {step.comment}")
        if not step.ops:
            continue
        for name, args in step.ops:
            out.append("[[script]]")
            out.append(f"at = {step.at}")
            if nvcpus > 1:
                out.append(f"vcpu = {step.vcpu}")
            out.append(f'op = "{name}"')
            for key, value in args.items():
                out.append(f"{key} = {_value(value)}")
        out.append("")
    return "\n".join(out) + "\n"
