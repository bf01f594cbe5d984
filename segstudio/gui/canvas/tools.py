"""Tool adapters: mouse events on the canvas → editing functions on the session.

Each tool receives image coordinates; the editing itself happens in
:class:`~segstudio.core.editing.session.EditSession` (Qt-free and tested
without a window). Tools draw only their own previews (polygon, lasso).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainterPath

from segstudio.core.editing.session import EditSession
from segstudio.core.editing.tools import NO_LOCK, PaintLock

Point = tuple[float, float]


@dataclass
class ToolContext:
    """What tools need from the window: the session, the class to paint, brush size, lock, callbacks."""

    session: EditSession | None = None
    current_class: int = 0
    radius: float = 8.0
    lock: PaintLock = NO_LOCK
    on_edit_done: Callable[[str], None] = field(default=lambda what: None)
    on_class_picked: Callable[[int], None] = field(default=lambda index: None)
    set_preview: Callable[[QPainterPath | None], None] = field(default=lambda path: None)


class CanvasTool:
    """Base tool: override what the tool reacts to."""

    name = "tool"
    shows_brush = False

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        """Left button pressed at ``p``."""

    def move(self, p: Point, dragging: bool) -> None:
        """Mouse moved to ``p`` (``dragging``: left button held)."""

    def release(self, p: Point) -> None:
        """Left button released."""

    def double_click(self, p: Point) -> None:
        """Left button double-clicked."""

    def finish(self) -> None:
        """Enter pressed."""

    def cancel(self) -> None:
        """Escape pressed or the tool was switched away."""


class BrushTool(CanvasTool):
    """Round brush (or eraser): one drag = one stroke = one undo step."""

    name = "brush"
    shows_brush = True

    def __init__(self, ctx: ToolContext, erase: bool = False) -> None:
        super().__init__(ctx)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self._last: Point | None = None

    def _dab(self, a: Point, b: Point) -> None:
        s = self.ctx.session
        if s is None:
            return
        if self.erase:
            s.erase(a, b, self.ctx.radius, self.ctx.lock)
        else:
            s.paint(a, b, self.ctx.radius, self.ctx.current_class, self.ctx.lock)

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        if self.ctx.session is None:
            return
        self.ctx.session.begin_stroke(self.name)
        self._last = p
        self._dab(p, p)

    def move(self, p: Point, dragging: bool) -> None:
        if dragging and self._last is not None:
            self._dab(self._last, p)
            self._last = p

    def release(self, p: Point) -> None:
        if self._last is None or self.ctx.session is None:
            return
        self._last = None
        if self.ctx.session.end_stroke() is not None:
            self.ctx.on_edit_done(self.name)

    def cancel(self) -> None:
        if self._last is not None:
            self.release(self._last)


class FillTool(CanvasTool):
    """Flood fill of the connected region under the click."""

    name = "fill"

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        s = self.ctx.session
        if s is not None and s.fill(p, self.ctx.current_class, self.ctx.lock) is not None:
            self.ctx.on_edit_done(self.name)


class EyedropperTool(CanvasTool):
    """Pick the class under the click as the current class."""

    name = "eyedropper"

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        s = self.ctx.session
        if s is None:
            return
        picked = s.pick(p)
        if picked is None and s.prediction is not None:
            h, w = s.shape
            x, y = round(p[0]), round(p[1])
            if 0 <= x < w and 0 <= y < h:
                picked = int(s.prediction[y, x])
        if picked is not None:
            self.ctx.on_class_picked(picked)


def _path(points: list[Point], closed: bool) -> QPainterPath:
    path = QPainterPath()
    if points:
        path.moveTo(QPointF(*points[0]))
        for q in points[1:]:
            path.lineTo(QPointF(*q))
        if closed:
            path.closeSubpath()
    return path


class _OutlineTool(CanvasTool):
    """A tool that collects an outline and, when it closes, fills it (or accepts the prediction inside)."""

    def __init__(self, ctx: ToolContext, action: str = "fill") -> None:
        super().__init__(ctx)
        self.action = action  # "fill" with the current class, or "accept" the prediction inside
        self.points: list[Point] = []

    def _close_outline(self) -> None:
        pts, self.points = self.points, []
        self.ctx.set_preview(None)
        _close(self.ctx, pts, self.action, self.name)

    def cancel(self) -> None:
        self.points = []
        self.ctx.set_preview(None)


class PolygonTool(_OutlineTool):
    """Click vertices; double-click, Enter or a click on the first vertex closes and fills."""

    name = "polygon"

    def __init__(self, ctx: ToolContext, action: str = "fill") -> None:
        super().__init__(ctx, action)
        self._hover: Point | None = None

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        if len(self.points) >= 3:
            fx, fy = self.points[0]
            if (p[0] - fx) ** 2 + (p[1] - fy) ** 2 <= max(4.0, self.ctx.radius / 4) ** 2:
                self.finish()
                return
        self.points.append(p)
        self._update_preview()

    def move(self, p: Point, dragging: bool) -> None:
        self._hover = p
        if self.points:
            self._update_preview()

    def double_click(self, p: Point) -> None:
        self.finish()

    def _update_preview(self) -> None:
        pts = self.points + ([self._hover] if self._hover is not None else [])
        self.ctx.set_preview(_path(pts, closed=False))

    def finish(self) -> None:
        self._close_outline()


class LassoTool(_OutlineTool):
    """Freehand: drag a closed outline; on release it is filled (or the prediction accepted inside)."""

    name = "lasso"

    def press(self, p: Point, modifiers: Qt.KeyboardModifier) -> None:
        self.points = [p]

    def move(self, p: Point, dragging: bool) -> None:
        if dragging and self.points:
            lx, ly = self.points[-1]
            if (p[0] - lx) ** 2 + (p[1] - ly) ** 2 >= 1.0:
                self.points.append(p)
                self.ctx.set_preview(_path(self.points, closed=True))

    def release(self, p: Point) -> None:
        self._close_outline()


def _close(ctx: ToolContext, pts: list[Point], action: str, name: str) -> None:
    s = ctx.session
    if s is None or len(pts) < 3:
        return
    if action == "accept":
        changed = s.accept_prediction(pts)
    else:
        changed = s.fill_polygon(pts, ctx.current_class, ctx.lock)
    if changed is not None:
        ctx.on_edit_done("accept prediction" if action == "accept" else name)
