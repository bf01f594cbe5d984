"""The canvas driven with real (simulated) mouse events: strokes change the mask, one undo step each."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from segstudio.core.classes import ClassTable
from segstudio.core.editing.session import EditSession
from segstudio.gui.canvas.canvas import Canvas, overlay_lut
from segstudio.gui.canvas.layers import MaskSource
from segstudio.gui.canvas.tools import BrushTool, FillTool, LassoTool, ToolContext
from segstudio.workspace.pyramid import build_pyramid


@pytest.fixture
def canvas(qtbot):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :, 1] = np.linspace(0, 255, 300, dtype=np.uint8)[None, :]
    session = EditSession.blank(200, 300)
    c.show_document(build_pyramid(img), session, ClassTable.from_names(["a", "b", "c"]))
    c.show()
    qtbot.waitExposed(c)
    c.set_zoom(1.0)
    c.centerOn(150, 100)
    return c


def to_view(c: Canvas, x: float, y: float) -> QPoint:
    return c.mapFromScene(QPointF(x + 0.5, y + 0.5))


def drag(qtbot, c: Canvas, pts: list[tuple[float, float]]) -> None:
    vp = c.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=to_view(c, *pts[0]))
    for p in pts[1:]:
        qtbot.mouseMove(vp, to_view(c, *p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=to_view(c, *pts[-1]))


def test_brush_stroke_paints_the_mask_and_is_one_undo_step(qtbot, canvas: Canvas) -> None:
    s = canvas.session
    assert s is not None
    done: list[str] = []
    ctx = ToolContext(session=s, current_class=2, radius=3, on_edit_done=done.append)
    canvas.set_tool(BrushTool(ctx))
    drag(qtbot, canvas, [(50, 50), (70, 50), (90, 60)])
    assert s.label[50, 50] == 2 and s.label[50, 70] == 2 and s.label[60, 90] == 2
    assert s.label[150, 250] == 255
    assert done == ["brush"] and s.history.undo_steps == 1
    s.undo()
    assert (s.label == 255).all()
    s.redo()
    assert s.label[50, 70] == 2


def test_eraser_fill_and_lasso(qtbot, canvas: Canvas) -> None:
    s = canvas.session
    assert s is not None
    ctx = ToolContext(session=s, current_class=1, radius=2)
    canvas.set_tool(FillTool(ctx))
    drag(qtbot, canvas, [(10, 10)])
    assert (s.label == 1).all()
    canvas.set_tool(BrushTool(ctx, erase=True))
    drag(qtbot, canvas, [(100, 100), (120, 100)])
    assert s.label[100, 110] == 255 and s.label[0, 0] == 1
    ctx.current_class = 0
    canvas.set_tool(LassoTool(ctx))
    drag(qtbot, canvas, [(150, 20), (200, 20), (200, 70), (150, 70), (150, 21)])
    assert s.label[45, 175] == 0 and s.label[10, 10] == 1
    assert s.history.undo_steps == 3


def test_overlay_styles_and_lut(canvas: Canvas) -> None:
    table = ClassTable.from_names(["a", "b", "c"])
    lut = overlay_lut(table, hidden={1})
    assert lut[0, 3] == 255 and lut[1, 3] == 0 and lut[255, 3] == 0
    assert overlay_lut(table, solo=2)[0, 3] == 0
    canvas.set_outline(True)
    assert isinstance(canvas.label_layer.source, MaskSource) and canvas.label_layer.source.style == "outline"
    canvas.set_mask_view(1)
    assert canvas.label_layer.source.style == "binary"
    canvas.set_mask_view(None)
    canvas.set_outline(False)
    assert canvas.label_layer.source.style == "fill"
    canvas.grab()  # renders every layer without error


def test_zoom_limits_and_ctrl_wheel_resizes_brush(qtbot, canvas: Canvas) -> None:
    canvas.set_zoom(1000)
    assert canvas.zoom() == pytest.approx(32.0)
    steps: list[int] = []
    canvas.brushWheel.connect(steps.append)
    pos = QPointF(100, 100)
    ev = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    canvas.wheelEvent(ev)
    assert steps == [1]
    canvas.fit_to_window()
    assert canvas.zoom() < 2


def _pixels(img) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGBA8888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 4].reshape(img.height(), img.width(), 4).copy()  # before img is freed


@pytest.mark.parametrize("level", [0, 1, 2])
def test_mask_styles_render_what_they_promise(level: int) -> None:
    rng = np.random.default_rng(level)
    mask = rng.integers(0, 4, (1100, 1300)).astype(np.uint8)
    mask[:50] = 255
    table = ClassTable.from_names(["a", "b", "c", "d"])
    lut = overlay_lut(table, hidden={3})
    s = 1 << level
    x0, y0, x1, y1 = 256, 0, 300, 256  # a tile that is not at the origin: the stripe phase matters
    sub = mask[y0 * s:y1 * s:s, x0 * s:x1 * s:s]

    fill = _pixels(MaskSource(mask, lut, "fill").render(level, x0, y0, x1, y1))
    expect = lut[sub].copy()
    expect[expect[..., 3] == 0] = 0
    assert np.array_equal(fill, expect)

    hatched = _pixels(MaskSource(mask, lut, "hatched").render(level, x0, y0, x1, y1))
    yy = np.arange(y0, y1)[:, None] * s
    xx = np.arange(x0, x1)[None, :] * s
    full = ((xx + yy) // 6) % 2 == 0
    alpha = np.where(full, lut[sub][..., 3], lut[sub][..., 3] // 3)
    assert np.array_equal(hatched[..., 3], alpha)
    # tiles are stored premultiplied: faint pixels come back within rounding of their colour
    diff = hatched[..., :3][alpha > 0].astype(int) - lut[sub][..., :3][alpha > 0]
    assert np.abs(diff).max() <= 3

    binary = _pixels(MaskSource(mask, lut, "binary", 1).render(level, x0, y0, x1, y1))
    assert np.array_equal(binary[..., 0], np.where(sub == 1, 255, 0)) and (binary[..., 3] == 255).all()

    outline = _pixels(MaskSource(mask, lut, "outline").render(level, x0, y0, x1, y1))
    inner = outline[1:-1, 1:-1, 3] > 0
    flat = (sub[1:-1, 1:-1] == sub[:-2, 1:-1]) & (sub[1:-1, 1:-1] == sub[2:, 1:-1]) \
        & (sub[1:-1, 1:-1] == sub[1:-1, :-2]) & (sub[1:-1, 1:-1] == sub[1:-1, 2:])
    assert not (inner & flat).any()  # nothing drawn inside a region
    assert (inner | flat | (lut[sub[1:-1, 1:-1]][..., 3] == 0)).all()  # every visible border pixel drawn


def test_a_fully_transparent_tile_is_not_drawn() -> None:
    mask = np.full((300, 300), 255, np.uint8)
    lut = overlay_lut(ClassTable.from_names(["a"]))
    assert MaskSource(mask, lut, "fill").render(0, 0, 0, 256, 256) is None
    assert MaskSource(mask, lut, "hatched").render(0, 0, 0, 256, 256) is None


def test_scrolled_repaints_match_a_full_repaint(qtbot) -> None:
    """Tiles drawn in parts (strips scrolled in) leave no seams: the view equals a full repaint."""
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    c = Canvas()
    qtbot.addWidget(c)
    c.resize(500, 400)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (1500, 2100, 3), dtype=np.uint8)  # noise: any misplaced pixel shows
    label = np.full((1500, 2100), 255, np.uint8)
    label[200:900, 300:1600] = 1
    c.show_document(build_pyramid(img), EditSession(label), ClassTable.from_names(["a", "b"]))
    c.show()
    qtbot.waitExposed(c)
    c.fit_to_window()
    c.set_zoom(c.zoom() * 1.7)  # a pyramid level drawn smoothly below 1:1
    bar = c.horizontalScrollBar()
    QApplication.processEvents()
    for _ in range(9):
        bar.setValue(bar.value() + 37)
        QApplication.processEvents()  # the event loop repaints only the strip scrolled in
    vp = c.viewport()

    def on_screen() -> QImage:  # what the window shows (its backing store), not a fresh render as grab() makes
        pix = c.screen().grabWindow(c.winId(), vp.x(), vp.y(), vp.width(), vp.height())
        return pix.toImage().convertToFormat(QImage.Format.Format_RGB32)

    scrolled = on_screen()
    vp.update()
    QApplication.processEvents()
    full = on_screen()
    a = np.frombuffer(scrolled.constBits(), np.uint8).astype(int)
    b = np.frombuffer(full.constBits(), np.uint8).astype(int)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 2


_LEVELS_SCRIPT = """
import numpy as np
from PySide6.QtWidgets import QApplication
app = QApplication([])
from segstudio.core.classes import ClassTable
from segstudio.core.editing.session import EditSession
from segstudio.gui.canvas.canvas import Canvas
from segstudio.workspace.pyramid import build_pyramid
c = Canvas()
c.resize(400, 300)
c.show_document(build_pyramid(np.zeros((2048, 2048, 3), np.uint8)), EditSession.blank(2048, 2048),
                ClassTable.from_names(["a"]))
