"""Bad input: the broken-scenario corpus, through the loader and the CLI (DESIGN.md 4, 5).

Every file in tests/data/bad_scenarios has one mistake and a `.expected` file with the one
line lazytsc must print (after `lazytsc: error: `): `FILE:LINE: field: what was expected`.
The line numbers and fields were checked by hand against each file.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from lazytsc.cli import main
from lazytsc.scenario import ScenarioError, check_scenario, load_scenario
from lazytsc_testkit import BAD_SCENARIOS, LAZYTSC, REPO

CORPUS = sorted(BAD_SCENARIOS.glob("*.toml"))
IDS = [p.stem for p in CORPUS]


def expected_line(path) -> str:
    text = path.with_suffix(".expected").read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"{path.name}: .expected must be one line"
    return text[:-1]


def test_corpus_is_complete():
    assert len(CORPUS) >= 15
    for path in CORPUS:
        assert path.with_suffix(".expected").exists(), path.name
    kinds = {p.stem for p in CORPUS}
    for needed in (
        "toml_syntax_error",
        "missing_format",
        "format_2",
        "unknown_top_key",
        "unknown_defaults_key",
        "unknown_host_key",
        "unknown_script_key",
        "unknown_workload_key",
        "string_for_int",
        "int_for_bool",
        "out_of_range",
        "unsorted_script_times",
        "unknown_op",
        "missing_op",
        "bad_duration_unit",
        "script_vcpu_out_of_range",
        "bad_breakpoint_kind",
        "bad_condition_syntax",
        "unknown_condition_name",
        "bad_expect_path",
        "binary_garbage",
        "empty",
    ):
        assert needed in kinds


def test_expected_lines_name_their_own_file_and_a_line():
    for path in CORPUS:
        line = expected_line(path)
        head, _, rest = line.partition(": ")
        name, _, lineno = head.partition(":")
        assert name == path.name
        assert lineno.isdigit() and int(lineno) >= 1, line
        assert int(lineno) <= max(1, path.read_bytes().count(b"\n") + 1), line
        assert rest


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_load_scenario_raises_the_expected_error(path, monkeypatch):
    monkeypatch.chdir(BAD_SCENARIOS)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path.name)
    err = info.value
    assert str(err) == expected_line(path)
    assert err.file == path.name
    assert f"{err.file}:{err.line}" == expected_line(path).split(": ", 1)[0]


def _is_utf8(path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("path", [p for p in CORPUS if _is_utf8(p)], ids=lambda p: p.stem)
def test_check_scenario_reports_the_same_first_error(path):
    text = path.read_text(encoding="utf-8")
    sc, errors = check_scenario(text, path.name)
    assert sc is None
    assert errors and str(errors[0]) == expected_line(path)


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_cli_exits_2_with_one_error_line(path, command, monkeypatch, capsys):
    monkeypatch.chdir(BAD_SCENARIOS)
    rc = main([command, path.name])
    out, err = capsys.readouterr()
    assert rc == 2
    assert err == f"lazytsc: error: {expected_line(path)}\n"
    assert "Traceback" not in out + err


def test_cli_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.toml"
    assert main(["run", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lazytsc: error: {missing}: ")
    assert err.count("\n") == 1


def test_cli_bad_mode_argument_exits_2_without_traceback(capsys):
    assert main(["run", "seed_overwrite", "--mode", "sideways"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("lazytsc: error: ")
    assert "Traceback" not in err


def test_real_console_script_on_bad_input():
    """One real process per command of the installed `lazytsc` console script."""
    for args in (["run", "toml_syntax_error.toml", "--json"], ["check", "empty.toml", "format_2.toml"]):
        proc = subprocess.run(
            [str(LAZYTSC), *args], cwd=BAD_SCENARIOS, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2
        assert proc.stdout == ""
        first = args[1]
        assert proc.stderr == f"lazytsc: error: {expected_line(BAD_SCENARIOS / first)}\n"


def test_python_dash_m_lazytsc_on_bad_input():
    proc = subprocess.run(
        [sys.executable, "-m", "lazytsc", "run", str(BAD_SCENARIOS / "binary_garbage.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("lazytsc: error: ") and "UTF-8" in proc.stderr


# ---- regressions: inputs that used to pass validation and then crash ----------------------------
@pytest.mark.parametrize("literal", ["08", "007", "0x_", "0b_"])
def test_malformed_number_in_condition_is_a_one_line_error(literal, tmp_path, capsys):
    path = tmp_path / "cond.toml"
    path.write_text(f'format = 1\n\n[[breakpoint]]\ncondition = "armed == {literal}"\n', encoding="utf-8")
    rc = main(["run", str(path), "--json"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"lazytsc: error: {path}:4: breakpoint[0].condition: a valid condition: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("op", "field", "value"),
    [
        ("wrmsr_tsc_deadline", "value", (1 << 63)),
        ("set_deadline", "tsc", (1 << 64) - 1),
        ("pv_enable", "gpa", (1 << 63) + 64),
        ("ipi", "vector", (1 << 63)),
    ],
)
def test_script_integers_beyond_int64_are_rejected(op, field, value, tmp_path, capsys):
    """The event log holds int64: larger script integers are a validation error (line 6)."""
    path = tmp_path / "big.toml"
    extra = "dest = 0\n" if op == "ipi" else ""
    path.write_text(f'format = 1\n\n[[script]]\nat = "10us"\nop = "{op}"\n{field} = {value}\n{extra}', encoding="utf-8")
    assert main(["run", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert err == f"lazytsc: error: {path}:6: script[0].{field}: a value <= {(1 << 63) - 1} (got {value})\n"


def test_largest_accepted_values_run(tmp_path, capsys):
    """At the edge of the ranges (int64 deadline on a 1 MHz TSC, 1 h durations) runs end."""
    path = tmp_path / "edge.toml"
    path.write_text(
        'format = 1\nduration = "1ms"\n[defaults]\ntsc_khz = 1000\n'
        '[[script]]\nat = "10us"\nop = "wrmsr_tsc_deadline"\nvalue = 9223372036854775807\n'
        '[[script]]\nat = "20us"\nop = "set_deadline"\ntsc = 9223372036854775807\n'
        '[[script]]\nat = "30us"\nop = "hrtimer_start"\nname = "x"\ndelta = 3600000000000\n'
        '[[script]]\nat = "40us"\nop = "read"\nreg = "tsc_deadline"\nlabel = "r"\n',
        encoding="utf-8",
    )
    assert main(["run", str(path), "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_vcpu_table_id_beyond_max_vcpus_is_rejected():
    text = 'format = 1\n\n[[vcpu]]\nid = 100000\ntimer_backend = "sw"\n'
    sc, errors = check_scenario(text, "huge.toml")
    assert sc is None
    assert str(errors[0]) == "huge.toml:4: vcpu[0].id: a vCPU index from 0 to 63"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('format = 1\n\n[[script]]\nat = 1\n!!!\n', "bad.toml:5: script[0]: valid TOML (Invalid statement at column 1)"),
        ('format = 1\n[host]\nexit_cost_ns = 6 00\n', "bad.toml:3: host.exit_cost_ns: valid TOML (Expected newline or end of document after a statement at column 18)"),
        ('format = 1\n[[bookmark]]\nname = "unterminated\n', "bad.toml:3: bookmark[0].name: valid TOML (Illegal character '\\n' at column 21)"),
        ("format = 1\nexplain = '''\nnever closed\n", "bad.toml:2: explain: valid TOML (Expected \"'''\" at the end of the file)"),
    ],
)
def test_toml_syntax_errors_name_the_line_and_the_key_or_table(text, expected):
    """Syntax errors used to name no field (767 of 1,648 fuzzed rejections)."""
    _sc, errors = check_scenario(text, "bad.toml")
    assert str(errors[0]) == expected


def test_utf8_error_names_line_column_and_key():
    data = b'format = 1\n[[bookmark]]\nname = "caf' + b"\xe9" + b'"\n'
    from lazytsc.scenario import _utf8_error

    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        err = _utf8_error("x.toml", data, exc)
    assert str(err) == "x.toml:3: bookmark[0].name: UTF-8 text (byte 0xe9 at column 12)"
