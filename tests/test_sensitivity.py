"""The sensitivity-table generator (`python -m lazytsc.sensitivity`) on a tiny sweep.

Its numbers must be computed from runs, never typed: the model column is checked against
direct engine runs, the published column against the counts DESIGN.md section 1 quotes.
"""

from __future__ import annotations

from lazytsc.engine import Engine
from lazytsc.scenario import load_scenario, resolve_scenario_path
from lazytsc.sensitivity import BEGIN, END, PARAMETERS, PUBLISHED, main, parameter_values
from lazytsc.sweep import build_points, parse_setting

TINY = ["--seeds", "2", "--duration", "1ms", "--only", "host.exit_cost_ns", "--jobs", "1"]


def rows_of(markdown: str, heading_part: str) -> dict[str, list[str]]:
    """{figure label: cells} of the table under the heading containing `heading_part`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("####") and heading_part in line)
    table = {}
    for line in lines[start + 4 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = cells[1:]
    return table


def _generate(tmp_path, *extra: str) -> str:
    out = tmp_path / "sens.md"
    assert main([*TINY, *extra, "-o", str(out)]) == 0
    return out.read_text()


def test_tiny_sweep_generates_both_tables(tmp_path):
    md = _generate(tmp_path)
    assert md.startswith(BEGIN + "\n") and md.rstrip().endswith(END)
    v2 = rows_of(md, "`tcp_rr` (protocol v2)")
    v3 = rows_of(md, "`tcp_rr_v3` (protocol v3)")
    for table in (v2, v3):
        for label in ("total exits cut", "tsc-deadline writes cut", "halt exits ratio", "apic-icr writes ratio",
                      "guest timer interrupts ratio", "transactions ratio"):
            assert label in table
            published, model, seeds, exit_cost = table[label]
            assert exit_cost.count("·") == 3, "four exit costs: half, the scenario's (bold), double, V3's host (4x)"
            assert f"**{model}**" in exit_cost, "the scenario's own value is the model column"


def test_published_column_is_computed_from_the_quoted_counts(tmp_path):
    md = _generate(tmp_path)
    v2, v3 = rows_of(md, "protocol v2"), rows_of(md, "protocol v3")
    c, lz = PUBLISHED["v2"]["classic"], PUBLISHED["v2"]["lazy"]
    assert v2["total exits cut"][0] == f"{100 * (1 - lz['exits.total'] / c['exits.total']):.1f}%" == "53.9%"
    c, lz = PUBLISHED["v3"]["classic"], PUBLISHED["v3"]["lazy"]
    assert v3["halt exits ratio"][0] == f"{lz['exits.by_reason.halt'] / c['exits.by_reason.halt']:.2f}" == "1.42"
    assert v3["guest timer interrupts ratio"][0] == "1.25"
    assert v2["guest timer interrupts ratio"][0] == "—", "the seed's table has no interrupt counts"


def test_model_column_is_pooled_engine_runs(tmp_path):
    """model = 1 - sum(lazy exits) / sum(classic exits) over the seeds, from direct runs."""
    md = _generate(tmp_path)
    scenario = load_scenario(resolve_scenario_path("tcp_rr"))
    points = build_points(scenario.text, scenario.path, [parse_setting("seed=1..2"), parse_setting("duration=1ms")])
    totals = {}
    for mode in ("classic", "lazy"):
        totals[mode] = 0
        for point in points:
            engine = Engine(point.scenario, mode)
            engine.run()
            totals[mode] += engine.summary()["exits"]["total"]
    expected = f"{100 * (1 - totals['lazy'] / totals['classic']):.1f}%"
    assert rows_of(md, "protocol v2")["total exits cut"][1] == expected


def test_swept_values_surround_the_scenarios_own():
    scenario = load_scenario(resolve_scenario_path("tcp_rr"))
    by_key = {p.key: p for p in PARAMETERS}
    values, base = parameter_values(scenario, by_key["host.exit_cost_ns"])
    assert values == [base // 2, base, base * 2, base * 4] and base == scenario.run.host.exit_cost_ns
    values, base = parameter_values(scenario, by_key["workload.hz"])
    assert base in values and 250 in values and 100 in values


def test_update_rewrites_only_the_marked_block(tmp_path):
    doc = tmp_path / "model.md"
    doc.write_text(f"# Model\n\nwritten by hand\n\n{BEGIN}\nold numbers\n{END}\n\nmore prose\n")
    assert main([*TINY, "--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Model\n\nwritten by hand\n\n" + BEGIN)
    assert text.endswith(END + "\n\nmore prose\n")
    assert "old numbers" not in text and "total exits cut" in text


def test_update_without_markers_is_a_one_line_error(tmp_path, capsys):
    doc = tmp_path / "model.md"
    doc.write_text("# Model\n")
    assert main([*TINY, "--update", str(doc)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lazytsc: error: {doc}: the markers ") and err.count("\n") == 1
    assert doc.read_text() == "# Model\n"
