"""Which system libraries Qt's platform plugins need, and which of them are missing.

Why: when a library of the `xcb` plugin is missing, Qt prints "could not load the
Qt platform plugin xcb" and often blames the wrong one (`xcb-cursor0`). Before
Qt is imported, `missing_for("xcb")` reads the plugin's ELF `DT_NEEDED` entries
(what `readelf -d` / `ldd` show) and tries to load each system library, so
`lazytsc-gui` can name the missing libraries and their Debian/Ubuntu packages.
The same table is what README.md's `apt-get install` list is checked against.
No Qt import here.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import struct
import sys
from pathlib import Path

# soname -> Debian 12 / Ubuntu 22.04+ package (checked with `dpkg -S`).
SONAME_PACKAGES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libdrm.so.2": "libdrm2",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libharfbuzz.so.0": "libharfbuzz0b",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libwayland-server.so.0": "libwayland-server0",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
}
# Part of every system that runs Python (glibc, the C++ runtime): never listed.
BASE_SYSTEM = re.compile(r"^(ld-linux.*|libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+)\.so")
# Shipped inside the PySide6 wheel.
BUNDLED = re.compile(r"^(libQt6|libpyside|libshiboken|libicu)")
# The optional GTK theme plugin's libraries come with one package.
OPTIONAL_GTK = "libgtk-3-0"

PLATFORM_PLUGINS = {"xcb": "libqxcb.so", "wayland": "libqwayland.so", "offscreen": "libqoffscreen.so"}
# Qt libraries a platform plugin loads besides its own file, and those every platform loads.
PLATFORM_LIBS = {"xcb": ("libQt6XcbQpa.so.6",), "wayland": ("libQt6WaylandClient.so.6",), "offscreen": ()}
COMMON_LIBS = ("libQt6Core.so.6", "libQt6Gui.so.6", "libQt6Widgets.so.6", "libQt6Svg.so.6", "libQt6OpenGL.so.6", "libQt6DBus.so.6")


def qt_dir() -> Path | None:
    """PySide6's bundled Qt (`.../PySide6/Qt`), found without importing PySide6."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "Qt"


def elf_needed(path: str | os.PathLike) -> list[str]:
    """The `DT_NEEDED` sonames of a 64-bit little-endian ELF file (as `readelf -d` lists)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out: list[str] = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link]
        str_off = strtab[4]
        for j in range(0, size, entsize or 16):
            tag, value = struct.unpack_from("<qQ", data, offset + j)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", str_off + value)
                out.append(data[str_off + value : end].decode())
    return out


def plugin_files(platform: str, qt: Path | None = None) -> list[Path]:
    qt = qt or qt_dir()
    if qt is None:
        return []
    files = [qt / "plugins" / "platforms" / PLATFORM_PLUGINS[platform]]
    files += [qt / "lib" / name for name in (*PLATFORM_LIBS[platform], *COMMON_LIBS)]
    if platform == "xcb":
        files += sorted((qt / "plugins" / "xcbglintegrations").glob("*.so"))
    return [f for f in files if f.exists()]


def system_needed(platform: str, qt: Path | None = None) -> list[str]:
    """System libraries (not glibc, not bundled Qt) the platform plugin links against."""
    names: set[str] = set()
    for f in plugin_files(platform, qt):
        names.update(n for n in elf_needed(f) if not BASE_SYSTEM.match(n) and not BUNDLED.match(n))
    return sorted(names)


def _loads(soname: str) -> str:
    """'' if the dynamic loader finds `soname` (and what it needs), else the missing library."""
    try:
        ctypes.CDLL(soname)
    except OSError as exc:
        m = re.match(r"([^:\s]+\.so[.\d]*)", str(exc))
        return m.group(1) if m else soname
    return ""


def missing_for(platform: str, loader=_loads, qt: Path | None = None) -> list[str]:
    """Sonames the platform plugin needs that cannot be loaded, in order."""
    if not sys.platform.startswith("linux") or platform not in PLATFORM_PLUGINS:
        return []
    missing: list[str] = []
    for name in system_needed(platform, qt):
        lost = loader(name)
        if lost and lost not in missing:
            missing.append(lost)
    return missing


def missing_message(platform: str, missing: list[str]) -> str:
    packages = sorted({SONAME_PACKAGES.get(m, m) for m in missing})
    return (
        f"lazytsc-gui: Qt's {platform} platform plugin cannot load: missing {', '.join(missing)}.\n"
        f"  Install: sudo apt-get install {' '.join(packages)}   (Debian/Ubuntu; the full list is in README.md,"
        " 'System packages Qt needs')\n"
        "  Or run without a display: QT_QPA_PLATFORM=offscreen"
    )


def platform_to_check(environ: dict | None = None) -> str:
    """The plugin Qt will pick on Linux: QT_QPA_PLATFORM, else xcb with DISPLAY, else wayland."""
    env = os.environ if environ is None else environ
    explicit = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if explicit:
        return explicit
    if env.get("DISPLAY"):
        return "xcb"
    return "wayland" if env.get("WAYLAND_DISPLAY") else ""


def main() -> int:
    """`python -m lazytsc_gui.qtdeps [PLATFORM]`: list what the plugin needs and what is missing."""
    platform = sys.argv[1] if len(sys.argv) > 1 else "xcb"
    for name in system_needed(platform):
        print(f"{name:28} {SONAME_PACKAGES.get(name, '?'):24} {'MISSING' if _loads(name) else 'ok'}")
    missing = missing_for(platform)
    if missing:
        print(missing_message(platform, missing), file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
