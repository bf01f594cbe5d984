"""The fine-tuning panel driven from the real window: a short run from a tiny model file, Stop, a killed
process, closing the window mid-run, and the "how good is it" table against evaluate_on_corrections."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from segstudio.core.image_io import read_mask
from segstudio.core.project import Project
from segstudio.gui.actions import shortcut_table
from segstudio.gui.main_window import MainWindow
from segstudio.gui.panels.training_plot import TrainingPlot
from segstudio.gui.quality import ROUNDS_FILE, RoundHistory, change_text, fmt_iou, training_dir
from segstudio.gui.training_run import TrainSettings
from segstudio.training.evaluate import evaluate_on_corrections
from tests.gui.conftest import choose_model, open_and_wait, show_image
from tests.inference.toy import TOY_MODEL, scene

TIMEOUT = 90_000


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def painted(toy_project: Path) -> Path:
    """The toy project with strokes painted on two images (a band of the true labels each), two unlabelled."""
    project = Project.open(toy_project)
    for i in (0, 1):
        _, truth = scene(96, 128, i)
        label = np.full_like(truth, 255)
        label[20:70, :] = truth[20:70, :]
        project.save_label(f"scene{i:02d}.png", label)
    project.save()
    return toy_project


@pytest.fixture
def start_model(tmp_path: Path) -> Path:
    """The tiny trained toy U-Net (base width 4) in a writable folder of its own."""
    folder = tmp_path / "mymodels"
    folder.mkdir()
    return Path(shutil.copy(TOY_MODEL, folder / "toy.safetensors"))


def ready(qtbot, win: MainWindow, project: Path, model: Path) -> None:
    open_and_wait(qtbot, win, project)
    choose_model(qtbot, win, model, backend="cpu-torch")  # PyTorch on the CPU: no ONNX export in the tests
    assert win.segment.loaded is not None, win.segment.load_error
    qtbot.waitUntil(lambda: win.training.defaults is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: win.all_actions.training.fine_tune.isEnabled(), timeout=10_000)


def test_a_short_fine_tune_makes_a_new_active_version_and_resegments(qtbot, window: MainWindow, painted: Path,
                                                                     start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    panel = window.training_panel
    assert "Fine-tunes toy.safetensors" in panel.start_point.text()
    before_sha = sha(start_model)
    panel.set_settings(TrainSettings(length=4, unit="steps", lr=1e-3, freeze_encoder_steps=2, loss="focal+dice"))
    events: list[str] = []
    window.training.runEvent.connect(lambda ev: events.append(ev.kind))
    with qtbot.waitSignal(window.training.finished, timeout=TIMEOUT) as done:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert window.training.running and not window.all_actions.training.fine_tune.isEnabled()
        assert window.all_actions.training.stop.isEnabled()
    new = Path(done.args[0])
    # a new version beside the old one; the old file untouched; the new one is the project's model
    assert new == start_model.with_name("toy.v2.safetensors") and new.is_file()
    assert sha(start_model) == before_sha
    assert window.segment.choice.path == str(new)
    assert "started" in events and events[-1] == "finished"
    assert not window.training.running
    # the image on screen (scene00) is corrected: the next unlabelled one is opened and segmented
    qtbot.waitUntil(lambda: (toy := window.controller.scores) is not None and window.segment.loaded is not None
                    and toy.model_of("scene02.png") == window.segment.loaded.model_id, timeout=TIMEOUT)
    assert window.controller.current.path == "scene02.png"
    qtbot.waitUntil(lambda: window.controller.current.session.prediction is not None, timeout=TIMEOUT)
    assert np.array_equal(read_mask(painted / "predictions" / "scene02.png"),
                          window.controller.current.session.prediction)
    # how good is it: the round's scores are evaluate_on_corrections' own, shown in the tables and stored
    qtbot.waitUntil(lambda: len(window.training.history.rounds) == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not window.workers.running("evaluate"), timeout=TIMEOUT)
    r = window.training.history.rounds[0]
    after = evaluate_on_corrections(new, painted, backend="torch", device="auto")
    before = evaluate_on_corrections(start_model, painted, backend="torch", device="auto")
    assert r.after is not None and r.before is not None
    assert r.after.miou == pytest.approx(after.miou) and r.before.miou == pytest.approx(before.miou)
    assert panel.rounds.rowCount() == 1
    assert panel.rounds.item(0, 2).text() == change_text(before.miou, after.miou)
    assert f"red: {change_text(before.per_class['red'], after.per_class['red'])}" in panel.rounds.item(0, 2).toolTip()
    table = panel.images
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Image", "mIoU", "background", "red", "blue"]
    assert table.rowCount() == len(after.images) + 1 == 3
    for row, score in enumerate(after.images):
        assert table.item(row, 0).text() == score.image
        assert table.item(row, 1).text() == fmt_iou(score.miou)
        for col, cls in enumerate(after.classes, start=2):
            assert table.item(row, col).text() == fmt_iou(score.per_class[cls])
    assert table.item(2, 1).text() == fmt_iou(after.miou)
    stored = json.loads((training_dir(painted) / ROUNDS_FILE).read_text())["rounds"]
    assert stored[0]["model_after"] == str(new) and stored[0]["after"]["miou"] == pytest.approx(after.miou)
    assert RoundHistory.load(painted).rounds[0].after.miou == pytest.approx(after.miou)


def test_stop_ends_the_process_and_keeps_the_model(qtbot, window: MainWindow, painted: Path,
                                                  start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    panel = window.training_panel
    panel.set_settings(TrainSettings(length=600, unit="seconds", lr=1e-3, freeze_encoder_steps=0, loss="ce"))
    with qtbot.waitSignal(window.training.runEvent, timeout=TIMEOUT,
                          check_params_cb=lambda ev: ev.kind == "step"):
        window.all_actions.training.fine_tune.trigger()
    proc = window.training.process
    assert proc is not None and proc.is_alive()
    with qtbot.waitSignal(window.training.ended, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args[0] == "cancelled"
    qtbot.waitUntil(lambda: not proc.is_alive() and not window.training.processes_alive, timeout=TIMEOUT)
    assert window.segment.choice.path == str(start_model)
    assert not start_model.with_name("toy.v2.safetensors").exists()
    assert "stopped" in panel.status.text() and window.all_actions.training.fine_tune.isEnabled()
    assert len(panel.plot.loss) >= 1


def test_a_killed_process_says_so_and_the_previous_model_stays(qtbot, window: MainWindow, painted: Path,
                                                              start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    window.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3, 0, "ce"))
    assert window.training_panel.start()
    proc = window.training.process
    with qtbot.waitSignal(window.training.ended, timeout=TIMEOUT) as ended:
        proc.kill()
    assert ended.args[0] == "died" and "previous model stays active" in ended.args[1]
    assert window._last_box is not None and "Fine-tuning failed" in window._last_box.text()
    assert window.segment.choice.path == str(start_model)
    assert not window.training.running


def test_closing_the_window_ends_the_training_process(qtbot, painted: Path, start_model: Path) -> None:
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    ready(qtbot, win, painted, start_model)
    win.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3, 0, "ce"))
    assert win.training_panel.start()
    proc = win.training.process
    assert proc is not None
    win.close()
    assert not proc.is_alive()
    assert not win.training.running


def test_opening_another_project_stops_the_run_without_blocking(qtbot, window: MainWindow, painted: Path,
                                                                start_model: Path, image_folder: Path) -> None:
    import time

    ready(qtbot, window, painted, start_model)
    window.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3, 0, "ce"))
    assert window.training_panel.start()
    proc = window.training.process
    assert proc is not None and proc.is_alive()
    t0 = time.monotonic()
    window.open_paths([image_folder])  # the run belongs to the other project: it is cancelled, not waited for
    assert time.monotonic() - t0 < 2.0
    assert window.training.process is None
    qtbot.waitUntil(lambda: not proc.is_alive() and not window.training.processes_alive, timeout=TIMEOUT)
    assert not list(start_model.parent.glob("*.v2.safetensors"))  # a cancelled run writes no new version


def test_training_needs_labels_and_says_where_it_starts(qtbot, window: MainWindow, toy_project: Path,
                                                       model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    qtbot.waitUntil(lambda: window.training.defaults is not None, timeout=TIMEOUT)
    panel = window.training_panel
    assert "from scratch" in panel.start_point.text()
    assert not window.all_actions.training.fine_tune.isEnabled()
    assert "paint some strokes" in window.all_actions.training.fine_tune.toolTip()
    assert not window.training_panel.start() and window.training.process is None
    choose_model(qtbot, window, model_dir / "toy.onnx")
    assert "ONNX file" in panel.start_point.text() and "from scratch" in panel.start_point.text()
    # the actions are in the Model menu and in the shortcuts list
    assert ("Training", "Fine-tune on Corrections", "Ctrl+T") in shortcut_table(window.all_actions)
    assert window.all_actions.training.fine_tune in window.menus["model"].actions()
    # the recipe's defaults are in the panel
    s = panel.settings()
    assert (s.unit, s.length, s.loss) == ("seconds", 120, "focal+dice") and s.lr == pytest.approx(5e-3)


def test_how_good_is_it_on_demand_scores_the_active_model(qtbot, window: MainWindow, painted: Path,
                                                         start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    panel = window.training_panel
    assert window.all_actions.training.evaluate.isEnabled()
    with qtbot.waitSignal(window.training.reportReady, timeout=TIMEOUT) as got:
        qtbot.mouseClick(panel.evaluate_button, Qt.MouseButton.LeftButton)
    want = evaluate_on_corrections(start_model, painted, backend="torch", device="auto")
    assert got.args[1].miou == pytest.approx(want.miou)
    assert [panel.images.item(r, 0).text() for r in range(panel.images.rowCount())] == \
        ["scene00.png", "scene01.png", "project"]
    assert panel.images.item(0, 1).text() == fmt_iou(want.images[0].miou)
    assert panel.images.item(2, 4).text() == fmt_iou(want.per_class["blue"])
    assert "Now: toy.safetensors" in panel.report_title.text()
    assert window.training.history.rounds == []  # on demand is not a round


def test_without_the_training_engine_the_panel_says_why(qtbot, window: MainWindow, painted: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_torch() -> TrainSettings:
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr("segstudio.gui.training_run.recipe_defaults", no_torch)
    open_and_wait(qtbot, window, painted)
    qtbot.waitUntil(lambda: window.training.unavailable is not None, timeout=10_000)
    action = window.all_actions.training.fine_tune
    assert not action.isEnabled() and "No module named 'torch'" in action.toolTip()
    assert not window.training_panel.start() and window.training.process is None


def test_the_plot_skips_unknown_losses(qtbot) -> None:
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.resize(320, 170)
    for step, loss in [(1, 0.9), (2, None), (3, 0.7), (3, 0.6), (4, float("nan")), (5, 0.5)]:
        plot.add_loss(step, loss)
    plot.add_miou(5, 0.42)
    plot.add_miou(6, None)
    assert plot.loss == [(1, 0.9), (3, 0.7), (5, 0.5)] and plot.miou == [(5, 0.42)]
    image = plot.grab().toImage()
    assert image.width() >= 320 and not image.isNull()


def test_without_a_trainable_model_the_small_data_network_is_trained_from_scratch(qtbot, window: MainWindow,
                                                                                  painted: Path) -> None:
    open_and_wait(qtbot, window, painted)
    window.segment.set_backend("cpu-torch")
    show_image(qtbot, window, "scene03.png")  # unlabelled: the image on screen is the one re-segmented
    qtbot.waitUntil(lambda: window.all_actions.training.fine_tune.isEnabled(), timeout=TIMEOUT)
    panel = window.training_panel
    assert "small-data U-Net (base width 8) from scratch" in panel.start_point.text()
    panel.set_settings(TrainSettings(length=3, unit="steps", lr=5e-3, freeze_encoder_steps=0, loss="focal+dice"))
    with qtbot.waitSignal(window.training.finished, timeout=TIMEOUT) as done:
        window.all_actions.training.fine_tune.trigger()
    new = Path(done.args[0])
    assert new == training_dir(painted) / "unet.safetensors" and new.is_file()
    assert window.segment.choice.path == str(new)
    qtbot.waitUntil(lambda: len(window.training.history.rounds) == 1, timeout=TIMEOUT)
    r = window.training.history.rounds[0]
    assert r.model_before is None and r.before is None and r.after is not None
    assert panel.rounds.item(0, 2).text() == fmt_iou(r.after.miou)
    # the new model has the project's classes, so it segments the next unlabelled image at once
    qtbot.waitUntil(lambda: window.controller.current.session.prediction is not None, timeout=TIMEOUT)
    assert window.controller.current.path == "scene03.png"
    assert np.array_equal(read_mask(painted / "predictions" / "scene03.png"),
                          window.controller.current.session.prediction)
    # the project scans no training output as an image
    window.controller.rescan()
    qtbot.waitUntil(lambda: not window.workers.running(), timeout=TIMEOUT)
    assert [e.path for e in window.controller.project.images] == [f"scene{i:02d}.png" for i in range(4)]
