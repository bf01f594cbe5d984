"""File → Batch Segment Folder…: the dialog driven from the menu action, the progress dialog, cancel, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from segstudio.core.image_io import read_image, read_mask
from segstudio.gui.main_window import MainWindow
from segstudio.gui.panels import batch as batch_module
from segstudio.gui.panels.batch import BatchDialog, BatchProgressDialog
from segstudio.inference.predictor import Predictor
from tests.gui.conftest import toy_scene_folder


@pytest.fixture
def opened_folders(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders the app asked the system's file manager to show (none is really opened)."""
    opened: list[Path] = []
    monkeypatch.setattr(batch_module, "open_folder", lambda path: opened.append(Path(path)) or True)
    return opened


def fill(dialog: BatchDialog, source: Path, out: Path, model: Path, overlay: bool = True, masks: bool = False,
         tta: bool = False) -> None:
    dialog.input_edit.setText(str(source))
    dialog.output_edit.setText(str(out))
    dialog.model_combo.setEditText(str(model))
    dialog.overlay.setChecked(overlay)
    dialog.masks.setChecked(masks)
    dialog.tta.setChecked(tta)


def start(qtbot, window: MainWindow) -> BatchDialog:
    """File → Batch Segment Folder… as a user chooses it, from the menu."""
    assert window.all_actions.file.batch in window.menus["file"].actions()
    window.all_actions.file.batch.trigger()
    dialog = window.model_commands.batch_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def wait_done(qtbot, progress: BatchProgressDialog, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: progress.outcome is not None, timeout=timeout)


def test_batch_segment_a_folder_from_the_menu(qtbot, window: MainWindow, tmp_path: Path, model_dir: Path,
                                              opened_folders: list[Path]) -> None:
    source = toy_scene_folder(tmp_path / "in", 5)
    (source / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    dialog = start(qtbot, window)
    fill(dialog, source, out, model_dir / "toy.onnx", overlay=True, masks=True)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    assert progress is not None and progress.isVisible()
    wait_done(qtbot, progress)
    assert progress.outcome.state == "finished", progress.outcome.message
    assert "6 of 6 images" in progress.counts.text() and "1 failed" in progress.counts.text()
    assert "images/s" in progress.speed.text() and "ETA" in progress.speed.text()
    assert progress.errors.count() == 1 and "broken.png" in progress.errors.item(0).text()
    assert "Done: 5 written" in progress.state.text()
    predictor = Predictor.from_file(model_dir / "toy.onnx")
    for i in range(5):
        want = predictor.predict(read_image(source / f"scene{i:02d}.png")).labels
        assert np.array_equal(read_mask(out / "masks" / f"scene{i:02d}.png"), want)
        assert (out / "overlays" / f"scene{i:02d}.png").is_file()
        masks = [read_mask(out / "classes" / f"{k:02d}-{name}" / f"scene{i:02d}.png")
                 for k, name in enumerate(("background", "red", "blue"))]
        assert all(np.array_equal(m == 255, want == k) for k, m in enumerate(masks))
    assert opened_folders == [out]  # the result folder opens when done
    # the dialog remembers the folders and options for next time
    assert window.settings.batch_options()["output"] == str(out)
    assert window.settings.batch_options()["masks_per_class"] is True
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)  # now "Close"
    assert not progress.isVisible()


def test_the_dialog_refuses_bad_folders_and_offers_the_project_model(qtbot, window: MainWindow, tmp_path: Path,
                                                                    model_dir: Path, toy_project: Path,
                                                                    opened_folders: list[Path]) -> None:
    from tests.gui.conftest import choose_model, open_and_wait

    open_and_wait(qtbot, window, toy_project)
    choose_model(qtbot, window, model_dir / "toy.onnx")
    dialog = start(qtbot, window)
    assert dialog.model_combo.currentText() == str(model_dir / "toy.onnx")  # the project's model first
    fill(dialog, toy_project, toy_project, model_dir / "toy.onnx")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and "must not be the input folder" in dialog.problem_label.text()
    fill(dialog, tmp_path / "missing", tmp_path / "out", model_dir / "toy.onnx")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and "does not exist" in dialog.problem_label.text()
    dialog.reject()
    assert window.model_commands.batch_progress is None and opened_folders == []


