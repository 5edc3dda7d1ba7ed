"""Fuzz the `lazytsc` command line: any argv gives exit 0/1/2, never a traceback or a hang.

Arguments are drawn from the commands this module's owner keeps (run, check, events,
list; `trace` and `sweep` have their own suites), their options with good and bad
values, and paths of every kind: built-in names, valid and broken scenarios, special
files, missing paths, directories, names with control characters. Errors must be one
line on stderr; `-o` outputs must never be left half-written or as temp files.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from lazytsc.cli import main
from lazytsc_fuzzkit import fuzz_settings, record, watchdog

AREA = "cli"
SCRATCH = Path(tempfile.mkdtemp(prefix="lazytsc-fuzz-cli-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
(SCRATCH / "ok.toml").write_text('format = 1\nduration = "200us"\n[[script]]\nat = "10us"\nop = "set_next_event"\ndelta = "50us"\n')
(SCRATCH / "bad.toml").write_text("format = 1\nvcpus = 0\n")
(SCRATCH / "new\nline.toml").write_text("format = 2\n")
(SCRATCH / "\x1b[31m.toml").write_text("format = 1\n[[breakpoint]]\ncondition = \"kind * 3\"\n")
os.mkfifo(SCRATCH / "fifo.toml")
(SCRATCH / "dir.toml").mkdir()
(SCRATCH / "out").mkdir()
(SCRATCH / "out" / "keep.csv").write_text("precious\n")

PATHS = [
    "seed_overwrite", "spurious_interrupt", "no_such_builtin", str(SCRATCH / "ok.toml"), str(SCRATCH / "bad.toml"),
    str(SCRATCH / "new\nline.toml"), str(SCRATCH / "\x1b[31m.toml"), str(SCRATCH / "fifo.toml"), str(SCRATCH / "dir.toml"),
    "/dev/zero", "/nonexistent/x.toml", "", "-", "--", "x" * 5000,
]  # fmt: skip
OUTPUTS = [str(SCRATCH / "out" / "e.csv"), str(SCRATCH / "out" / "keep.csv"), str(SCRATCH / "out"), "/nonexistent/dir/e.csv", "/dev/null", str(SCRATCH / "fifo.toml")]
OPTIONS = [
    ["--mode", "classic"], ["--mode", "lazy"], ["--mode", "both"], ["--mode", "sideways"], ["--json"],
    ["--format", "csv"], ["--format", "json"], ["--format", "xml"], ["--max-events", "0"], ["--max-events", "5"],
    ["--max-events", "-1"], ["--max-events", "1e9"], ["--max-events", "99999999999999999999999"], ["--bogus"], ["-h"],
]  # fmt: skip


@st.composite
def argv(draw) -> list[str]:
    command = draw(st.sampled_from(["run", "check", "events", "list", "nope", "--version", ""]))
    args = [command] if command else []
    if command in ("run", "check", "events"):
        args += draw(st.lists(st.sampled_from(PATHS), min_size=0, max_size=2))
        for opt in draw(st.lists(st.sampled_from(OPTIONS), max_size=3)):
            args += opt
        if command == "events" and draw(st.booleans()):
            args += ["-o", draw(st.sampled_from(OUTPUTS))]
    return args


@fuzz_settings(AREA, small=150)
@given(args=argv())
def test_any_command_line(args):
    out_buf, err_buf = io.StringIO(), io.StringIO()
    try:
        with watchdog(area=AREA), redirect_stdout(out_buf), redirect_stderr(err_buf):
            code = main(args)
    except SystemExit as exc:  # --help and --version print and exit 0
        code = exc.code
    except Exception:
        record(AREA, "traceback")
        raise
    err = err_buf.getvalue()
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err
    for line in err.splitlines():
        if line.startswith("lazytsc: error: "):
            assert "\x1b" not in line
    errors = [line for line in err.splitlines() if line.startswith("lazytsc: error: ")]
    assert len(errors) <= 1, err
    keep = SCRATCH / "out" / "keep.csv"
    kept = keep.read_text().startswith(("precious", "index,", "[")) if keep.exists() else False
    leftovers = [n for n in os.listdir(SCRATCH / "out") if n.endswith(".tmp")]
    if not kept or leftovers:
        record(AREA, "data loss")
    assert kept and not leftovers
    record(AREA, "clean error" if code == 2 else "accepted")
