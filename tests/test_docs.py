"""The committed scenario-format doc is generated from the field specs and must match them."""

from pathlib import Path

from lazytsc.docgen import generate

ROOT = Path(__file__).resolve().parents[1]


def test_scenario_format_doc_is_up_to_date():
    committed = (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    assert committed == generate(), "run: python -m lazytsc.docgen > docs/scenario-format.md"


def test_every_top_level_key_is_documented():
    doc = generate()
    for key in ("format", "seed", "duration", "variant", "timer_backend", "timer_advance_ns",
                "cpuid_lazy", "min_timer_period_us", "set_next_event", "wrmsr_tsc_deadline",
                "pv_enable", "migrate", "condition", "rel_tolerance", "tcp_rr"):
        assert f"`{key}`" in doc or f'"{key}"' in doc, key


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    head = "\n".join(lines[:6])
    assert "make run" in head and "make test" in head
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
