"""`perf kvm stat report` / `live` tables: rows into the exit taxonomy, cross-checked."""

from __future__ import annotations

from pathlib import Path

from lazytsc.traces import import_trace
from lazytsc.traces.perfstat import PerfStatParser, is_header

DATA = Path(__file__).parent / "data" / "traces"

# The seed's classic column (DESIGN.md section 1), as perf kvm stat printed it.
SEED_CLASSIC = {"intr": 37_023, "halt": 2_503_932, "msr-write": 10_046_340,
                "preemption-timer": 29_518}


def test_seed_table() -> None:
    summary = import_trace(DATA / "perf_kvm_stat.txt").summary()
    assert summary["format"] == "perf-kvm-stat"
    exits = summary["exits"]
    assert exits["total"] == 12_617_503
    for reason, n in SEED_CLASSIC.items():
        assert exits["by_reason"][reason] == n
    assert exits["by_reason"]["cpuid"] == 452
    assert exits["by_reason"]["pause"] == 87
    assert exits["by_reason"]["ept-violation"] == 13
    assert exits["by_reason"]["ept-misconfig"] == 138
    # no MSR numbers in the table: every msr-write is sub-reason `other`, with a warning
    assert exits["msr_write"]["other"] == 10_046_340
    assert any("does not print MSR numbers" in w for w in summary["warnings"])
    assert not any("rows sum" in w for w in summary["warnings"])
    assert summary["perf_stat"]["total_samples"] == summary["perf_stat"]["rows_sum"]
    assert summary["per_vcpu"]["all"]["total"] == 12_617_503
    assert summary["events"] == 0 and summary["sim_time_ns"] == 0


def test_rows_that_do_not_sum_to_total_are_a_warning() -> None:
    path = DATA / "perf_kvm_stat_mismatch.txt"
    summary = import_trace(path).summary()
    assert summary["exits"]["total"] == 9_800
    assert f"{path}:3: Total Samples: rows sum to 9800, the table says 10000 (difference 200)" in (
        summary["warnings"]
    )
    # the cut row is skipped with its line number
    assert summary["skipped"] == 1
    assert summary["skipped_examples"][0].startswith(f"{path}:8: perf kvm stat: samples:")


def test_live_intervals_are_summed_and_amd_names_mapped() -> None:
    summary = import_trace(DATA / "perf_kvm_stat_live_amd.txt").summary()
    by = summary["exits"]["by_reason"]
    assert by["msr-write"] == 9_000
    assert by["halt"] == 4_000
    assert by["intr"] == 1_000
    assert by["ept-violation"] == 1_000
    assert summary["exits"]["total"] == 15_000
    assert any("2 VM-EXIT tables summed" in w for w in summary["warnings"])
    assert any("AMD `msr` rows" in w for w in summary["warnings"])


def test_per_vcpu_table_and_percent_check() -> None:
    parser = PerfStatParser()
    text = """Analyze events for all VMs, VCPU 3:

             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time

           MSR_WRITE        900    90.00%    10.00%      0.41us     82.00us      0.92us ( +-   0.05% )
                 HLT        100    50.00%    89.00%      0.57us  10022.00us     40.27us ( +-   0.19% )

Total Samples:1000, Total events handled time:1000.00us.
"""
    for i, line in enumerate(text.splitlines(keepends=True), 1):
        parser.feed(i, line)
    parser.finish("t")
    assert len(parser.tables) == 1
    table = parser.tables[0]
    assert table.vcpu == 3
    assert table.rows_sum() == table.total_samples == 1000
    assert any("Samples%: HLT says 50.00%" in w for w in parser.warnings)
    assert is_header(text.splitlines()[2])


def test_table_for_one_vcpu_goes_to_that_vcpu(tmp_path: Path) -> None:
    path = tmp_path / "vcpu.txt"
    path.write_text(
        "Analyze events for pid(s) 1234, VCPU 1:\n\n"
        "             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time\n\n"
        "                 HLT         10   100.00%   100.00%      0.57us     10.00us      4.00us ( +-   0.19% )\n\n"
        "Total Samples:10, Total events handled time:40.00us.\n"
    )
    summary = import_trace(path).summary()
    assert summary["per_vcpu"]["1"]["by_reason"]["halt"] == 10
