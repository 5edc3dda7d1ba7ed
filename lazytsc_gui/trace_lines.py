"""The raw text line behind each event of an imported trace (no Qt).

The importer records the file line of every event (`TraceResult.source_lines`); this
reads those lines once, in the worker that imports the trace, into one compact blob
(the line text and an offset array: no Python string per event), so showing the raw
line of the selected event never reads the file on the UI thread.
"""

from __future__ import annotations

import numpy as np

MAX_LINE = 400  # characters kept of one line


class RawLines:
    def __init__(self, path: str, numbers: np.ndarray, cancelled=None) -> None:
        from lazytsc.traces.source import open_text

        self.numbers = np.asarray(numbers, dtype=np.int64)
        wanted = np.unique(self.numbers[self.numbers > 0])
        texts: list[bytes] = []
        if len(wanted):
            fh, _compressed = open_text(path)
            with fh:
                j = 0
                target = int(wanted[0])
                for lineno, line in enumerate(fh, 1):
                    if lineno == target:
                        texts.append(line.rstrip("\r\n")[:MAX_LINE].encode("utf-8", "replace"))
                        j += 1
                        if j == len(wanted):
                            break
                        target = int(wanted[j])
                        if cancelled is not None and j % 65536 == 0 and cancelled():
                            break
        self._lines = wanted[: len(texts)]
        sizes = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        self._starts = np.concatenate([[0], np.cumsum(sizes)]) if len(texts) else np.zeros(1, dtype=np.int64)
        self._blob = b"".join(texts)

    def line_of(self, event: int) -> int:
        return int(self.numbers[event]) if 0 <= event < len(self.numbers) else -1

    def text(self, event: int) -> str:
        """The raw line of event `event` ('' when it has none, e.g. END)."""
        n = self.line_of(event)
        if n <= 0:
            return ""
        k = int(np.searchsorted(self._lines, n))
        if k >= len(self._lines) or self._lines[k] != n:
            return ""
        return self._blob[self._starts[k] : self._starts[k + 1]].decode("utf-8", "replace")


def raw_lines_for(result, path: str, cancelled=None) -> RawLines | None:
    """RawLines for an imported trace, or None when the importer keeps no line numbers."""
    source_lines = getattr(result, "source_lines", None)
    if source_lines is None:
        return None
    try:
        return RawLines(path, source_lines(), cancelled)
    except Exception:  # the raw text is a courtesy: an unreadable file shows none
        return None
