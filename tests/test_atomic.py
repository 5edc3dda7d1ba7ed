"""lazytsc.atomic: saves are atomic and keep the file's links, mode and owner (team brief).

Reproducers from the fuzz run: saving through a symlink replaced the link with a plain
file; the mode dropped from 0644 to 0600; hard links split; killed saves left
`.NAME.XXXX.tmp` files behind; a full disk destroyed the existing file.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import time

import pytest
from lazytsc import atomic
from lazytsc.atomic import atomic_open, atomic_write_bytes, atomic_write_text, remove_stale_temps


def temps(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp") or ".lazytsc-saved" in n)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.toml", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.toml", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.toml") == 0o644  # not mkstemp's 0600
    assert mode(tmp_path / "b.toml") == 0o600


@pytest.mark.parametrize("bits", [0o644, 0o600, 0o664, 0o755, 0o640])
def test_existing_mode_is_kept(tmp_path, bits):
    path = tmp_path / "s.toml"
    path.write_text("old")
    os.chmod(path, bits)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert mode(path) == bits


def test_write_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real" / "scenario.toml"
    real.parent.mkdir()
    real.write_text("old")
    os.chmod(real, 0o644)
    link = tmp_path / "link.toml"
    link.symlink_to(os.path.relpath(real, tmp_path))
    chain = tmp_path / "chain.toml"
    chain.symlink_to(link)
    atomic_write_text(chain, "new")
    assert chain.is_symlink() and link.is_symlink()
    assert real.read_text() == "new" and mode(real) == 0o644
    assert temps(tmp_path) == [] and temps(real.parent) == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.toml"
    link.symlink_to("target.toml")
    atomic_write_text(link, "made")
    assert link.is_symlink() and (tmp_path / "target.toml").read_text() == "made"


def test_symlink_loop_is_an_error_and_writes_nothing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(OSError) as info:
        atomic_write_text(a, "x")
    assert info.value.errno == errno.ELOOP
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_hard_links_stay_linked(tmp_path):
    """nlink > 1: the content is copied in place, so every name sees the new text."""
    path = tmp_path / "s.toml"
    path.write_text("old content that is longer than the new one")
    other = tmp_path / "other-name.toml"
    os.link(path, other)
    inode = os.stat(path).st_ino
    atomic_write_text(path, "new")
    assert other.read_text() == "new" and path.read_text() == "new"
    assert os.stat(path).st_ino == inode and os.stat(path).st_nlink == 2
    assert temps(tmp_path) == []


def test_owner_is_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another owner needs root")
    path = tmp_path / "s.toml"
    path.write_text("old")
    os.chown(path, 4321, 4322)
    atomic_write_text(path, "new")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (4321, 4322) and path.read_text() == "new"


def test_owner_that_cannot_be_given_is_kept_by_writing_in_place(tmp_path, monkeypatch):
    """Without the right to chown (a file of another user in a shared directory), renaming
    would hand the file to us; the save writes in place instead."""
    path = tmp_path / "s.toml"
    path.write_text("old")
    inode = os.stat(path).st_ino

    def refuse(*_a):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "geteuid", lambda: os.stat(path).st_uid + 1)
    monkeypatch.setattr(os, "fchown", refuse)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and os.stat(path).st_ino == inode
    assert temps(tmp_path) == []


def test_error_inside_the_block_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old" and temps(tmp_path) == []


def test_full_disk_at_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text("old")

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write_text(path, "new" * 1000)
    assert path.read_text() == "old" and temps(tmp_path) == []


def test_full_disk_when_reserving_space_for_an_in_place_copy(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text("old")
    os.link(path, tmp_path / "twin.toml")

    def full(*_a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError):
        atomic_write_text(path, "new" * 1000)
    assert path.read_text() == "old" and temps(tmp_path) == []


_CHILD = """
import resource, signal, sys
sys.path.insert(0, {core!r})
from lazytsc.atomic import atomic_write_text
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    atomic_write_text({path!r}, "x" * 100_000)
except OSError as exc:
    print(exc.errno)
"""


def test_file_size_limit_mid_write_keeps_the_old_file(tmp_path):
    """A real short write (RLIMIT_FSIZE makes write() fail with EFBIG, like a full disk)."""
    path = tmp_path / "s.toml"
    path.write_text("old")
    core = os.path.dirname(os.path.dirname(atomic.__file__))
    out = subprocess.run([sys.executable, "-c", _CHILD.format(core=core, path=str(path))], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str(errno.EFBIG), out.stderr
    assert path.read_text() == "old" and temps(tmp_path) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit was the child's only


_SLOW_WRITER = """
import sys, time
sys.path.insert(0, {core!r})
from lazytsc.atomic import atomic_open
with atomic_open({path!r}) as fh:
    fh.write("partial")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_killed_save_leaves_the_file_and_its_temp_is_cleaned_later(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("old")
    core = os.path.dirname(os.path.dirname(atomic.__file__))
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER.format(core=core, path=str(path))], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        (leftover,) = temps(tmp_path)
        # a live save holds its lock: never removed, however old
        os.utime(tmp_path / leftover, (time.time() - 3600, time.time() - 3600))
        assert remove_stale_temps(path, older_than_s=0) == 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert path.read_text() == "old"
    assert temps(tmp_path) == [leftover]
    # the next save removes the dead save's leftover once it is old enough
    os.utime(tmp_path / leftover, (time.time() - 3600, time.time() - 3600))
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and temps(tmp_path) == []


def test_stale_cleanup_touches_only_our_own_pattern(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("x")
    old = time.time() - 3600
    ours = tmp_path / ".s.toml.abcd1234.tmp"
    others = [tmp_path / ".s.toml.notours.tmp", tmp_path / ".other.toml.abcd1234.tmp", tmp_path / "s.toml.abcd1234.tmp"]
    for p in [ours, *others]:
        p.write_text("leftover")
        os.utime(p, (old, old))
    link = tmp_path / ".s.toml.zzzz9999.tmp"
    link.symlink_to(tmp_path / "s.toml")
    fresh = tmp_path / ".s.toml.fresh000.tmp"
    fresh.write_text("a save that just started")
    assert remove_stale_temps(path) == 1
    assert not ours.exists()
    assert all(p.exists() for p in others) and link.is_symlink() and fresh.exists()


def test_directory_target_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        atomic_write_text(tmp_path, "x")
    assert temps(tmp_path) == []


def test_device_target_is_written_directly(tmp_path):
    atomic_write_text("/dev/null", "discarded")
    assert os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo_target_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is waiting
    try:
        atomic_write_text(fifo, "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_fifo_without_a_reader_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as info:
        atomic_write_text(fifo, "nobody listens")
    assert info.value.errno == errno.ENXIO and "no process is reading" in str(info.value)


def test_bytes_and_exact_newlines(tmp_path):
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01\r\n")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\r\n"
    atomic_write_text(tmp_path / "t.txt", "a\r\nb\n")
    assert (tmp_path / "t.txt").read_bytes() == b"a\r\nb\n"
