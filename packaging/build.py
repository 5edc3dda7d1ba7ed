"""Build the one-folder desktop app with PyInstaller: dist/lazytsc/.

    python packaging/build.py            (what `make package` runs)

Needs the `package` extra (`pip install -e '.[gui,package]'`). Works from a clean checkout:
PyInstaller reads the sources from core/ and lazytsc_gui/ directly (packaging/lazytsc.spec),
its work files go to build/pyinstaller/, and any previous dist/lazytsc/ is replaced.
Prints the time taken and the size of the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "lazytsc.spec"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
APP = DIST / "lazytsc"


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-level", default="WARN", help="PyInstaller log level (default WARN)")
    args = ap.parse_args(argv)

    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print(
            "build.py: PyInstaller is not installed; run: pip install -e '.[gui,package]'",
            file=sys.stderr,
        )
        return 1

    icons = ROOT / "resources" / "icons"
    if not (icons / "lazytsc.svg").exists() or not list(icons.glob("lazytsc-*.png")):
        print("build.py: icons missing; rendering them (packaging/render_icons.py)")
        subprocess.run([sys.executable, str(ROOT / "packaging" / "render_icons.py")], check=True)

    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
        "--log-level", args.log_level,
        "--distpath", str(DIST), "--workpath", str(WORK),
        str(SPEC),
    ]
    print("build.py: $", " ".join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                                   for c in cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        print(f"build.py: PyInstaller failed (exit {proc.returncode}) after {elapsed:.0f} s",
              file=sys.stderr)
        return proc.returncode

    exes = [APP / "lazytsc-gui", APP / "lazytsc"]
    missing = [str(e) for e in exes if not e.exists()]
    if missing:
        print(f"build.py: expected executables missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    internal = APP / "_internal"
    print(f"build.py: built {APP.relative_to(ROOT)}/ in {elapsed:.0f} s: "
          f"{human(tree_size(APP))} on disk, {sum(1 for _ in APP.rglob('*'))} files")
    for name in ("PySide6", "numpy", "pyqtgraph", "resources"):
        part = internal / name
        if part.exists():
            print(f"  _internal/{name}/: {human(tree_size(part))}")
    print(f"build.py: run it with {APP.relative_to(ROOT)}/lazytsc-gui "
          f"(CLI: {APP.relative_to(ROOT)}/lazytsc --help)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
