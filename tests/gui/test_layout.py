"""Layout: at 1280×800 and at the default window size every dock shows its controls whole (nothing squeezed below
its minimum, nothing outside its parent, no two controls on top of each other), the tall panels scroll
vertically but never sideways, and the class-fit text of the Model panel never covers the model card."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QComboBox, QDockWidget, QScrollArea, QWidget

from segstudio.gui.main_window import RIGHT_DOCK_WIDTH, MainWindow
from tests.gui.conftest import choose_model, open_and_wait

DEFAULT_SIZE = (1400, 880)  # MainWindow._restore_settings without saved settings


def smart_min(w: QWidget) -> QSize:
    """The smallest size a layout may give ``w`` (Qt's qSmartMinSize): its minimum size, else its minimum size
    hint, bounded by its maximum size."""
    hint = w.minimumSizeHint()
    width = w.minimumWidth() or max(hint.width(), 0)
    height = w.minimumHeight() or max(hint.height(), 0)
    return QSize(min(width, w.maximumWidth()), min(height, w.maximumHeight()))


def visible_children(w: QWidget) -> list[QWidget]:
    return [c for c in w.children() if isinstance(c, QWidget) and not c.isWindow() and c.isVisible()]


def layout_problems(root: QWidget) -> list[str]:
    """Controls under ``root`` squeezed below their minimum, outside their parent, or overlapping a sibling.
    A scroll area's content is checked against its viewport's width only (it may scroll vertically); the insides
    of spin boxes, combo boxes and item views are theirs."""
    problems: list[str] = []

    def name(w: QWidget) -> str:
        text = getattr(w, "text", None)
        return f"{type(w).__name__}({str(text())[:30]!r})" if callable(text) else type(w).__name__

    def check(w: QWidget) -> None:
        if isinstance(w, QScrollArea):
            inner = w.widget()
            if inner is not None and inner.isVisible():
                if w.horizontalScrollBar().isVisible() or smart_min(inner).width() > w.viewport().width():
                    problems.append(f"{name(inner)} needs {smart_min(inner).width()} px but its scroll area "
                                    f"shows {w.viewport().width()}")
                check(inner)
            return
        if isinstance(w, QAbstractScrollArea | QAbstractSpinBox | QComboBox):
            return
        kids = visible_children(w)
        for i, c in enumerate(kids):
            g, need = c.geometry(), smart_min(c)
            if not w.rect().contains(g):
                problems.append(f"{name(c)} {g.getRect()} sticks out of {name(w)} {w.rect().getRect()}")
            if g.width() < need.width() or g.height() < need.height():
                problems.append(f"{name(c)} is {g.width()}×{g.height()}, less than its minimum "
                                f"{need.width()}×{need.height()}")
            if c.hasHeightForWidth() and c.heightForWidth(g.width()) > g.height():
                problems.append(f"{name(c)} needs {c.heightForWidth(g.width())} px of height at width {g.width()}, "
                                f"has {g.height()}")
            for other in kids[i + 1:]:
                if g.intersects(other.geometry()):
                    problems.append(f"{name(c)} {g.getRect()} overlaps {name(other)} {other.geometry().getRect()}")
            check(c)

    check(root)
    return problems


def on_window(win: MainWindow, w: QWidget) -> QRect:
    return QRect(w.mapTo(win, QPoint(0, 0)), w.size())


@pytest.mark.parametrize(("size", "narrowest"), [((1280, 800), False), (DEFAULT_SIZE, False), ((1280, 800), True)])
def test_every_dock_fits_and_the_class_fit_text_leaves_the_card_alone(qtbot, window: MainWindow, image_folder: Path,
                                                                     model_dir: Path, size: tuple[int, int],
                                                                     narrowest: bool) -> None:
    """At the starting dock widths, and with the right-hand docks as narrow as the user can make them."""
    # background/foreground against the toy model's background/red/blue: the class-fit box with both buttons
    open_and_wait(qtbot, window, image_folder)
    choose_model(qtbot, window, model_dir / "toy.safetensors")
    panel = window.model_panel
    assert panel.fit_box.isVisible() and panel.card.isVisible() and panel.add_button.isVisible()
    window.resize(*size)
    qtbot.waitUntil(lambda: window.size().toTuple() == size)
    if narrowest:
        window.resizeDocks([window.docks["classes"]], [1], Qt.Orientation.Horizontal)  # stops at the minimum
        qtbot.wait(50)
    problems: list[str] = []
    for front in ("model", "training"):  # the two tabs of the right side, each in front once
        window.docks[front].raise_()
        qtbot.wait(50)
        for key, dock in window.docks.items():
            if isinstance(dock, QDockWidget) and dock.isVisible() and not dock.visibleRegion().isEmpty():
                problems += [f"{key}: {p}" for p in layout_problems(dock.widget())]
        if front == "model":
            card = on_window(window, panel.card)
            for w in (panel.fit_label, panel.fit_box):
                if on_window(window, w).intersects(card):
                    problems.append(f"the class fit {on_window(window, w).getRect()} covers the card {card.getRect()}")
    assert not problems, "\n".join(dict.fromkeys(problems))
    if not narrowest:
        assert window.docks["classes"].width() == RIGHT_DOCK_WIDTH  # the canvas keeps its room


def test_the_batch_window_shows_its_long_paths_whole(qtbot, window: MainWindow, tmp_path: Path, model_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch window, done, with folder paths long enough to wrap: no line cut off, no control squeezed."""
    from segstudio.gui.panels import batch
    from tests.gui.conftest import toy_scene_folder

    monkeypatch.setattr(batch, "open_folder", lambda path: True)
    deep = tmp_path / "a folder with a rather long name" / "and another one below it, as users have"
    source = toy_scene_folder(deep / "street scenes", 2)
    window.resize(1280, 800)
    window.all_actions.file.batch.trigger()
    dialog = window.model_commands.batch_dialog
    assert dialog is not None
    dialog.input_edit.setText(str(source))
    dialog.output_edit.setText(str(deep / "results of the batch"))
    dialog.model_combo.setEditText(str(model_dir / "toy.onnx"))
    qtbot.waitExposed(dialog)
    qtbot.wait(50)
    problems = layout_problems(dialog)
    assert not problems, "\n".join(problems)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    progress = window.model_commands.batch_progress
    assert progress is not None
    qtbot.waitUntil(lambda: progress.outcome is not None, timeout=60_000)
    qtbot.waitExposed(progress)
    qtbot.wait(50)
    assert progress.outcome.state == "finished"
    problems = layout_problems(progress)
    assert not problems, "\n".join(problems)
    progress.close()
