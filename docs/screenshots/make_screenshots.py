"""Take the README's screenshots of the real window (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1200x24" python docs/screenshots/make_screenshots.py

States: the welcome page (first launch, no project); painting (the sample
images opened with "Open sample images", some regions labelled with the
polygon tool and the brush, a brush stroke under way); segmented and its
uncertainty (a folder segmented with Segment All Unlabelled, then "Next most
uncertain image"); training: twelve ISBI-2012 EM slices, ten of them with sparse corrections, two
fine-tuning rounds run from the Fine-tune panel. The painting labels are drawn by this script through the
same tools a user has; the training state's corrections are bands of the ISBI ground truth, standing in for
a user's strokes. A throw-away settings file and
data folder are used, so the user's own settings and sample project are not
touched.

The segmented state uses the shipped default model, ``models/camvid-fastscnn.onnx``
(trained from scratch on CamVid train; the samples are CamVid val images it never
trained on). ``make_screenshots.py segmented`` or ``training`` takes only that state; ``small`` takes the
1280×800 shots (classes-1280.png, finetune-1280.png, batch-options.png, batch-1280.png); ``large`` the same at
1920×1080 (classes-1920.png, finetune-1920.png, batch-1920.png).
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
SECONDS = tuple(int(s) for s in os.environ.get("SHOT_SECONDS", "90,45").split(","))
"""The training shot's two rounds, in seconds (``SHOT_SECONDS=12,8`` for a quick try)."""
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
    if sys.argv[1:] == ["training"]:
        training(app, tmp)
        return 0
    if sys.argv[1:] == ["finetune"]:
        finetune(app, tmp)
        return 0
    if sys.argv[1:] == ["segmented"]:
        segmented(app, tmp)
        return 0
    if sys.argv[1:] == ["small"]:
        small_screen(app, tmp)
        return 0
    if sys.argv[1:] == ["large"]:
        small_screen(app, tmp, (1920, 1080))
        return 0

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
        if window._last_box is not None:
            window._last_box.close()  # "no trained model is installed yet"
        window.close()
    apply_theme(app, "light")
    segmented(app, tmp)
    training(app, tmp)
    print(f"saved welcome.png, painting.png, painting-dark.png, segmented.png, uncertainty.png in {HERE}")
    return 0


def segmented(app: QApplication, tmp: Path) -> None:
    """The sample street scenes segmented by the shipped default model (models/camvid-fastscnn.onnx)."""
    from segstudio.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1400, 860)
    window.show()
    QTest.qWaitForWindowExposed(window)
    window.open_samples()  # opens resources/samples with the shipped default model selected
    wait_until(app, lambda: window.controller.current is not None)
    wait_until(app, lambda: window.segment.loaded is not None, 120_000)
    window.all_actions.model.segment_all.trigger()
    wait_until(app, lambda: not window.segment.running, 120_000)
    window.all_actions.image.next_uncertain.trigger()  # the image to correct first
    wait_until(app, lambda: window.controller.current.path == window.controller.requested_path)
    wait_until(app, lambda: len(window.files.model.thumbs) == len(window.files.model.entries))
    window.canvas.fit_to_window()
    QTest.qWait(400)
    window.grab().save(str(HERE / "segmented.png"))
    window.all_actions.view.uncertainty.trigger()
    QTest.qWait(300)
    window.grab().save(str(HERE / "uncertainty.png"))
    window.close()


def training(app: QApplication, tmp: Path) -> None:
    """Two fine-tuning rounds on ISBI-2012 slices, from the Fine-tune panel.

    The data set's own labels stand in for a user's corrections, kept sparse the
    way a user paints: three horizontal bands of each of ten slices (the rest is
    "not labelled"); two slices stay unlabelled. Round 1 trains the small-data
    U-Net from scratch (chosen under Train), round 2 fine-tunes round 1's model
    (Train: the active model); each version is judged on the held-out slices (the
    2nd and 7th corrected). The shot is taken after round 2: the verdict, the
    rounds and the per-image held-out table, the next unlabelled slice re-segmented.
    """
    import numpy as np

    from segstudio.core.classes import ClassTable
    from segstudio.core.image_io import read_mask
    from segstudio.core.project import Project
    from segstudio.gui.main_window import MainWindow
    from segstudio.workspace.model_choice import ModelChoice

    data = Path(os.environ.get("SEGSTUDIO_DATA", ROOT.parent / "shared" / "data")) / "isbi-membrane"
    folder = tmp / "isbi"
    folder.mkdir(parents=True)
    for i in range(12):
        (folder / f"{i:02d}.png").write_bytes((data / "image" / f"{i:02d}.png").read_bytes())
    project = Project.create(folder, classes=ClassTable.from_names(["membrane", "cell"],
                                                                   [(255, 60, 60), (60, 200, 255)]))
    for i in range(2, 12):
        truth = read_mask(data / "label" / f"{i:02d}.png")
        label = np.full(truth.shape, 255, np.uint8)
        for top in (40, 220, 400):
            band = slice(top, top + 60)
            label[band] = np.where(truth[band] == 0, 0, 1)
        project.save_label(f"{i:02d}.png", label)
    project.save()
    window = MainWindow()
    window.resize(1500, 1150)
    window.show()
    QTest.qWaitForWindowExposed(window)
    window.segment.set_backend("cpu-torch")
    window.open_paths([folder])
    wait_until(app, lambda: window.controller.current is not None)
    window.training.set_target(ModelChoice.preset_network("small-data"))
    wait_until(app, lambda: window.all_actions.training.fine_tune.isEnabled(), 120_000)
    window.docks["training"].raise_()
    window.resizeDocks([window.docks["classes"], window.docks["training"]], [120, 1020], Qt.Orientation.Vertical)
    window.resizeDocks([window.docks["training"]], [470], Qt.Orientation.Horizontal)
    window.notifier.message.connect(lambda text: print(text, flush=True))  # the status bar's lines
    for n, seconds in enumerate(SECONDS):
        if n:  # the second round fine-tunes the model the first one made
            window.training.set_target(None)
            wait_until(app, lambda: window.training.defaults is not None and window.training.blocked_reason() is None,
                       120_000)
        settings = window.training_panel.settings()
        settings.length, settings.unit = seconds, "seconds"
        window.training_panel.set_settings(settings)
        rounds = len(window.training.history.rounds)
        window.all_actions.training.fine_tune.trigger()
        wait_until(app, lambda: not window.training.running, 600_000)
        wait_until(app, lambda r=rounds: len(window.training.history.rounds) == r + 1, 300_000)
        wait_until(app, lambda: not window.segment.running and window.segment.loaded is not None, 120_000)
    wait_until(app, lambda: window.controller.current is not None
               and window.controller.current.session.prediction is not None, 120_000)
    wait_until(app, lambda: len(window.files.model.thumbs) == len(window.files.model.entries))
    window.canvas.fit_to_window()
    QTest.qWait(400)
    window.grab().save(str(HERE / "training.png"))
    window.close()


