"""Work-arounds for the Qt binding, applied once when lazytsc_gui is imported.

PySide6-Essentials 6.12 (cp310-abi3 wheels) returns `None` from void methods
(and `True`/`False` from bool methods) without taking a reference, which is harmless on Python >= 3.12 (None is
immortal, PEP 683) but on Python 3.10/3.11 drops None's reference count by one
per call: a GUI that paints for a while dies with
`Fatal Python error: none_dealloc`. We detect the leak with a few calls of a
void method and, only then, give None a reference count it cannot exhaust --
the same state Python 3.12 puts it in.
"""

from __future__ import annotations

import ctypes
import sys

PROBE_CALLS = 64
_applied = False


def none_leaks_per_call() -> float:
    """References of None lost per call of a void Qt method (0 on a healthy binding)."""
    from PySide6 import QtCore

    obj = QtCore.QObject()
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        obj.setObjectName("probe")
    after = sys.getrefcount(None)
    return max(0.0, (before - after) / PROBE_CALLS)


def bool_leaks_per_call() -> float:
    """References of False lost per call of a bool-returning Qt method."""
    from PySide6 import QtCore

    obj = QtCore.QObject()
    before = sys.getrefcount(False)
    for _ in range(PROBE_CALLS):
        obj.signalsBlocked()
    after = sys.getrefcount(False)
    return max(0.0, (before - after) / PROBE_CALLS)


def protect_none() -> bool:
    """Make the singletons' reference counts inexhaustible if the binding leaks them."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    try:
        leaking = none_leaks_per_call() >= 0.5 or bool_leaks_per_call() >= 0.5
    except ImportError:  # no Qt binding: nothing to work around
        return False
    if not leaking:
        return False
    # PyObject starts with Py_ssize_t ob_refcnt (non-debug CPython 3.10/3.11). The
    # binding treats every singleton as immortal, so protect all of them.
    for singleton in (None, True, False, NotImplemented, Ellipsis):
        ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 48
    _applied = True
    return True
