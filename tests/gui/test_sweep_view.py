"""The parameter-sweep window driven through its real widgets: settings, a background run
with progress and cancel, the plot against a swept setting, PNG and CSV export.

Sweeps are tiny: the built-in seed_overwrite runs 400us of simulated time.
"""

from __future__ import annotations

import numpy as np
import pytest
from lazytsc.cli import main
from lazytsc.resources import builtin_scenarios
from lazytsc.scenario import load_scenario
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from lazytsc_gui.sweep_view import SweepView

Qt = QtCore.Qt


@pytest.fixture
def view(qtbot):
    v = SweepView()
    qtbot.addWidget(v)
    v.set_scenario(load_scenario(builtin_scenarios()["seed_overwrite"]))
    v.jobs.setValue(1)
    v.show()
    qtbot.waitExposed(v)
    return v


def set_rows(view: SweepView, *rows: tuple[str, str]) -> None:
    """Type the settings into the rows the way a user would (first row reused)."""
    while len(view.rows) < len(rows):
        QTest.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
    while len(view.rows) > len(rows):
        QTest.mouseClick(view.rows[-1].remove, Qt.MouseButton.LeftButton)
    for row, (key, values) in zip(view.rows, rows, strict=True):
        row.key.setCurrentText("")
        QTest.keyClicks(row.key.lineEdit(), key)
        row.values.clear()
        QTest.keyClicks(row.values, values)


def run(view: SweepView, qtbot, timeout: int = 60_000) -> None:
    with qtbot.waitSignal(view.finished, timeout=timeout):
        QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert not view.runner.busy


def curves(view: SweepView):
    return [item for item in view.plot.getPlotItem().listDataItems()]


def test_opened_from_the_run_menu_with_the_open_scenario(win, qtbot):
    run_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Run")
    assert win.a_sweep in run_menu.actions()
    win.a_sweep.trigger()
    view = win.sweep_view
    qtbot.waitExposed(view)
    assert view.isVisible() and view.scenario is win.scenario
    assert "Seed: five writes" in view.scenario_label.text()
    assert [r.text() for r in view.rows] == ["seed=1..4"], "a runnable first setting"
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
    keys = [view.rows[0].key.itemText(i) for i in range(view.rows[0].key.count())]
    assert {"seed", "duration", "host.exit_cost_ns", "defaults.reprogram_jitter_cycles", "vcpu.0.timer_backend"} <= set(keys)


def test_sweep_plots_one_line_per_other_setting_and_mode(view, qtbot):
    set_rows(view, ("seed", "1,2"), ("script.0.delta", "50us,100us,200us"))
    assert view.count.text() == "6 points · 12 runs"
    run(view, qtbot)
    result = view.result
    assert result is not None and len(result.points) == 6
    assert view.x_key.currentText() == "script.0.delta", "the first numeric setting other than the seed"
    assert view.figure.currentText() == "exits.total"
    assert view.show_what.currentData() == "both"
    lines = curves(view)
    assert [c.name() for c in lines] == ["seed=1 · classic", "seed=1 · lazy", "seed=2 · classic", "seed=2 · lazy"]
    for item, series in zip(lines, result.series("exits.total", "both", "script.0.delta"), strict=True):
        xs, ys = item.getData()
        assert list(xs) == [50_000.0, 100_000.0, 200_000.0]
        assert list(ys) == series.ys
    # the plotted numbers are the sweep's rows
    x_values = [dict(p.values)["script.0.delta"] for p in result.points]
    seed1 = [result.figures[i]["lazy"]["exits.total"] for i, p in enumerate(result.points) if dict(p.values)["seed"] == 1]
    assert list(lines[1].getData()[1]) == seed1 and x_values[:3] == [50_000, 100_000, 200_000]


def test_ratio_summed_over_seeds_is_one_line(view, qtbot):
    set_rows(view, ("seed", "1,2"), ("script.0.delta", "50us,200us"))
    run(view, qtbot)
    view.figure.setCurrentText("exits.msr_write.tsc-deadline")
    view.show_what.setCurrentIndex(view.show_what.findData("ratio"))
    QTest.mouseClick(view.pool_seeds, Qt.MouseButton.LeftButton)
    assert view.pool_seeds.isChecked()
    (line,) = curves(view)
    assert line.name() == "lazy / classic"
    r = view.result
    for j, delta in enumerate((50_000, 200_000)):
        rows = [i for i, p in enumerate(r.points) if dict(p.values)["script.0.delta"] == delta]
        lazy = sum(r.figures[i]["lazy"]["exits.msr_write.tsc-deadline"] for i in rows)
        classic = sum(r.figures[i]["classic"]["exits.msr_write.tsc-deadline"] for i in rows)
        assert line.getData()[1][j] == pytest.approx(lazy / classic)


