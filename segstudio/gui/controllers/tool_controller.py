"""The editing state of the window: which tool, which class, brush size and paint lock.

:class:`ToolController` owns the canvas tools (one instance per tool, sharing one
:class:`~segstudio.gui.canvas.tools.ToolContext`) and keeps that context in step
with the document being edited. Class and tool changes never touch the undo
history: every stroke is its own step whatever was selected when it was made.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from segstudio.core.editing.tools import NO_LOCK, PaintLock
from segstudio.gui.canvas.canvas import Canvas
from segstudio.gui.canvas.tools import (
    BrushTool,
    CanvasTool,
    EyedropperTool,
    FillTool,
    LassoTool,
    PolygonTool,
    ToolContext,
)
from segstudio.workspace.document import ImageDocument

TOOL_NAMES = ("brush", "eraser", "fill", "polygon", "lasso", "eyedropper", "accept")
"""Every tool, in toolbar order; "accept" takes the prediction inside a lasso."""

MIN_RADIUS = 0.5
MAX_RADIUS = 500.0
RADIUS_STEP = 1.25

LOCK_NONE = "none"
LOCK_UNLABELLED = "unlabelled"
LOCK_CLASS = "class"


class ToolController(QObject):
    """Tools, current class, brush radius and lock for one canvas."""

    toolChanged = Signal(str)
    classChanged = Signal(int)
    radiusChanged = Signal(float)
    lockChanged = Signal(str, int)  # mode, class for LOCK_CLASS
    edited = Signal(str)  # a stroke/fill/polygon finished (the undo step's name)

    def __init__(self, canvas: Canvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.ctx = ToolContext(on_edit_done=self.edited.emit, on_class_picked=self._picked,
                               set_preview=canvas.set_preview_path)
        self.tools: dict[str, CanvasTool] = {
            "brush": BrushTool(self.ctx),
            "eraser": BrushTool(self.ctx, erase=True),
            "fill": FillTool(self.ctx),
            "polygon": PolygonTool(self.ctx),
            "lasso": LassoTool(self.ctx),
            "eyedropper": EyedropperTool(self.ctx),
            "accept": LassoTool(self.ctx, action="accept"),
        }
        self.tool_name = "brush"
        self._before_eyedropper = "brush"
        self.lock_mode = LOCK_NONE
        self.lock_class = 0
        self.num_classes = 0
        self.no_classes = False
        """The project has no classes: the tools do nothing (see :meth:`set_num_classes`)."""
        self._doc: ImageDocument | None = None
        canvas.brushWheel.connect(lambda steps: self.grow() if steps > 0 else self.shrink())
        canvas.set_tool(self.tools[self.tool_name])

    # --- document ------------------------------------------------------------------
    def set_document(self, doc: ImageDocument | None) -> None:
        """Edit ``doc`` (None, a read-only document, or a project without classes: the tools do nothing)."""
        self._doc = doc
        self.canvas.set_tool(None)
        self.ctx.session = doc.session if doc is not None and doc.editable and not self.no_classes else None
        self.canvas.set_tool(self.tools[self.tool_name])

    def set_num_classes(self, n: int) -> None:
        """The project has ``n`` classes (none: nothing can be painted until it has some)."""
        self.num_classes = n
        if self.no_classes != (n == 0):
            self.no_classes = n == 0
            self.set_document(self._doc)
        if n and self.ctx.current_class >= n:
            self.set_class(n - 1)
        if self.lock_mode == LOCK_CLASS and self.lock_class >= n:
            self.set_lock(LOCK_NONE)

    # --- tool, class, size, lock ----------------------------------------------------
    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise ValueError(f"no tool {name!r}; tools are {', '.join(TOOL_NAMES)}")
        if name == "eyedropper" and self.tool_name != "eyedropper":
            self._before_eyedropper = self.tool_name
        self.tool_name = name
        self.canvas.set_tool(self.tools[name])
        self.toolChanged.emit(name)

    @property
    def current_class(self) -> int:
        return self.ctx.current_class

    def set_class(self, index: int) -> None:
        if self.num_classes and not 0 <= index < self.num_classes:
            return
        self.ctx.current_class = index
        self.classChanged.emit(index)

    def _picked(self, index: int) -> None:
        self.set_class(index)
        self.set_tool(self._before_eyedropper)  # pick, then paint on with the tool used before

    @property
    def radius(self) -> float:
        return self.ctx.radius

    def set_radius(self, radius: float) -> None:
        r = max(MIN_RADIUS, min(MAX_RADIUS, float(radius)))
        self.ctx.radius = r
        self.canvas.set_brush_radius(r)
        self.radiusChanged.emit(r)

    def grow(self) -> None:
        self.set_radius(max(self.ctx.radius * RADIUS_STEP, self.ctx.radius + 1))

    def shrink(self) -> None:
        self.set_radius(min(self.ctx.radius / RADIUS_STEP, self.ctx.radius - 1))

    def set_lock(self, mode: str, index: int | None = None) -> None:
        """Restrict painting: LOCK_NONE, LOCK_UNLABELLED, or LOCK_CLASS (only over class ``index``)."""
        if index is not None:
            self.lock_class = index
        if mode == LOCK_NONE:
            self.ctx.lock = NO_LOCK
        elif mode == LOCK_UNLABELLED:
            self.ctx.lock = PaintLock(only_unlabelled=True)
        elif mode == LOCK_CLASS:
            self.ctx.lock = PaintLock(only_class=self.lock_class)
        else:
            raise ValueError(f"unknown lock {mode!r}")
        self.lock_mode = mode
        self.lockChanged.emit(mode, self.lock_class)
