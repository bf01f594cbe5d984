"""Saving the labels the user edits: the autosave, saving in a worker, and flushing everything on closing.

:class:`LabelSaver` works on the open images of the window's
:class:`~segstudio.workspace.project_session.ProjectSession`. Every label edit
restarts the autosave timer; a save copies the mask on the UI thread and writes
it (:func:`~segstudio.workspace.document.write_label`, atomically through the
Project) in a worker, and a newer edit is saved after it. :meth:`LabelSaver.flush`
saves what is left on this thread (closing, switching projects, before a class
change or a training run) and returns the errors instead of raising. A failed save
keeps the edits open and says so once per distinct problem, through the window's
:class:`~segstudio.gui.notifier.Notifier`.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.atomic import SaveError
from segstudio.core.project import ProjectError
from segstudio.gui.notifier import Notifier
from segstudio.gui.workers import WorkerPool
from segstudio.workspace.document import ImageDocument, write_label
from segstudio.workspace.project_session import ProjectSession

AUTOSAVE_MS = 1500


class LabelSaver(QObject):
    """The open images' labels onto disk; see the module docstring."""

    statusChanged = Signal(str)  # image path whose label (and so its status) was saved
    dirtyChanged = Signal(bool)  # whether any label is unsaved

    def __init__(self, session: ProjectSession, workers: WorkerPool, notifier: Notifier,
                 autosave_ms: int = AUTOSAVE_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workers = workers
        self.notifier = notifier
        self.autosave = QTimer(self)
        """Started by every edit; when it fires, every unsaved label is saved (:meth:`save_all_async`)."""
        self.autosave.setSingleShot(True)
        self.autosave.setInterval(autosave_ms)
        self.autosave.timeout.connect(self.save_all_async)
        self._last_error: str | None = None

    def edited(self) -> None:
        """The current label changed: say whether anything is unsaved, and (re)start the autosave."""
        self.dirtyChanged.emit(self.session.documents.any_dirty())
        self.autosave.start()

    def save_all_async(self) -> None:
        """Start saving every unsaved label (the autosave); an unfinished stroke postpones it."""
        current = self.session.current
        if current is not None and current.session.in_stroke:
            self.autosave.start()
            return
        for doc in self.session.documents:
            self.save_async(doc)

    def save_async(self, doc: ImageDocument) -> None:
        """Save ``doc``'s label in a worker (a copy taken now); a newer edit is saved after it."""
        project = self.session.project
        if project is None or not doc.dirty or not doc.editable or doc.saving:
            return
        entry, version = doc.entry, doc.version
        mask = doc.session.label.copy()
        doc.saving = True
        self.workers.start("save label", lambda c: write_label(project, entry, mask),
                           on_finished=lambda _: self._saved(doc, version),
                           on_failed=lambda msg: self._save_failed(doc, msg))

    def _saved(self, doc: ImageDocument, version: int) -> None:
        doc.saving = False
        doc.saved_version = max(doc.saved_version, version)
        doc.save_error = None
        self._last_error = None
        self.statusChanged.emit(doc.path)
        self.dirtyChanged.emit(self.session.documents.any_dirty())
        if doc.dirty:
            self.autosave.start()

    def _save_failed(self, doc: ImageDocument, msg: str) -> None:
        doc.saving = False
        doc.save_error = msg
        self.notifier.say(f"Could not save {doc.path}: {msg}")
        if msg != self._last_error:  # one dialog per distinct problem, not one per autosave
            self._last_error = msg
            self.notifier.error("Could not save", f"{doc.path}: {msg}\nYour edits stay open; "
                                "segstudio tries again after the next edit, on Save, and on closing.")

    def flush(self) -> list[str]:
        """Save every unsaved label now, on this thread (closing, switching projects); returns the errors."""
        self.autosave.stop()
        self.workers.join("save label")
        self.workers.join("save prediction")
        errors: list[str] = []
        project = self.session.project
        if project is None:
            return errors
        for doc in self.session.documents:
            doc.session.end_stroke()
            doc.saving = False
            if not doc.dirty or not doc.editable:
                continue
            version = doc.version
            try:
                write_label(project, doc.entry, doc.session.label)
            except (SaveError, ProjectError, ValueError, OSError) as exc:
                errors.append(f"{doc.path}: {exc}")
                continue
            doc.saved_version = version
            self.statusChanged.emit(doc.path)
        self.dirtyChanged.emit(self.session.documents.any_dirty())
        return errors

    def discard_unsaved(self) -> None:
        """Forget unsaved edits (the user chose to close without saving after a failed save)."""
        for doc in self.session.documents:
            doc.saved_version = doc.version
