"""`spin`: the guest's busy-wait loops as the peer suites write them.

`until_irqs = N` waits for N *more* interrupts; `until_total = N` is `while (count < N)`:
it returns at once when N interrupts were already taken (a timer that expired at arm
time is taken at the WRMSR's re-entry, before the loop's first instruction).
"""

from __future__ import annotations

from lazytsc.cli import run_modes
from lazytsc.expect import run_results
from lazytsc.scenario import parse_scenario

HEAD = """
format = 1
mode = "classic"
duration = "3ms"
[defaults]
boot = "reset"
[[handler]]
vector = 0xb0
[[script]]
at = 0
op = "write"
reg = "spiv"
value = 0x1ff
[[script]]
at = 0
op = "write"
reg = "lvtt"
value = 0x400b0
[[script]]
at = 0
op = "wrmsr_tsc_deadline"
ago_cycles = 0
"""
TAIL = """
[[script]]
at = 0
op = "read"
reg = "tsc"
label = "after"
"""


def results(spin: str) -> dict:
    scenario = parse_scenario(HEAD + spin + TAIL, "spin.toml")
    return run_results(run_modes(scenario, ["classic"])["classic"])


def test_until_total_returns_at_once_when_the_count_is_reached() -> None:
    """The deadline is already reached: KVM injects at the WRMSR's re-entry
    (vmx_set_hv_timer expired -> apic_timer_expired), so `while (count < 1)` never loops."""
    got = results('[[script]]\nat = 0\nop = "spin"\nuntil_total = 1\nvector = 0xb0\n')
    assert got["irq"]["count"]["0xb0"] == 1
    assert got["reads"]["after"] - got["irq"]["vcpu0"]["0xb0"]["0"]["tsc"] < 10


def test_until_irqs_waits_for_one_more() -> None:
    """`until_irqs` counts interrupts from the spin on: the one already taken does not count,
    so the spin runs to its timeout."""
    got = results('[[script]]\nat = 0\nop = "spin"\nuntil_irqs = 1\ntimeout = "1ms"\n')
    assert got["irq"]["count"]["0xb0"] == 1
    assert got["reads"]["after"] >= 2 * 1_000_000  # 1 ms at 2 GHz


def test_until_total_waits_for_the_missing_ones() -> None:
    """Two interrupts wanted, one taken: the spin waits for the missing one (none comes
    here, so it runs to its timeout)."""
    got = results('[[script]]\nat = 0\nop = "spin"\nuntil_total = 2\ntimeout = "500us"\n')
    assert got["irq"]["count"]["0xb0"] == 1
    assert got["reads"]["after"] >= 2 * 500_000
