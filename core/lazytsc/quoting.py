"""Untrusted text in messages: control characters escaped, odd file names quoted.

A file name or a key can hold a newline (a second, forged message line) or an ANSI
escape (recolouring or rewriting the user's terminal). Everything lazytsc prints
about a file passes through here, so an error stays one honest line.
"""

from __future__ import annotations

import os


def escape_controls(text: str) -> str:
    """Text with every non-printable character (controls, bidi overrides, line separators)
    written as a Python-style escape: `\\n`, `\\x1b`, `\\u202e`."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def quote_path(path: str | os.PathLike) -> str:
    """A file name as typed when it is plain, else quoted with its odd characters escaped."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if name.isprintable() and not name.startswith("'"):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes from the file system (surrogateescape)
            pass
        else:
            return name
    try:
        readable = os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        readable = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "'" + escape_controls(readable).replace("'", "\\'") + "'"
