"""The headless contract of DESIGN.md section 4: `lazytsc run` and `lazytsc check`.

Numbers for the built-in `seed_overwrite` (five set_next_event calls, 100us ahead, at
10..50us; 400us run) worked out by hand:

classic: 5 requests, 5 WRMSRs (4 of them cancel the previous timer), one expiry at
  149us (preemption-timer exit), one interrupt at 150us.
  exits = 5 msr-write/tsc-deadline + 1 preemption-timer = 6.
lazy: t=0 CPUID + PV-MSR write (2 exits); the first request writes (1 exit), the other
  four are skipped; the armed deadline fires at 109us (exit), kick re-arms `pending`,
  the early interrupt's reprogram is skipped (equal), the re-armed deadline fires at
  149us (exit). exits = 1 cpuid + 2 msr-write (tsc-deadline, pv-lazy-tscdeadline) +
  2 preemption-timer = 5; 6 requests, 1 write, 5 skipped, 2 interrupts, 1 spurious.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from lazytsc.cli import main
from lazytsc_testkit import LAZYTSC, REPO, SCENARIOS

REASONS = ("intr", "cpuid", "halt", "msr-write", "pause", "ept-violation", "ept-misconfig", "preemption-timer")
SUBS = ("tsc-deadline", "apic-icr", "apic-eoi", "pv-lazy-tscdeadline", "other")
TIMER_KEYS = ("deadline_requests", "msr_writes", "msr_writes_skipped", "interrupts", "spurious", "late", "lost")


def run_json(capsys, *args: str):
    rc = main(["run", *args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert out.endswith("\n") and out.count("\n") == 1, "one JSON object on one line"
    return json.loads(out)


def assert_one_mode_shape(obj: dict, mode: str) -> None:
    assert obj["mode"] == mode
    for key in ("events", "sim_time_ns"):
        assert type(obj[key]) is int
    exits = obj["exits"]
    assert type(exits["total"]) is int
    assert set(REASONS) <= set(exits["by_reason"])
    assert set(SUBS) <= set(exits["msr_write"])
    assert all(type(v) is int for v in exits["by_reason"].values())
    assert all(type(v) is int for v in exits["msr_write"].values())
    assert sum(exits["by_reason"].values()) == exits["total"]
    assert sum(exits["msr_write"].values()) == exits["by_reason"]["msr-write"]
    assert set(TIMER_KEYS) <= set(obj["timer"])  # DESIGN.md section 4; more figures may follow
    assert {"interrupts_useful", "host_expiries", "host_timer_fires"} <= set(obj["timer"])
    assert all(type(v) is int for v in obj["timer"].values())


def test_run_json_one_mode_classic(capsys):
    obj = run_json(capsys, "seed_overwrite", "--mode", "classic")
    assert_one_mode_shape(obj, "classic")
    assert obj["sim_time_ns"] == 400_000
    assert obj["exits"]["total"] == 6
    assert obj["exits"]["by_reason"]["msr-write"] == 5
    assert obj["exits"]["by_reason"]["preemption-timer"] == 1
    assert obj["exits"]["msr_write"]["tsc-deadline"] == 5
    assert obj["timer"] == {
        "deadline_requests": 5,
        "msr_writes": 5,
        "msr_writes_skipped": 0,
        "interrupts": 1,
        "interrupts_useful": 1,
        "spurious": 0,
        "late": 0,
        "lost": 0,
        "host_expiries": 1,  # only the last deadline expires
        "host_timer_fires": 1,
        "expiries_dropped": 0,
    }


def test_run_json_one_mode_lazy(capsys):
    obj = run_json(capsys, "seed_overwrite", "--mode", "lazy")
    assert_one_mode_shape(obj, "lazy")
    assert obj["exits"]["total"] == 5
    assert {k: v for k, v in obj["exits"]["by_reason"].items() if v} == {
        "cpuid": 1,
        "msr-write": 2,
        "preemption-timer": 2,
    }
    assert {k: v for k, v in obj["exits"]["msr_write"].items() if v} == {"tsc-deadline": 1, "pv-lazy-tscdeadline": 1}
    assert obj["timer"] == {
        "deadline_requests": 6,
        "msr_writes": 1,
        "msr_writes_skipped": 5,
        "interrupts": 2,
        "interrupts_useful": 1,
        "spurious": 1,
        "late": 0,
        "lost": 0,
        "host_expiries": 2,  # the stale armed deadline and the wanted one both expire on the host
        "host_timer_fires": 2,
        "expiries_dropped": 0,
    }


def test_run_json_both_modes(capsys):
    obj = run_json(capsys, "seed_overwrite", "--mode", "both")
    assert set(obj) == {"classic", "lazy"}
    assert_one_mode_shape(obj["classic"], "classic")
    assert_one_mode_shape(obj["lazy"], "lazy")
    assert obj["classic"]["timer"]["msr_writes"] == 5
    assert obj["lazy"]["timer"]["msr_writes"] == 1


def test_run_json_uses_the_scenario_mode_by_default(capsys):
    assert set(run_json(capsys, "seed_overwrite")) == {"classic", "lazy"}  # mode = "both"


def test_run_accepts_a_path(capsys):
    obj = run_json(capsys, str(SCENARIOS / "seed_overwrite.toml"), "--mode", "classic")
    assert obj["exits"]["total"] == 6


def test_run_text_table_has_the_seed_rows(capsys):
    assert main(["run", "seed_overwrite"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("VM exits"))
    assert header.split() == ["VM", "exits", "classic", "lazy"]
    rows = {}
    for line in lines:
        for label in (
            "total",
            "intr",
            "halt",
            "msr-write",
            "preemption-timer",
            "msr-write: apic-icr",
            "msr-write: tsc-deadline",
        ):
            if line.startswith(label + " ") and not (label == "msr-write" and line.startswith("msr-write:")):
                rows[label] = line[len(label) :].split()
    assert set(rows) == {
        "total",
        "intr",
        "halt",
        "msr-write",
        "preemption-timer",
        "msr-write: apic-icr",
        "msr-write: tsc-deadline",
    }
    assert rows["total"] == ["6", "5"]
    # msr-write sub-reasons are shares of msr-write, reasons shares of the total
    assert rows["msr-write: tsc-deadline"] == ["5", "(100%)", "1", "(50%)"]
    assert rows["msr-write"] == ["5", "(83%)", "2", "(40%)"]
    assert rows["preemption-timer"] == ["1", "(17%)", "2", "(40%)"]


# ---- check ------------------------------------------------------------------------------------
def test_builtin_scenarios_all_pass_check(capsys):
    paths = sorted(str(p) for p in SCENARIOS.glob("*.toml"))
    assert len(paths) >= 4
    rc = main(["check", *paths])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.splitlines()[-1].endswith(" 0 failed")


FALSE_EXPECT = """format = 1
name = "false expectations"
duration = "400us"
[defaults]
reprogram_jitter_cycles = 0
{script}
[[expect]]
name = "five writes"
mode = "classic"
what = "exits.msr_write.tsc-deadline"
equals = 6

