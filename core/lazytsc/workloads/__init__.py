"""Generated guest workloads (tcp_rr, periodic tick, random reprogramming)."""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from .base import Workload
from .periodic import PeriodicTick
from .random_reprogram import RandomReprogram
from .tcp_rr import TcpRR

WORKLOADS: dict[str, type[Workload]] = {cls.kind: cls for cls in (TcpRR, PeriodicTick, RandomReprogram)}


def make_workload(spec: tuple[str, dict[str, Any]], run: RunConfig) -> Workload:
    kind, params = spec
    return WORKLOADS[kind](params, run)
