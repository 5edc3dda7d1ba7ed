"""The one exception trace import raises, so the CLI can turn it into `lazytsc: error: ...`."""

from __future__ import annotations


class TraceError(Exception):
    """A trace file that cannot be imported at all (missing, unreadable, binary, empty).

    The message follows DESIGN.md section 4: `FILE:LINE: field: what was expected`.
    Garbled lines inside an otherwise readable trace are never a TraceError: they
    are counted as skipped (see `accounting.TraceAccounting.skip`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