[[expect]]
what = "timer.lost"
equals = 1

[[expect]]
mode = "lazy"
what = "timer.msr_writes"
max = 0

[[expect]]
name = "holds"
mode = "lazy"
what = "timer.msr_writes_skipped"
equals = 4
"""


def false_expect_file(tmp_path):
    ops = "\n".join(
        f'[[script]]\nat = "{10 * k}us"\nop = "set_next_event"\ndelta = "100us"\n' for k in range(1, 6)
    )
    path = tmp_path / "false.toml"
    path.write_text(FALSE_EXPECT.format(script=ops), encoding="utf-8")
    return path


def test_check_reports_each_false_expectation(tmp_path, capsys):
    path = false_expect_file(tmp_path)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    failures = [line for line in out if line.startswith(f"{path}: ")]
    assert failures == [
        f"{path}: five writes: expected 6, got 5",
        f"{path}: classic.timer.lost: expected 1, got 0",
        f"{path}: lazy.timer.lost: expected 1, got 0",
        f"{path}: lazy.timer.msr_writes: expected <= 0, got 1",
        f"{path}: holds: expected 4, got 5",
    ]


def test_check_exit_0_when_all_hold(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    text = false_expect_file(tmp_path).read_text().split("[[expect]]")[0]
    text += '[[expect]]\nmode = "classic"\nwhat = "exits.msr_write.tsc-deadline"\nequals = 5\n'
    text += '[[expect]]\nwhat = "reduction.exits.msr_write.tsc-deadline"\nequals = 0.8\n'
    path.write_text(text, encoding="utf-8")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["2 passed, 0 failed"]


def test_check_mixes_files_and_fails_if_any_fails(tmp_path, capsys):
    bad = false_expect_file(tmp_path)
    assert main(["check", str(SCENARIOS / "seed_overwrite.toml"), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "seed_overwrite.toml" not in out  # its expectations hold
    assert f"{bad}: five writes: expected 6, got 5" in out.splitlines()


def test_console_script_check_exit_status(tmp_path):
    bad = false_expect_file(tmp_path)
    proc = subprocess.run([str(LAZYTSC), "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"{bad}: five writes: expected 6, got 5\n" in proc.stdout
    assert proc.stderr == ""


# ---- no Qt on the CLI path ---------------------------------------------------------------------
def test_cli_path_never_imports_pyside6():
    code = (
        "import sys, lazytsc.cli; lazytsc.cli.main(['run','seed_overwrite','--json']); "
        "lazytsc.cli.main(['check','seed_overwrite']); "
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'lazytsc_gui'))]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["lazy"]["timer"]["msr_writes"] == 1


@pytest.mark.parametrize("mode", ["classic", "lazy"])
def test_console_script_run_json(mode):
    proc = subprocess.run(
        [str(LAZYTSC), "run", "seed_overwrite", "--mode", mode, "--json"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout)["mode"] == mode
