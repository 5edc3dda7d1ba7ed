"""Open a trace as a stream: a path or `-` (standard input), plain or compressed.

What is recognised by its first bytes (users rename files freely): gzip, xz and zstd
(decompressed on the fly), trace-cmd's binary `trace.dat` (read by `tracedat`, also
inside a compressed file) and perf.data (refused with the command that converts it).
Text is read in 256 KiB blocks split at newlines, so a trace of any size streams in
bounded memory; a line longer than `MAX_LINE_BYTES` is never held in memory: its bytes
are skipped up to the next newline and the importer counts it as skipped.

Named files must be regular files (a FIFO or a device would block or never end);
standard input is the way to stream (`trace-cmd report | lazytsc trace -`).
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from .errors import TraceError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TRACEDAT_MAGIC = b"\x17\x08\x44tracing"
_PERF = "a perf.data file: convert it with `perf script` or `perf kvm stat report`"
HEAD_BYTES = 64 * 1024
BLOCK_BYTES = 256 * 1024
CHUNK_BYTES = 1 << 19  # what the importer reads at a time (memory: a few times this; see textblock)
MAX_LINE_BYTES = 64 * 1024
# trace.dat read from a pipe or a compressed file is held in memory: cap it
MAX_TRACEDAT_BYTES = 4 << 30
# More than this share of undecodable or control characters in the head: not text.
BINARY_SHARE = 0.05
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
# The line the block reader yields in place of a line longer than MAX_LINE_BYTES.
OVERLONG = "\x00<overlong line>"


def quote_name(name: str) -> str:
    """A file name safe to print on one terminal line (newlines, escapes made visible)."""
    if name.isprintable():
        return name
    return repr(name)[1:-1]


class Source:
    """An opened trace: `kind` is "text" or "tracedat"; iterate text with `blocks()`."""

    def __init__(self, name: str, stream: BinaryIO, compression: str | None, head: bytes) -> None:
        self.name = name
        self.stream = stream
        self.compression = compression
        self.head = head  # first bytes of the (decompressed) content, already read
        self.kind = "tracedat" if head.startswith(TRACEDAT_MAGIC) else "text"
        self.truncated: str | None = None  # why the stream ended early (truncated archive)

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:  # noqa: BLE001 - closing a broken stream must not mask the real error
            pass

    def read_all(self) -> bytes:
        """The whole (decompressed) content, for trace.dat (capped)."""
        parts = [self.head]
        total = len(self.head)
        while True:
            block = self._read(BLOCK_BYTES * 8)
            if not block:
                break
            total += len(block)
            if total > MAX_TRACEDAT_BYTES:
                raise TraceError(f"{quote_name(self.name)}: size: expected a trace.dat below 4 GiB")
            parts.append(block)
        return b"".join(parts)

    def _read(self, n: int) -> bytes:
        """One block; corrupt compressed data is a TraceError, a cut-off archive ends the
        stream with `truncated` set (what was read so far stays valid)."""
        try:
            return self.stream.read(n)
        except (EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, EOFError) or "end-of-stream" in str(exc):
                self.truncated = str(exc) or "compressed stream ended early"
                return b""
            raise TraceError(
                f"{quote_name(self.name)}: {self.compression}: expected valid compressed data ({exc})"
            ) from None
        except (zlib.error, lzma.LZMAError) as exc:
            raise TraceError(
                f"{quote_name(self.name)}: {self.compression}: expected valid compressed data ({exc})"
            ) from None
        except OSError as exc:
            raise TraceError(f"{quote_name(self.name)}: read: {exc.strerror or exc}") from None
        except Exception as exc:  # zstandard.ZstdError and other decoder errors
            if type(exc).__name__ == "ZstdError":
                raise TraceError(
                    f"{quote_name(self.name)}: zstd: expected valid compressed data ({exc})"
                ) from None
            raise

    def blocks(self) -> Iterator[list[str]]:
        """Lists of text lines (without newlines), in file order.

        A line longer than MAX_LINE_BYTES comes out as OVERLONG; its bytes are skipped
        as they stream by, never joined.
        """
        for chunk in self.chunks(BLOCK_BYTES):
            yield chunk if isinstance(chunk, list) else chunk_lines(chunk)

    def chunks(self, size: int | None = None, front: bytes = b"", back: bytes = b"") -> Iterator[bytes | list[str]]:
        """The text in file order as bytes of whole lines (each ending in a newline, about
        `size` bytes, between `front` and `back`), or as a list of lines already decoded:
        [OVERLONG] where a line longer than MAX_LINE_BYTES was skipped unread, and a last
        line without a newline. Only the bytes yielded stay referenced while the caller
        holds them (memory is a small multiple of `size`)."""
        size = size or CHUNK_BYTES
        carry = b""
        skipping = False
        pending = self.head
        while True:
            chunk = pending if pending else self._read(size)
            pending = b""
            if not chunk:
                break
            if skipping:
                k = chunk.find(b"\n")
                if k < 0:
                    continue
                chunk = chunk[k + 1 :]
                skipping = False
                yield [OVERLONG]
            cut = chunk.rfind(b"\n")
            if cut < 0:
                carry += chunk
                if len(carry) > MAX_LINE_BYTES:
                    carry = b""
                    skipping = True
                continue
            if front or back or carry or cut + 1 < len(chunk):
                out = b"".join((front, carry, memoryview(chunk)[: cut + 1], back))
            else:
                out = chunk
            carry = chunk[cut + 1 :]
            if len(carry) > MAX_LINE_BYTES:
                carry = b""
                skipping = True
            del chunk
            yield out
            del out
        if skipping:
            yield [OVERLONG]
        elif carry:
            yield [carry.decode("utf-8", "replace").rstrip("\r")]


def chunk_lines(chunk: bytes, front: int = 0, back: int = 0) -> list[str]:
    """The lines (without newlines) of whole-line bytes from `Source.chunks` (`front` and
    `back` bytes of padding around them); a line longer than MAX_LINE_BYTES becomes OVERLONG."""
    text = chunk[front : len(chunk) - back - 1].decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if len(text) > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES:
        lines = [OVERLONG if len(x) > MAX_LINE_BYTES else x for x in lines]
    return lines


def _check_text(name: str, head: bytes) -> None:
    if head.startswith(b"PERFILE2") or head.startswith(b"PERFFILE"):
        raise TraceError(f"{quote_name(name)}:1: content: expected a text trace, got {_PERF}")
    if not head:
        return
    text = head.decode("utf-8", errors="replace")
    # A multi-byte character cut by the head boundary is not evidence of binary data.
    bad = sum(1 for ch in text[:-4] if ch == "\ufffd" or (ch < " " and ch not in _TEXT_CONTROLS))
    if b"\x00" in head or bad > BINARY_SHARE * max(len(text), 1):
        raise TraceError(
            f"{quote_name(name)}:1: content: expected text lines (ftrace, trace-cmd report, perf"
            " script or perf kvm stat output) or a trace.dat, got binary data"
        )


def _decompressor(raw: BinaryIO, magic: bytes) -> tuple[BinaryIO, str | None]:
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"  # type: ignore[return-value]
    if magic.startswith(XZ_MAGIC):
        return lzma.LZMAFile(raw), "xz"  # type: ignore[return-value]
    if magic.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), "zstd"  # type: ignore[return-value]
    return raw, None


class _Prefixed(io.RawIOBase):
    """A byte stream that first returns `prefix`, then the rest of `stream` (for stdin)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self.prefix = prefix
        self.inner = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.prefix:
            n = min(len(b), len(self.prefix))
            b[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        data = self.inner.read(len(b))
        b[: len(data)] = data
        return len(data)


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open `path` (or `-` for standard input); TraceError when it cannot be a trace."""
    name = os.fspath(path)
    shown = quote_name(name)
    if name == "-":
        raw: BinaryIO = sys.stdin.buffer
        shown = "<stdin>"
    else:
        try:
            st = os.stat(name)
        except OSError as exc:
            raise TraceError(f"{shown}: file: expected a readable trace file ({exc.strerror or exc})") from None
        if not stat.S_ISREG(st.st_mode):
            raise TraceError(
                f"{shown}: file: expected a regular file (this is a FIFO, device or directory;"
                " to stream, pipe it into `lazytsc trace -`)"
            )
        try:
            raw = open(name, "rb")  # the Source closes it
        except OSError as exc:
            raise TraceError(f"{shown}: file: expected a readable trace file ({exc.strerror or exc})") from None
    try:
        magic = raw.read(8)
    except OSError as exc:
        raise TraceError(f"{shown}: read: {exc.strerror or exc}") from None
    prefixed = io.BufferedReader(_Prefixed(magic, raw), BLOCK_BYTES)
    stream, compression = _decompressor(prefixed, magic)  # type: ignore[arg-type]
    src = Source(shown if name == "-" else name, stream, compression, b"")
    src.name = "<stdin>" if name == "-" else name
    head = src._read(HEAD_BYTES)
    src.head = head
    src.kind = "tracedat" if head.startswith(TRACEDAT_MAGIC) else "text"
    if src.kind == "text":
        try:
            _check_text(src.name, head)
        except TraceError:
            src.close()
            raise
    return src


class _TextLines:
    """Iterate a Source's text lines (with newline); a context manager like a file."""

    def __init__(self, src: Source) -> None:
        self.src = src

    def __iter__(self) -> Iterator[str]:
        if self.src.kind != "text":
            return
        for block in self.src.blocks():
            for line in block:
                yield line + "\n"

    def __enter__(self) -> _TextLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.src.close()

    def close(self) -> None:
        self.src.close()


def open_text(path: str | os.PathLike[str]) -> tuple[_TextLines, str | None]:
    """The trace's text lines (none for a trace.dat) and its compression, for readers of
    raw lines (the GUI shows the line behind an event); TraceError as open_source."""
    src = open_source(path)
    return _TextLines(src), src.compression
