"""Packaging: the wheel (resources inside, console scripts, a CLI that never imports Qt),
the desktop integration files, the icons, and (slow, opt-in) the PyInstaller app.

The wheel tests build a real wheel from a copy of the checkout and install it into a
fresh virtualenv that sees nothing of this one except numpy, PySide6 and shiboken6
(linked in through PYTHONPATH, so "the CLI does not import PySide6" has teeth).
The PyInstaller build takes minutes: `LAZYTSC_SLOW=1 pytest -m slow tests/test_packaging.py`
(or `make package-smoke`).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"
APP_ID = "io.github.lazytsc.Lazytsc"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SITE_PACKAGES = Path(importlib.util.find_spec("numpy").origin).parents[1]
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _load_packaging_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_packaging_{name}", PKG / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _setuptools_builds_wheels() -> bool:
    """Can the running interpreter's setuptools build a wheel without build isolation?"""
    try:
        import setuptools
    except ImportError:
        return False
    major_minor = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    if major_minor >= (70, 1):  # bdist_wheel moved into setuptools
        return True
    return major_minor >= (68, 0) and importlib.util.find_spec("wheel") is not None


# -- the wheel ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (no stale build/ dirs, no concurrent edits)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for tree in ("core", "lazytsc_gui", "resources"):
        shutil.copytree(ROOT / tree, src / tree, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
    for extra in ("README.md", "LICENSE"):
        if (ROOT / extra).exists():
            shutil.copy2(ROOT / extra, src / extra)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("lazytsc\n")
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)]
    if _setuptools_builds_wheels():
        cmd.insert(cmd.index("--no-deps"), "--no-build-isolation")
    # else: pip fetches setuptools>=68 + wheel (pyproject [build-system]) as `make` does.
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    (whl,) = out.glob("lazytsc-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> dict:
    """A fresh venv with only the wheel installed (no deps), plus numpy/PySide6 via PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True, text=True,
    )
    # Dependencies, not lazytsc: a directory with just these packages linked in.
    deps = tmp / "deps"
    deps.mkdir()
    for name in ("numpy", "numpy.libs", "PySide6", "shiboken6"):
        if (SITE_PACKAGES / name).exists():
            (deps / name).symlink_to(SITE_PACKAGES / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(deps), PYTHONNOUSERSITE="1", QT_QPA_PLATFORM="offscreen")
    return {"venv": venv, "python": py, "env": env, "cwd": tmp}


def _run_in(venv: dict, args: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=venv["env"],
        cwd=venv["cwd"], timeout=60, **kw,
    )


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for toml in (ROOT / "resources" / "scenarios").glob("*.toml"):
        assert f"lazytsc_resources/scenarios/{toml.name}" in names
    for demo in (ROOT / "resources" / "demos").glob("*.md"):
        assert f"lazytsc_resources/demos/{demo.name}" in names
    assert "lazytsc_resources/icons/lazytsc.svg" in names
    for size in ICON_SIZES:
        assert f"lazytsc_resources/icons/lazytsc-{size}.png" in names
    assert "lazytsc/resources.py" in names and "lazytsc_gui/__init__.py" in names
    for sub in ("workloads", "traces", "explore"):
        assert f"lazytsc/{sub}/__init__.py" in names
    # every engine module made it (a new subpackage must be added to [tool.setuptools])
    for py in (ROOT / "core" / "lazytsc").rglob("*.py"):
        rel = py.relative_to(ROOT / "core").as_posix()
        assert rel in names, f"{rel} missing from the wheel: add its package to pyproject.toml"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    ep = configparser.ConfigParser()
    ep.read_string(zipfile.ZipFile(wheel).read(entry_points).decode())
    assert ep["console_scripts"]["lazytsc"] == "lazytsc.cli:main"
    assert ep["gui_scripts"]["lazytsc-gui"] == "lazytsc_gui.app:main"


def test_wheel_install_finds_resources(wheel_venv):
    code = (
        "import json, lazytsc, lazytsc.resources as r\n"
        "from lazytsc.scenario import load_scenario\n"
        "sc = r.builtin_scenarios()\n"
        "for p in sc.values(): load_scenario(p)\n"
        "print(json.dumps({'pkg': lazytsc.__file__, 'dir': str(r.resources_dir()),\n"
        "  'scenarios': list(sc), 'icon': r.icon_path().is_file(),\n"
        "  'default': r.builtin_scenario(r.DEFAULT_SCENARIO).is_file()}))\n"
    )
    proc = _run_in(wheel_venv, [wheel_venv["python"], "-c", code])
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout)
    venv = wheel_venv["venv"].resolve()
    assert Path(got["pkg"]).resolve().is_relative_to(venv), "imported lazytsc from outside the venv"
    assert Path(got["dir"]).resolve().is_relative_to(venv)
    assert Path(got["dir"]).name == "lazytsc_resources"
    assert got["scenarios"] == sorted(p.stem for p in (ROOT / "resources/scenarios").glob("*.toml"))
    assert got["icon"] and got["default"]


def test_wheel_console_scripts(wheel_venv):
    bindir = wheel_venv["venv"] / "bin"
    assert (bindir / "lazytsc-gui").exists()
    proc = _run_in(wheel_venv, [bindir / "lazytsc", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
    proc = _run_in(wheel_venv, [bindir / "lazytsc", "list"])
    assert proc.returncode == 0, proc.stderr
    assert "seed_overwrite" in proc.stdout


def test_wheel_cli_never_imports_qt(wheel_venv):
    """PySide6 is importable in this venv, yet the CLI paths must not load it."""
    qt_here = (SITE_PACKAGES / "PySide6").exists()  # else an engine-only venv: still checked
    prove = "assert importlib.util.find_spec('PySide6') is not None\n" if qt_here else ""
    code = "import sys, contextlib, io, importlib.util\n" + prove + (
        "from lazytsc.cli import main\n"
        "from lazytsc.resources import DEFAULT_SCENARIO\n"
        "for argv in (['--help'], ['list'], ['run', DEFAULT_SCENARIO, '--mode', 'both', '--json']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            rc = main(argv)\n"
        "        except SystemExit as e:\n"
        "            rc = e.code\n"
        "    assert rc in (0, None), (argv, rc)\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'pyqtgraph')))\n"
        "assert not qt, qt\n"
        "print('no-qt-ok')\n"
    )
    proc = _run_in(wheel_venv, [wheel_venv["python"], "-c", code])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no-qt-ok" in proc.stdout


def test_pyproject_entry_points_match_packaging():
    assert PYPROJECT["project"]["scripts"] == {"lazytsc": "lazytsc.cli:main"}
    assert PYPROJECT["project"]["gui-scripts"] == {"lazytsc-gui": "lazytsc_gui.app:main"}
    # the frozen app's entry scripts start the same functions
    assert "from lazytsc.cli import main" in (PKG / "entry_cli.py").read_text()
    assert "from lazytsc_gui.app import main" in (PKG / "entry_gui.py").read_text()
    spec = (PKG / "lazytsc.spec").read_text()
    assert '"entry_gui.py"' in spec and '"entry_cli.py"' in spec
    assert '"lazytsc-gui"' in spec and '"lazytsc"' in spec


# -- desktop integration ------------------------------------------------------------------


def _desktop_entry() -> dict[str, str]:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(PKG / f"{APP_ID}.desktop", encoding="utf-8")
    return dict(cp["Desktop Entry"])


def test_desktop_file():
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] in PYPROJECT["project"]["gui-scripts"]
    assert entry["TryExec"] == entry["Exec"].split()[0]
    assert entry["Icon"] == APP_ID
    assert entry["Terminal"] == "false"
    if shutil.which("desktop-file-validate"):
        proc = subprocess.run(["desktop-file-validate", str(PKG / f"{APP_ID}.desktop")],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_metainfo():
    path = PKG / f"{APP_ID}.metainfo.xml"
    root = ET.parse(path).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("project_license") == PYPROJECT["project"]["license"]["text"]
    assert root.find("launchable").text == f"{APP_ID}.desktop"
    assert root.find("icon").text == APP_ID
    binaries = {b.text for b in root.iter("binary")}
    assert binaries == set(PYPROJECT["project"]["scripts"]) | set(PYPROJECT["project"]["gui-scripts"])
    versions = [r.get("version") for r in root.iter("release")]
    assert PYPROJECT["project"]["version"] in versions
    if shutil.which("appstreamcli"):
        proc = subprocess.run(["appstreamcli", "validate", "--no-net", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_desktop_into_prefix(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for name in ("lazytsc-gui", "lazytsc"):
        (app / name).write_text("#!/bin/sh\n")
        (app / name).chmod(0o755)
    prefix = tmp_path / "prefix"
    install = _load_packaging_module("install_desktop")
    assert install.main(["--prefix", str(prefix), "--app", str(app)]) == 0
    desktop = prefix / "share" / "applications" / f"{APP_ID}.desktop"
    text = desktop.read_text()
    assert f"Exec={prefix / 'bin' / 'lazytsc-gui'} %f" in text
    assert (prefix / "bin" / "lazytsc-gui").resolve() == (app / "lazytsc-gui").resolve()
    for size in ICON_SIZES:
        assert (prefix / f"share/icons/hicolor/{size}x{size}/apps/{APP_ID}.png").is_file()
    assert (prefix / f"share/icons/hicolor/scalable/apps/{APP_ID}.svg").is_file()
    assert (prefix / f"share/metainfo/{APP_ID}.metainfo.xml").is_file()
    if shutil.which("desktop-file-validate"):
        proc = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert install.main(["--prefix", str(prefix), "--uninstall"]) == 0
    assert not desktop.exists() and not (prefix / "bin" / "lazytsc-gui").exists()


# -- icons ------------------------------------------------------------------------------


def test_icons_present_with_right_sizes():
    render_icons = _load_packaging_module("render_icons")
    assert tuple(render_icons.SIZES) == ICON_SIZES
    svg = ET.parse(ROOT / "resources" / "icons" / "lazytsc.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 64 64"
    for size in ICON_SIZES:
        png = ROOT / "resources" / "icons" / f"lazytsc-{size}.png"
        assert render_icons.png_size(png) == (size, size), png


def test_icon_svg_renders_with_qt():
    pytest.importorskip("PySide6.QtSvg")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841
    image = _load_packaging_module("render_icons").render(32)
    assert (image.width(), image.height()) == (32, 32)
    # opaque in the middle (the rounded square), transparent in the very corner
    assert image.pixelColor(16, 16).alpha() == 255
    assert image.pixelColor(0, 0).alpha() == 0


# -- the PyInstaller app (slow, opt-in) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LAZYTSC_SLOW") != "1", reason="set LAZYTSC_SLOW=1 (builds the app)")
def test_package_smoke():
    """Build dist/lazytsc/ with PyInstaller and start it offscreen (= `make package-smoke`)."""
    pytest.importorskip("PyInstaller", reason="pip install -e '.[package]'")
    build = subprocess.run([sys.executable, str(PKG / "build.py")], cwd=ROOT,
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout + build.stderr
    smoke = subprocess.run([sys.executable, str(PKG / "smoke.py")], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    print(build.stdout, smoke.stdout)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