c.show()
app.processEvents()
c.set_zoom(0.25)
levels = []
source = c.image_layer.source
original = source.render
source.render = lambda lv, *rect: levels.append(lv) or original(lv, *rect)
c.image_layer.clear_cache()
c.viewport().update()
app.processEvents()
print(sorted(set(levels)), c.devicePixelRatioF())
"""


@pytest.mark.parametrize("scale_factor, level", [("1", 2), ("2", 1)])
def test_tiles_come_from_the_level_that_matches_device_pixels(scale_factor: str, level: int) -> None:
    """On a high-DPI screen (pixel ratio 2) a zoom of 1/4 needs the 1/2 level, not the 1/4 one."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": scale_factor,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", _LEVELS_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == f"[{level}] {float(scale_factor)}"


def test_the_prediction_shows_only_where_nothing_is_labelled_and_accepting_clears_the_hatching(
        canvas: Canvas) -> None:
    session = canvas.session
    prediction = np.ones((200, 300), np.uint8)
    prediction[:, 150:] = 2
    session.set_prediction(prediction)
    canvas.refresh_prediction()
    session.label[:100] = 0  # the user's own label over the top half
    source = canvas.prediction_layer.source
    assert isinstance(source, MaskSource) and source.style == "hatched"
    drawn = _pixels(source.render(0, 0, 0, 300, 200))[..., 3] > 0
    assert not drawn[:100].any() and drawn[100:].mean() > 0.9  # hatched: a few stripes are faint, none empty
    session.accept_prediction()
    assert canvas.prediction_layer.source.render(0, 0, 0, 300, 200) is None  # no hatching left


