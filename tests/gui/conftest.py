"""GUI test fixtures: isolated settings, a real main window, synthetic image folders, dangling-thread check.

Every test gets its own QSettings file and ``$SEGSTUDIO_HOME`` (the sample
project's folder), so tests never see the developer's settings or each other's.
``no_dangling_threads`` (autouse) records every QThread started during a test
and fails the test if one is still running at its end (napari's
``_dangling_qthreads`` idea): a window must join its workers when it closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QPoint, QPointF, QSettings, Qt, QThread

from segstudio.core.project import Project, default_classes
from segstudio.gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("settings")
    QCoreApplication.setOrganizationName("segstudio-test")
    QCoreApplication.setApplicationName("segstudio-test")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(root / "ini"))
    monkeypatch.setenv("SEGSTUDIO_HOME", str(root / "home"))
    return root


def dangling(threads: list[QThread]) -> list[str]:
    """Names of the threads in ``threads`` that are still running."""
    return [t.objectName() or type(t).__name__ for t in threads if t.isRunning()]


@pytest.fixture(autouse=True)
def no_dangling_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[QThread]]:
    started: list[QThread] = []
    original = QThread.start

    def start(self: QThread, *args: object) -> None:
        started.append(self)
        original(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield started
    left = dangling(started)
    for t in started:  # do not let a failing test crash the interpreter with a running thread
        t.wait(10_000)
    if left:
        pytest.fail(f"worker threads left running at the end of the test: {', '.join(left)}")


def write_image(path: Path, height: int = 120, width: int = 160, seed: int = 0) -> Path:
    """A synthetic RGB image: a gradient with a bright rectangle (so regions differ)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 200, height, dtype=np.uint8)[:, None]
    y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
    img[y:y + height // 3, x:x + width // 3] = 240
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img[..., ::-1])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    for i in range(4):
        write_image(folder / f"img{i}.png", seed=i)
    return folder


@pytest.fixture
def window(qtbot) -> Iterator[MainWindow]:
    win = MainWindow()
    qtbot.addWidget(win)
    # the folders of these tests start as if the user had added two classes (a new folder otherwise starts
    # with an empty table, or the chosen model's: tests/gui/test_class_management.py)
    win.controller.new_classes = default_classes()
    win.controller.saver.autosave.setInterval(50)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def open_and_wait(qtbot, win: MainWindow, path: Path | str, timeout: int = 10_000) -> None:
    """Open ``path`` and wait until its first image is on the canvas."""
    win.open_paths([path])
    qtbot.waitUntil(lambda: win.controller.current is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not win.workers.running("load image"), timeout=timeout)


def show_image(qtbot, win: MainWindow, path: str, timeout: int = 10_000) -> None:
    win.controller.open_entry(path)
    qtbot.waitUntil(lambda: win.controller.current is not None and win.controller.current.path == path,
                    timeout=timeout)


def to_view(win: MainWindow, x: float, y: float) -> QPoint:
    """The viewport position of image pixel (x, y)."""
    return win.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def drag(qtbot, win: MainWindow, points: list[tuple[float, float]]) -> None:
    """Press at the first point, move through the rest, release at the last: real mouse events."""
    vp = win.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=to_view(win, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, to_view(win, *p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=to_view(win, *points[-1]))


def wait_saved(qtbot, win: MainWindow, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: not win.controller.any_dirty() and not win.workers.running("save label"),
                    timeout=timeout)


# ---------------------------------------------------------------------- models (tests/inference/toy.py)

TOY_CLASSES = ["background", "red", "blue"]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the trained toy UNet (tests/inference/assets) as .safetensors, its ONNX export with the
    card, and the same export without a card. Shared by the session, so the on-the-fly ONNX export of the
    .safetensors file (cached beside it) is made once."""
    import shutil

    import torch

    from segstudio.inference.export import export_onnx
    from segstudio.inference.model_file import load_model
    from segstudio.zoo import CARD_KEY
    from tests.inference.toy import TOY_MODEL

    torch.set_num_threads(2)
    folder = tmp_path_factory.mktemp("models")
    shutil.copy(TOY_MODEL, folder / "toy.safetensors")
    model, card = load_model(folder / "toy.safetensors")
    export_onnx(model, folder / "toy.onnx", metadata={CARD_KEY: card.to_json()})
    export_onnx(model, folder / "foreign.onnx")
    return folder


def toy_scene_folder(folder: Path, count: int, height: int = 96, width: int = 128, seed: int = 0) -> Path:
    """``count`` toy scenes (red and blue shapes on grey, the toy model's task) as PNG files."""
    from tests.inference.toy import scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, _ = scene(height, width, seed + i)
        ok, buf = cv2.imencode(".png", image[:, :, ::-1])
        assert ok
        (folder / f"scene{i:02d}.png").write_bytes(buf.tobytes())
    return folder


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project of four toy scenes whose classes are the toy model's."""
    from segstudio.core.classes import ClassTable

    folder = toy_scene_folder(tmp_path / "scenes", 4)
    Project.create(folder, classes=ClassTable.from_names(TOY_CLASSES))
    return folder


def choose_model(qtbot, win: MainWindow, path: Path, backend: str | None = None, timeout: int = 60_000) -> None:
    """Choose a model file in the window and wait until it is loaded (or fails)."""
    if backend is not None:
        win.segment.set_backend(backend)
    win.segment.choose_file(path)
    qtbot.waitUntil(lambda: not win.segment.loading, timeout=timeout)
