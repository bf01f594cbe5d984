"""The fine-tuning panel driven from the real window: a short round from a tiny model file judged on the held-out
correction, Stop, a killed process, closing the window mid-run, a worse candidate kept out, the "how good is it"
table against evaluate_on_corrections, and where a run starts."""

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
from segstudio.gui.controllers.training_controller import TrainSettings
from segstudio.gui.main_window import MainWindow
from segstudio.gui.panels.training_plot import TrainingPlot
from segstudio.training.evaluate import evaluate_on_corrections
from segstudio.workspace.model_choice import ModelChoice
from segstudio.workspace.rounds import ROUNDS_FILE, RoundHistory, change_text, fmt_iou, training_dir
from segstudio.workspace.versions import VersionRegistry, versions_dir
from tests.gui.conftest import choose_model, open_and_wait, show_image
from tests.inference.toy import TOY_MODEL, scene

TIMEOUT = 90_000


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def painted(toy_project: Path) -> Path:
    """The toy project with strokes painted on two images (a band of the true labels each), two unlabelled.
    scene00 trains, scene01 (the 2nd labelled image) is held out to judge the models."""
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
    assert panel.settings().lr == pytest.approx(2e-3) and panel.settings().loss == "ce"  # the fine-tuning recipe
    before_sha = sha(start_model)
    panel.set_settings(TrainSettings(length=4, unit="steps", lr=1e-3, freeze_encoder=True, loss="focal+dice"))
    events: list[str] = []
    window.training.runEvent.connect(lambda ev: events.append(ev.kind))
    with qtbot.waitSignal(window.training.finished, timeout=TIMEOUT) as done:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert window.training.running and not window.all_actions.training.fine_tune.isEnabled()
        assert window.all_actions.training.stop.isEnabled()
    new = Path(done.args[0])
    # a new version in the project (nothing beside the old one, which is untouched); judged at least as good on
    # the held-out correction, so it is the project's model now
    assert new == versions_dir(painted) / "toy.v2.safetensors" and new.is_file()
    assert sorted(p.name for p in start_model.parent.iterdir()) == ["toy.safetensors"]
    assert sha(start_model) == before_sha
    assert window.segment.choice.path == str(new)
    assert "started" in events and events[-1] == "finished"
    r = window.training.last_round
    assert r is not None and r.activated and r.held_out == ["scene01.png"]
    assert "is active" in panel.verdict.text() and panel.back_button.isVisible()
    assert "judging" not in panel.status.text() and "now active" in panel.status.text()
    version = VersionRegistry.load(painted).find(new)
    assert version is not None and version.status == "accepted" and version.trained_from == "toy.safetensors"
    # the model list shows where it came from
    texts = [window.model_panel.choices.item(i).text() for i in range(window.model_panel.choices.rowCount())]
    assert "Trained in this project" in texts
    assert any(t.startswith("toy.v2 — trained here") and "round 1" in t for t in texts)
    assert not window.training.running
    # the image on screen (scene00) is corrected: the next unlabelled one is opened and segmented
    qtbot.waitUntil(lambda: (toy := window.controller.scores) is not None and window.segment.loaded is not None
                    and toy.model_of("scene02.png") == window.segment.loaded.model_id, timeout=TIMEOUT)
    assert window.controller.current.path == "scene02.png"
    qtbot.waitUntil(lambda: window.controller.current.session.prediction is not None, timeout=TIMEOUT)
    assert np.array_equal(read_mask(painted / "predictions" / "scene02.png"),
                          window.controller.current.session.prediction)
    # how good is it: the round's scores are evaluate_on_corrections' own on the held-out image, shown and stored
    qtbot.waitUntil(lambda: len(window.training.history.rounds) == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not window.workers.running("evaluate"), timeout=TIMEOUT)
    r = window.training.history.rounds[0]
    held = ["scene01.png"]
    after = evaluate_on_corrections(new, painted, images=held, backend="torch", device="auto")
    before = evaluate_on_corrections(start_model, painted, images=held, backend="torch", device="auto")
    assert r.after is not None and r.before is not None
    assert r.after.miou == pytest.approx(after.miou) and r.before.miou == pytest.approx(before.miou)
    assert after.miou >= before.miou
    assert panel.rounds.rowCount() == 1
    assert panel.rounds.item(0, 2).text() == change_text(before.miou, after.miou)
    assert panel.rounds.item(0, 3).text() == "active"
    assert f"red: {change_text(before.per_class['red'], after.per_class['red'])}" in panel.rounds.item(0, 2).toolTip()
    table = panel.images
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Image", "mIoU", "background", "red", "blue"]
    assert table.rowCount() == len(after.images) + 1 == 2  # the held-out image and the pooled row, no training image
    assert table.item(0, 0).text() == "scene01.png" and table.item(0, 1).text() == fmt_iou(after.images[0].miou)
    for col, cls in enumerate(after.classes, start=2):
        assert table.item(0, col).text() == fmt_iou(after.images[0].per_class[cls])
    assert table.item(1, 0).text() == "held-out" and table.item(1, 1).text() == fmt_iou(after.miou)
    # one click switches back
    panel.back_button.click()
    qtbot.waitUntil(lambda: window.segment.choice.path == str(start_model), timeout=TIMEOUT)
    stored = json.loads((training_dir(painted) / ROUNDS_FILE).read_text())["rounds"]
    assert stored[0]["model_after"] == str(new) and stored[0]["after"]["miou"] == pytest.approx(after.miou)
    assert RoundHistory.load(painted).rounds[0].after.miou == pytest.approx(after.miou)


