"""Opening files a user hands us: regular files only, and never more bytes than a stated cap.

A FIFO blocks `open()` until a writer comes (forever, in a CLI or on a GUI's UI
thread); `/dev/zero`, or a `.toml` symlink to it, reads without end. So before
reading, a path is `stat`ed (symlinks followed) and anything but a regular file is
refused; the file is then opened non-blocking, checked again on the open descriptor
(the path may have been swapped in between), and read with a byte cap, because a
size from `stat` can lie (/proc files report 0) or change while we read.

Used by the scenario loader, the trace importer and the GUI (which calls it off its
UI thread). Errors are `RefusedFile`, an OSError, so `except OSError` handlers that
show `exc.strerror` keep working.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

MIB = 1 << 20
SCENARIO_LIMIT_ENV = "LAZYTSC_MAX_SCENARIO_MB"
DEFAULT_SCENARIO_LIMIT_MB = 16


class RefusedFile(OSError):
    """A path that is not a regular file, or is larger than the limit for its kind."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, os.fspath(path))
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def kind_of(mode: int) -> str:
    """What a non-regular file is, for a message: 'a FIFO (named pipe)'."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def format_size(n: int) -> str:
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n:,} bytes"


def scenario_limit() -> int:
    """Largest scenario file read, in bytes: 16 MiB unless LAZYTSC_MAX_SCENARIO_MB says otherwise."""
    raw = os.environ.get(SCENARIO_LIMIT_ENV, "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_SCENARIO_LIMIT_MB
    except ValueError:
        mb = DEFAULT_SCENARIO_LIMIT_MB
    return max(1, int(mb * MIB)) if mb > 0 else DEFAULT_SCENARIO_LIMIT_MB * MIB


def _refuse_special(path: str | os.PathLike, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise RefusedFile(path, f"a regular file (this is {kind_of(mode)})")


def open_regular(path: str | os.PathLike, max_bytes: int | None = None, limit_hint: str = "") -> BinaryIO:
    """Open a regular file for reading in binary; refuse anything else without blocking.

    `max_bytes` refuses a file whose size is already known to exceed it; the caller
    still caps what it reads (see `read_capped`).
    """
    _refuse_special(path, os.stat(path).st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        _refuse_special(path, st.st_mode)
        if max_bytes is not None and st.st_size > max_bytes:
            raise RefusedFile(path, _too_large(st.st_size, max_bytes, limit_hint))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _too_large(size: int | None, limit: int, hint: str) -> str:
    what = f"{format_size(size)}, " if size is not None else ""
    return f"a file of at most {format_size(limit)} ({what}larger than the limit{'; ' + hint if hint else ''})"


def read_capped(path: str | os.PathLike, max_bytes: int, limit_hint: str = "") -> bytes:
    """The whole content of a regular file of at most `max_bytes` bytes."""
    with open_regular(path, max_bytes, limit_hint) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RefusedFile(path, _too_large(None, max_bytes, limit_hint))
    return data


def read_scenario_bytes(path: str | os.PathLike) -> bytes:
    """A scenario file's bytes, within the scenario size limit."""
    return read_capped(path, scenario_limit(), f"set {SCENARIO_LIMIT_ENV} to raise it")
