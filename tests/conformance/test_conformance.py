"""The conformance suite: every `tests/conformance/*.toml` passes `lazytsc check`.

Each file is our translation of one peer test (kvm-unit-tests, KVM selftests, Cyberus
guest-tests, ACRN FuSa); its `[[expect]]` blocks state what the peer asserts, or -- where
peer and KVM disagree -- what KVM's code does (README.md lists the cases). This module
runs the same evaluation as `lazytsc check` on each and checks that the suite's record
(README.md, CATALOG.md) covers every file.

A case the engine cannot pass yet goes into XFAIL with the precise reason; `strict=True`
makes it fail loudly once the engine is fixed, so the entry is removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lazytsc.cli import run_modes
from lazytsc.expect import evaluate, run_results
from lazytsc.scenario import load_scenario

HERE = Path(__file__).resolve().parent
CASES = sorted(HERE.glob("*.toml"))
CASE_ID = re.compile(r"^([ksca]\d\d[a-z]?)_[a-z0-9_]+\.toml$")
SUITES = {
    "k": "kvm-unit-tests",
    "s": "KVM selftests",
    "c": "Cyberus guest-tests",
    "a": "ACRN",
}
# id -> why the engine does not do what KVM does yet (none at the moment).
XFAIL: dict[str, str] = {}


def case_id(path: Path) -> str:
    match = CASE_ID.match(path.name)
    assert match, f"{path.name}: expected <id>_<short_name>.toml with id like k04, a09b"
    return match.group(1)


def params() -> list:
    out = []
    for path in CASES:
        cid = case_id(path)
        marks = [pytest.mark.xfail(reason=XFAIL[cid], strict=True)] if cid in XFAIL else []
        out.append(pytest.param(path, id=cid, marks=marks))
    return out


@pytest.mark.parametrize("path", params())
def test_case_passes_lazytsc_check(path: Path) -> None:
    """`lazytsc check FILE`: every expectation holds in every mode the case runs."""
    scenario = load_scenario(path)
    engines = run_modes(scenario, scenario.modes)
    per_mode = {mode: run_results(e) for mode, e in engines.items()}
    outcomes = evaluate(scenario, per_mode)
    assert outcomes, f"{path.name} checks nothing"
    failed = [f"{o.expectation.describe()}: expected {o.expected}, got {o.got}" for o in outcomes if not o.ok]
    assert not failed, f"{path.name}:\n  " + "\n  ".join(failed)


@pytest.mark.parametrize("path", params())
def test_case_names_its_source(path: Path) -> None:
    """name/description name the case, the peer suite, its file and function; explain says
    what the peer does and which KVM functions decide it."""
    scenario = load_scenario(path)
    cid = case_id(path)
    assert scenario.name.split(" ", 1)[0].lower() == cid, scenario.name
    suite = SUITES[cid[0]]
    assert suite in scenario.name or suite in scenario.description, f"{path.name}: names no suite {suite!r}"
    assert "**Peer" in scenario.explain and "**KVM" in scenario.explain, f"{path.name}: explain lacks Peer/KVM"
    kvm_part = scenario.explain[scenario.explain.index("**KVM"):]
    assert re.search(r"`[a-z_0-9]+\(", kvm_part), f"{path.name}: the KVM part of explain names no function"
    if "DISAGREEMENT" in scenario.description:
        assert "KVM disagrees" in scenario.explain, f"{path.name}: a disagreement without KVM's side in explain"


def test_readme_and_catalog_list_every_case() -> None:
    """README.md has a row per case; CATALOG.md marks each translated case with its file."""
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    catalog = (HERE / "CATALOG.md").read_text(encoding="utf-8")
    for path in CASES:
        assert f"`{path.name}`" in readme, f"README.md does not list {path.name}"
        cid = case_id(path)
        if cid[-1].isdigit():  # a09b is a variant of the catalog's A09
            assert f"translated: `{path.name}`" in catalog, f"CATALOG.md does not mark {cid.upper()} translated"


def test_suite_covers_every_peer_suite() -> None:
    ids = {case_id(p)[0] for p in CASES}
    assert ids == set(SUITES)
    assert len(CASES) >= 40
