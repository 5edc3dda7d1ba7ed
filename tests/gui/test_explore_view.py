"""Tools ▸ Explore driven through its real widgets: a small search, progress, the findings
table, and a double-click that opens the counterexample stopped at its violating event.

The search is tiny (depth 2, one variant, one host setup, in-process) so it runs in a
second or two.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from lazytsc_gui.explore_view import FINDING_COLUMNS, ExploreView

Qt = QtCore.Qt


def configure(view: ExploreView, out: Path) -> None:
    view.variant.setCurrentText("v2")
    view.depth.setValue(2)
    view.jobs.setValue(1)
    for name, box in view.setup_boxes.items():
        box.setChecked(name == "hv")
    view.out_dir.setText(str(out))


def run(view: ExploreView, qtbot) -> None:
    with qtbot.waitSignal(view.finished, timeout=120_000):
        QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert not view.runner.busy


@pytest.fixture
def view(qtbot, tmp_path):
    v = ExploreView()
    qtbot.addWidget(v)
    configure(v, tmp_path / "cx")
    v.show()
    qtbot.waitExposed(v)
    return v


def test_in_the_tools_menu(win, qtbot):
    tools = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Tools")
    assert win.a_explore in tools.actions()
    win.a_explore.trigger()
    qtbot.waitExposed(win.explore_view)
    assert win.explore_view.isVisible() and win.explore_view.run_button.isEnabled()


def test_search_lists_verified_findings_and_what_holds(view, qtbot, tmp_path):
    seen: list[dict] = []
    view.status_changed.connect(seen.append)
    run(view, qtbot)
    assert any(st.get("states", 0) > 1 for s in seen for st in s["tasks"].values()), "progress reports states as it goes"
    assert view.progress.value() == view.progress.maximum() == 1
    assert view.progress.text().startswith("done in ")
    assert view.last_error == ""
    rows = view.findings.rowCount()
    assert rows >= 2, "V2 at depth 2 has the INIT and re-registration findings"
    col = {name: i for i, name in enumerate(FINDING_COLUMNS)}
    findings = {view.findings.item(r, col["finding"]).text() for r in range(rows)}
    assert "known_hang (after init)" in findings
    assert "page_agrees (stale cached_armed)" in findings
    for r in range(rows):
        assert view.findings.item(r, col["verified"]).text() == "yes"
        assert Path(view.finding_file(r)).is_file()
    summary = view.summary.toPlainText()
    assert "V2: livelock holds up to depth 2" in summary
    assert view.searches.item(0, 2).text() == "2/2"
    png = tmp_path / "explore.png"
    assert view.grab().save(str(png))


def test_stop_ends_a_deep_search_and_keeps_what_it_reached(view, qtbot):
    """A search far too deep to finish stops on Stop: the worker processes end, the depth
    it completed is shown, and the findings of that depth are listed, shrunk and verified."""
    view.depth.setValue(12)
    view.jobs.setValue(2)
    view.setup_boxes["sw"].setChecked(True)
    QTest.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.runner.busy and view.cancel_button.isEnabled() and not view.run_button.isEnabled()

    def reached_depth_3() -> bool:
        item = view.searches.item(0, 2)
        return item is not None and item.text().startswith(("3/", "4/", "5/"))

    qtbot.waitUntil(reached_depth_3, timeout=120_000)
    with qtbot.waitSignal(view.finished, timeout=120_000):
        QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert not view.runner.busy and view.run_button.isEnabled()
    assert not multiprocessing.active_children(), "the worker processes ended"
    assert view.report is not None and len(view.report.tasks) == 2
    assert all(2 <= t.depth_done < 12 for t in view.report.tasks)
    col = {name: i for i, name in enumerate(FINDING_COLUMNS)}
    findings = {view.findings.item(r, col["finding"]).text() for r in range(view.findings.rowCount())}
    assert "known_hang (after init)" in findings


def test_no_setup_chosen_cannot_start(view):
    for box in view.setup_boxes.values():
        box.setChecked(False)
    assert not view.run_button.isEnabled()
    assert view.start() is False


def test_bad_alphabet_is_one_line_error(view, tmp_path):
    bad = tmp_path / "alphabet.toml"
    bad.write_text('format = 1\nletters = ["dl_far", "warp"]\n')
    view.alphabet.setText(str(bad))
    assert view.start() is False
    assert view.last_error.startswith(f"{bad}:2: letters: letter names among")
    assert not view.runner.busy


def test_double_click_opens_the_counterexample_stopped_at_the_violation(make_window, qtbot, tmp_path):
    win = make_window("lazy")
    win.show_explore()
    view = win.explore_view
    configure(view, tmp_path / "cx")
    run(view, qtbot)
    col = {name: i for i, name in enumerate(FINDING_COLUMNS)}
    row = next(r for r in range(view.findings.rowCount()) if view.findings.item(r, col["finding"]).text() == "known_hang (after init)")
    path = view.finding_file(row)
    text = Path(path).read_text()
    index = int(text.split('condition = "index == ')[1].split('"')[0])
    view.findings.scrollToItem(view.findings.item(row, 0))
    rect = view.findings.visualItemRect(view.findings.item(row, 0))
    QTest.mouseClick(view.findings.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(view.findings.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: win.controller.doc is not None and win.controller.doc.scenario.path == path, timeout=30_000)
    qtbot.waitUntil(lambda: win.controller.position == index + 1 and not win.controller.runner.busy, timeout=30_000)
    assert win.controller.hit_event == index
    win.grab().save(str(tmp_path / "opened.png"))
