"""The binding work-around: emitting signals from Python must not use up the reference count of True."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

import segstudio.gui  # noqa: F401  (installs the work-arounds)
from segstudio.gui.qt_compat import emit_drops_a_reference


class _Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)


def test_many_emits_leave_the_reference_count_of_true_alone() -> None:
    e = _Emitter()
    received: list[bool] = []
    e.flag.connect(received.append)
    before = sys.getrefcount(True)
    for _ in range(3000):  # more than the few hundred references True has at start-up
        e.plain.emit()
    e.flag.emit(True)
    assert sys.getrefcount(True) >= before
    assert received == [True]
    assert not emit_drops_a_reference()
