"""Which engine runs: the mypyc-compiled hot modules, or the pure-Python sources.

`packaging/compile_engine.py` (run by `make run` / `make test` when a C compiler is
present) compiles COMPILED_MODULES in place: one extension per module next to its .py
file, plus the shared library `lazytsc._engine__mypyc`, and a stamp holding the SHA-256
of the sources it compiled. Python prefers an extension to a source file of the same
name, so nothing else changes: the compiled classes and functions are the same code,
and every run logs byte-identical events either way (tests/test_compiled_engine.py).

`select()` runs when `lazytsc` is imported, before any engine module is. The pure-Python
sources are used instead of the extensions when
  - LAZYTSC_ENGINE=pure is set (what `make test` and the comparisons use), or
  - the stamp does not match the sources (a module was edited after compiling: the
    extension would run old code) -- then once, on stderr, it says so.
LAZYTSC_ENGINE=compiled makes a missing or stale build an ImportError instead.

This module is never compiled itself: it must decide before any extension loads.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = "lazytsc"
HERE = Path(__file__).resolve().parent
# The hot path of every run, by module name under lazytsc. Not here: script.py and vmm.py
# (rare actions; their frozen dataclasses must pickle: scenarios go to sweep processes).
COMPILED_MODULES = (
    "sim",
    "clock",
    "memory",
    "apic",
    "lapic_timer",
    "lazy_host",
    "host",
    "vcpu_run",
    "guest_cpu",
    "guest_kernel",
    "hazards",
    "engine",
    "vcpu",
    "workloads.base",
    "workloads.tcp_rr",
    "workloads.periodic",
    "workloads.random_reprogram",
)
GROUP = f"{PACKAGE}._engine"  # the shared library: lazytsc/_engine__mypyc.*.so
STAMP = HERE / "_engine_build.txt"  # written by the compiler: the digest of what it compiled
ENV = "LAZYTSC_ENGINE"  # "pure" | "compiled" | unset (compiled when current)

_state = {"kind": "pure", "reason": "not compiled"}


def source_path(module: str) -> Path:
    return HERE.joinpath(*module.split(".")).with_suffix(".py")


def source_digest() -> str:
    """SHA-256 over the compiled modules' sources, in order (what the stamp records)."""
    h = hashlib.sha256()
    for module in COMPILED_MODULES:
        h.update(module.encode() + b"\0")
        h.update(source_path(module).read_bytes())
    return h.hexdigest()


def extension_path(module: str) -> Path | None:
    """The built extension for `module`, if there is one."""
    base = HERE.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return candidate
    return None


def built_extensions() -> list[Path]:
    """Every extension module in the package (compiled modules and the shared library)."""
    return sorted({p for suffix in importlib.machinery.EXTENSION_SUFFIXES for p in HERE.rglob(f"*{suffix}")})


def compiled_build_state() -> tuple[bool, str]:
    """(usable, why not): the extensions exist and were built from these sources."""
    missing = [m for m in COMPILED_MODULES if extension_path(m) is None]
    if len(missing) == len(COMPILED_MODULES):
        return False, "not compiled"
    if missing:
        return False, f"incomplete build (no extension for {', '.join(missing)})"
    expected = {extension_path(m) for m in COMPILED_MODULES}
    extra = [p.name for p in built_extensions() if p not in expected and not p.name.startswith("_engine__mypyc")]
    if extra:
        return False, f"compiled build is out of date with its sources (left-over {', '.join(extra)})"
    if not all(source_path(m).exists() for m in COMPILED_MODULES):
        return True, ""  # a bundle that ships only the extensions (no sources to compare)
    try:
        stamp = STAMP.read_text(encoding="utf-8").strip()
    except OSError:
        return False, "compiled build has no stamp"
    if stamp != source_digest():
        return False, "compiled build is out of date with its sources"
    return True, ""


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Loads lazytsc's modules from their .py files, ignoring any extension beside them."""

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        prefix = PACKAGE + "."
        if not fullname.startswith(prefix):
            return None
        module = fullname[len(prefix) :]
        source = source_path(module)
        if extension_path(module) is None or not source.exists():
            return None  # nothing to bypass (or nothing to load instead): the usual finders
        return importlib.util.spec_from_file_location(fullname, source)


def select() -> str:
    """Decide once which engine this process runs; returns "compiled" or "pure"."""
    if _state.get("decided"):
        return _state["kind"]
    _state["decided"] = "1"
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted not in ("", "pure", "compiled"):
        raise ImportError(f"{ENV}={wanted!r}: expected 'pure' or 'compiled'")
    usable, why = compiled_build_state()
    if wanted == "compiled" and not usable:
        raise ImportError(f"{ENV}=compiled, but the compiled engine is unusable: {why} (run `make` or packaging/compile_engine.py)")
    if usable and wanted != "pure":
        _state.update(kind="compiled", reason="")
        return "compiled"
    _state.update(kind="pure", reason=f"{ENV}=pure" if wanted == "pure" else why)
    if any(f"{PACKAGE}.{m}" in sys.modules for m in COMPILED_MODULES):
        return "pure"  # too late to choose (imported before lazytsc itself): leave as is
    sys.meta_path.insert(0, _SourceFirst())
    if why.startswith("compiled build is out of date") and wanted != "pure":
        print(f"lazytsc: {why}; running the pure-Python engine (rebuild: make, or python packaging/compile_engine.py)", file=sys.stderr)
    return "pure"


def engine_kind() -> str:
    """"compiled" when the mypyc extensions run, else "pure" (checked on the loaded module)."""
    from . import sim

    return "compiled" if Path(sim.__file__ or "").suffix in (".so", ".pyd") else "pure"


def describe() -> str:
    """One line for --version, start-up banners and the GUI's About box."""
    if engine_kind() == "compiled":
        return "engine: compiled (mypyc)"
    reason = _state.get("reason", "")
    return "engine: pure Python" + (f" ({reason})" if reason else "")
