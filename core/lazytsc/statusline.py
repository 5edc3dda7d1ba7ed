"""One status line on a terminal, rewritten in place (`\\r`); nothing at all elsewhere.

Why: the sweep, explore and parallel-modes progress reports all redraw a line on stderr;
piped or redirected output must never get carriage returns.
"""

from __future__ import annotations

import sys
from typing import TextIO


class StatusLine:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = 0

    def show(self, text: str) -> None:
        """Replace the line by `text` (padded over a longer previous one)."""
        if not self.enabled:
            return
        self.stream.write("\r" + text.ljust(self.width))
        self.width = max(self.width, len(text))
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
