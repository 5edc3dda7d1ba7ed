"""Put lazytsc in the desktop's application menu (freedesktop layout, no root needed).

    python packaging/install_desktop.py [--prefix ~/.local] [--app dist/lazytsc] [--uninstall]

Installs, under PREFIX (default ~/.local):
  bin/lazytsc-gui, bin/lazytsc              symlinks into the built app (make package)
  share/applications/io.github.lazytsc.Lazytsc.desktop   (Exec= the absolute bin/ path)
  share/metainfo/io.github.lazytsc.Lazytsc.metainfo.xml
  share/icons/hicolor/<N>x<N>/apps/io.github.lazytsc.Lazytsc.png and scalable/apps/....svg
With --app pointing at a directory holding `lazytsc-gui` (e.g. a virtualenv's bin/ after
`pip install .[gui]`) the menu entry starts that instead of the PyInstaller build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "io.github.lazytsc.Lazytsc"
PKG = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"
EXECUTABLES = ("lazytsc-gui", "lazytsc")


def planned(prefix: Path) -> dict[Path, Path | None]:
    """Destination -> source (None for the generated desktop file and bin links)."""
    share = prefix / "share"
    out: dict[Path, Path | None] = {
        share / "applications" / f"{APP_ID}.desktop": None,
        share / "metainfo" / f"{APP_ID}.metainfo.xml": PKG / f"{APP_ID}.metainfo.xml",
        share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg": ICONS / "lazytsc.svg",
    }
    for png in sorted(ICONS.glob("lazytsc-*.png")):
        size = png.stem.rsplit("-", 1)[1]
        out[share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"] = png
    for name in EXECUTABLES:
        out[prefix / "bin" / name] = None
    return out


def desktop_text(gui: Path) -> str:
    lines = []
    for line in (PKG / f"{APP_ID}.desktop").read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={gui} %f"
        elif line.startswith("TryExec="):
            line = f"TryExec={gui}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def refresh_caches(prefix: Path) -> None:
    """Best effort: desktops also notice new files by themselves."""
    for cmd in (
        ["update-desktop-database", str(prefix / "share" / "applications")],
        ["gtk-update-icon-cache", "-q", "-t", str(prefix / "share" / "icons" / "hicolor")],
    ):
        if shutil.which(cmd[0]):
            subprocess.run(cmd, check=False, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", type=Path, default=Path.home() / ".local")
    ap.add_argument("--app", type=Path, default=ROOT / "dist" / "lazytsc",
                    help="directory holding the lazytsc-gui executable (default dist/lazytsc)")
    ap.add_argument("--uninstall", action="store_true")
    args = ap.parse_args(argv)
    prefix = args.prefix.expanduser().resolve()
    app = args.app.expanduser().resolve()
    files = planned(prefix)

    if args.uninstall:
        for dest in files:
            if dest.is_symlink() or dest.exists():
                dest.unlink()
                print(f"removed {dest}")
        refresh_caches(prefix)
        return 0

    if not (app / "lazytsc-gui").exists():
        print(f"install_desktop.py: no {app / 'lazytsc-gui'}; build it first (make package) "
              "or pass --app DIR", file=sys.stderr)
        return 1
    for dest, src in files.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.parent.name == "bin":
            target = app / dest.name
            if not target.exists():
                continue
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            dest.symlink_to(target)
        elif src is None:
            dest.write_text(desktop_text(prefix / "bin" / "lazytsc-gui"), encoding="utf-8")
        else:
            shutil.copyfile(src, dest)
        print(f"installed {dest}")
    refresh_caches(prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
