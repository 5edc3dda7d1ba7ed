"""`lazytsc sweep`: rows are the engine's own figures, byte-identical for any --jobs, on a
Dask cluster too; CSV/JSON schemas; one-line errors with exit status 2; progress on a TTY.

Runs are tiny (the built-in tcp_rr for 1-2 ms of simulated time) to keep the suite fast.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest
from lazytsc.cli import main
from lazytsc.engine import Engine
from lazytsc.scenario import load_scenario, resolve_scenario_path
from lazytsc.sweep import build_points, parse_setting
from lazytsc.sweep_run import ProgressLine, SweepCancelled, make_tasks, run_tasks
from lazytsc_testkit import LAZYTSC

SWEEP = ["sweep", "tcp_rr", "--set", "seed=1..3", "--set", "duration=1ms,2ms"]


def sweep(capsys, *args: str) -> str:
    rc = main([*SWEEP, *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert err == "", "no progress line when stderr is not a terminal"
    return out


def test_output_identical_for_any_jobs_and_run_to_run(capsys):
    for fmt in ("--csv", "--json", "--table"):
        extra = [] if fmt == "--table" else [fmt]
        one = sweep(capsys, "--jobs", "1", *extra)
        two = sweep(capsys, "--jobs", "2", *extra)
        again = sweep(capsys, "--jobs", "2", *extra)
        assert one == two == again, fmt


def test_rows_are_the_engines_summaries(capsys):
    """Each CSV cell is the figure Engine(scenario, mode).summary() gives for that point."""
    doc = json.loads(sweep(capsys, "--json"))
    scenario = load_scenario(resolve_scenario_path("tcp_rr"))
    points = build_points(scenario.text, scenario.path, [parse_setting("seed=1..3"), parse_setting("duration=1ms,2ms")])
    assert [p["settings"] for p in doc["points"]] == [dict(p.values) for p in points]
    for row, point in zip(doc["points"], points, strict=True):
        for mode in ("classic", "lazy"):
            engine = Engine(point.scenario, mode)
            engine.run()
            summary = engine.summary()
            assert row[mode]["exits.total"] == summary["exits"]["total"]
            assert row[mode]["exits.by_reason.halt"] == summary["exits"]["by_reason"]["halt"]
            assert row[mode]["exits.msr_write.tsc-deadline"] == summary["exits"]["msr_write"]["tsc-deadline"]
            assert row[mode]["exits.msr_write.apic-icr"] == summary["exits"]["msr_write"]["apic-icr"]
            assert row[mode]["timer.interrupts"] == summary["timer"]["interrupts"]
            assert row[mode]["timer.spurious"] == summary["timer"]["spurious"]
            assert row[mode]["workload.transactions"] == engine.workload.report()["transactions"]


def test_json_schema(capsys):
    doc = json.loads(sweep(capsys, "--json"))
    assert doc["format"] == 1
    assert doc["scenario"] == "netperf TCP_RR (2 vCPUs)" and doc["file"] == "tcp_rr"
    assert doc["settings"] == [
        {"key": "seed", "values": [1, 2, 3]},
        {"key": "duration", "values": [1_000_000, 2_000_000]},
    ]
    assert doc["modes"] == ["classic", "lazy"]
    for name in ("exits.total", "exits.by_reason.halt", "exits.msr_write.tsc-deadline",
                 "exits.msr_write.apic-icr", "timer.interrupts", "timer.spurious", "workload.transactions"):
        assert name in doc["figures"]
    assert [p["index"] for p in doc["points"]] == list(range(6))
    for p in doc["points"]:
        assert set(p) == {"index", "settings", "classic", "lazy", "ratio", "cut"}
        for part in ("classic", "lazy", "ratio", "cut"):
            assert list(p[part]) == doc["figures"]
        total_c, total_l = p["classic"]["exits.total"], p["lazy"]["exits.total"]
        assert p["ratio"]["exits.total"] == round(total_l / total_c, 6)
        assert p["cut"]["exits.total"] == round(1 - total_l / total_c, 6)
        assert p["ratio"]["exits.by_reason.pause"] is None, "no ratio over a zero classic count"


def test_csv_schema(capsys):
    out = sweep(capsys, "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    header, body = rows[0], rows[1:]
    figures = [c.removeprefix("classic.") for c in header if c.startswith("classic.")]
    assert header == ["seed", "duration"] + [f"{m}.{f}" for m in ("classic", "lazy", "ratio", "cut") for f in figures]
    assert len(body) == 6 and all(len(r) == len(header) for r in body)
    assert [r[:2] for r in body] == [[str(s), str(d)] for s in (1, 2, 3) for d in (1_000_000, 2_000_000)]
    col = {name: i for i, name in enumerate(header)}
    for r in body:
        classic, lazy = int(r[col["classic.exits.msr_write.tsc-deadline"]]), int(r[col["lazy.exits.msr_write.tsc-deadline"]])
        assert float(r[col["cut.exits.msr_write.tsc-deadline"]]) == pytest.approx(1 - lazy / classic, abs=1e-6)
        assert r[col["ratio.exits.by_reason.pause"]] == ""


def test_one_mode_has_no_ratios(capsys):
    out = sweep(capsys, "--csv", "--mode", "lazy")
    header = out.splitlines()[0].split(",")
    assert header[:2] == ["seed", "duration"]
    assert all(c.startswith("lazy.") for c in header[2:])


def test_text_table_names_the_key_figures(capsys):
    out = sweep(capsys)
    lines = out.splitlines()
    assert lines[0] == "netperf TCP_RR (2 vCPUs): 6 points x classic/lazy"
    for word in ("seed", "duration", "exits", "halt", "tsc-deadline", "apic-icr", "timer irqs", "spurious", "transactions"):
        assert word in lines[1]
    for word in ("classic", "lazy", "cut", "ratio"):
        assert word in lines[2]
    assert len(lines) == 4 + 6
    assert lines[4].split()[:2] == ["1", "1000000"], "setting values as they would be typed"


def test_output_file_gets_the_same_bytes(capsys, tmp_path):
    target = tmp_path / "sweep.csv"
    assert main([*SWEEP, "--csv", "-o", str(target)]) == 0
    out, _err = capsys.readouterr()
    assert out == ""
    assert target.read_text() == sweep(capsys, "--csv")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--set", "host.exit_cost_ns=300,abc"],
         'lazytsc: error: --set host.exit_cost_ns=abc: host.exit_cost_ns: a duration like "250us", "1.5ms", "2s" or an integer of ns'),
        (["--set", "host.bogus=1"], "lazytsc: error: --set host.bogus=1: host.bogus: unknown key (expected one of: "),
        (["--set", "bogus=1"], "lazytsc: error: --set bogus=1: bogus: a scenario setting: "),
        (["--set", "vcpus=1"], "lazytsc: error: --set vcpus=1: vcpus: at least 2 vCPUs for workload tcp_rr"),
        (["--set", "seed=1", "--jobs", "0"], "lazytsc: error: argument --jobs: a number of worker processes >= 1 (got '0')"),
        (["--set", "seed=1", "--dask", "nohost"], "lazytsc: error: --dask nohost: a scheduler address like tcp://HOST:PORT"),
        (["--set", "seed=1", "-o", "/nonexistent-dir/x.csv"], "lazytsc: error: /nonexistent-dir/x.csv: a writable file"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, args, line):
    rc = main(["sweep", "tcp_rr", "--set", "duration=1ms", *args])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    messages = [m for m in err.splitlines() if m.startswith("lazytsc: error:")]
    assert len(messages) == 1 and messages[0].startswith(line), err
    assert "Traceback" not in err


def test_bad_scenario_file_keeps_its_location(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\nduration = \"soon\"\n")
    assert main(["sweep", str(bad), "--set", "seed=1,2"]) == 2
    assert capsys.readouterr().err == f"lazytsc: error: {bad}:2: duration: a duration like \"250us\", \"1.5ms\", \"2s\" or an integer of ns\n"


def test_installed_command_error_contract():
    proc = subprocess.run([str(LAZYTSC), "sweep", "tcp_rr", "--set", "defaults.timer_backend=hv,xx"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "lazytsc: error: --set defaults.timer_backend=xx: defaults.timer_backend: one of 'hv', 'sw' (got 'xx')\n"


def test_progress_line_counts_runs_and_clears_itself():
    stream = io.StringIO()
    progress = ProgressLine(stream, enabled=True)
    for done in range(4):
        progress(done, 3 if done < 4 else 3)
    progress.finish()
    text = stream.getvalue()
    assert "sweep: 0/3 runs (0%)" in text and "ETA -" in text
    assert "sweep: 3/3 runs (100%)" in text and "ETA 0:00" in text
    assert text.endswith("\r") and "\n" not in text


def test_progress_line_silent_off_a_terminal():
    stream = io.StringIO()
    progress = ProgressLine(stream)
    progress(1, 2)
    progress.finish()
    assert stream.getvalue() == ""


def _tasks(n_seeds: int):
    scenario = load_scenario(resolve_scenario_path("tcp_rr"))
    points = build_points(scenario.text, scenario.path, [parse_setting(f"seed=1..{n_seeds}"), parse_setting("duration=1ms")])
    return make_tasks(points, ("classic", "lazy"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_cancel_stops_the_sweep(jobs):
    seen = []
    with pytest.raises(SweepCancelled):
        run_tasks(_tasks(20), jobs=jobs, progress=lambda done, total: seen.append(done), cancel=lambda: len(seen) > 1)
    assert seen[-1] < 40


def test_dask_cluster_gives_the_same_rows(capsys):
    distributed = pytest.importorskip("distributed")
    local = sweep(capsys, "--csv", "--jobs", "1")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        assert main([*SWEEP, "--csv", "--dask", cluster.scheduler_address]) == 0
        out, _err = capsys.readouterr()
    assert out == local
