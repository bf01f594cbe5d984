"""The model panel driven like a user, with a real (tiny, trained) model: choose, segment, segment all,
where to correct next, class fitting, ONNX files without a card, backends, the sample images."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import read_image, read_mask
from segstudio.core.project import Project
from segstudio.gui.canvas.layers import MaskSource
from segstudio.gui.main_window import MainWindow
from segstudio.inference.model_file import load_model, save_model
from segstudio.inference.predictor import Prediction, Predictor
from segstudio.inference.tta import DIHEDRAL
from segstudio.workspace.uncertainty import to_uint8
from tests.gui.conftest import TOY_CLASSES, choose_model, open_and_wait, show_image, toy_scene_folder, wait_saved
from tests.inference.toy import scene


def expected(model: Path, image: Path) -> Prediction:
    """What the window's default backend on this machine (ONNX Runtime, the cached export) predicts."""
    return Predictor.from_file(model, backend="onnx", device="cpu").predict(read_image(image), confidence=True)


def saved_statuses(folder: Path) -> dict[str, str]:
    """The statuses as written in segstudio.json (``Project.open`` would correct them from the files)."""
    doc = json.loads((folder / "segstudio.json").read_text())
    return {item["path"]: item["status"] for item in doc["images"]}


def run_and_wait(qtbot, win: MainWindow, action, timeout: int = 60_000) -> list[str]:
    """Trigger a segment action and wait for the run's end; returns the run's progress lines."""
    lines: list[str] = []
    win.segment.runProgress.connect(lambda d, t, text: lines.append(text))
    with qtbot.waitSignal(win.segment.runEnded, timeout=timeout):
        action()
    return lines


def test_segment_the_image_on_screen(qtbot, window: MainWindow, toy_project: Path, model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, model_dir / "toy.safetensors")
    panel = window.model_panel
    assert window.segment.loaded is not None, window.segment.load_error
    assert "onnxruntime cpu" in panel.active.text()
    card = panel.card.toPlainText()
    assert "U-Net" in card and "Classes (3)" in card and "red" in card and "Training data" in card
    assert not panel.fit_box.isVisible()  # the project's classes are the model's
    assert panel.segment_button.isEnabled()
    doc = window.controller.current
    assert doc.path == "scene00.png"
    with qtbot.waitSignal(window.segment.runEnded, timeout=60_000):
        qtbot.mouseClick(panel.segment_button, Qt.MouseButton.LeftButton)
    want = expected(model_dir / "toy.safetensors", toy_project / "scene00.png")
    # on disk: the prediction, the status, the uncertainty map and its score
    assert np.array_equal(read_mask(toy_project / "predictions" / "scene00.png"), want.labels)
    assert saved_statuses(toy_project)["scene00.png"] == "predicted"
    heat = read_mask(toy_project / "uncertainty" / "scene00.png")
    assert np.array_equal(heat, to_uint8(want.entropy))
    scores = json.loads((toy_project / "uncertainty" / "scores.json").read_text())["images"]
    assert scores["scene00.png"]["score"] == pytest.approx(float(want.entropy.astype(np.float64).mean()), abs=1e-5)
    assert scores["scene00.png"]["model"] == window.segment.loaded.model_id
    # the model is a real one: its prediction matches the scene's ground truth
    _, truth = scene(96, 128, 0)
    assert (want.labels == truth).mean() > 0.9
    # in the window: hatched prediction apart from the label, heat map, status in the list
    assert np.array_equal(doc.session.prediction, want.labels) and (doc.session.label == 255).all()
    src = window.canvas.prediction_layer.source
    assert isinstance(src, MaskSource) and src.style == "hatched"
    assert window.all_actions.view.uncertainty.isEnabled()
    assert np.array_equal(doc.uncertainty, heat)
    assert window.files.model.entries[0].status == "predicted"
    assert "Segmented scene00.png" in panel.run_text.text()


