"""Compile the engine's hot modules with mypyc, in place (what `make run` / `make test` run).

    python packaging/compile_engine.py           build if missing or out of date, else nothing
    python packaging/compile_engine.py --force   rebuild
    python packaging/compile_engine.py --clean   remove the compiled engine (back to pure Python)

The modules are lazytsc.engine_build.COMPILED_MODULES: one extension each beside its
.py file in core/lazytsc/, the shared library lazytsc/_engine__mypyc, and a stamp with
the digest of the sources compiled (an edited source makes the build stale: lazytsc then
runs the pure-Python modules and says so). Needs a C compiler, Python's headers and
mypyc (the `compile` extra: `pip install -e '.[compile]'`). Without one of them it prints
why and exits 0 -- the pure-Python engine runs, with the same results, slower. A build
that fails with all three present is a defect (a type error mypyc rejects): it prints
the log's tail and exits 1. Last line printed: which engine runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "core" / "lazytsc"
BUILD = ROOT / "build" / "mypyc"
LOG = BUILD / "build.log"


def _engine_build():
    """lazytsc.engine_build, loaded from its file (importing lazytsc would pick an engine)."""
    spec = importlib.util.spec_from_file_location("_lazytsc_engine_build", PKG_DIR / "engine_build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def c_compiler() -> str | None:
    """The compiler setuptools would use (CC or Python's configured one), if it exists."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = shlex.split(cc)
    return shutil.which(words[0]) if words else None


def missing_toolchain() -> str:
    """Why the engine cannot be compiled here ("" when it can): compiler, headers, mypyc."""
    if c_compiler() is None:
        return "no C compiler found; install gcc for the compiled engine"
    include = sysconfig.get_paths().get("include", "")
    if not (Path(include) / "Python.h").exists():
        return f"no Python headers ({include}/Python.h); install python3-dev for the compiled engine"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc not installed: pip install -e '.[compile]'"
    return ""


def clean(eb) -> None:
    """Remove every extension in the package (also those of modules no longer compiled)."""
    for path in eb.built_extensions():
        path.unlink()
    eb.STAMP.unlink(missing_ok=True)


SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
paths = sys.argv[1:]
sys.argv = [sys.argv[0], "build_ext", "--inplace", "--parallel", "2", "--build-temp", {temp!r}]
setup(
    name="lazytsc-engine",
    package_dir={{"lazytsc": "core/lazytsc"}},
    ext_modules=mypycify(
        ["--ignore-missing-imports", "--follow-imports=silent", "--cache-dir", {cache!r}, *paths],
        group_name={group!r},
        opt_level="3",
        target_dir={target!r},
    ),
)
"""


def build(eb) -> bool:
    BUILD.mkdir(parents=True, exist_ok=True)
    digest = eb.source_digest()  # of the sources as they are when the build starts
    clean(eb)
    code = SETUP.format(temp=str(BUILD / "temp"), cache=str(BUILD / "mypy_cache"), group=eb.GROUP, target=str(BUILD / "c"))
    paths = [str(eb.source_path(m).relative_to(ROOT)) for m in eb.COMPILED_MODULES]
    with open(LOG, "w", encoding="utf-8") as log:
        proc = subprocess.run([sys.executable, "-c", code, *paths], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        clean(eb)
        tail = LOG.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        print("\n".join(tail), file=sys.stderr)
        print(f"compile_engine: the mypyc build failed (full log: {LOG.relative_to(ROOT)})", file=sys.stderr)
        return False
    eb.STAMP.write_text(digest + "\n", encoding="utf-8")
    return True


@contextlib.contextmanager
def one_build_at_a_time():
    """An exclusive lock on build/mypyc: a second caller (the suite's compiled-engine test while
    `make test` compiles beside the suite) waits for the build under way, then finds it current."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    ap.add_argument("--clean", action="store_true", help="remove the compiled engine")
    args = ap.parse_args(argv)
    with one_build_at_a_time():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    eb = _engine_build()
    if args.clean:
        clean(eb)
        print("engine: pure Python (compiled build removed)")
        return 0
    usable, why = eb.compiled_build_state()
    if usable and not args.force:
        print("engine: compiled (mypyc), up to date")
        return 0
    missing = missing_toolchain()
    if missing:
        print(f"engine: pure Python ({missing})")
        return 0
    print(f"compile_engine: {why}; compiling {len(eb.COMPILED_MODULES)} modules with mypyc (about a minute) ...", flush=True)
    start = time.monotonic()
    if not build(eb):
        print("engine: pure Python (compiled build failed)")
        return 1
    check = subprocess.run(
        [sys.executable, "-c", "import lazytsc.engine_build as b; print(b.engine_kind())"],
        env={**os.environ, eb.ENV: "compiled"},
        capture_output=True,
        text=True,
    )
    if check.stdout.strip() != "compiled":
        print(check.stderr[-2000:], file=sys.stderr)
        print("engine: pure Python (the compiled build does not import)")
        return 1
    print(f"engine: compiled (mypyc), built in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
