"""The fuzz suite's shared kit: input budget per area, hang watchdog, outcome tally.

`LAZYTSC_FUZZ_SIZE=small` (default, CI: the whole suite in well under a minute on two
cores, reproducible) or `large` (on demand: at least 3,000 inputs per area, fresh
random seeds). Test modules import this file as `lazytsc_fuzzkit`:

    from lazytsc_fuzzkit import fuzz_settings, record, watchdog

    @fuzz_settings("scenarios", small=150)
    @given(...)
    def test_x(...):
        with watchdog():
            ...
        record("scenarios", "clean error")

At the end of a run that used it, pytest prints one line per area: inputs tried,
clean errors, accepted inputs, tracebacks, hangs, data losses (the last three must
be 0: any one fails its test, and hypothesis shrinks it to a minimal reproducer).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

SIZE = os.environ.get("LAZYTSC_FUZZ_SIZE", "small").strip().lower() or "small"
if SIZE not in ("small", "large"):
    raise RuntimeError(f"LAZYTSC_FUZZ_SIZE must be 'small' or 'large' (got {SIZE!r})")
LARGE = SIZE == "large"
LARGE_MIN = 3_000  # inputs per area at the large size
HANG_SECONDS = 20 if LARGE else 10

OUTCOMES = ("clean error", "accepted", "traceback", "hang", "data loss")
_tally: dict[str, Counter] = defaultdict(Counter)


def fuzz_settings(area: str, small: int, large: int = LARGE_MIN, **extra) -> settings:
    """Hypothesis settings for one fuzz test of `area`: `small` examples in CI, `large` on demand.

    Several tests may share an area; at the large size each gets `large` examples.
    """
    return settings(
        max_examples=max(large, LARGE_MIN) if LARGE else small,
        deadline=None,
        derandomize=not LARGE,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
        **extra,
    )


def record(area: str, outcome: str, n: int = 1) -> None:
    """Count one input of `area` by its outcome (see OUTCOMES)."""
    assert outcome in OUTCOMES, outcome
    _tally[area][outcome] += n


class Hang(Exception):
    """An input took longer than the watchdog allows."""


@contextmanager
def watchdog(seconds: float = HANG_SECONDS, area: str = "") -> Iterator[None]:
    """Fail (as a hang) when the block runs longer than `seconds` (SIGALRM: main thread only)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(_sig, _frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Hang:
        if area:
            record(area, "hang")
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def tally() -> dict[str, Counter]:
    return _tally


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook
    if not _tally:
        return
    tr = terminalreporter
    tr.section(f"fuzz figures (LAZYTSC_FUZZ_SIZE={SIZE})")
    header = f"{'area':14} {'inputs':>8} " + " ".join(f"{o:>12}" for o in OUTCOMES)
    tr.write_line(header)
    for area in sorted(_tally):
        c = _tally[area]
        total = sum(c.values())
        tr.write_line(f"{area:14} {total:8,} " + " ".join(f"{c[o]:12,}" for o in OUTCOMES))


sys.modules["lazytsc_fuzzkit"] = sys.modules[__name__]