def test_the_uncertainty_survives_switching_images_and_reopening(qtbot, window: MainWindow, toy_project: Path,
                                                                 model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    run_and_wait(qtbot, window, window.all_actions.model.segment.trigger)
    heat = window.controller.current.uncertainty.copy()
    show_image(qtbot, window, "scene01.png")
    window.controller.session.documents.close("scene00.png")  # closed from the document cache
    show_image(qtbot, window, "scene00.png")
    doc = window.controller.current
    assert np.array_equal(doc.uncertainty, heat) and doc.session.prediction is not None
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.heat_layer.isVisible()
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    open_and_wait(qtbot, again, toy_project)
    assert np.array_equal(again.controller.current.uncertainty, heat)
    assert again.controller.scores.get("scene00.png") is not None
    # the model chosen for the project comes back with it
    qtbot.waitUntil(lambda: again.segment.loaded is not None, timeout=60_000)
    assert again.segment.choice.path == str(model_dir / "toy.onnx")
    again.close()


def test_segment_all_unlabelled_then_correct_the_most_uncertain(qtbot, window: MainWindow, toy_project: Path,
                                                                 model_dir: Path) -> None:
    Project.open(toy_project).save_label("scene01.png", np.zeros((96, 128), np.uint8))
    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    lines = run_and_wait(qtbot, window, window.all_actions.model.segment_all.trigger)
    assert "3 of 3 images" in " ".join(lines)
    assert list(saved_statuses(toy_project).values()) == ["predicted", "corrected", "predicted", "predicted"]
    assert not (toy_project / "predictions" / "scene01.png").exists()
    for name in ("scene00.png", "scene02.png", "scene03.png"):
        want = expected(model_dir / "toy.onnx", toy_project / name)
        assert np.array_equal(read_mask(toy_project / "predictions" / name), want.labels)
    # the open image shows its prediction at once; a second run has nothing to do
    assert window.controller.current.session.prediction is not None
    assert window.segment.unlabelled_targets() == []
    assert not window.segment.segment_unlabelled()
    # where to correct next: most uncertain first, the labelled image never
    scores = json.loads((toy_project / "uncertainty" / "scores.json").read_text())["images"]
    order = sorted(scores, key=lambda p: -scores[p]["score"])
    assert len(set(scores[p]["score"] for p in order)) == 3 and "scene01.png" not in order
    show_image(qtbot, window, order[1])  # from anywhere, the first press goes to the top of the ranking
    visited = []
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_U)
        qtbot.waitUntil(lambda: window.controller.current.path == window.controller.requested_path, timeout=10_000)
        visited.append(window.controller.current.path)
    assert visited == order
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert window.controller.current.path == order[-1]  # the end of the ranking: it stays
    assert "least uncertain" in window.statusBar().currentMessage()
    # accepting the model's prediction on the most uncertain image makes it corrected: it leaves the ranking
    show_image(qtbot, window, order[0])
    doc = window.controller.current
    qtbot.keyClick(window.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(doc.session.label, doc.session.prediction)
    wait_saved(qtbot, window)
    assert doc.entry.status == "corrected"
    assert np.array_equal(read_mask(toy_project / "labels" / order[0]), doc.session.prediction)
    assert window.controller.uncertainty_ranking() == order[1:]


def test_cancel_segment_all_keeps_what_is_done(qtbot, window: MainWindow, tmp_path: Path, model_dir: Path) -> None:
    folder = toy_scene_folder(tmp_path / "many", 40, 192, 256)
    Project.create(folder, classes=ClassTable.from_names(TOY_CLASSES))
    open_and_wait(qtbot, window, folder)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    done: list[int] = []
    window.segment.runProgress.connect(lambda d, t, text: done.append(d))
    window.all_actions.model.segment_all.trigger()
    assert window.all_actions.model.cancel.isEnabled()
    assert window.model_panel.progress_row.isVisible()
    qtbot.waitUntil(lambda: any(d >= 1 for d in done), timeout=60_000)
    errors: list[str] = []
    window.notifier.errorOccurred.connect(lambda title, text: errors.append(text))
    window.controller.class_changes.add("late")  # classes cannot change under a running segmentation
    assert window.controller.classes.names == TOY_CLASSES and "segmentation is writing" in errors[0]
    window._last_box.close()
    with qtbot.waitSignal(window.segment.runEnded, timeout=60_000) as ended:
        qtbot.mouseClick(window.model_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in ended.args[0]
    predicted = sorted(p.name for p in (folder / "predictions").iterdir())
    assert 1 <= len(predicted) < 40
    statuses = saved_statuses(folder)  # the project file agrees with the files
    assert sorted(p for p, s in statuses.items() if s == "predicted") == predicted
    assert not window.all_actions.model.cancel.isEnabled()
    assert not window.model_panel.progress_row.isVisible()


def test_an_untrained_network_is_never_the_active_model(qtbot, window: MainWindow, toy_project: Path) -> None:
    """Networks are trained from the Fine-tune panel; the model list holds model files only."""
    from segstudio.workspace.model_choice import ModelChoice

    open_and_wait(qtbot, window, toy_project)
    window.segment.choose(ModelChoice.untrained("unet"))
    assert window.segment.choice is None
    seg = window.all_actions.model.segment
    assert not seg.isEnabled() and "choose a model file" in seg.toolTip()
    assert not window.segment.segment_current()
    texts = [window.model_panel.choices.item(i).text() for i in range(window.model_panel.choices.rowCount())]
    assert not any("untrained" in t for t in texts)
    targets = [window.training_panel.target.itemText(i) for i in range(window.training_panel.target.count())]
    assert "U-Net (unet) from scratch" in targets and "Small-data U-Net (base width 8, from scratch)" in targets


def test_an_onnx_file_without_a_card_asks_for_class_names(qtbot, window: MainWindow, toy_project: Path,
                                                          model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    window.segment.choose_file(model_dir / "foreign.onnx")
    qtbot.waitUntil(lambda: window.model_panel.names_dialog is not None, timeout=30_000)
    dialog = window.model_panel.names_dialog
    assert "no segstudio model card" in dialog.labelText() and "outputs 3 classes" in dialog.labelText()
    assert dialog.textValue() == "background, red, blue"  # the project's names, as the counts agree
    assert not window.all_actions.model.segment.isEnabled()
    # a wrong count is refused with the reason, and nothing is remembered
    dialog.setTextValue("a, b")
    dialog.accept()
    qtbot.waitUntil(lambda: not window.segment.loading and window.segment.load_error is not None, timeout=30_000)
    assert "outputs 3 classes but 2 class names" in window.segment.load_error
    assert window.settings.onnx_class_names(model_dir / "foreign.onnx") is None
    window.segment.give_class_names(["background", "red", "blue"])
    qtbot.waitUntil(lambda: window.segment.loaded is not None, timeout=30_000)
    assert window.settings.onnx_class_names(model_dir / "foreign.onnx") == ["background", "red", "blue"]
    run_and_wait(qtbot, window, window.all_actions.model.segment.trigger)
    want = expected(model_dir / "toy.onnx", toy_project / "scene00.png")
    assert np.array_equal(read_mask(toy_project / "predictions" / "scene00.png"), want.labels)
    # chosen again later, it opens without asking
    window.model_panel.names_dialog = None
    window.segment.choose(None)
    choose_model(qtbot, window, model_dir / "foreign.onnx")
    assert window.segment.loaded is not None and window.model_panel.names_dialog is None


def test_a_model_with_other_classes_adds_its_classes_to_the_project(qtbot, window: MainWindow, tmp_path: Path,
                                                                    model_dir: Path) -> None:
    folder = toy_scene_folder(tmp_path / "other", 2)  # default classes: background, foreground
    Project.open(folder).save_label("scene01.png", np.ones((96, 128), np.uint8))
    open_and_wait(qtbot, window, folder)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    panel = window.model_panel
    assert panel.fit_box.isVisible() and "red, blue" in panel.fit_label.text()
    assert not window.all_actions.model.segment.isEnabled()
    assert "classes do not fit" in window.all_actions.model.segment.toolTip()
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert window.controller.classes.names == ["background", "foreground", "red", "blue"]
    assert window.segment.fit.lut is not None and panel.fit_box.isVisible()  # "never predicts foreground"
    assert "foreground" in panel.fit_label.text()
    run_and_wait(qtbot, window, window.all_actions.model.segment.trigger)
    want = expected(model_dir / "toy.onnx", folder / "scene00.png")
    got = read_mask(folder / "predictions" / "scene00.png")
    assert np.array_equal(got, np.array([0, 2, 3], np.uint8)[want.labels])
    assert (read_mask(folder / "labels" / "scene01.png") == 1).all()  # the user's foreground is untouched


def test_adopting_the_model_class_table_rewrites_labels_by_name(qtbot, window: MainWindow, tmp_path: Path,
                                                                model_dir: Path) -> None:
    folder = toy_scene_folder(tmp_path / "adopt", 2)
    label = np.full((96, 128), 255, np.uint8)
    label[:10] = 1  # foreground
    label[10:20] = 0  # background
    Project.open(folder).save_label("scene01.png", label)
    open_and_wait(qtbot, window, folder)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    qtbot.mouseClick(window.model_panel.adopt_button, Qt.MouseButton.LeftButton)
    box = window.model_panel.confirm_box
    assert box is not None and "1 labelled image" in box.text()
    box.button(box.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: window.controller.classes.names == ["background", "red", "blue", "foreground"],
                    timeout=20_000)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=20_000)
    new = read_mask(folder / "labels" / "scene01.png")
    assert (new[:10] == 3).all() and (new[10:20] == 0).all() and (new[20:] == 255).all()
    fit = window.segment.fit
    assert fit.leading and fit.unused == ["foreground"] and window.model_panel.fit_box.isVisible()
    assert not window.model_panel.adopt_button.isVisible()  # adopted: nothing left to do
    assert window.all_actions.model.segment.isEnabled()


def test_backend_choices_show_what_this_machine_can_run(qtbot, window: MainWindow, toy_project: Path,
                                                        model_dir: Path) -> None:
    open_and_wait(qtbot, window, toy_project)
    qtbot.waitUntil(lambda: window.segment.runtimes.checked_cuda, timeout=60_000)
    choose_model(qtbot, window, model_dir / "toy.safetensors", backend="cpu-torch")
    panel = window.model_panel
    assert "torch cpu" in panel.active.text()
    rows = {panel.backends.item(r).data(Qt.ItemDataRole.UserRole + 1): panel.backends.item(r)
            for r in range(panel.backends.rowCount())}
    import torch

    if not torch.cuda.is_available():
        assert not rows["cuda"].isEnabled() and "no CUDA GPU" in rows["cuda"].toolTip()
    assert rows["cpu-torch"].isEnabled() and rows["cpu-onnx"].isEnabled()
    assert panel.backend_combo.currentText().startswith("CPU — PyTorch")
    run_and_wait(qtbot, window, window.all_actions.model.segment.trigger)
    assert (toy_project / "predictions" / "scene00.png").exists()
    # an ONNX file cannot run on PyTorch: the torch choices are greyed out with the reason, auto runs it
    choose_model(qtbot, window, model_dir / "toy.onnx")
    assert not rows["cpu-torch"].isEnabled() and "ONNX Runtime" in rows["cpu-torch"].toolTip()
    assert "onnxruntime" in panel.active.text()
    window.segment.set_backend("auto")


def test_open_sample_images_with_the_shipped_model(qtbot, tmp_path: Path, model_dir: Path, monkeypatch) -> None:
    import segstudio.gui.main_window as main_window_module

    shipped = tmp_path / "models"
    shipped.mkdir()
    shutil.copy(model_dir / "toy.onnx", shipped / "camvid-fastscnn.onnx")
    monkeypatch.setattr(main_window_module, "models_dir", lambda: shipped)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert "press Segment" in win.welcome.model_state.text()
    win.welcome.samples_button.click()
    qtbot.waitUntil(lambda: win.controller.current is not None, timeout=20_000)
    qtbot.waitUntil(lambda: win.segment.loaded is not None, timeout=30_000)
    assert win.controller.classes.names == TOY_CLASSES  # the model's classes: nothing to fit
    assert win.all_actions.model.segment.isEnabled()
    run_and_wait(qtbot, win, win.all_actions.model.segment.trigger)  # one click shows the result
    doc = win.controller.current
    assert doc.session.prediction is not None and doc.entry.status == "predicted"
    win.close()


def test_open_sample_images_without_a_model_says_so(qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    import segstudio.gui.main_window as main_window_module

    monkeypatch.setattr(main_window_module, "models_dir", lambda: tmp_path / "none")
    window.open_samples()
    assert "No trained model is installed yet" in window._last_box.text()
    window._last_box.close()
    qtbot.waitUntil(lambda: window.controller.current is not None, timeout=20_000)
    assert window.segment.choice is None
    assert "choose a model file" in window.all_actions.model.segment.toolTip()


def test_closing_the_project_stops_a_run_and_keeps_its_files_consistent(qtbot, window: MainWindow, tmp_path: Path,
                                                                       model_dir: Path) -> None:
    folder = toy_scene_folder(tmp_path / "closing", 30, 192, 256)
    Project.create(folder, classes=ClassTable.from_names(TOY_CLASSES))
    open_and_wait(qtbot, window, folder)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    done: list[int] = []
    window.segment.runProgress.connect(lambda d, t, text: done.append(d))
    window.all_actions.model.segment_all.trigger()
    qtbot.waitUntil(lambda: any(d >= 1 for d in done), timeout=60_000)
    assert window.controller.close_project()
    assert not window.workers.running("segment all")  # joined before the project went away
    predicted = sorted(p.name for p in (folder / "predictions").iterdir())
    statuses = saved_statuses(folder)
    assert sorted(p for p, s in statuses.items() if s == "predicted") == predicted and len(predicted) < 30
    assert window.segment.choice is None and not window.all_actions.model.segment_all.isEnabled()


def test_pick_a_model_file_with_open_then_from_the_list(qtbot, window: MainWindow, toy_project: Path,
                                                        model_dir: Path, monkeypatch) -> None:
    import segstudio.gui.controllers.model_commands as commands_module

    open_and_wait(qtbot, window, toy_project)
    panel = window.model_panel
    assert panel.model_combo.currentText() == "No model" and not panel.card.isVisible()
    monkeypatch.setattr(commands_module.QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(model_dir / "toy.onnx"), ""))
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.segment.loaded is not None, timeout=30_000)
    assert panel.model_combo.currentText() == "toy.onnx"
    texts = [panel.choices.item(r).text() for r in range(panel.choices.rowCount())]
    assert "Model files" in texts and any("camvid-fastscnn" in t and "(shipped)" in t for t in texts)
    # back to no model, then the file again from the list (the user's files are remembered)
    none_row = texts.index("No model")
    panel.model_combo.setCurrentIndex(none_row)
    panel.model_combo.activated.emit(none_row)
    assert window.segment.choice is None and not window.all_actions.model.segment.isEnabled()
    row = [panel.choices.item(r).text() for r in range(panel.choices.rowCount())].index("toy.onnx")
    panel.model_combo.setCurrentIndex(row)
    panel.model_combo.activated.emit(row)
    qtbot.waitUntil(lambda: window.segment.loaded is not None, timeout=30_000)
    assert window.all_actions.model.segment.isEnabled()


def test_the_card_shows_training_data_metrics_and_history(tmp_path: Path) -> None:
    from segstudio.gui.panels.model import card_html
    from segstudio.zoo import ModelCard

    card = ModelCard(arch="fastscnn", classes=ClassTable.camvid(), train_resolution=(360, 480), name="camvid",
                     metrics=[{"name": "mIoU", "value": 0.6312, "data": "CamVid test (233 images)"}],
                     history=[{"event": "trained", "when": "2025-01-02T03:04:05", "data": "CamVid train+val"}])
    text = card_html(card)
    assert "Fast-SCNN" in text and "Classes (11)" in text and "Bicyclist" in text
    assert "CamVid train+val" in text and "at 480×360" in text
    assert "mIoU 0.631 on CamVid test (233 images)" in text and "trained 2025-01-02" in text


def test_a_model_far_less_sure_than_on_its_own_data_says_so_once(qtbot, window: MainWindow, toy_project: Path,
                                                                  model_dir: Path, monkeypatch) -> None:
    from segstudio.workspace import domain
    from segstudio.zoo.card import UNCERTAINTY_METRIC

    monkeypatch.setattr(domain, "MARGIN", 0.0)  # any uncertainty above the (tiny) card value counts as far above
    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    window.segment.loaded.card.metrics.append({"name": UNCERTAINTY_METRIC, "value": 1e-9, "data": "validation"})
    said: list[str] = []
    window.segment.domainWarning.connect(said.append)
    run_and_wait(qtbot, window, window.all_actions.model.segment_all.trigger)
    assert len(said) == 1 and "Fine-tune panel" in said[0] and "on 4 of these images" in said[0]
    assert window._last_box is not None and window._last_box.windowTitle() == "These images may be new to the model"
    window._last_box.close()
    run_and_wait(qtbot, window, window.all_actions.model.segment.trigger)
    assert len(said) == 1  # said once per project and model


def test_a_model_trained_with_quarter_turns_averages_its_views_until_the_user_says_no(
        qtbot, window: MainWindow, toy_project: Path, model_dir: Path, tmp_path: Path) -> None:
    model, card = load_model(model_dir / "toy.safetensors")
    turned = save_model(tmp_path / "turned.safetensors", model,
                        replace(card, recipe={"augment": {"rot90": True, "hflip": True, "vflip": True}}))
    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, turned)
    panel, segment = window.model_panel, window.segment
    assert segment.loaded is not None and segment.loaded.predictor.tta == DIHEDRAL
    assert not panel.views_box.isHidden() and panel.views_box.isChecked()
    assert "8 turned and mirrored views" in panel.active.text()  # the user is told why it takes longer
    panel.views_box.setChecked(False)  # reloads the model
    qtbot.waitUntil(lambda: not segment.loading and segment.loaded is not None, timeout=60_000)
    assert segment.loaded.predictor.tta is None and "views" not in panel.active.text()
    assert segment.settings.average_views() is False and not panel.views_box.isHidden()
    choose_model(qtbot, window, model_dir / "toy.safetensors")  # mirrors only: nothing to choose
    assert panel.views_box.isHidden() and segment.loaded.predictor.tta is None
