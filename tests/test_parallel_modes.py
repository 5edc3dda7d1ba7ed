"""`lazytsc run --mode both` in parallel processes, and tcp_rr_full at the seed's scale.

The modes are independent runs: run side by side they must give exactly what one process
gives one after the other (summaries, event counts, log digests -- DESIGN.md section 7),
and the run in slices of simulated time (progress) must log what one `run()` logs.
"""

from __future__ import annotations

import io
import re
import subprocess

from lazytsc.engine import Engine
from lazytsc.parallel_modes import (
    ModeRunError,
    ModesProgress,
    at_published_scale,
    format_vs_published,
    run_mode,
    run_parallel,
    run_sequential,
)
from lazytsc.resources import builtin_scenario
from lazytsc.scenario import load_scenario
from lazytsc.sensitivity import PUBLISHED
from lazytsc_testkit import LAZYTSC


def tcp_rr(duration_ns: int, name: str = "tcp_rr"):
    sc = load_scenario(builtin_scenario(name))
    sc.run.duration_ns = duration_ns
    return sc


def test_a_run_in_slices_logs_what_one_run_logs():
    sc = tcp_rr(3_000_000)
    whole = Engine(sc, "lazy")
    whole.run()
    sliced = run_mode(sc, "lazy")
    assert (sliced.events, sliced.digest) == (len(whole.log), whole.log.digest())
    assert sliced.summary == whole.summary()


def test_parallel_processes_give_the_sequential_results():
    sc = tcp_rr(4_000_000)
    seen: list[str] = []
    par = run_parallel(sc, ("classic", "lazy"), None, lambda mode, now, end, events: seen.append(mode))
    seq = run_sequential(sc, ("classic", "lazy"))
    assert list(par) == ["classic", "lazy"]
    for mode in par:
        assert (par[mode].summary, par[mode].digest, par[mode].events, par[mode].report) == (
            seq[mode].summary,
            seq[mode].digest,
            seq[mode].events,
            seq[mode].report,
        )
    assert {"classic", "lazy"} <= set(seen)  # progress came from both processes


def test_cli_output_is_the_same_with_one_or_two_processes(tmp_path):
    path = tmp_path / "rr.toml"
    text = builtin_scenario("tcp_rr").read_text(encoding="utf-8").replace('duration = "50ms"', 'duration = "4ms"')
    path.write_text(text, encoding="utf-8")
    one = subprocess.run([str(LAZYTSC), "run", str(path), "--jobs", "1"], capture_output=True, text=True)
    two = subprocess.run([str(LAZYTSC), "run", str(path), "--jobs", "2"], capture_output=True, text=True)
    assert one.returncode == two.returncode == 0, two.stderr
    assert one.stdout == two.stdout
    assert "classic: 100%" in two.stderr and "lazy: 100%" in two.stderr  # progress, not on stdout


def test_a_parallel_run_keeps_the_event_limit():
    """The CLI's --max-events holds in each process: the run stops with the runner's message."""
    sc = tcp_rr(4_000_000)
    try:
        run_parallel(sc, ("classic", "lazy"), 1_000)
    except ModeRunError as exc:
        assert "reached the limit of 1,000 events" in str(exc) and "--max-events" in str(exc)
    else:
        raise AssertionError("no limit")


def test_a_parallel_run_reports_the_error_a_sequential_run_reports():
    """The first mode's stop is the one reported, even when a later mode's process stops
    sooner (here at once: no such mode) -- the output does not depend on which is faster."""
    sc = tcp_rr(20_000_000)
    try:
        run_parallel(sc, ("classic", "no-such-mode"), 30_000)
    except ModeRunError as exc:
        assert str(exc).startswith("the classic run reached the limit of 30,000 events"), str(exc)
    else:
        raise AssertionError("no limit")


def test_progress_on_a_pipe_is_one_line_per_quarter():
    out = io.StringIO()
    p = ModesProgress(["classic", "lazy"], out)
    for now in range(0, 101, 5):
        p("classic", now, 100, now * 10)
    lines = out.getvalue().splitlines()
    assert [line.split("%")[0] for line in lines] == ["classic: 25", "classic: 50", "classic: 75", "classic: 100"]


def test_published_table_puts_the_seeds_counts_beside_the_models_row_by_row():
    sc = tcp_rr(2_000_000)
    summaries = {m: r.summary for m, r in run_sequential(sc, ("classic", "lazy")).items()}
    text = format_vs_published(summaries, "v2")
    lines = text.splitlines()
    assert lines[0].split() == ["VM", "exits", "classic", "seed", "classic", "lazy", "seed", "lazy"]
    rows = {line.split("  ")[0].strip(): line for line in lines[2:]}
    assert list(rows) == ["total", "intr", "halt", "msr-write", "preemption-timer", "msr-write: apic-icr", "msr-write: tsc-deadline"]
    seed = PUBLISHED["v2"]
    # the seed's own numbers, absolute, with its shares as it prints them (truncated: 79%, 74%)
    assert f"{seed['classic']['exits.total']:,}" in rows["total"] and f"{seed['lazy']['exits.total']:,}" in rows["total"]
    assert f"{seed['classic']['exits.by_reason.msr-write']:,} (79%)" in rows["msr-write"]
    assert f"{seed['classic']['exits.msr_write.tsc-deadline']:,} (74%)" in rows["msr-write: tsc-deadline"]
    # and the model's counts in the same row
    cells = re.split(r"\s{2,}", rows["halt"])
    assert cells[1].startswith(f"{summaries['classic']['exits']['by_reason']['halt']:,} (")
    assert cells[3].startswith(f"{summaries['lazy']['exits']['by_reason']['halt']:,} (")


def test_published_columns_only_at_the_published_scale():
    def classic(total):
        return {"classic": {"exits": {"total": total}}, "lazy": {"exits": {"total": 1}}}

    assert at_published_scale(classic(12_000_000), "tcp_rr", "v2")
    assert not at_published_scale(classic(15_651), "tcp_rr", "v2")  # tcp_rr's 50 ms
    assert not at_published_scale(classic(12_000_000), "periodic_tick", "v2")
    assert at_published_scale(classic(10_000_000), "tcp_rr", "v3")


def test_tcp_rr_full_is_tcp_rr_longer():
    """The seed's scale changes only how long the calibrated tcp_rr model runs: same host,
    vCPUs, seed, variant and workload parameters as tcp_rr.toml."""
    full = load_scenario(builtin_scenario("tcp_rr_full"))
    short = load_scenario(builtin_scenario("tcp_rr"))
    assert full.run.duration_ns > 100 * short.run.duration_ns
    full.run.duration_ns = short.run.duration_ns
    assert full.run == short.run
    assert full.workload == short.workload and full.workload[0] == "tcp_rr"
    assert (full.mode, full.script, full.handlers) == (short.mode, short.script, short.handlers)


def test_tcp_rr_full_runs_at_the_seeds_scale():
    """Its duration makes about the seed's 12,617,503 classic exits: the tcp_rr model's exit
    rate is steady, so 1/200 of the run predicts the whole within a few percent."""
    sc = load_scenario(builtin_scenario("tcp_rr_full"))
    full_ns = sc.run.duration_ns
    part = full_ns // 200
    sc.run.duration_ns = part
    exits = run_mode(sc, "classic").summary["exits"]["total"]
    predicted = exits * full_ns / part
    assert abs(predicted - PUBLISHED["v2"]["classic"]["exits.total"]) / PUBLISHED["v2"]["classic"]["exits.total"] < 0.08
