"""Durations: integers are nanoseconds; strings carry a unit ("250us", "1.5ms", "2s").

Parsed with integer arithmetic on the decimal digits so "1.5ms" is exactly
1_500_000 ns: event ordering never sees a float.
"""

from __future__ import annotations

import re

_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*(ns|us|µs|ms|s)\s*$")


def parse_duration(value: object) -> int:
    """Return nanoseconds for an int (ns) or a string with a unit; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration: an integer of ns or a string like \"250us\"")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration >= 0")
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError('a duration like "250us", "1.5ms", "2s" or an integer of ns')
        whole, frac, unit = match.groups()
        if len(whole.lstrip("0")) > 19 or (frac and len(frac) > 30):
            raise ValueError(f"a duration below 2^63 ns (got {value[:30]!r}{'...' if len(value) > 30 else ''})")
        scale = _UNITS_NS[unit]
        ns = int(whole) * scale
        if frac:
            num = int(frac) * scale
            den = 10 ** len(frac)
            if num % den:
                raise ValueError(f"a duration that is a whole number of ns (got {value!r})")
            ns += num // den
        return ns
    raise ValueError('a duration: an integer of ns or a string like "250us"')
