"""Smoke-test the built one-folder app (dist/lazytsc/) the way a user would start it.

    python packaging/smoke.py [--app dist/lazytsc] [--require-gui]   (`make package-smoke`)

1. The CLI executable: `lazytsc --help`, `lazytsc list` (the built-in scenarios are found
   inside the bundle), `lazytsc run <default> --mode both --json` (the engine runs frozen).
2. The GUI executable, offscreen, on the default scenario:
   `lazytsc-gui --screenshot OUT.png --quit-after 3000`; exit code 0, no traceback, and
   OUT.png a real picture of a window (not tiny, not one flat colour).
   While lazytsc_gui/app.py does not exist in the checkout the GUI step is reported as
   skipped (unless --require-gui). Prints every command, its exit code and timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "core"))

from lazytsc.resources import DEFAULT_SCENARIO  # noqa: E402  (pure Python, no Qt)

GUI_TIMEOUT_S = 90
CLI_TIMEOUT_S = 60


class SmokeFailure(Exception):
    pass


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None):
    shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in cmd)
    print(f"smoke: $ {shown}", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise SmokeFailure(f"timed out after {timeout:.0f} s: {shown}") from e
    dt = time.monotonic() - t0
    print(f"smoke:   exit {proc.returncode} in {dt:.2f} s", flush=True)
    if "Traceback (most recent call last)" in proc.stderr:
        raise SmokeFailure(f"traceback from {shown}:\n{proc.stderr[-3000:]}")
    return proc


def check_cli(app: Path) -> None:
    exe = app / "lazytsc"
    if not exe.exists():
        raise SmokeFailure(f"missing {exe}")
    proc = run([str(exe), "--help"], CLI_TIMEOUT_S)
    if proc.returncode != 0 or "usage" not in proc.stdout.lower():
        raise SmokeFailure(f"lazytsc --help failed:\n{proc.stdout}{proc.stderr}")
    proc = run([str(exe), "list"], CLI_TIMEOUT_S)
    if proc.returncode != 0 or DEFAULT_SCENARIO not in proc.stdout:
        raise SmokeFailure(f"lazytsc list does not show {DEFAULT_SCENARIO}:\n"
                           f"{proc.stdout}{proc.stderr}")
    n = len([line for line in proc.stdout.splitlines() if line.strip()])
    print(f"smoke:   {n} built-in scenarios listed from inside the bundle")
    proc = run([str(exe), "run", DEFAULT_SCENARIO, "--mode", "both", "--json"], CLI_TIMEOUT_S)
    if proc.returncode != 0:
        raise SmokeFailure(f"lazytsc run failed:\n{proc.stdout}{proc.stderr}")
    try:
        result = json.loads(proc.stdout)
        totals = {m: result[m]["exits"]["total"] for m in ("classic", "lazy")}
    except (ValueError, KeyError, TypeError) as e:
        raise SmokeFailure(f"lazytsc run --json: unexpected output ({e}):\n{proc.stdout}") from e
    print(f"smoke:   {DEFAULT_SCENARIO}: VM exits classic {totals['classic']}, "
          f"lazy {totals['lazy']}")


def picture_stats(png: Path) -> tuple[int, int, int]:
    """(width, height, distinct colours in a sample) of a PNG, using Qt if available."""
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise SmokeFailure(f"{png} is not a PNG")
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    try:
        from PySide6.QtGui import QImage
    except ImportError:
        return w, h, -1
    img = QImage(str(png))
    colours = set()
    for y in range(0, img.height(), max(1, img.height() // 64)):
        for x in range(0, img.width(), max(1, img.width() // 64)):
            colours.add(img.pixel(x, y))
    return w, h, len(colours)


def check_gui(app: Path, out: Path) -> None:
    exe = app / "lazytsc-gui"
    if not exe.exists():
        raise SmokeFailure(f"missing {exe}")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if out.exists():
        out.unlink()
    proc = run([str(exe), "--screenshot", str(out), "--quit-after", "3000"], GUI_TIMEOUT_S, env)
    if proc.returncode != 0:
        raise SmokeFailure(f"lazytsc-gui exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    if not out.exists():
        raise SmokeFailure(f"lazytsc-gui exited 0 but wrote no {out}:\n{proc.stderr}")
    w, h, colours = picture_stats(out)
    size = out.stat().st_size
    print(f"smoke:   screenshot {out}: {w}x{h}, {size} bytes, "
          f"{colours if colours >= 0 else '?'} colours in a 64x64 sample")
    if w < 320 or h < 200 or size < 5000 or 0 <= colours < 8:
        raise SmokeFailure(f"screenshot {out} looks empty ({w}x{h}, {size} B, {colours} colours)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", type=Path, default=ROOT / "dist" / "lazytsc")
    ap.add_argument("--screenshot", type=Path,
                    default=Path(tempfile.gettempdir()) / "lazytsc-smoke.png")
    ap.add_argument("--require-gui", action="store_true",
                    help="fail instead of skipping when the checkout has no GUI yet")
    args = ap.parse_args(argv)
    app = args.app.resolve()
    if not app.is_dir():
        print(f"smoke: no app at {app}; build it first (make package)", file=sys.stderr)
        return 1
    print(f"smoke: testing {app}")
    try:
        check_cli(app)
        gui_source = ROOT / "lazytsc_gui" / "app.py"
        if gui_source.exists() or args.require_gui:
            check_gui(app, args.screenshot)
            print("smoke: OK (CLI and GUI)")
        else:
            print(f"smoke: GUI step SKIPPED: {gui_source.relative_to(ROOT)} does not exist yet")
            print("smoke: OK (CLI only)")
    except SmokeFailure as e:
        print(f"smoke: FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
