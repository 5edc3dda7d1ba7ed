"""Formatting of times and values for labels, tables and tooltips (no Qt)."""

from __future__ import annotations


def fmt_ns(ns: int | float, signed: bool = False) -> str:
    """`150.000 µs`, `2.500 ms`, `1.234567 s`: unit chosen by magnitude, integers exact below 1 µs."""
    sign = ""
    if signed:
        sign = "+" if ns >= 0 else "-"
        ns = abs(ns)
    elif ns < 0:
        return "-" + fmt_ns(-ns)
    if ns < 1_000:
        return f"{sign}{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{sign}{ns / 1e3:.3f} µs"
    if ns < 1_000_000_000:
        return f"{sign}{ns / 1e6:.3f} ms"
    return f"{sign}{ns / 1e9:.6f} s"


def fmt_s(seconds: float, signed: bool = False) -> str:
    return fmt_ns(seconds * 1e9, signed)


def fmt_hex(value: int) -> str:
    return f"{value:#x}" if value > 0xFF or value < 0 else str(value)


def fmt_count(value: int) -> str:
    return f"{value:,}"


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "0%"


def fmt_short(ns: int | float, signed: bool = False) -> str:
    """Three significant digits: `+46.0 ms`, `1.00 µs`, `250 ns`."""
    sign = ("+" if ns >= 0 else "-") if signed else ("-" if ns < 0 else "")
    v = abs(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if v >= scale:
            x = v / scale
            return f"{sign}{x:.3g} {unit}" if x < 1000 else f"{sign}{x:,.0f} {unit}"
    return f"{sign}{v:.0f} ns"


def position_text(position: int, total: int) -> str:
    """One wording for the cursor everywhere: `at #26 (27 of 28 events done)`.

    Position p means events #0 … #p-1 have happened; the current event is #p-1.
    """
    if position <= 0:
        return f"at the start (0 of {total:,} events done)"
    return f"at #{position - 1:,} ({position:,} of {total:,} events done)"
