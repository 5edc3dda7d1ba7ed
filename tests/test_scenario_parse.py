"""Scenario files that are valid (DESIGN.md section 5): what every field turns into."""

from __future__ import annotations

import pytest
from lazytsc.scenario import (
    Bookmark,
    ScenarioError,
    check_scenario,
    load_scenario,
    parse_scenario,
    resolve_scenario_path,
    save_scenario_text,
    with_bookmarks,
)
from lazytsc.units import parse_duration
from lazytsc_testkit import SCENARIOS, scenario


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        (1234, 1234),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("1.5ms", 1_500_000),
        ("1.25us", 1_250),
        ("2s", 2_000_000_000),
        ("10ns", 10),
        (" 3 ms ", 3_000_000),
    ],
)
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["10 parsecs", "1.5ns", "-3us", -1, True, 1.5, "us", "1e3us", ""])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


FULL = """
format = 1
name = "everything"
description = "one of each"
seed = 9
duration = "2ms"
mode = "lazy"
variant = "v3"
vcpus = 2

[defaults]
timer_backend = "sw"
tsc_khz = 3000000
timer_advance_ns = "2us"

[[vcpu]]
id = 1
timer_backend = "hv"
apicv = false
pv_gpa = 0x20000

[host]
min_timer_period_us = 100
wakeup_latency_ns = "5us"

[[script]]
at = "10us"
op = "write"
reg = "lvtt"
value = 0x400ec
note = "hex value"

[[script]]
at = "10us"
vcpu = 1
op = "read"
reg = "tsc_deadline"
label = "dl"

[[breakpoint]]
name = "off"
kind = "kick"
vcpu = 1
condition = "armed == 0 and pending > now"
enabled = false

[[bookmark]]
name = "here"
at = "1ms"
note = "n"

[[expect]]
name = "e"
mode = "lazy"
what = "exits.total"
of = "events"
min = 0.1
max = 0.9
"""


def test_every_section_parses():
    sc = parse_scenario(FULL, "full.toml")
    assert (sc.name, sc.description, sc.mode, sc.modes) == ("everything", "one of each", "lazy", ("lazy",))
    assert (sc.run.seed, sc.run.duration_ns, sc.run.variant, len(sc.run.vcpus)) == (9, 2_000_000, "v3", 2)
    v0, v1 = sc.run.vcpus
    assert (v0.timer_backend, v0.tsc_khz, v0.timer_advance_ns, v0.apicv, v0.pv_gpa) == ("sw", 3_000_000, 2000, True, 0)
    assert (v1.timer_backend, v1.tsc_khz, v1.timer_advance_ns, v1.apicv, v1.pv_gpa) == ("hv", 3_000_000, 2000, False, 0x20000)
    assert (sc.run.host.min_timer_period_us, sc.run.host.wakeup_latency_ns) == (100, 5000)
    assert sc.run.host.sw_timer_latency_ns == 800  # default kept
    first, second = sc.script
    assert (first.at, first.vcpu, first.op, first.args, first.note, first.line) == (
        10_000,
        0,
        "write",
        {"reg": "lvtt", "value": 0x400EC},
        "hex value",
        26,
    )
    assert (second.vcpu, second.op, second.args, second.label) == (1, "read", {"reg": "tsc_deadline"}, "dl")
    (bp,) = sc.breakpoints
    assert (bp.kind, bp.vcpu, bp.condition, bp.enabled, bp.name) == ("kick", 1, "armed == 0 and pending > now", False, "off")
    assert sc.bookmarks == [Bookmark("here", 1_000_000, None, "n")]
    (exp,) = sc.expects
    assert (exp.what, exp.mode, exp.of, exp.min, exp.max, exp.name) == ("exits.total", "lazy", "events", 0.1, 0.9, "e")


def test_defaults_when_omitted():
    sc = parse_scenario("format = 1\n", "bare.toml")
    assert sc.name == "bare"
    assert (sc.mode, sc.run.variant, sc.run.seed, sc.run.duration_ns, len(sc.run.vcpus)) == ("both", "v2", 1, 10_000_000, 1)
    v = sc.run.vcpus[0]
    assert (v.tsc_khz, v.timer_backend, v.timer_advance_ns, v.boot, v.x2apic) == (2_000_000, "hv", 1000, "linux", True)
    assert sc.run.host.min_timer_period_us == 200


def test_vcpu_count_follows_vcpu_tables_when_vcpus_is_absent():
    sc = scenario('[[vcpu]]\nid = 2\ntimer_backend = "sw"\n')
    assert [v.timer_backend for v in sc.run.vcpus] == ["hv", "hv", "sw"]


def test_check_scenario_reports_every_error():
    text = 'format = 1\nvcpus = "x"\ncolour = 1\n[defaults]\nx2apic = 3\n'
    sc, errors = check_scenario(text, "many.toml")
    assert sc is None
    assert [str(e) for e in errors] == [
        "many.toml:3: colour: unknown key (expected one of: bookmark, breakpoint, defaults, description, "
        "duration, expect, explain, format, handler, host, max_events, mode, name, script, seed, variant, vcpu, vcpus, workload)",
        "many.toml:2: vcpus: an integer (got the string 'x')",
        "many.toml:5: defaults.x2apic: true or false (got an integer)",
    ]
    assert [(e.line, e.field) for e in errors] == [(3, "colour"), (2, "vcpus"), (5, "defaults.x2apic")]


def test_equal_script_times_are_in_order():
    sc = scenario('[[script]]\nat = "10us"\nop = "hlt"\n[[script]]\nat = 10000\nop = "cpuid"\n')
    assert [op.at for op in sc.script] == [10_000, 10_000]


def test_builtin_scenarios_load_and_resolve_by_name():
    names = {p.stem for p in SCENARIOS.glob("*.toml")}
    assert {"seed_overwrite", "tcp_rr", "spurious_interrupt", "lvtt_mask_stale_pending"} <= names
    for name in names:
        path = resolve_scenario_path(name)
        assert path.resolve() == (SCENARIOS / f"{name}.toml").resolve()
        sc = load_scenario(path)
        assert sc.expects, f"{name} has no [[expect]]"


def test_save_is_validated_and_atomic(tmp_path):
    target = tmp_path / "s.toml"
    good = 'format = 1\nduration = "1ms"\n'
    sc = save_scenario_text(target, good)
    assert sc.run.duration_ns == 1_000_000
    assert target.read_text() == good
    with pytest.raises(ScenarioError):
        save_scenario_text(target, "format = 1\nvcpus = 0\n")
    assert target.read_text() == good  # unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no temp file left


def test_bookmarks_are_rewritten_and_reparse():
    text = (SCENARIOS / "seed_overwrite.toml").read_text()
    new = with_bookmarks(text, [Bookmark("a", 5000, None, "x"), Bookmark("b", 0, 12)])
    sc = parse_scenario(new, "b.toml")
    assert sc.bookmarks == [Bookmark("a", 5000, None, "x"), Bookmark("b", 0, 12, "")]
    assert sc.script == parse_scenario(text, "b.toml").script
