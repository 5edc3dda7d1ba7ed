"""Fuzz what a user can hand us as a file: special files, odd encodings, random and mutated bytes.

Every input gives a Scenario or one ScenarioError line naming the file -- never an
exception, a hang, or a read of gigabytes. The corpus of special files is fixed (FIFO,
devices, symlinks to them, loops, directories, sockets, unreadable, empty, binary,
huge lines, over the size limit); random and mutated files come from hypothesis.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from fuzz_strategies import BUILTIN_TEXTS
from hypothesis import given
from hypothesis import strategies as st
from lazytsc.scenario import ScenarioError, load_scenario
from lazytsc_fuzzkit import fuzz_settings, record, watchdog

AREA = "files"
SCRATCH = Path(tempfile.mkdtemp(prefix="lazytsc-fuzz-files-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


def assert_loads_cleanly(path: Path | str, expect_error: bool | None = None) -> ScenarioError | None:
    try:
        with watchdog(area=AREA):
            load_scenario(path)
    except ScenarioError as err:
        line = str(err)
        assert "\n" not in line and "\x1b" not in line, line
        assert err.file == os.fspath(path)
        record(AREA, "clean error")
        assert expect_error is not False, line
        return err
    except Exception:
        record(AREA, "traceback")
        raise
    record(AREA, "accepted")
    assert expect_error is not True, f"{path} was accepted"
    return None


@contextmanager
def as_nobody():
    """Drop root for a moment, so permission bits apply."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


# ---- the corpus of special files ---------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("special")
    os.chmod(d, 0o755)
    files: dict[str, tuple[Path | str, str]] = {}  # name -> (path, expected substring)

    def add(name: str, path, expected: str) -> None:
        files[name] = (path, expected)

    os.mkfifo(d / "fifo.toml")
    add("fifo", d / "fifo.toml", "FIFO")
    for dev in ("/dev/zero", "/dev/null", "/dev/urandom", "/dev/full"):
        if os.path.exists(dev):
            add(dev, dev, "character device")
    (d / "zero.toml").symlink_to("/dev/zero")
    add("symlink to /dev/zero", d / "zero.toml", "character device")
    (d / "to-fifo.toml").symlink_to(d / "fifo.toml")
    add("symlink to FIFO", d / "to-fifo.toml", "FIFO")
    (d / "dir.toml").mkdir()
    add("directory", d / "dir.toml", "directory")
    (d / "to-dir.toml").symlink_to(d / "dir.toml")
    add("symlink to directory", d / "to-dir.toml", "directory")
    (d / "loop-a.toml").symlink_to(d / "loop-b.toml")
    (d / "loop-b.toml").symlink_to(d / "loop-a.toml")
    add("symlink loop", d / "loop-a.toml", "readable scenario file")
    (d / "dangling.toml").symlink_to(d / "nowhere.toml")
    add("dangling symlink", d / "dangling.toml", "readable scenario file")
    previous = d / "chain-0.toml"
    previous.write_text("format = 1\n")
    for i in range(1, 60):
        link = d / f"chain-{i}.toml"
        link.symlink_to(previous)
        previous = link
    add("60 chained symlinks", previous, "readable scenario file")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.toml"))
    add("socket", d / "sock.toml", "socket")
    (d / "secret.toml").write_text("format = 1\n")
    os.chmod(d / "secret.toml", 0)
    add("unreadable", d / "secret.toml", "Permission denied")
    for name, data, expected in [
        ("empty", b"", "format"),
        ("only BOM", b"\xef\xbb\xbf", "format"),
        ("whitespace", b" \t\n\n  \n", "format"),
        ("NUL bytes", b"\x00" * 100, "valid TOML"),
        ("PNG", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "UTF-8"),
        ("UTF-16", "format = 1\n".encode("utf-16"), "UTF-8"),
        ("Latin-1", 'format = 1\nname = "caf\xe9"\n'.encode("latin-1"), "UTF-8"),
        ("lone CR", b"format = 1\rname = 'x'\n", "valid TOML"),
        ("5 MB line", b"format = 1\nname = '" + b"a" * (5 << 20) + b"'\n", ""),
        ("5 MB comment", b"# " + b"x" * (5 << 20) + b"\nformat = 1\n", ""),
        ("1M lines", b"#\n" * 1_000_000 + b"format = 1\n", ""),
        ("deep", b"format = 1\nx = " + b"[" * 100_000, "nested"),
        ("long key", b"format = 1\n" + b"k" * 1_000_000 + b" = 1\n", "unknown key"),
        ("surrogate escape", b'format = 1\nname = "\\ud800"\n', "valid TOML"),
    ]:
        path = d / f"{name.replace(' ', '_')}.toml"
        path.write_bytes(data)
        add(name, path, expected)
    big = d / "sparse.toml"
    with open(big, "wb") as fh:
        fh.write(b"format = 1\n")
        fh.truncate(1 << 40)  # 1 TiB, sparse
    add("1 TiB sparse file", big, "at most 16 MiB")
    add("/proc/self/status", "/proc/self/status", "valid TOML")
    yield files
    sock.close()


SPECIAL = [
    "fifo", "/dev/zero", "/dev/null", "/dev/urandom", "/dev/full", "symlink to /dev/zero", "symlink to FIFO", "directory",
    "symlink to directory", "symlink loop", "dangling symlink", "60 chained symlinks", "socket", "unreadable", "empty",
    "only BOM", "whitespace", "NUL bytes", "PNG", "UTF-16", "Latin-1", "lone CR", "5 MB line", "5 MB comment", "1M lines",
    "deep", "long key", "surrogate escape", "1 TiB sparse file", "/proc/self/status",
]  # fmt: skip


@pytest.mark.parametrize("name", SPECIAL)
def test_special_files(corpus, name):
    if name not in corpus:
        pytest.skip(f"{name} does not exist here")
    path, expected = corpus[name]
    ctx = as_nobody() if name == "unreadable" else contextmanager(lambda: (yield))()
    with ctx:
        err = assert_loads_cleanly(path, expect_error=name not in ("5 MB line", "5 MB comment", "1M lines"))
    if expected:
        assert err is not None and expected in str(err), str(err)


# ---- random and mutated bytes ---------------------------------------------------------------------
def write(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".toml", dir=SCRATCH)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


@fuzz_settings(AREA, small=150)
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    path = write(data)
    try:
        err = assert_loads_cleanly(path)
        if err is not None:
            assert err.line >= 1 or err.line == 0 and not data.strip(), str(err)
    finally:
        path.unlink()


@st.composite
def mutated_bytes(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(BUILTIN_TEXTS)).encode("utf-8"))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "utf8"]))
        if how == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "set":
            data[i] = draw(st.sampled_from([0x00, 0x0D, 0x1B, 0x22, 0x27, 0x5B, 0x5D, 0x7F, 0x80, 0xC0, 0xFF]))
        elif how == "insert":
            data[i:i] = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r", b'"""', b"[[", b"\n[[script]]\n"]))
        elif how == "delete":
            del data[i : i + draw(st.integers(1, 50))]
        elif how == "truncate":
            del data[i:]
        else:
            data[i:i] = "é☃\u2028\x85".encode()
    return bytes(data)


@fuzz_settings(AREA, small=150)
@given(mutated_bytes())
def test_mutated_builtin_bytes(data):
    path = write(data)
    try:
        err = assert_loads_cleanly(path)
        if err is not None:
            assert err.line >= 1, str(err)
    finally:
        path.unlink()
