"""Work-arounds for defects of the Qt binding that would otherwise crash the app.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a
reference to it, so every signal emitted from Python drops one reference to
the ``True`` singleton. After a few hundred emits (a mouse move on the canvas
emits one) the count reaches zero and CPython aborts with "bool_dealloc:
deallocating True or False". :func:`install` probes for the defect and, only
where it is present, wraps ``emit`` to give the reference back.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_installed = False


class _Probe(QObject):
    ping = Signal()


def emit_drops_a_reference() -> bool:
    """True when emitting a signal from Python loses a reference to ``True`` (the PySide6 6.12.0 defect)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.ping.emit()
    after = sys.getrefcount(True)
    for _ in range(before - after):  # pay back what the probe cost
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return after < before


def install() -> None:
    """Apply the work-arounds this binding needs (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    if not emit_drops_a_reference():
        return
    original = SignalInstance.emit
    incref = ctypes.pythonapi.Py_IncRef
    true = ctypes.py_object(True)

    def emit(self: SignalInstance, *args: object) -> object:
        result = original(self, *args)
        if result is True:
            incref(true)  # the reference emit() should have returned with its result
        return result

    SignalInstance.emit = emit  # type: ignore[method-assign, assignment]
