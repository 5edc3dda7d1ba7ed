"""The mechanism tables of docs/model.md (`python -m lazytsc.tcp_rr_evidence`).

Their counts must account for every event they claim to classify: each tsc-deadline
write has exactly one cause, each guest timer interrupt caused by a boundary belongs to
exactly one, and the generated block replaces only the text between its markers.
"""

from __future__ import annotations

from lazytsc.engine import Engine
from lazytsc.taxonomy import Kind
from lazytsc.tcp_rr_evidence import (
    BEGIN,
    CONTEXTS,
    END,
    WRITE_CAUSES,
    main,
    mechanism_counts,
    scenario_for,
)


def counts(name: str, mode: str, settings: dict[str, str] | None = None) -> tuple[dict[str, int], Engine]:
    engine = Engine(scenario_for(name, settings or {}, seed=1, duration="5ms"), mode)
    engine.run()
    return mechanism_counts(engine.log, engine.workload.report()["transactions"]), engine


def test_every_tsc_deadline_write_has_one_cause():
    for mode in ("classic", "lazy"):
        c, engine = counts("tcp_rr", mode)
        total = engine.summary()["exits"]["msr_write"]["tsc-deadline"]
        assert total > 0 and sum(c[f"writes.{name}"] for name in WRITE_CAUSES) == total


def test_boundaries_are_the_fires_not_caused_by_a_fire_and_the_expiries_at_arm():
    """Every host timer fire is a boundary or the kick's re-arm of one; interrupts are
    counted at most once across contexts."""
    for name in ("tcp_rr", "tcp_rr_v3"):
        c, engine = counts(name, "lazy")
        kind = engine.log.column("kind")
        fires = int((kind == Kind.TIMER_FIRE).sum())
        fire_boundaries = sum(c[f"boundaries.{ctx}"] for ctx in CONTEXTS if ctx != "expired at arm")
        assert 0 < fire_boundaries <= fires
        assert sum(c[f"{ctx}.interrupts"] for ctx in CONTEXTS) <= c["timer.interrupts"]
        assert sum(c[f"{ctx}.spurious"] for ctx in CONTEXTS) <= c["timer.spurious"]


def test_classic_has_no_stale_boundaries():
    """Classic mode writes every deadline: nothing fires on a halted vCPU or in idle."""
    c, _ = counts("tcp_rr", "classic")
    assert c["boundaries.sw: halted"] == 0 and c["boundaries.hv: idle, tick stopped"] == 0
    assert c["timer.spurious"] == 0 and c["hv kicks that re-armed"] == 0


def test_update_rewrites_only_the_marked_block(tmp_path):
    doc = tmp_path / "model.md"
    doc.write_text(f"# Model\n\nprose\n\n{BEGIN}\nold\n{END}\n\nmore prose\n")
    assert main(["--seeds", "1", "--duration", "1ms", "--jobs", "1", "--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Model\n\nprose\n\n" + BEGIN) and text.endswith(END + "\n\nmore prose\n")
    assert "old" not in text and "µs per transaction" in text and "V3 published" in text


def test_update_without_markers_is_a_one_line_error(tmp_path, capsys):
    doc = tmp_path / "model.md"
    doc.write_text("# Model\n")
    assert main(["--seeds", "1", "--duration", "1ms", "--jobs", "1", "--update", str(doc)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lazytsc: error: {doc}: the markers ") and err.count("\n") == 1
    assert doc.read_text() == "# Model\n"
