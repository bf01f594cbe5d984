"""Changes to the open project's class table, seen from the window: add, rename, recolour, delete, merge, move,
import, and their undo.

:class:`ClassChanges` works on the window's
:class:`~segstudio.workspace.project_session.ProjectSession` (the
:class:`~segstudio.gui.controllers.project_controller.ProjectController` makes it:
``controller.class_changes``, and relays its signals), tells the user through the
window's :class:`~segstudio.gui.notifier.Notifier`, and announces what changed
through its own signals (``classesChanged``, ``documentsRenumbered``,
``busyChanged``). A change
that renumbers classes (delete, merge, move, a new table with a ``lut``) is a
transaction in the project (:mod:`segstudio.core.class_edits`) run in a worker
that rewrites every mask; meanwhile the window is busy (no painting). The open
documents then follow the classes the project ends up with, and their undo
history starts afresh (its steps hold the old class numbers), so the next
Edit › Undo undoes the class change itself. A change that renumbers nothing
(add, rename, recolour) is written at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from PySide6.QtCore import QObject, Signal

from segstudio.core import class_edits
from segstudio.core.atomic import SaveError
from segstudio.core.class_edits import ClassChange
from segstudio.core.classes import RGB, ClassTable, mask_dtype
from segstudio.core.masks import remap_lut, to_mask_dtype
from segstudio.core.project import ProjectError
from segstudio.core.project_file import LABELS_DIR, PREDICTIONS_DIR
from segstudio.core.staged_remap import MaskRemap
from segstudio.core.tasks import CancelToken
from segstudio.gui.notifier import Notifier
from segstudio.gui.workers import WorkerPool
from segstudio.workspace.model_choice import adopted
from segstudio.workspace.project_session import ProjectSession

UNDO_STEPS = 10
"""How many class changes (deletions, merges, moves) can be undone."""


class ClassChanges(QObject):
    """The class changes of the window's open project and the undo steps of those that rewrote masks."""

    classesChanged = Signal(object)  # ClassTable: the project's classes now
    documentsRenumbered = Signal()  # the open images follow the new classes (their histories start afresh)
    busyChanged = Signal(bool)  # True while a worker rewrites the project's masks (hold the window still)

    def __init__(self, session: ProjectSession, workers: WorkerPool, notifier: Notifier,
                 flush: Callable[[], list[str]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workers = workers
        self.notifier = notifier
        self.flush = flush
        """Saves every unsaved label now and returns the errors (a rewrite starts from the files)."""
        self.undo_steps: list[ClassChange] = []
        """Class changes that rewrote masks and can be undone, the latest last (see :meth:`undo`)."""
        self.blockers: list[Callable[[], str | None]] = []
        """Each returns why the classes cannot change now (e.g. a segmentation is writing masks), or None."""

    def blocked(self) -> str | None:
        """Why a blocker forbids changing the classes now, or None."""
        return next((r for r in (f() for f in self.blockers) if r), None)

    # ------------------------------------------------------------------ changes
    def add(self, name: str, colour: RGB | None = None) -> None:
        self._change(self.session.classes.added(name, colour))

    def rename(self, index: int, name: str) -> None:
        self._change(self.session.classes.renamed(index, name))

    def recolour(self, index: int, colour: RGB) -> None:
        self._change(self.session.classes.recoloured(index, colour))

    def set_table(self, table: ClassTable, lut: np.ndarray | None = None) -> None:
        """Replace the class table; ``lut[old index] = new index`` rewrites every mask (needed when
        classes move or go). Labels and predictions stay whole; open images lose their undo history."""
        self._change(table, lut)

    def delete(self, index: int, into: int | None = None) -> None:
        """Delete class ``index``; its pixels in every label and prediction go to class ``into`` (a merge) or
        become "not labelled" (None). A worker rewrites the files; Edit › Undo brings it all back."""
        classes = self.session.classes
        if not 0 <= index < len(classes) or (into is not None and not 0 <= into < len(classes)):
            return
        self._rewrite(class_edits.deletion(classes, index, into))

    def merge(self, source: int, target: int) -> None:
        """Merge class ``source`` into ``target`` in every mask (an undoable :meth:`delete`)."""
        self.delete(source, target)

    def move(self, index: int, to: int) -> None:
        """Move class ``index`` to place ``to``: its number changes in every mask (undoable)."""
        n = len(self.session.classes)
        if index != to and 0 <= index < n and 0 <= to < n:
            self._rewrite(class_edits.move(self.session.classes, index, to))

    def import_table(self, table: ClassTable) -> None:
        """Take the imported class table ``table`` (see :mod:`segstudio.workspace.class_import`): its classes in
        its order and colours, the project's other classes after them; masks are renumbered by name."""
        classes = self.session.classes
        if not len(classes):
            self.set_table(table)
            return
        merged, lut = adopted(classes, table)
        if merged == classes:
            self.notifier.say("The project already has these classes in this order")
            return
        self.set_table(merged, None if np.array_equal(lut, np.arange(len(lut))) else lut)

    # ------------------------------------------------------------------ undo
    @property
    def undo_text(self) -> str | None:
        """What undoing the last class change would undo ("delete class 'Road'"), or None."""
        return self.undo_steps[-1].what if self.undo_steps else None

    def undo(self) -> None:
        """Undo the last class change that rewrote masks (see :meth:`delete`)."""
        if self.undo_steps:
            self._rewrite(self.undo_steps[-1], undoing=True)

    # ------------------------------------------------------------------ the work
    def _rewrite(self, change: ClassChange, undoing: bool = False) -> None:
        project = self.session.project
        if project is None:
            return

        def work(cancel: CancelToken) -> None:
            if undoing:
                class_edits.undo(project, change)
            else:
                class_edits.apply(project, change)

        def committed() -> None:
            if undoing:
                self.undo_steps.remove(change)
                self.notifier.say(f"Undone: {change.what}")
            else:
                self.undo_steps = [*self.undo_steps[-(UNDO_STEPS - 1):], change]
                self.notifier.say(f"Done: {change.what} (Edit › Undo brings it back)")

        self._change(change.before if undoing else change.after, None, work,
                     change.backward if undoing else change.forward, committed)

    def _change(self, table: ClassTable, lut: np.ndarray | None = None,
                work: Callable[[CancelToken], None] | None = None, remap: MaskRemap | None = None,
                committed: Callable[[], None] | None = None) -> None:
        """Change the class table: at once when no mask changes, else in a worker that rewrites every mask
        (``work``, or ``lut``); the open documents follow the classes the project ends up with (``remap``
        per mask). Only an undoable change (``committed``) keeps the class undo steps."""
        session, notifier = self.session, self.notifier
        project = session.project
        if project is None or session.busy:
            return
        blocked = self.blocked()
        if blocked:
            notifier.error("Cannot change the classes now", blocked)
            return
        if project.read_only:
            notifier.error("Cannot change the classes", f"the project is {project.read_only_reason}")
            return
        old_n = len(project.classes)
        if work is None and lut is None and mask_dtype(old_n) == mask_dtype(len(table)):
            try:
                project.set_classes(table)
            except (ValueError, SaveError, ProjectError) as exc:
                notifier.error("Cannot change the classes", str(exc))
                return
            self.undo_steps.clear()  # an undo would bring back the table before this change too
            self.classesChanged.emit(table)
            return
        errors = self.flush()
        if errors:
            notifier.error("Could not save", "\n".join(errors))
            return
        if remap is None:
            full = remap_lut(lut if lut is not None else np.arange(min(old_n, len(table))), old_n, len(table))

            def remap_by_lut(_folder: str, _rel: str, mask: np.ndarray) -> np.ndarray:
                return full[to_mask_dtype(mask, old_n)]

            remap = remap_by_lut
        if work is None:
            steps = lut if lut is not None else np.arange(old_n)

            def work(cancel: CancelToken) -> None:
                project.set_classes(table, steps)
        self.busyChanged.emit(True)
        notifier.say("Rewriting the masks for the new classes…")
        rewrite = remap

        def follow() -> None:  # the open documents take the classes the project has now
            for doc in session.documents:
                name = doc.entry.label_name
                doc.follow_class_change(partial(rewrite, LABELS_DIR, name), partial(rewrite, PREDICTIONS_DIR, name))
            if committed is not None:
                committed()
            else:
                self.undo_steps.clear()
            self.classesChanged.emit(table)
            self.documentsRenumbered.emit()

        def done(_: object) -> None:
            follow()
            self.busyChanged.emit(False)

        def failed(msg: str) -> None:
            self.busyChanged.emit(False)
            if project.classes == table:  # committed: only moving the rewritten masks in is unfinished
                follow()
                notifier.error("Classes changed, masks not all moved in",
                                     f"{msg}\nThe new classes are saved; segstudio moves the remaining "
                                     "rewritten masks in before the next label is saved, or when the project "
                                     "is opened again.")
                return
            notifier.error("Cannot change the classes", f"{msg}\nNothing was changed.")

        self.workers.start("change classes", work, on_finished=done, on_failed=failed)