def test_stop_ends_the_process_and_keeps_the_model(qtbot, window: MainWindow, painted: Path,
                                                  start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    panel = window.training_panel
    panel.set_settings(TrainSettings(length=600, unit="seconds", lr=1e-3, loss="ce"))
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
    assert not (versions_dir(painted) / "toy.v2.safetensors").exists()
    assert "stopped" in panel.status.text() and window.all_actions.training.fine_tune.isEnabled()
    assert len(panel.plot.loss) >= 1


def test_a_killed_process_says_so_and_the_previous_model_stays(qtbot, window: MainWindow, painted: Path,
                                                              start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    window.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3))
    assert window.training_panel.start()
    proc = window.training.process
    with qtbot.waitSignal(window.training.ended, timeout=TIMEOUT) as ended:
        proc.kill()
    assert ended.args[0] == "died" and "active model stays" in ended.args[1]
    assert window._last_box is not None and "Fine-tuning failed" in window._last_box.text()
    assert window.segment.choice.path == str(start_model)
    assert not window.training.running


def test_closing_the_window_ends_the_training_process(qtbot, painted: Path, start_model: Path) -> None:
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    ready(qtbot, win, painted, start_model)
    win.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3))
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
    window.training_panel.set_settings(TrainSettings(600, "seconds", 1e-3))
    assert window.training_panel.start()
    proc = window.training.process
    assert proc is not None and proc.is_alive()
    t0 = time.monotonic()
    window.open_paths([image_folder])  # the run belongs to the other project: it is cancelled, not waited for
    assert time.monotonic() - t0 < 2.0
    assert window.training.process is None
    qtbot.waitUntil(lambda: not proc.is_alive() and not window.training.processes_alive, timeout=TIMEOUT)
    assert not list(versions_dir(painted).glob("*.v2.safetensors"))  # a cancelled run writes no new version


