"""Sweep settings: `--set key=v1,v2` keys, values read as TOML, the product, and the errors.

The contract: a swept value is parsed and validated exactly as if it had been written
into the scenario file, so every check here compares against the validator's verdict
on the edited file text, never against a message copied from the sweep module.
"""

from __future__ import annotations

import pytest
from lazytsc.scenario import ScenarioError, check_scenario, parse_scenario
from lazytsc.sweep import MAX_POINTS, build_points, count_points, parse_setting, toml_value

BASE = """\
format = 1
name = "sweep base"
seed = 3
duration = "200us"
vcpus = 2

[defaults]
timer_backend = "hv"

[host]
exit_cost_ns = 600

[[vcpu]]
id = 1
tsc_khz = 3000000

[[script]]
at = "10us"
op = "set_next_event"
delta = "50us"
"""


def points(*sets: str, text: str = BASE):
    return build_points(text, "base.toml", [parse_setting(s) for s in sets])


def error_of(*sets: str, text: str = BASE) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        points(*sets, text=text)
    return info.value


# ---- values are TOML values ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("600", 600),
        ("0x400ec", 0x400EC),
        ("1_000", 1000),
        ("-5", -5),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ('"1us"', "1us"),
        ("1us", "1us"),  # not TOML: a bare word stays a string, as a duration string would be written
        ("v3", "v3"),
        (" sw ", "sw"),
        ("'hv'", "hv"),
    ],
)
def test_values_read_as_toml(text, value):
    got = toml_value(text)
    assert got == value and type(got) is type(value)


def test_setting_values_in_given_order_with_ranges():
    s = parse_setting("seed=5,1..3,9")
    assert s.key == "seed" and s.path == ("seed",)
    assert s.values == (5, 1, 2, 3, 9)


@pytest.mark.parametrize(
    ("arg", "path"),
    [
        ("seed=1", ("seed",)),
        ("duration=1ms", ("duration",)),
        ("variant=v3", ("variant",)),
        ("vcpus=2", ("vcpus",)),
        ("defaults.reprogram_jitter_cycles=8", ("defaults", "reprogram_jitter_cycles")),
        ("host.wakeup_latency_ns=8us", ("host", "wakeup_latency_ns")),
        ("workload.hz=250", ("workload", "hz")),
        ("vcpu.1.timer_backend=sw", ("vcpu", 1, "timer_backend")),
        ("script.0.delta=20us", ("script", 0, "delta")),
    ],
)
def test_key_forms(arg, path):
    assert parse_setting(arg).path == path


@pytest.mark.parametrize(
    ("arg", "field", "expected_part"),
    [
        ("seed", "", "KEY=VALUE"),
        ("=1", "", "KEY=VALUE"),
        ("nonsense=1", "nonsense", "a scenario setting"),
        ("host=1", "host", "a scenario setting"),
        ("host.a.b=1", "host.a.b", "a scenario setting"),
        ("mode=lazy", "mode", "--mode both"),
        ("vcpu.x.tsc_khz=1", "vcpu.x.tsc_khz", "an index"),
        ("seed=1,,2", "seed", "a value between every pair of commas"),
        ("seed=", "seed", "a value"),
        ("seed=2,2", "seed", "distinct values"),
        ("seed=1,1..3", "seed", "distinct values"),
        ("seed=5..1", "seed", "low <= high"),
    ],
)
def test_malformed_settings(arg, field, expected_part):
    with pytest.raises(ScenarioError) as info:
        parse_setting(arg)
    exc = info.value
    assert exc.file == f"--set {arg}" and exc.line == 0 and exc.field == field
    assert expected_part in exc.expected
    assert str(exc).startswith(f"--set {arg}: ")


# ---- the product ----------------------------------------------------------------------------
def test_product_order_first_setting_slowest():
    pts = points("seed=1,2", "host.exit_cost_ns=100,200,300")
    assert count_points([parse_setting("seed=1,2"), parse_setting("host.exit_cost_ns=100,200,300")]) == 6
    assert [p.index for p in pts] == list(range(6))
    assert [dict(p.values) for p in pts] == [
        {"seed": s, "host.exit_cost_ns": c} for s in (1, 2) for c in (100, 200, 300)
    ]
    assert [(p.scenario.run.seed, p.scenario.run.host.exit_cost_ns) for p in pts] == [
        (s, c) for s in (1, 2) for c in (100, 200, 300)
    ]


def test_no_settings_is_one_point_the_file_itself():
    (only,) = points()
    assert only.values == ()
    assert only.scenario.run == parse_scenario(BASE, "base.toml").run


def test_durations_are_reported_in_ns():
    pts = points("host.exit_cost_ns=1us,250", "duration=1ms")
    assert [dict(p.values) for p in pts] == [
        {"host.exit_cost_ns": 1000, "duration": 1_000_000},
        {"host.exit_cost_ns": 250, "duration": 1_000_000},
    ]


def _edited(section_line: str, new_line: str, text: str = BASE) -> str:
    """The base file with one key line replaced, as a user would edit it."""
    assert section_line in text
    return text.replace(section_line, new_line)


@pytest.mark.parametrize(
    ("arg", "old", "new"),
    [
        ("host.exit_cost_ns=2us", "exit_cost_ns = 600", 'exit_cost_ns = "2us"'),
        ("defaults.timer_backend=sw", 'timer_backend = "hv"', 'timer_backend = "sw"'),
        ("vcpu.1.tsc_khz=2500000", "tsc_khz = 3000000", "tsc_khz = 2500000"),
        ("seed=0x10", "seed = 3", "seed = 0x10"),
        ("duration=1ms", 'duration = "200us"', 'duration = "1ms"'),
        ("script.0.delta=20us", 'delta = "50us"', 'delta = "20us"'),
    ],
)
def test_point_equals_the_edited_file(arg, old, new):
    (point,) = points(arg)
    edited = parse_scenario(_edited(old, new), "base.toml")
    assert point.scenario.run == edited.run
    assert point.scenario.script == edited.script


