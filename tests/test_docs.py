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


def test_readme_architecture_names_every_engine_module_and_only_real_ones():
    """The architecture block is the newcomer's map of core/lazytsc: no module missing, none stale."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("## Architecture"):]
    block = block[block.index("```") + 3:]
    block = block[: block.index("```")]
    named = set(re.findall(r"\b([a-z_]+\.py)\b", block))
    core = ROOT / "core" / "lazytsc"
    modules = {p.name for p in core.glob("*.py")} - {"__init__.py", "__main__.py"}
    covered = {m for m in modules if m in named or (m.startswith("sweep") and "sweep*.py" in block)}
    assert covered == modules, f"not in the README's architecture: {sorted(modules - covered)}"
    stale = {m for m in named if not (core / m).exists()}
    assert not stale, f"the README names modules that do not exist: {sorted(stale)}"
