"""Run the GUI tests a second time on a real X server (Xvfb) with Qt's `xcb` platform.

Why: offscreen rendering needs none of the X11 libraries, so a library missing
from README's apt list, or behaviour only a real window shows (exposure, focus,
window-manager-less geometry), would pass unnoticed. In CI (CI=true) a missing
Xvfb or library fails the run; elsewhere it is reported and skipped. `.ci/run`
installs exactly README's apt list plus Xvfb beforehand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number in :90 … :199")


def main() -> int:
    required = os.environ.get("CI", "").lower() == "true" or os.environ.get("LAZYTSC_XCB") == "1"
    if not sys.platform.startswith("linux"):
        print("xcb GUI tests: not on Linux, skipped")
        return 0
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        print("xcb GUI tests: Xvfb not found (Debian/Ubuntu: apt-get install xvfb)" + ("" if required else "; skipped"))
        return 1 if required else 0
    from lazytsc_gui import qtdeps

    missing = qtdeps.missing_for("xcb")
    if missing:
        print(qtdeps.missing_message("xcb", missing), file=sys.stderr)
        return 1 if required else 0
    n = free_display()
    server = subprocess.Popen([xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-noreset"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"xcb GUI tests: Xvfb :{n} did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        env = dict(os.environ, DISPLAY=f":{n}", QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        print(f"xcb GUI tests: the GUI suite again on Xvfb :{n} with QT_QPA_PLATFORM=xcb", flush=True)
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gui"], cwd=ROOT, env=env)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