def test_non_numeric_setting_gets_named_ticks(view, qtbot):
    set_rows(view, ("variant", "v2,v3"))
    run(view, qtbot)
    assert view.x_key.currentText() == "variant"
    ticks = view.plot.getAxis("bottom")._tickLevels
    assert ticks == [[(0.0, "v2"), (1.0, "v3")]]
    assert [c.name() for c in curves(view)] == ["classic", "lazy"]


def test_bad_value_is_one_line_error_and_nothing_runs(view, qtbot):
    set_rows(view, ("host.exit_cost_ns", "300,abc"))
    assert view.start() is False or view.runner.busy
    qtbot.waitUntil(lambda: not view.runner.busy, timeout=20_000)
    assert view.result is None
    assert view.last_error.startswith("--set host.exit_cost_ns=abc: host.exit_cost_ns: a duration like")
    assert view.status.text().startswith("lazytsc: error: --set host.exit_cost_ns=abc")
    set_rows(view, ("nonsense", "1"))
    assert view.start() is False
    assert view.last_error.startswith("--set nonsense=1: nonsense: a scenario setting")
    assert view.run_button.isEnabled(), "the window stays usable"


def test_invalid_point_reported_from_the_worker(view, qtbot):
    """A value only the validator can judge (a vCPU index beyond the scenario) fails in the job."""
    set_rows(view, ("vcpus", "1,0"))
    with qtbot.waitSignal(view.finished, timeout=20_000):
        assert view.start()
    assert view.last_error == "--set vcpus=0: vcpus: a value >= 1 (got 0)"


def test_runs_in_the_background_and_cancels(qtbot):
    """A long sweep leaves the UI thread free (events are processed), and Cancel stops it."""
    view = SweepView()
    qtbot.addWidget(view)
    view.set_scenario(load_scenario(builtin_scenarios()["tcp_rr"]))
    view.jobs.setValue(1)
    view.show()
    set_rows(view, ("seed", "1..200"), ("duration", "5ms"))
    assert view.start()
    assert view.runner.busy and view.cancel_button.isEnabled() and not view.run_button.isEnabled()
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=30_000)
    assert "runs" in view.status.text() and "ETA" in view.status.text()
    with qtbot.waitSignal(view.finished, timeout=30_000):
        QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    timer.stop()
    assert len(ticks) > 3, "the UI thread kept running its event loop"
    assert view.result is None and view.status.text().startswith("Cancelled")
    assert view.run_button.isEnabled()


def test_pool_of_two_gives_the_cli_rows_and_csv_export(view, qtbot, tmp_path, capsys):
    view.jobs.setValue(2)
    set_rows(view, ("seed", "1,2"), ("script.0.delta", "50us,100us"))
    run(view, qtbot)
    target = tmp_path / "sweep.csv"
    view.export_csv(str(target))
    assert main(["sweep", str(builtin_scenarios()["seed_overwrite"]), "--set", "seed=1,2",
                 "--set", "script.0.delta=50us,100us", "--csv", "--jobs", "1"]) == 0
    assert target.read_text() == capsys.readouterr().out


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_png_export_has_a_title_naming_scenario_and_sweep(view, qtbot, tmp_path, theme):
    from lazytsc_gui import themes

    themes.manager().set_theme(theme, QtWidgets.QApplication.instance())
    try:
        set_rows(view, ("seed", "1,2"), ("script.0.delta", "50us,100us,200us"))
        run(view, qtbot)
        title = view.plot_title()
        assert title.startswith("Seed: five writes overwritten before they expire: exits.total (classic and lazy) vs script.0.delta")
        assert "sweep: seed = 1, 2; script.0.delta = 50000, 100000, 200000" in title
        assert "Seed: five writes" in view.plot.getPlotItem().titleLabel.text
        png = tmp_path / f"sweep-{theme}.png"
        view.export_png(str(png), width=1200)
        image = QtGui.QImage(str(png))
        assert not image.isNull() and image.width() == 1200
        # not blank: the plot draws in several colours
        arr = np.frombuffer(image.convertToFormat(QtGui.QImage.Format.Format_RGB32).constBits(), dtype=np.uint8)
        assert len(np.unique(arr.reshape(-1, 4)[:, :3], axis=0)) > 20
        view.grab().save(str(tmp_path / f"window-{theme}.png"))
    finally:
        themes.manager().set_theme("dark", QtWidgets.QApplication.instance())


def test_closing_the_main_window_stops_a_running_sweep(win, qtbot):
    win.a_sweep.trigger()
    view = win.sweep_view
    view.set_scenario(load_scenario(builtin_scenarios()["tcp_rr"]))
    view.jobs.setValue(1)
    set_rows(view, ("seed", "1..200"), ("duration", "5ms"))
    assert view.start()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=30_000)
    win.close()
    assert not view.runner.busy and not view.isVisible()
