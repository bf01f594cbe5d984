"""Undo/Redo in the window: a thin Qt adapter over the core :class:`~segstudio.core.editing.history.History`.

Why not QUndoStack: the history must stay within a memory bound (256 MB per
image by default) by dropping its *oldest* steps, and QUndoStack can only limit
the number of commands, fixed while the stack is empty. The core History
already keeps strokes as compressed bounding-box atoms, one step per stroke,
and enforces the bound; this adapter only gives it Qt actions: texts
("Undo brush"), enabled state, and the calls. Each image has its own History
(see :class:`~segstudio.gui.controllers.project_controller.ProjectController`), so switching
classes, tools or images never mixes or loses steps. A class change that
rewrites masks (a deletion, a merge, a move) is undone by the same Undo once
the current image has no newer step (the controller decides: ``undo_text``).
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from segstudio.gui.controllers.project_controller import ProjectController


class UndoAdapter(QObject):
    """Keeps an Undo and a Redo action in step with the current image's history."""

    def __init__(self, controller: ProjectController, undo: QAction, redo: QAction,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.undo_action = undo
        self.redo_action = redo
        undo.triggered.connect(controller.undo)
        redo.triggered.connect(controller.redo)
        controller.labelEdited.connect(self.refresh)
        controller.documentChanged.connect(lambda _doc: self.refresh())
        controller.classesChanged.connect(lambda _table: self.refresh())
        controller.projectChanged.connect(lambda _project: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        doc = self.controller.current
        history = doc.session.history if doc is not None and doc.editable else None
        undo_label = self.controller.undo_text()
        redo_label = history.redo_label if history is not None else None
        self.undo_action.setEnabled(undo_label is not None)
        self.redo_action.setEnabled(redo_label is not None)
        self.undo_action.setText(f"&Undo {undo_label}" if undo_label else "&Undo")
        self.redo_action.setText(f"&Redo {redo_label}" if redo_label else "&Redo")
