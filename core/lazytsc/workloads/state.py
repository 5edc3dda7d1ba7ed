"""A workload's mutable state: a plain attribute bag (never compiled: its attributes are dynamic).

Deep-copied at checkpoints (engine.save_state); holds no references to the engine.
"""

from __future__ import annotations

from typing import Any


class WorkloadState:
    """Plain attribute bag: deep-copyable, no references to the engine."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
