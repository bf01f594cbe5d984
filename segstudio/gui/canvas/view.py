"""The canvas: a QGraphicsView with image, prediction, label and heat-map layers.

Zoom with the wheel (around the cursor, up to 32× with square pixels), fit or
1:1 by key; pan with the middle button or space+drag; Ctrl+wheel resizes the
brush. Left-button events go to the current tool in image coordinates. The
view renders and forwards; it never edits masks itself.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView, QWidget

from segstudio.gui.canvas.layers import TiledLayer
from segstudio.gui.canvas.tools import CanvasTool

MAX_ZOOM = 32.0
ZOOM_STEP = 1.25


class CanvasView(QGraphicsView):
    """Shows one image with its overlays; see the module docstring for the controls."""

    cursorMoved = Signal(float, float)  # image coordinates; (-1, -1) when the cursor leaves
    zoomChanged = Signal(float)
    brushWheel = Signal(int)  # Ctrl+wheel steps (+ larger, - smaller)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.image_layer = TiledLayer()
        self.prediction_layer = TiledLayer()
        self.label_layer = TiledLayer()
        self.heat_layer = TiledLayer()
        for z, layer in enumerate((self.image_layer, self.prediction_layer, self.label_layer, self.heat_layer)):
            layer.setZValue(z)
            self.scene().addItem(layer)
        self.heat_layer.setVisible(False)
        pen = QPen(QColor(255, 255, 255, 220), 1.5)
        pen.setCosmetic(True)
        self.brush_outline = QGraphicsEllipseItem()
        self.brush_outline.setPen(pen)
        self.brush_outline.setZValue(10)
        self.brush_outline.setVisible(False)
        self.scene().addItem(self.brush_outline)
        ppen = QPen(QColor(255, 220, 0), 1.5, Qt.PenStyle.DashLine)
        ppen.setCosmetic(True)
        self.preview = QGraphicsPathItem()
        self.preview.setPen(ppen)
        self.preview.setBrush(QBrush(QColor(255, 220, 0, 40)))
        self.preview.setZValue(11)
        self.scene().addItem(self.preview)

        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)

        self.tool: CanvasTool | None = None
        self.brush_radius = 8.0
        self._pan_from: QPointF | None = None
        self._space = False
        self._left_down = False
        self._fit_mode = True  # stay fitted on resize until the user zooms

    # --- content -------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        return self.image_layer.boundingRect()

    def content_changed(self, fit: bool = True) -> None:
        """Call after the image source changed: resets the scene rect and fits the view."""
        rect = self.image_rect()
        margin = max(rect.width(), rect.height()) * 0.5
        self.scene().setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
        if fit:
            self.fit_to_window()

    def set_preview_path(self, path: QPainterPath | None) -> None:
        self.preview.setPath(path if path is not None else QPainterPath())

    def set_tool(self, tool: CanvasTool | None) -> None:
        if self.tool is not None:
            self.tool.cancel()
        self.tool = tool
        self._update_brush_outline(None)

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = radius
        if self.brush_outline.isVisible():
            c = self.brush_outline.rect().center()
            self._update_brush_outline(c)

    # --- zoom ----------------------------------------------------------------------
    def zoom(self) -> float:
        return float(self.transform().m11())

    def fit_to_window(self) -> None:
        rect = self.image_rect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > MAX_ZOOM:
            self._scale_to(MAX_ZOOM)
        self._fit_mode = True
        self.zoomChanged.emit(self.zoom())

    def _min_zoom(self) -> float:
        rect = self.image_rect()
        if rect.isEmpty():
            return 0.01
        vp = self.viewport().rect()
        fit = min(vp.width() / rect.width(), vp.height() / rect.height())
        return min(1.0, fit / 4)

    def _scale_to(self, z: float) -> None:
        factor = z / self.zoom()
        if abs(factor - 1.0) > 1e-9:
            self.scale(factor, factor)

    def set_zoom(self, z: float) -> None:
        """Zoom to ``z`` screen pixels per image pixel (clamped); leaves fit-to-window mode."""
        self._scale_to(max(self._min_zoom(), min(MAX_ZOOM, z)))
        self._fit_mode = False
        self.zoomChanged.emit(self.zoom())

    def zoom_1to1(self) -> None:
        self.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit_to_window()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.brushWheel.emit(1 if steps > 0 else -1)
            return
        self.set_zoom(self.zoom() * ZOOM_STEP**steps)
        event.accept()

    # --- mouse ---------------------------------------------------------------------
    def image_point(self, event: QMouseEvent) -> tuple[float, float]:
        p = self.mapToScene(event.position().toPoint())
        # pixel centres sit at integer coordinates; scene pixel (i, i+1) has centre i + 0.5
        return p.x() - 0.5, p.y() - 0.5

    def _update_brush_outline(self, centre: QPointF | None) -> None:
        show = centre is not None and self.tool is not None and self.tool.shows_brush
        self.brush_outline.setVisible(show)
        if show and centre is not None:
            r = self.brush_radius
            self.brush_outline.setRect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.tool is not None:
            self._left_down = True
            self.tool.press(self.image_point(event), event.modifiers())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            event.accept()
            return
        x, y = self.image_point(event)
        self._update_brush_outline(QPointF(x + 0.5, y + 0.5))
        if self.tool is not None:
            self.tool.move((x, y), self._left_down)
        self.cursorMoved.emit(x, y)  # after the tool: "class under the cursor" includes this event's paint
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._left_down:
            self._left_down = False
            if self.tool is not None:
                self.tool.release(self.image_point(event))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.double_click(self.image_point(event))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._update_brush_outline(None)
        self.cursorMoved.emit(-1.0, -1.0)
        super().leaveEvent(event)

    # --- keys ----------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_Escape and self.tool is not None:
            self.tool.cancel()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tool is not None:
            self.tool.finish()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        super().keyReleaseEvent(event)