def test_new_keys_are_added_where_the_file_would_have_them():
    (point,) = points("host.wakeup_latency_ns=3us", "vcpu.0.timer_backend=sw", "workload.hz=100",
                      text=BASE.replace("[[script]]", "[workload]\nkind = \"periodic_tick\"\n\n[[script]]"))
    run = point.scenario.run
    assert run.host.wakeup_latency_ns == 3000
    assert [v.timer_backend for v in run.vcpus] == ["sw", "hv"], "vcpu.0 only, vcpu 1 keeps the default"
    assert run.vcpus[1].tsc_khz == 3_000_000, "the file's [[vcpu]] id = 1 table is kept"
    assert point.scenario.workload == ("periodic_tick", {"hz": 100})


def test_vcpu_key_names_the_vcpu_id_not_the_table_position():
    text = BASE.replace("[[script]]", "[[vcpu]]\nid = 0\ntsc_khz = 1000000\n\n[[script]]")
    assert [v.tsc_khz for v in parse_scenario(text).run.vcpus] == [1_000_000, 3_000_000]
    (point,) = points("vcpu.0.tsc_khz=4000000", text=text)
    assert [v.tsc_khz for v in point.scenario.run.vcpus] == [4_000_000, 3_000_000]


def test_the_base_data_is_not_shared_between_points():
    pts = points("vcpu.0.timer_backend=sw,hv")
    assert [p.scenario.run.vcpus[0].timer_backend for p in pts] == ["sw", "hv"]
    assert [p.scenario.run.vcpus[1].timer_backend for p in pts] == ["hv", "hv"]


# ---- bad values: the validator's own words, located at the --set ------------------------------
@pytest.mark.parametrize(
    ("arg", "old", "new"),
    [
        ("host.exit_cost_ns=abc", "exit_cost_ns = 600", "exit_cost_ns = abc"),
        ("host.exit_cost_ns=1.5ns", "exit_cost_ns = 600", 'exit_cost_ns = "1.5ns"'),
        ("host.exit_cost_ns=5s", "exit_cost_ns = 600", 'exit_cost_ns = "5s"'),
        ("defaults.timer_backend=xx", 'timer_backend = "hv"', 'timer_backend = "xx"'),
        ("defaults.timer_backend=1", 'timer_backend = "hv"', "timer_backend = 1"),
        ("vcpu.1.tsc_khz=10", "tsc_khz = 3000000", "tsc_khz = 10"),
        ("vcpu.1.tsc_khz=1.5", "tsc_khz = 3000000", "tsc_khz = 1.5"),
        ("seed=-1", "seed = 3", "seed = -1"),
        ("variant=v9", 'duration = "200us"', 'duration = "200us"\nvariant = "v9"'),
        ("host.nope=1", "exit_cost_ns = 600", "exit_cost_ns = 600\nnope = 1"),
        ("defaults.x2apic=yes", 'timer_backend = "hv"', 'timer_backend = "hv"\nx2apic = "yes"'),
    ],
)
def test_bad_value_gets_the_validators_verdict(arg, old, new):
    exc = error_of(arg)
    edited_text = _edited(old, new)
    if "abc" in arg:  # not TOML in a file at all; on the command line it is the string "abc"
        edited_text = _edited(old, 'exit_cost_ns = "abc"')
    _sc, errors = check_scenario(edited_text, "base.toml")
    assert errors, "the edited file is invalid too"
    key = arg.split("=", 1)[0]
    assert (exc.file, exc.line, exc.field) == (f"--set {arg}", 0, key)
    assert exc.expected == errors[0].expected


def test_error_names_the_offending_value_among_several():
    exc = error_of("seed=1,2", "host.exit_cost_ns=100,zzz")
    assert str(exc).startswith("--set host.exit_cost_ns=zzz: host.exit_cost_ns: ")


def test_cross_field_error_is_pinned_on_the_setting_that_broke_it():
    tcp = "format = 1\nvcpus = 2\nduration = \"1ms\"\n\n[workload]\nkind = \"tcp_rr\"\n"
    exc = error_of("vcpus=2,1", text=tcp)
    assert str(exc) == "--set vcpus=1: vcpus: at least 2 vCPUs for workload tcp_rr"
    exc = error_of("workload.server_vcpu=1,2", text=tcp)
    assert str(exc) == "--set workload.server_vcpu=2: workload.server_vcpu: a vCPU index below vcpus = 2 (got 2)"


def test_a_vcpu_beyond_the_scenario_is_an_error_at_its_set():
    exc = error_of("vcpu.5.tsc_khz=2000000")
    assert exc.file == "--set vcpu.5.tsc_khz=2000000"
    assert exc.field == "vcpu.5.id" and "a vCPU index from 0 to 1" in exc.expected


def test_script_index_beyond_the_script():
    exc = error_of("script.3.delta=1us")
    assert (exc.file, exc.field) == ("--set script.3.delta=1us", "script.3")
    assert "entries 0 to 0" in exc.expected


def test_one_key_in_two_sets_is_refused():
    exc = error_of("seed=1", "seed=2")
    assert exc.field == "seed" and "one --set only" in exc.expected


def test_too_many_points_refused_before_validation():
    exc = error_of(f"seed=1..{MAX_POINTS}", "host.exit_cost_ns=1,2")
    assert f"at most {MAX_POINTS} points" in exc.expected and str(2 * MAX_POINTS) in exc.expected
