"""Atomic file writes that keep what the user set up: links, mode, owner.

The one way lazytsc writes a file (scenario saves, GUI exports, CLI outputs):

* The content goes to a temporary file `.NAME.XXXXXXXX.tmp` beside the target,
  is flushed and fsynced; only then does the target change. A full disk or a crash
  mid-write leaves the old file intact. The temporary file is removed on every
  error path, and is `flock`ed while in use so a later save can tell a leftover of
  a killed save (unlocked, older than a minute) from a live one, and remove it.
* A symlink is written through: its target gets the new content, the link stays.
* An existing file keeps its permission bits (and owner and group, where the
  process may set them); a new file gets `0666 & ~umask`, like any other program.
* The commit is a rename over the target, then an fsync of the directory.
  When a rename would lose something -- the file has other hard links (nlink > 1),
  or its owner cannot be given to a new file -- the content is instead copied into
  the existing file in place (as GLib and Vim do), after the complete new content is
  safely in the temporary file and the space for it is reserved (posix_fallocate),
  so a full disk cannot truncate the original. Only a crash during that copy can
  leave the target partly written; the temporary file then holds the full content.
* A target that exists but is not a regular file (`-o /dev/stdout`, a FIFO) is
  written directly: there is nothing to rename over, and replacing a device node
  with a file would be wrong.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

STALE_AFTER_S = 60.0
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's random-name alphabet
_COPY_CHUNK = 1 << 20
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def resolve_target(path: str | os.PathLike) -> Path:
    """The file a write to `path` should change: symlinks followed, even dangling ones."""
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath gives up on a loop
        raise OSError(errno.ELOOP, "too many levels of symbolic links", os.fspath(path))
    return target


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\." + re.escape(name) + r"\.[" + _TEMP_CHARS + r"]{8}\.tmp\Z")


def remove_stale_temps(target: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove leftovers `.NAME.XXXXXXXX.tmp` of killed saves of `target`; returns how many.

    Only regular files of ours, matching our exact naming pattern, not locked by a
    live save, and not modified for `older_than_s` seconds.
    """
    target = Path(target)
    directory = target.parent
    pattern = _temp_pattern(target.name)
    removed = 0
    try:
        names = [n for n in os.listdir(directory) if pattern.match(n)]
    except OSError:
        return 0
    now = time.time()
    for name in names:
        path = directory / name
        try:
            st = os.lstat(path)
            mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
            if not stat.S_ISREG(st.st_mode) or not mine or now - st.st_mtime < older_than_s:
                continue
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live save holds it
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
                os.unlink(path)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _can_keep_owner(fd: int, st: os.stat_result) -> bool:
    """Give the new file the old one's owner and group; False if that is not allowed."""
    if (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()):
        return True
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
        return True
    except OSError:
        return False


class PartialWrite(OSError):
    """An in-place copy failed after it began: the target may be damaged, a full copy is kept."""


def _copy_in_place(tmp_fd: int, target: Path, size: int, tmp: Path) -> None:
    """Overwrite `target`'s content with the temporary file's, keeping its inode."""
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    started = False
    try:
        if hasattr(os, "posix_fallocate") and size:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise  # ENOSPC, EDQUOT: nothing written yet
        os.lseek(tmp_fd, 0, os.SEEK_SET)
        offset = 0
        started = True
        while True:
            chunk = os.read(tmp_fd, _COPY_CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                written = os.pwrite(fd, view, offset)
                offset += written
                view = view[written:]
        os.ftruncate(fd, offset)
        os.fsync(fd)
    except OSError as exc:
        if not started:
            raise
        kept = tmp.with_name(f"{target.name}.lazytsc-saved")
        os.replace(tmp, kept)  # out of the temporary-name pattern: no cleanup removes it
        raise PartialWrite(exc.errno, f"{exc.strerror}; the complete new content is in {kept}", os.fspath(target)) from exc
    finally:
        os.close(fd)


def _open_special(target: Path, mode: int) -> int:
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if stat.S_ISFIFO(mode):
        try:
            fd = os.open(target, flags | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, "no process is reading this FIFO", os.fspath(target)) from None
            raise
        os.set_blocking(fd, True)
        return fd
    return os.open(target, flags)


@contextmanager
def atomic_open(
    path: str | os.PathLike, newline: str | None = None, binary: bool = False
) -> Iterator[IO]:
    """Open `path` for writing (text in UTF-8, or `binary`); it changes only when the block completes."""
    target = resolve_target(path)
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", os.fspath(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        # a device or FIFO: write straight into it (a FIFO only when a reader waits, so
        # that a save never blocks forever)
        fd = _open_special(target, existing.st_mode)
        mode = "wb" if binary else "w"
        with os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8", "newline": newline})) as handle:
            yield handle
        return
    directory = target.parent
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        in_place = False
        if existing is not None:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            in_place = existing.st_nlink > 1 or not _can_keep_owner(fd, existing)
        else:
            os.fchmod(fd, 0o666 & ~current_umask())
        handle = os.fdopen(os.dup(fd), "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": newline}))
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if in_place:
            _copy_in_place(fd, target, os.fstat(fd).st_size, tmp)
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
            _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (exact characters: no newline translation)."""
    with atomic_open(path, newline="") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, binary=True) as handle:
        handle.write(data)