def test_a_remapped_label_is_drawn_from_its_new_array(canvas: Canvas) -> None:
    session = canvas.session
    session.label[:, :100] = 0
    lut = np.arange(256, dtype=np.uint8)
    lut[0] = 2
    session.remap(lut)
    source = canvas.label_layer.source
    assert isinstance(source, MaskSource) and source.mask is session.label
    colours = _pixels(source.render(0, 0, 0, 300, 200))
    want = overlay_lut(canvas.classes, set(), None)[2]
    assert np.array_equal(colours[50, 50, :3], want[:3]) and colours[50, 200, 3] == 0  # class 2; unlabelled clear


def test_mask_view_shows_the_prediction_where_nothing_is_labelled_in_stripes(canvas: Canvas) -> None:
    session = canvas.session
    prediction = np.zeros((200, 300), np.uint8)
    prediction[:, :100] = 1
    session.set_prediction(prediction)
    canvas.refresh_prediction()
    session.label[:50] = 1  # labelled class 1 over the top
    canvas.set_mask_view(1)
    assert canvas.prediction_layer.isVisible() and canvas.prediction_layer.opacity() == 1.0
    label = _pixels(canvas.label_layer.source.render(0, 0, 0, 300, 200))
    pred = _pixels(canvas.prediction_layer.source.render(0, 0, 0, 300, 200))
    assert (label[:50, :, 0] == 255).all() and (label[50:, :, 3] == 0).all()  # unlabelled: see-through
    assert (pred[:50, :, 3] == 0).all()  # under the label: nothing
    stripes = pred[50:, :100, 0]
    assert set(np.unique(stripes)) == {110, 255}  # predicted class 1: white and grey stripes
    assert (pred[50:, 100:, :3] == 0).all() and (pred[50:, 100:, 3] == 255).all()  # predicted other: black
    canvas.grab()
