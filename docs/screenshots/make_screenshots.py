"""Take the README's screenshots of the real window (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots/make_screenshots.py

States: the welcome page (first launch, no project) and painting (the sample
images opened with "Open sample images", some regions labelled with the
polygon tool and the brush, a brush stroke under way). The labels are drawn by
this script through the same tools a user has; nothing is taken from ground
truth. A throw-away settings file and data folder are used, so the user's own
settings and sample project are not touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QPoint, QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

# (class name, polygon in image pixels) for the first sample image, 0016E5_07959.png (480×360)
REGIONS = [
    ("Sky", [(186, 0), (372, 0), (352, 22), (306, 58), (292, 150), (258, 150), (246, 108), (228, 88), (208, 74)]),
    ("Road", [(70, 360), (212, 228), (262, 200), (300, 196), (345, 222), (480, 282), (480, 360)]),
    ("Car", [(340, 216), (346, 186), (362, 177), (404, 177), (419, 194), (428, 214), (424, 246), (394, 250),
             (352, 242)]),
    ("Building", [(0, 0), (186, 0), (204, 80), (206, 204), (120, 222), (0, 252)]),
]


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_ms: int = 30_000) -> None:
    for _ in range(timeout_ms // 10):
        if condition():
            return
        app.processEvents()
        QTest.qWait(10)
    raise TimeoutError("the window did not get there")


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="segstudio-shots-"))
    os.environ["SEGSTUDIO_HOME"] = str(tmp / "home")
    QCoreApplication.setOrganizationName("segstudio-screenshots")
    QCoreApplication.setApplicationName("segstudio-screenshots")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "ini"))
    app = QApplication(sys.argv[:1])

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.theme import apply_theme

    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window = MainWindow()
        window.resize(1400, 860)
        window.show()
        QTest.qWaitForWindowExposed(window)
        suffix = "" if theme == "light" else "-dark"
        if theme == "light":
            QTest.qWait(200)
            window.grab().save(str(HERE / "welcome.png"))
        window.open_samples()
        wait_until(app, lambda w=window: w.controller.current is not None)
        wait_until(app, lambda w=window: len(w.files.model.thumbs) == len(w.files.model.entries))
        doc = window.controller.current
        classes = window.controller.classes
        window.tools.set_tool("polygon")
        for name, polygon in REGIONS:
            window.tools.set_class(classes.index_of(name))
            doc.session.fill_polygon([(float(x), float(y)) for x, y in polygon], window.tools.current_class,
                                     window.tools.ctx.lock)
            window.controller.note_edit()
        # a pavement stroke with the brush, only over unlabelled pixels, still being drawn
        window.tools.set_tool("brush")
        window.tools.set_class(classes.index_of("Pavement"))
        window.tools.set_radius(9)
        window.all_actions.edit.lock_unlabelled.trigger()
        vp, canvas = window.canvas.viewport(), window.canvas
        pts = [(20, 300), (60, 280), (110, 262), (150, 246), (185, 232)]

        def at(x: float, y: float, view: Any = canvas) -> QPoint:
            return view.mapFromScene(QPointF(x + 0.5, y + 0.5))

        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*pts[0]))
        for p in pts[1:]:
            QTest.mouseMove(vp, at(*p))
        QTest.qWait(400)  # the pixel shares recount
        window.grab().save(str(HERE / f"painting{suffix}.png"))
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*pts[-1]))
        window.close()
    print(f"saved welcome.png, painting.png, painting-dark.png in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