def test_cancel_a_long_batch_then_resume(qtbot, window: MainWindow, tmp_path: Path, model_dir: Path,
                                         opened_folders: list[Path]) -> None:
    source = toy_scene_folder(tmp_path / "many", 40, 192, 256)
    out = tmp_path / "out"
    dialog = start(qtbot, window)
    fill(dialog, source, out, model_dir / "toy.onnx", overlay=False, tta=True)  # TTA: 8 passes per image
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    qtbot.waitUntil(lambda: progress.last is not None and progress.last.done >= 1, timeout=60_000)
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, progress)
    assert progress.outcome.state == "cancelled"
    assert progress.cancel_button.text() == "Close" and progress.cancel_button.isEnabled()
    written = sorted(p.name for p in (out / "masks").glob("scene*.png"))
    assert 1 <= len(written) < 40
    # the count is what is on disk: the images in progress when Cancel was pressed were written and counted
    assert progress.outcome.last.written == len(written)
    assert f"Cancelled: {len(written)} written" in progress.state.text()
    assert opened_folders == []  # a cancelled run does not open the folder
    progress.accept()
    # running it again resumes: what was written is skipped
    dialog = start(qtbot, window)
    assert dialog.input_edit.text() == str(source) and dialog.tta.isChecked()
    dialog.tta.setChecked(False)
    dialog.model_combo.setEditText(str(model_dir / "toy.onnx"))  # the same model: another one would ask first
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    wait_done(qtbot, progress)
    assert progress.outcome.state == "finished"
    assert progress.outcome.last.skipped == len(written) and progress.outcome.last.written == 40 - len(written)
    assert opened_folders == [out]


def test_a_batch_with_an_onnx_file_without_a_card_says_what_to_do(qtbot, window: MainWindow, tmp_path: Path,
                                                                  model_dir: Path,
                                                                  opened_folders: list[Path]) -> None:
    source = toy_scene_folder(tmp_path / "in", 1)
    dialog = start(qtbot, window)
    fill(dialog, source, tmp_path / "out", model_dir / "foreign.onnx")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    wait_done(qtbot, progress)
    assert progress.outcome.state == "failed"
    assert "without a segstudio model card" in progress.state.text() and "Model panel" in progress.state.text()
    assert opened_folders == []


def test_a_rerun_with_another_model_asks_before_replacing_results(qtbot, window: MainWindow, tmp_path: Path,
                                                                  model_dir: Path,
                                                                  opened_folders: list[Path]) -> None:
    from PySide6.QtWidgets import QMessageBox

    from segstudio.inference.batch_record import recorded_model

    source = toy_scene_folder(tmp_path / "in", 2)
    out = tmp_path / "out"
    dialog = start(qtbot, window)
    fill(dialog, source, out, model_dir / "toy.onnx", overlay=False)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    wait_done(qtbot, progress)
    assert progress.outcome.state == "finished" and progress.outcome.last.written == 2
    first = {p.name: p.read_bytes() for p in (out / "masks").glob("*.png")}
    assert all(recorded_model(out / "masks" / name).startswith("toy.onnx sha256:") for name in first)
    progress.accept()

    def run_again_and_answer(button: QMessageBox.StandardButton) -> BatchProgressDialog:
        again = start(qtbot, window)
        fill(again, source, out, model_dir / "toy.safetensors", overlay=False)
        again.buttons.button(again.buttons.StandardButton.Ok).click()
        running = window.model_commands.batch_progress
        qtbot.waitUntil(lambda: running.overwrite_question is not None, timeout=60_000)
        question = running.overwrite_question
        assert "toy.onnx" in question.text() and "2 image(s)" in question.text()
        qtbot.mouseClick(question.button(button), Qt.MouseButton.LeftButton)
        wait_done(qtbot, running)
        return running

    stopped = run_again_and_answer(QMessageBox.StandardButton.No)
    assert stopped.outcome.state == "cancelled" and "nothing was written" in stopped.state.text()
    assert {p.name: p.read_bytes() for p in (out / "masks").glob("*.png")} == first  # nothing mixed in or lost
    stopped.accept()
    replaced = run_again_and_answer(QMessageBox.StandardButton.Yes)
    assert replaced.outcome.state == "finished", replaced.outcome.message
    assert replaced.outcome.last.written == 2 and replaced.outcome.last.skipped == 0
    assert all(recorded_model(out / "masks" / name).startswith("toy.safetensors sha256:") for name in first)


def test_the_batch_window_is_not_modal_and_remembers_its_model(qtbot, window: MainWindow, tmp_path: Path,
                                                               model_dir: Path, toy_project: Path,
                                                               opened_folders: list[Path]) -> None:
    """While a folder runs the user keeps painting in the main window; the next batch offers the same model."""
    from tests.gui.conftest import drag, open_and_wait

    open_and_wait(qtbot, window, toy_project)
    source = toy_scene_folder(tmp_path / "many", 12, 192, 256)
    dialog = start(qtbot, window)
    fill(dialog, source, tmp_path / "out", model_dir / "toy.safetensors", overlay=False, tta=True)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    assert progress.isVisible() and not progress.isModal()
    assert QApplication.activeModalWidget() is None
    drag(qtbot, window, [(10, 10), (40, 30)])  # a brush stroke in the main window, while the batch runs
    assert window.controller.current.has_labels() and progress.outcome is None
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, progress)
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)  # Close works after Cancel
    assert not progress.isVisible()
    again = start(qtbot, window)
    assert again.model_combo.currentText() == str(model_dir / "toy.safetensors")
    again.reject()