def test_training_needs_labels_and_says_where_it_starts(qtbot, window: MainWindow, toy_project: Path,
                                                       model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    panel = window.training_panel
    # no model: nothing is trained in its place
    assert "No model is active" in panel.start_point.text()
    assert not window.all_actions.training.fine_tune.isEnabled()
    # an ONNX file with its .safetensors twin fine-tunes the twin
    choose_model(qtbot, window, model_dir / "toy.onnx")
    assert "Fine-tunes toy.safetensors (the PyTorch twin of toy.onnx)" in panel.start_point.text()
    qtbot.waitUntil(lambda: window.training.defaults is not None, timeout=TIMEOUT)
    assert not window.all_actions.training.fine_tune.isEnabled()
    assert "paint some strokes" in window.all_actions.training.fine_tune.toolTip()
    assert not window.training_panel.start() and window.training.process is None
    # the fine-tuning recipe's defaults are in the panel
    s = panel.settings()
    assert (s.unit, s.length, s.loss, s.mode) == ("seconds", 180, "ce", "rounds") and s.lr == pytest.approx(2e-3)
    # an ONNX file without a twin cannot be trained, and nothing is trained instead
    window.settings.set_onnx_class_names(model_dir / "foreign.onnx", ["background", "red", "blue"])
    choose_model(qtbot, window, model_dir / "foreign.onnx")
    assert "without its .safetensors twin" in panel.start_point.text()
    assert "twin" in window.all_actions.training.fine_tune.toolTip()
    # the small-data U-Net is an explicit choice, with its own recipe and a measured step time
    row = panel.target.findText("Small-data U-Net (base width 8, from scratch)")
    panel.target.setCurrentIndex(row)
    panel.target.activated.emit(row)
    assert "small-data U-Net" in panel.start_point.text()
    qtbot.waitUntil(lambda: window.training.defaults is not None and "per step" in window.training.defaults.estimate,
                    timeout=TIMEOUT)
    s = panel.settings()
    assert s.lr == pytest.approx(5e-3) and s.loss == "focal+dice" and "per step here" in panel.estimate.text()
    # the actions are in the Model menu and in the shortcuts list
    assert ("Training", "Fine-tune on Corrections", "Ctrl+T") in shortcut_table(window.all_actions)
    assert window.all_actions.training.fine_tune in window.menus["model"].actions()


def test_how_good_is_it_on_demand_scores_the_active_model(qtbot, window: MainWindow, painted: Path,
                                                         start_model: Path) -> None:
    ready(qtbot, window, painted, start_model)
    panel = window.training_panel
    assert window.all_actions.training.evaluate.isEnabled()
    with qtbot.waitSignal(window.training.reportReady, timeout=TIMEOUT) as got:
        qtbot.mouseClick(panel.evaluate_button, Qt.MouseButton.LeftButton)
    want = evaluate_on_corrections(start_model, painted, images=["scene01.png"], backend="torch", device="auto")
    assert got.args[1].miou == pytest.approx(want.miou)
    # the held-out correction only: scores on training images are never shown as quality
    assert [panel.images.item(r, 0).text() for r in range(panel.images.rowCount())] == ["scene01.png", "held-out"]
    assert panel.images.item(0, 1).text() == fmt_iou(want.images[0].miou)
    assert panel.images.item(1, 4).text() == fmt_iou(want.per_class["blue"])
    assert "Now: toy.safetensors" in panel.report_title.text()
    assert window.training.history.rounds == []  # on demand is not a round


def test_without_the_training_engine_the_panel_says_why(qtbot, window: MainWindow, painted: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_torch(start: object, cancel: object) -> TrainSettings:
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr("segstudio.gui.controllers.training_controller.recipe_defaults", no_torch)
    open_and_wait(qtbot, window, painted)
    window.training.set_target(ModelChoice.preset_network("small-data"))
    qtbot.waitUntil(lambda: window.training.unavailable is not None, timeout=10_000)
    action = window.all_actions.training.fine_tune
    assert not action.isEnabled() and "No module named 'torch'" in action.toolTip()
    assert not window.training_panel.start() and window.training.process is None


def test_the_loading_status_clears_as_soon_as_training_can_start(qtbot, window: MainWindow, painted: Path,
                                                                   start_model: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """"The training engine is still loading" is said only while it is true: once the engine has loaded (Ctrl+T
    works), the panel's status says training is ready."""
    import threading

    from segstudio.gui.controllers import training_controller

    gate = threading.Event()
    real = training_controller.recipe_defaults

    def slow_defaults(start: object, cancel: object) -> TrainSettings:
        gate.wait(30)
        return real(start, cancel)  # type: ignore[arg-type]

    monkeypatch.setattr("segstudio.gui.controllers.training_controller.recipe_defaults", slow_defaults)
    open_and_wait(qtbot, window, painted)
    choose_model(qtbot, window, start_model, backend="cpu-torch")
    panel, action = window.training_panel, window.all_actions.training.fine_tune
    qtbot.waitUntil(lambda: bool(window.workers.running("training defaults")), timeout=10_000)
    assert not action.isEnabled() and "still loading" in panel.status.text()
    gate.set()
    qtbot.waitUntil(action.isEnabled, timeout=TIMEOUT)
    assert "still loading" not in panel.status.text() and "Not running" not in panel.status.text()
    assert "Ready" in panel.status.text() and "Ctrl+T" in panel.status.text()


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


def test_the_small_data_network_trains_from_scratch_when_chosen(qtbot, window: MainWindow, painted: Path) -> None:
    open_and_wait(qtbot, window, painted)
    window.segment.set_backend("cpu-torch")
    show_image(qtbot, window, "scene03.png")  # unlabelled: the image on screen is the one re-segmented
    window.training.set_target(ModelChoice.preset_network("small-data"))
    qtbot.waitUntil(lambda: window.all_actions.training.fine_tune.isEnabled(), timeout=TIMEOUT)
    panel = window.training_panel
    assert "small-data U-Net" in panel.start_point.text()
    panel.set_settings(TrainSettings(length=3, unit="steps", lr=5e-3, loss="focal+dice"))
    with qtbot.waitSignal(window.training.finished, timeout=TIMEOUT) as done:
        window.all_actions.training.fine_tune.trigger()
    new = Path(done.args[0])
    assert new == versions_dir(painted) / "unet.safetensors" and new.is_file()
    # no model was active: there is nothing it could be worse than
    assert window.segment.choice.path == str(new)
    qtbot.waitUntil(lambda: len(window.training.history.rounds) == 1, timeout=TIMEOUT)
    r = window.training.history.rounds[0]
    assert r.model_before is None and r.before is None and r.after is not None and r.activated
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


def test_a_worse_candidate_is_not_activated(qtbot, window: MainWindow, painted: Path, start_model: Path) -> None:
    """A network trained from scratch for two steps against the trained toy model: worse on the held-out
    correction, so it is kept as a candidate; the user may still use it."""
    ready(qtbot, window, painted, start_model)
    window.training.set_target(ModelChoice.preset_network("small-data"))
    qtbot.waitUntil(lambda: window.all_actions.training.fine_tune.isEnabled(), timeout=TIMEOUT)
    panel = window.training_panel
    panel.set_settings(TrainSettings(length=2, unit="steps", lr=5e-3, loss="focal+dice"))
    with qtbot.waitSignal(window.training.concluded, timeout=TIMEOUT) as done:
        window.all_actions.training.fine_tune.trigger()
    r = done.args[0]
    assert not r.activated and "worse on the held-out corrections" in r.verdict
    assert r.before.miou > r.after.miou
    assert window.segment.choice.path == str(start_model)  # the active model stays
    assert "candidate" in panel.verdict.text() and panel.accept_button.isVisible()
    assert "kept as a candidate" in panel.status.text()
    assert panel.rounds.item(0, 3).text() == "candidate"
    version = VersionRegistry.load(painted).find(r.model_after)
    assert version is not None and version.status == "candidate"
    texts = [window.model_panel.choices.item(i).text() for i in range(window.model_panel.choices.rowCount())]
    assert any(t.startswith("unet — trained here") and "(candidate)" in t for t in texts)
    # seen before → after, the user takes it anyway
    panel.accept_button.click()
    qtbot.waitUntil(lambda: window.segment.choice.path == r.model_after, timeout=TIMEOUT)
    assert VersionRegistry.load(painted).find(r.model_after).status == "accepted"


def _install_state(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, sha(p)) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_ctrl_t_on_the_sample_project_fine_tunes_the_shipped_fastscnn(qtbot, window: MainWindow) -> None:
    """The sample images with the shipped default (an ONNX file): Ctrl+T fine-tunes its .safetensors twin, and the
    new version is kept in the project — nothing is written under the install's models/."""
    from PySide6.QtGui import QKeySequence

    from segstudio.paths import models_dir
    from tests.gui.conftest import drag, wait_saved

    shipped = models_dir()
    if not (shipped / "camvid-fastscnn.safetensors").is_file():
        pytest.skip("the shipped camvid-fastscnn model is not in this checkout")
    before = _install_state(shipped)
    window.open_samples()
    qtbot.waitUntil(lambda: window.controller.current is not None, timeout=30_000)
    qtbot.waitUntil(lambda: window.segment.loaded is not None, timeout=120_000)
    assert Path(window.segment.choice.path).name == "camvid-fastscnn.onnx"
    panel = window.training_panel
    assert "Fine-tunes camvid-fastscnn.safetensors (the PyTorch twin of camvid-fastscnn.onnx)" in \
        panel.start_point.text()
    # correct two images with the brush (Road along the bottom): the first trains, the second is held out
    road = window.controller.classes.names.index("Road")
    window.tools.set_class(road)
    for name in [e.path for e in window.controller.project.images][:2]:
        show_image(qtbot, window, name)
        drag(qtbot, window, [(40.0, 330.0), (240.0, 335.0), (440.0, 330.0)])
        wait_saved(qtbot, window)
    qtbot.waitUntil(lambda: window.training.defaults is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.all_actions.training.fine_tune.isEnabled(), timeout=TIMEOUT)
    assert QKeySequence("Ctrl+T") in window.all_actions.training.fine_tune.shortcuts()
    panel.set_settings(TrainSettings(length=2, unit="steps", lr=1e-3))
    with qtbot.waitSignal(window.training.concluded, timeout=240_000) as done:
        qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    r = done.args[0]
    home = window.controller.project.root
    assert Path(r.model_after) == versions_dir(home) / "camvid-fastscnn.v2.safetensors"
    assert r.model_before.endswith("camvid-fastscnn.onnx") and len(r.held_out) == 1
    assert r.before is not None and r.after is not None and r.activated == (r.after.miou >= r.before.miou)
    card_history = VersionRegistry.load(home).find(r.model_after)
    assert card_history is not None and card_history.trained_from == "camvid-fastscnn.safetensors"
    assert _install_state(shipped) == before  # nothing written into the install


def test_continuous_mode_swaps_in_a_better_version_while_painting_goes_on(qtbot, window: MainWindow,
                                                                         painted: Path) -> None:
    from tests.gui.conftest import drag, wait_saved

    open_and_wait(qtbot, window, painted)
    window.segment.set_backend("cpu-torch")
    window.training.set_target(ModelChoice.preset_network("small-data"))
    qtbot.waitUntil(lambda: window.all_actions.training.fine_tune.isEnabled(), timeout=TIMEOUT)
    panel = window.training_panel
    settings = panel.settings()
    settings.mode = "continuous"
    panel.set_settings(settings)
    assert not panel.length.isEnabled()  # a continuous run has no length: it trains until stopped
    show_image(qtbot, window, "scene02.png")
    published: list[str] = []
    window.training.published.connect(published.append)
    assert panel.start()
    # paint while the training process runs: the strokes land and are saved as usual
    doc = window.controller.current
    window.tools.set_class(1)
    drag(qtbot, window, [(10.0, 10.0), (60.0, 12.0)])
    wait_saved(qtbot, window)
    assert doc.entry.status == "corrected" and (doc.session.label == 1).any()
    qtbot.waitUntil(lambda: bool(published), timeout=TIMEOUT)
    new = published[0]
    assert Path(new).parent == versions_dir(painted)
    # swapped in, and the next unlabelled images pre-segmented with it
    qtbot.waitUntil(lambda: window.segment.loaded is not None and window.segment.choice.path == published[-1],
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.controller.scores is not None and any(
        window.controller.scores.model_of(p) == window.segment.loaded.model_id
        for p in ("scene03.png",)), timeout=TIMEOUT)
    assert "published" in panel.verdict.text()
    version = VersionRegistry.load(painted).find(new)
    assert version is not None and version.status == "accepted" and version.mode == "continuous"
    # painting still goes on, then Stop ends the run with the last version active
    drag(qtbot, window, [(10.0, 40.0), (60.0, 42.0)])
    wait_saved(qtbot, window)
    with qtbot.waitSignal(window.training.ended, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args[0] == "finished" and "published" in ended.args[1]
    qtbot.waitUntil(lambda: not window.training.processes_alive, timeout=TIMEOUT)
