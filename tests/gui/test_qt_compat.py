"""The installed Qt binding must not lose references to None / True.

PySide6/shiboken6 6.12.0 on Python 3.10/3.11 drops one reference to ``None``
on every void method call and one to ``True`` on every ``emit()``; after a few
thousand calls CPython aborts ("none_dealloc", "bool_dealloc"), i.e. the app
crashes within seconds of moving the mouse. pyproject.toml excludes that
release on Python < 3.12; this test fails (or aborts) on a binding with the
defect, so a bad install is caught before a user meets it.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget


class _Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)


def test_void_calls_and_emits_keep_references(qtbot) -> None:
    e = _Emitter()
    received: list[bool] = []
    e.flag.connect(received.append)
    w = QWidget()
    qtbot.addWidget(w)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        e.plain.emit()
        w.update()
    after = sys.getrefcount(None), sys.getrefcount(True)
    if sys.version_info < (3, 12):  # on 3.12+ None and True are immortal and their counts meaningless
        assert after[0] >= before[0] - 5, "the Qt binding loses references to None (PySide6 6.12.0 on 3.11?)"
        assert after[1] >= before[1] - 5, "the Qt binding loses references to True (PySide6 6.12.0 on 3.11?)"
    for _ in range(20_000):
        e.plain.emit()
        w.update()
    e.flag.emit(True)
    assert received == [True]
