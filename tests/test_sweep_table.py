"""Sweep rows without running the engine: lines for plots, ratios, and the terminal columns.

Figures here are made-up counts (unit tests of the row arithmetic, not of the model).
"""

from __future__ import annotations

import pytest
from lazytsc.scenario import Scenario
from lazytsc.sweep import Point
from lazytsc.sweep_table import SweepResult, cut, ratio


def result(keys, combos, figures, modes=("classic", "lazy")) -> SweepResult:
    points = [Point(i, tuple(zip(keys, combo, strict=True)), Scenario()) for i, combo in enumerate(combos)]
    return SweepResult("demo", "demo.toml", list(keys), modes, points, figures)


def f(total: int, halt: int = 0, **extra: int) -> dict:
    return {"exits.total": total, "exits.by_reason.halt": halt, **extra}


def test_ratio_and_cut_are_none_without_a_classic_count():
    assert ratio(5, 0) is None and cut(5, 0) is None
    assert ratio(1, 3) == 0.333333 and cut(1, 4) == 0.75


def test_series_one_line_per_other_setting_and_mode():
    r = result(
        ("seed", "host.exit_cost_ns"),
        [(1, 300), (1, 600), (2, 300), (2, 600)],
        [{"classic": f(10), "lazy": f(5)}, {"classic": f(8), "lazy": f(6)},
         {"classic": f(12), "lazy": f(3)}, {"classic": f(9), "lazy": f(9)}],
    )
    lines = r.series("exits.total", "both", "host.exit_cost_ns")
    assert [(s.label, s.xs, s.ys) for s in lines] == [
        ("seed=1 · classic", [300.0, 600.0], [10, 8]),
        ("seed=1 · lazy", [300.0, 600.0], [5, 6]),
        ("seed=2 · classic", [300.0, 600.0], [12, 9]),
        ("seed=2 · lazy", [300.0, 600.0], [3, 9]),
    ]
    (pooled,) = r.series("exits.total", "ratio", "host.exit_cost_ns", pool_seeds=True)
    assert pooled.label == "lazy / classic"
    assert pooled.ys == [pytest.approx((5 + 3) / (10 + 12)), pytest.approx((6 + 9) / (8 + 9))]
    (cut_line,) = r.series("exits.total", "cut", "host.exit_cost_ns", pool_seeds=True)
    assert cut_line.ys[1] == pytest.approx(1 - 15 / 17)


def test_series_over_a_word_setting_uses_positions_and_labels():
    r = result(("variant",), [("v2",), ("v3",)], [{"lazy": f(4)}, {"lazy": f(7)}], modes=("lazy",))
    values, xs, labels = r.x_axis("variant")
    assert (values, xs, labels) == (["v2", "v3"], [0.0, 1.0], ["v2", "v3"])
    (line,) = r.series("exits.total", "lazy", "variant")
    assert line.ys == [4, 7] and line.label == "lazy"


def test_host_timer_figures_get_a_terminal_column_when_the_summary_has_them():
    """Host-side expiry counts are whatever `timer.*host*` figure the engine reports."""
    with_host = result(("seed",), [(1,)], [{"classic": f(10, **{"timer.host_expiries": 4}),
                                            "lazy": f(5, **{"timer.host_expiries": 6})}])
    assert ("host_expiries", "ratio", "ratio.timer.host_expiries") in with_host.text_columns()
    text = with_host.to_text()
    assert "host_expiries" in text.splitlines()[1] and "1.50" in text.splitlines()[-1]
    without = result(("seed",), [(1,)], [{"classic": f(10), "lazy": f(5)}])
    assert not any("host" in c[0] for c in without.text_columns())


def test_missing_figure_is_an_empty_cell_not_a_zero():
    r = result(("seed",), [(1,), (2,)], [{"classic": f(10, x=1), "lazy": f(5, x=2)}, {"classic": f(10), "lazy": f(5)}])
    header, first, second = r.to_csv().splitlines()
    cols = header.split(",")
    assert first.split(",")[cols.index("lazy.x")] == "2"
    assert second.split(",")[cols.index("lazy.x")] == "" and second.split(",")[cols.index("ratio.x")] == ""
