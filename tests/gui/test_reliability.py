"""The app under faults: a project another process holds opens read-only, a failed class change changes
nothing, a label holding a value that is no class opens read-only naming the file, and errors go to the
app's log and its message area, never to the terminal."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.image_io import write_mask
from segstudio.core.project import LOCK_FILE, PROJECT_FILE, Project
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag, open_and_wait, wait_saved

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from segstudio.core.project import Project
project = Project.open(sys.argv[1], program="segstudio import")
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the holder is a POSIX process")
def test_a_project_open_elsewhere_opens_read_only_and_saves_nothing(qtbot, window: MainWindow,
                                                                   image_folder: Path) -> None:
    Project.open(image_folder).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(image_folder)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        before = (image_folder / PROJECT_FILE).read_bytes()
        open_and_wait(qtbot, window, image_folder)
        project = window.controller.project
        assert project is not None and project.read_only
        box = window._last_box
        assert box.windowTitle() == "Opened read-only"
        assert f"PID {holder.pid}" in box.text() and "segstudio import" in box.text()
        doc = window.controller.current
        assert doc is not None and not doc.editable
        drag(qtbot, window, [(10, 10), (40, 40)])  # a stroke on a read-only image does nothing
        qtbot.wait(200)
        assert not window.controller.any_dirty()
        assert window.controller.close_project()
        assert (image_folder / PROJECT_FILE).read_bytes() == before and not (image_folder / "labels").exists()
        assert (image_folder / LOCK_FILE).exists()  # the other process's lock was left alone
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_failed_merge_changes_nothing_in_the_window_or_on_disk(qtbot, window: MainWindow, image_folder: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, window, image_folder)
    window.controller.class_changes.add("extra")
    drag(qtbot, window, [(10, 10), (60, 60)])
    wait_saved(qtbot, window)
    doc = window.controller.current
    assert doc is not None
    label_before = doc.session.label.copy()
    real = os.replace

    def disk_full_for_the_project_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == PROJECT_FILE:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_for_the_project_file)
    window.controller.class_changes.merge(1, 0)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=10_000)
    monkeypatch.undo()
    box = window._last_box
    assert box.windowTitle() == "Cannot change the classes" and "Nothing was changed." in box.text()
    assert window.controller.classes.names == ["background", "foreground", "extra"]
    np.testing.assert_array_equal(doc.session.label, label_before)
    assert not (image_folder / ".segstudio-staging").exists()


def test_a_label_with_a_value_that_is_no_class_opens_read_only_naming_the_file(qtbot, window: MainWindow,
                                                                               image_folder: Path) -> None:
    bad = np.zeros((120, 160), np.uint8)
    bad[5:10, 5:10] = 9
    (image_folder / "labels").mkdir()
    write_mask(image_folder / "labels" / "img0.png", bad)
    open_and_wait(qtbot, window, image_folder)
    doc = window.controller.current
    assert doc is not None and not doc.editable
    assert "mask values 9 (25 px) are not classes" in (doc.read_only_reason or "")
    assert "img0.png" in window._last_box.text()
    assert (image_folder / "labels" / "img0.png").read_bytes()  # left untouched


def test_errors_go_to_the_app_log_and_the_message_area_not_the_terminal(
        qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    from segstudio.logs import install_error_log

    monkeypatch.setenv("SEGSTUDIO_LOG_DIR", str(tmp_path / "logs"))
    shown: list[str] = []
    path, uninstall = install_error_log(shown.append)
    try:
        assert path == tmp_path / "logs" / "app.log"

        def fail(cancel: object) -> None:
            raise ModuleNotFoundError("No module named 'torch'", name="torch")

        task = window.workers.start("training defaults", fail)
        qtbot.waitUntil(lambda: task.outcome is not None, timeout=10_000)
        try:
            raise RuntimeError("a slot that went wrong")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())  # what Qt calls for an exception escaping an event handler
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = path.read_text()
        assert "task training defaults failed" in text and "Traceback (most recent call last)" in text
        assert "a slot that went wrong" in text
        assert shown == [f"Unexpected error: a slot that went wrong (details in {path})"]
        _, err = capfd.readouterr()
        assert "Traceback" not in err
    finally:
        uninstall()
