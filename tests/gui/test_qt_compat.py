"""The binding work-around: many void calls and emits must not use up None's or True's references.

Without the work-around, PySide6 6.12.0 on Python 3.11 aborts the interpreter
inside this loop (each call drops a reference; None and True start with a few
thousand).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

import segstudio.gui  # noqa: F401  (installs the work-around)
from segstudio.gui.qt_compat import binding_drops_references


class _Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)


def test_many_void_calls_and_emits_do_not_crash(qtbot) -> None:
    e = _Emitter()
    received: list[bool] = []
    e.flag.connect(received.append)
    w = QWidget()
    qtbot.addWidget(w)
    for _ in range(60_000):
        e.plain.emit()
        w.update()
    e.flag.emit(True)
    assert received == [True]


def test_the_probe_pays_back_what_it_costs() -> None:
    import sys

    before = sys.getrefcount(None), sys.getrefcount(True)
    binding_drops_references()
    assert (sys.getrefcount(None), sys.getrefcount(True)) >= before
