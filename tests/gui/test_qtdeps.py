"""The newcomer path: which system libraries Qt's plugins need, and README's apt list.

Qt's own message, when a library of its xcb plugin is missing, names xcb-cursor0
whatever is missing; `lazytsc-gui` reads the plugin's ELF DT_NEEDED entries (what
`readelf -d` / `ldd` list) and names the missing libraries and their packages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lazytsc_gui import app, qtdeps

REPO = Path(__file__).resolve().parents[2]


def readme_apt_packages() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"sudo apt-get install -y \\\n(.*?)\n```", text, re.S)
    assert block, "README has the apt-get install block"
    return set(block.group(1).replace("\\", " ").split())


@pytest.mark.skipif(qtdeps.qt_dir() is None, reason="PySide6 not installed")
def test_elf_needed_reads_the_xcb_plugin():
    needed = qtdeps.system_needed("xcb")
    # the two that made `make run` fail on a fresh desktop, and the one Qt blamed
    assert {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb.so.1", "libxcb-cursor.so.0"} <= set(needed)


@pytest.mark.skipif(qtdeps.qt_dir() is None, reason="PySide6 not installed")
@pytest.mark.parametrize("platform", ["xcb", "wayland", "offscreen"])
def test_readme_apt_list_covers_every_plugin_dependency(platform):
    listed = readme_apt_packages()
    for soname in qtdeps.system_needed(platform):
        assert soname in qtdeps.SONAME_PACKAGES, f"{soname}: add its package to qtdeps.SONAME_PACKAGES"
        assert qtdeps.SONAME_PACKAGES[soname] in listed, f"README's apt list lacks {qtdeps.SONAME_PACKAGES[soname]} ({soname}, {platform})"


def test_missing_libraries_are_named_with_their_packages(capsys):
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}

    def fake_missing(platform):
        return qtdeps.missing_for(platform, loader=lambda name: name if name in gone else "")

    env = {"DISPLAY": ":99"}
    if qtdeps.qt_dir() is None:
        pytest.skip("PySide6 not installed")
    assert app.check_platform_libraries(env, missing_for=fake_missing) is False
    err = capsys.readouterr().err
    assert "missing libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in err
    assert "cursor" not in err
    assert app.check_platform_libraries({"QT_QPA_PLATFORM": "offscreen"}, missing_for=lambda p: []) is True


def test_make_run_reports_a_missing_library(tmp_path, monkeypatch, capsys):
    """`make run` is `lazytsc-gui`: it exits 1 with the message before Qt aborts."""
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(qtdeps, "missing_for", lambda platform, **_k: ["libxcb-keysyms.so.1"])
    assert app.main([]) == 1
    assert "libxcb-keysyms1" in capsys.readouterr().err
