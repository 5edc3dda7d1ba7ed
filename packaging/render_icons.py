"""Render resources/icons/lazytsc.svg to the PNG sizes desktops and PyInstaller want.

    python packaging/render_icons.py [--check]

Writes resources/icons/lazytsc-<size>.png for every size in SIZES, using Qt's own SVG
renderer (PySide6.QtSvg) on the offscreen platform, so it runs without a display.
With --check it renders into memory and exits 1 if a committed PNG is missing or
its size is wrong (it does not compare pixels: Qt versions anti-alias differently).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "lazytsc.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    return ICONS / f"lazytsc-{size}.png"


def render(size: int, svg: Path = SVG):
    """The icon as a QImage of size x size, transparent outside the rounded square."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: cannot parse {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, without Qt."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the committed PNGs")
    args = ap.parse_args(argv)

    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 (keeps Qt alive)
    bad = 0
    for size in SIZES:
        out = png_path(size)
        if args.check:
            ok = out.exists() and png_size(out) == (size, size)
            print(f"{'ok     ' if ok else 'MISSING'} {out.relative_to(ROOT)}")
            bad += not ok
            continue
        image = render(size)
        if not image.save(str(out), "PNG"):
            raise SystemExit(f"render_icons: cannot write {out}")
        print(f"wrote {out.relative_to(ROOT)} ({size}x{size}, {out.stat().st_size} bytes)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
