"""File › Import Labels… / Export Labels…: a preview of what will be read or written, a run in a worker, and a
report of what was skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.image_io import read_mask, write_mask
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag, open_and_wait, show_image, wait_saved


def choose_format(dialog, name: str) -> None:
    dialog.format.setCurrentIndex(dialog.format.findData(name))


def test_export_previews_then_writes_the_labels(qtbot, window: MainWindow, image_folder: Path,
                                                tmp_path: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(1)
    drag(qtbot, window, [(30, 30), (50, 30)])
    wait_saved(qtbot, window)
    assert window.all_actions.file.export_labels.isEnabled()
    window.all_actions.file.export_labels.trigger()
    dialog = window.labels_dialogs["export"]
    assert dialog.isVisible() and not dialog.isModal()
    choose_format(dialog, "voc")
    assert "Writes 1 labelled image(s); choose where." in dialog.preview.text()
    assert not dialog.run_button.isEnabled()
    out = tmp_path / "voc-out"
    dialog.path.setText(str(out))
    assert f"to {out}" in dialog.preview.text() and "3 image(s) have nothing to export" in dialog.preview.text()
    dialog.run_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
    assert "exported 1 image(s)" in dialog.report.toPlainText()
    assert read_mask(out / "img0.png")[30, 40] == 1


def test_import_previews_what_matches_and_reports_what_was_skipped(qtbot, window: MainWindow, image_folder: Path,
                                                                   tmp_path: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    show_image(qtbot, window, "img1.png")
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)
    window.tools.set_class(0)
    drag(qtbot, window, [(30, 30), (50, 30)])  # img1 has a label of the user's: the import must skip it
    show_image(qtbot, window, "img0.png")
    source = tmp_path / "annotations"
    source.mkdir()
    mask = np.full((120, 160), 255, np.uint8)
    mask[:60] = 1
    for name in ("img0.png", "img1.png", "stray.png"):
        write_mask(source / name, mask)
    window.all_actions.file.import_labels.trigger()
    dialog = window.labels_dialogs["import"]
    choose_format(dialog, "index")
    dialog.path.setText(str(source))
    text = dialog.preview.text()
    assert "Reads 3 annotation file(s)" in text and "2 image(s) of the project match" in text
    assert "1 of them already have a label: skipped" in text and "1 match no image" in text and "stray" in text
    dialog.run_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=10_000)
    report = dialog.report.toPlainText()
    assert "imported 1 labels" in report and "skipped 1:" in report and "img1.png" in report
    assert "stray" in report
    qtbot.waitUntil(lambda: window.controller.current is not None and window.controller.current.path == "img0.png",
                    timeout=10_000)
    assert window.controller.current.session.label[10, 10] == 1  # the window shows what was imported
    assert window.controller.document("img1.png") is None or window.controller.document("img1.png").session.label[
        30, 40] == 0
    assert read_mask(image_folder / "labels" / "img1.png")[30, 40] == 0  # the user's label untouched
    assert window.files.model.entries[0].status == "corrected"
    assert not window.controller.busy


def test_import_of_a_folder_that_matches_nothing_cannot_start(qtbot, window: MainWindow, image_folder: Path,
                                                              tmp_path: Path) -> None:
    open_and_wait(qtbot, window, image_folder)
    dialog = window.show_labels_dialog("import")
    choose_format(dialog, "labelme")
    (tmp_path / "empty").mkdir()
    dialog.path.setText(str(tmp_path / "empty"))
    assert "Reads 0 annotation file(s)" in dialog.preview.text() and not dialog.run_button.isEnabled()
    dialog.path.setText(str(tmp_path / "nowhere"))
    assert "does not exist" in dialog.preview.text()
