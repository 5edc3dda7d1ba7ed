"""lazytsc.resources finds the built-in scenarios, icons and demo texts in every layout.

Here: the source checkout (through the editable install and through the plain-checkout
fallback) and a simulated frozen app. The installed-wheel layout is tested in
tests/test_packaging.py, the real frozen app by `make package-smoke`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lazytsc import resources
from lazytsc.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_RESOURCES = ROOT / "resources"


def test_checkout_resources_found():
    assert resources.resources_dir().resolve() == CHECKOUT_RESOURCES.resolve()
    assert resources.scenarios_dir().resolve() == (CHECKOUT_RESOURCES / "scenarios").resolve()


def test_every_builtin_scenario_listed_sorted_and_loadable():
    on_disk = sorted(p.stem for p in (CHECKOUT_RESOURCES / "scenarios").glob("*.toml"))
    found = resources.builtin_scenarios()
    assert list(found) == on_disk, "builtin_scenarios() must list every resources/scenarios/*.toml"
    assert resources.DEFAULT_SCENARIO in found
    for name, path in found.items():
        assert resources.builtin_scenario(name) == path
        sc = load_scenario(path)  # raises ScenarioError with file:line on a broken built-in
        assert sc.run.vcpus, f"{name}: no vCPUs"


def test_unknown_builtin_scenario_names_the_known_ones():
    with pytest.raises(KeyError, match=resources.DEFAULT_SCENARIO):
        resources.builtin_scenario("no_such_scenario")


def test_icon_and_demo_text():
    icon = resources.icon_path()
    assert icon.is_file() and icon.read_bytes().lstrip().startswith(b"<?xml")
    for size in (16, 32, 48, 256):
        assert resources.icon_path(f"lazytsc-{size}.png").is_file()
    assert isinstance(resources.demo_text(resources.DEFAULT_SCENARIO), str)
    assert resources.demo_text("no_such_demo") == ""


def test_plain_checkout_without_any_install():
    """No editable install, no lazytsc_resources package: the core/../resources fallback."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from lazytsc import resources as r;"
        "print(r.resources_dir()); print(','.join(r.builtin_scenarios()))"
    )
    # -S: no site-packages (so no editable-install finder), -E: ignore PYTHON* variables.
    out = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code, str(ROOT / "core")],
        capture_output=True, text=True, check=True, cwd=os.path.dirname(ROOT),
    ).stdout.splitlines()
    assert Path(out[0]).resolve() == CHECKOUT_RESOURCES.resolve()
    assert out[1].split(",") == list(resources.builtin_scenarios())


def test_frozen_app_layout(tmp_path, monkeypatch):
    """PyInstaller sets sys._MEIPASS; its resources/ wins over every other location."""
    (tmp_path / "resources" / "scenarios").mkdir(parents=True)
    (tmp_path / "resources" / "icons").mkdir()
    (tmp_path / "resources" / "scenarios" / "only_in_bundle.toml").write_text("format = 1\n")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"
    assert list(resources.builtin_scenarios()) == ["only_in_bundle"]
    assert resources.icon_path() == tmp_path / "resources" / "icons" / "lazytsc.svg"


def test_frozen_app_without_resources_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir().resolve() == CHECKOUT_RESOURCES.resolve()
