"""Atomic file writes: temp file in the same directory, fsync, then rename over the target.

A crash or a full disk mid-save leaves the old file intact, never a half-written one.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None) -> Iterator[io.TextIOBase]:
    """Open `path` for writing text; the file appears only when the block completes."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (exact bytes: no newline translation)."""
    with atomic_open(path, newline="") as handle:
        handle.write(text)
