"""Work-arounds for defects of the Qt binding that would otherwise crash the app.

PySide6/shiboken6 6.12.0 on Python 3.10 and 3.11 returns ``None`` from every
void method (``update()``, ``setEnabled()``, ``processEvents()`` …) and ``True``
from ``Signal.emit()`` without taking a reference to them: on Python 3.12+
those objects are immortal, so the binding no longer counts them, but on
3.10/3.11 each call drops one reference. After some thousands of calls the
count reaches zero and CPython aborts ("none_dealloc: deallocating None",
"bool_dealloc: deallocating True or False").

:func:`install` probes for the defect and, only where it is present, does what
Python 3.12 does: it makes ``None``, ``True`` and ``False`` immortal by giving
them a reference count no number of lost references can use up. The better
fix is a binding without the defect (PySide6 < 6.12 on Python 3.11, or Python
3.12+); this keeps the app alive where that is what is installed.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

IMMORTAL_BOOST = 1 << 40
"""Added to the reference counts: more references than a process can ever lose."""

_installed = False


class _Probe(QObject):
    ping = Signal()


def binding_drops_references() -> bool:
    """True when void calls or ``emit()`` lose references to ``None`` / ``True`` (and the objects are mortal)."""
    if sys.version_info >= (3, 12):
        return False  # immortal objects: lost references cannot matter
    probe = _Probe()
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
        probe.blockSignals(False)  # a void method
    lost_none = none0 - sys.getrefcount(None)
    lost_true = true0 - sys.getrefcount(True)
    for obj, lost in ((None, lost_none), (True, lost_true)):
        for _ in range(max(0, lost)):  # pay back what the probe cost
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    return lost_none > 0 or lost_true > 0


def _make_immortal(obj: object) -> None:
    # ob_refcnt is the first field of every object in CPython (a Py_ssize_t at the object's address).
    refcnt = ctypes.c_ssize_t.from_address(id(obj))
    refcnt.value += IMMORTAL_BOOST


def install() -> bool:
    """Apply the work-around if this binding needs it (idempotent); True when it was applied."""
    global _installed
    if _installed:
        return False
    _installed = True
    if sys.implementation.name != "cpython" or not binding_drops_references():
        return False
    for obj in (None, True, False):
        _make_immortal(obj)
    return True