def finetune(app: QApplication, tmp: Path) -> None:
    """Ctrl+T on the sample street scenes with the shipped default (camvid-fastscnn.onnx, fine-tuned through its
    .safetensors twin): three of the six images corrected with CamVid's own labels (the samples are CamVid val
    frames), one round, the verdict on the held-out image."""
    import numpy as np

    from segstudio.core.image_io import read_mask
    from segstudio.gui.main_window import MainWindow

    data = Path(os.environ.get("SEGSTUDIO_DATA", ROOT.parent / "shared" / "data")) / "camvid" / "valannot"
    window = MainWindow()
    window.resize(1500, 1000)
    window.show()
    QTest.qWaitForWindowExposed(window)
    window.open_samples()
    wait_until(app, lambda: window.controller.current is not None)
    wait_until(app, lambda: window.segment.loaded is not None, 120_000)
    project = window.controller.project
    for e in project.images[:3]:
        truth = read_mask(data / e.name)
        project.save_label(e, np.where(truth == 11, 255, truth).astype(np.uint8))
    project.save()
    window.controller.rescan()
    window.controller.open_entry(project.images[4].path)
    wait_until(app, lambda: window.all_actions.training.fine_tune.isEnabled(), 120_000)
    window.docks["training"].raise_()
    window.resizeDocks([window.docks["training"]], [470], Qt.Orientation.Horizontal)
    settings = window.training_panel.settings()
    settings.length = SECONDS[0]
    window.training_panel.set_settings(settings)
    window.notifier.message.connect(lambda text: print(text, flush=True))
    window.all_actions.training.fine_tune.trigger()  # Ctrl+T (a shortcut needs an active window: no WM here)
    wait_until(app, lambda: window.training.last_round is not None, 900_000)
    wait_until(app, lambda: not window.segment.running and window.segment.loaded is not None, 120_000)
    QTest.qWait(600)
    window.grab().save(str(HERE / "finetune.png"))
    window.close()


def small_screen(app: QApplication, tmp: Path, size: tuple[int, int] = (1280, 800)) -> None:
    """The window at 1280×800 (a laptop screen; ``size`` (1920, 1080) for a desktop one, ``large``): the class
    panel (with a class selected, Delete… and the move
    buttons) beside the Model panel, the sample street scenes segmented by the shipped default model; the
    Fine-tune panel in the same place; then File ›
    Batch Segment Folder… run on the sample folder, its non-modal progress window in front of the window that
    stays usable."""
    from PySide6.QtGui import QGuiApplication

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.panels import batch

    batch.open_folder = lambda path: True  # no file manager under Xvfb
    window = MainWindow()
    window.move(0, 0)
    window.resize(*size)
    window.show()
    QTest.qWaitForWindowExposed(window)
    window.open_samples()
    wait_until(app, lambda: window.controller.current is not None)
    wait_until(app, lambda: window.segment.loaded is not None, 120_000)
    window.all_actions.model.segment.trigger()
    wait_until(app, lambda: not window.segment.running, 120_000)
    wait_until(app, lambda: len(window.files.model.thumbs) == len(window.files.model.entries))
    window.tools.set_class(window.controller.classes.index_of("Car"))
    window.canvas.fit_to_window()
    QTest.qWait(400)
    window.grab().save(str(HERE / f"classes-{size[0]}.png"))
    window.docks["training"].raise_()  # the Fine-tune panel, tabbed with the Model panel
    QTest.qWait(300)
    window.grab().save(str(HERE / f"finetune-{size[0]}.png"))
    window.docks["model"].raise_()
    project = window.controller.project
    dialog = window.model_commands.ask_batch()
    dialog.input_edit.setText(str(project.image_path(project.images[0]).parent))
    dialog.output_edit.setText(str(tmp / "batch-out"))
    dialog.masks.setChecked(True)
    QTest.qWait(300)
    if size[0] == 1280:
        dialog.grab().save(str(HERE / "batch-options.png"))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    assert progress is not None
    wait_until(app, lambda: progress.outcome is not None, 300_000)
    progress.move(window.x() + window.width() - progress.width() - 320, window.y() + 420)
    QTest.qWait(500)
    screen = QGuiApplication.primaryScreen()
    screen.grabWindow(0, window.x(), window.y(), window.frameGeometry().width(),
                      window.frameGeometry().height()).save(str(HERE / f"batch-{size[0]}.png"))
    progress.close()
    window.close()


if __name__ == "__main__":
    sys.exit(main())
