"""The document/controller layer: the open project, the image being edited, loading, autosave.

:class:`ProjectController` drives the window's
:class:`~segstudio.workspace.project_session.ProjectSession` (the
:class:`~segstudio.core.project.Project` with its lock, the open
:class:`~segstudio.workspace.document.ImageDocument` objects in their
:class:`~segstudio.workspace.document_cache.DocumentCache`, the image shown) and
announces its changes as signals; it tells the user things through the window's
:class:`~segstudio.gui.notifier.Notifier`, and saves the edited labels through its
:class:`~segstudio.gui.controllers.label_saver.LabelSaver` (the autosave). Everything slow
(opening a project, decoding an image and building its pyramid, writing masks,
rewriting masks when classes merge) runs in :mod:`segstudio.gui.workers`; the
results come back as signals. Panels and the main window only talk to this
class, never to the project directly, so the model and training panels plug in
through the same few methods: :meth:`set_prediction` (a prediction and its
uncertainty for any image, saved with ``Project.save_prediction``),
:meth:`show_prediction` (one already saved by a worker), :attr:`scores` (the
images' uncertainty scores), :attr:`class_changes` (the class table's changes and
their undo, :mod:`segstudio.gui.controllers.class_changes`) and :attr:`workers` for their own
long work.

Documents stay open (with their undo history) while they fit the cache's
bound; the least recently used saved document is closed first, and reopening it
starts a fresh history.

A project that another segstudio window or command has open (its lock is
held) opens read-only: the window shows it, says so once, and edits nothing.
Closing a project releases its lock. A class change is a transaction in the
project; the open documents follow the classes the project ends up with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from segstudio.core.atomic import SaveError
from segstudio.core.classes import ClassTable, mask_dtype
from segstudio.core.image_io import IMAGE_SUFFIXES
from segstudio.core.project import Project, ProjectError
from segstudio.core.project_file import PROJECT_FILE
from segstudio.core.tasks import CancelToken
from segstudio.gui.controllers.class_changes import ClassChanges
from segstudio.gui.controllers.label_saver import AUTOSAVE_MS, LabelSaver
from segstudio.gui.notifier import Notifier
from segstudio.gui.settings import app_data_dir
from segstudio.gui.workers import WorkerPool
from segstudio.workspace import opening
from segstudio.workspace.document import ImageDocument, LoadedDocument, load_document
from segstudio.workspace.document_cache import CACHE_BYTES
from segstudio.workspace.opening import EmptyFolder
from segstudio.workspace.project_session import ProjectSession
from segstudio.workspace.uncertainty import UncertaintyScores, mean_score, save_uncertainty


class ProjectController(QObject):
    """The open project and its documents; see the module docstring."""

    projectChanged = Signal(object)  # Project | None
    documentChanged = Signal(object)  # ImageDocument | None: the image shown and edited
    loadingStarted = Signal(str)  # image path (project-relative)
    loadFailed = Signal(str, str)  # image path, message
    statusChanged = Signal(str)  # image path whose status changed
    classesChanged = Signal(object)  # ClassTable
    labelEdited = Signal()  # the current label changed (stroke, fill, undo, redo, accept)
    predictionChanged = Signal(object)  # ImageDocument whose prediction or uncertainty changed
    dirtyChanged = Signal(bool)  # whether any label is unsaved
    busyChanged = Signal(bool)  # a project-wide change (merging classes) is running
    imagesChanged = Signal(object)  # Project: its images' labels and statuses changed on disk (an import)
    emptyFolder = Signal(object)  # EmptyFolder: a folder without images was opened (nothing was written)

    def __init__(self, workers: WorkerPool, notifier: Notifier, parent: QObject | None = None,
                 autosave_ms: int = AUTOSAVE_MS, cache_bytes: int = CACHE_BYTES, data_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.notifier = notifier
        """Where the user hears of what happens (the window's one :class:`~segstudio.gui.notifier.Notifier`)."""
        self.session = ProjectSession(cache_bytes)
        """The open project, its scores, the open images and the one shown."""
        self.saver = LabelSaver(self.session, workers, notifier, autosave_ms, self)
        """The autosave: the labels the user edits onto disk."""
        self.saver.statusChanged.connect(self.statusChanged)
        self.saver.dirtyChanged.connect(self.dirtyChanged)
        self.data_dir = data_dir if data_dir is not None else app_data_dir()
        """The user's data folder: the projects of read-only image folders are kept in it."""
        self.new_classes: ClassTable = ClassTable()
        """The classes a project the app creates starts with (empty: the window asks for classes, or takes the
        chosen model's)."""
        self.class_changes = ClassChanges(self.session, workers, notifier, self.saver.flush, self)
        """Add, rename, recolour, delete, merge, move and import classes, and undo those that rewrote masks."""
        self.class_changes.classesChanged.connect(self.classesChanged)
        self.class_changes.documentsRenumbered.connect(self._documents_renumbered)
        self.class_changes.busyChanged.connect(self.set_busy)

    # ------------------------------------------------------------------ the session's state, read-only
    @property
    def project(self) -> Project | None:
        return self.session.project

    @property
    def scores(self) -> UncertaintyScores | None:
        """The open project's uncertainty scores (see :mod:`segstudio.workspace.uncertainty`)."""
        return self.session.scores

    @property
    def current(self) -> ImageDocument | None:
        """The image shown and edited."""
        return self.session.current

    # ------------------------------------------------------------------ opening
    def open_path(self, path: Path | str) -> None:
        """Open a project folder, its ``segstudio.json``, a plain folder of images, or one image."""
        p = Path(path)
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            self.open_images([p])
            return
        data, classes = self.data_dir, self.new_classes
        self._start_open(f"Opening {p}…", lambda c: opening.open_folder(p, data, classes))

    def open_paths(self, paths: Sequence[Path | str]) -> None:
        """Open what a drop or the command line named: one folder/project, or a set of images."""
        ps = [Path(p) for p in paths]
        images = [p for p in ps if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if len(ps) == 1 and not images:
            self.open_path(ps[0])
        elif images:
            self.open_images(images)
        else:
            self.notifier.error("Cannot open", "Drop one folder or project, or image files ("
                                    + ", ".join(IMAGE_SUFFIXES) + ").")

    def open_images(self, images: Sequence[Path | str]) -> None:
        """Open a set of images: a project in their common folder (created there if there is none)."""
        paths = [Path(p) for p in images]
        if not paths:
            return
        data, classes = self.data_dir, self.new_classes
        self._start_open(f"Opening {len(paths)} image(s)…", lambda c: opening.open_images(paths, data, classes))

    def create_project(self, root: Path | str, images: Sequence[Path | str],
                       classes: ClassTable | None = None) -> None:
        """Create (or reopen) a project in ``root`` holding ``images``; images outside it are copied in."""
        r, paths = Path(root), [Path(p) for p in images]

        def open_and_add() -> Project:
            if (r / PROJECT_FILE).exists():
                project = Project.open(r, program="segstudio app")
                project.add_images(paths, copy_outside=True)
                project.save()
                return project
            return Project.create(r, images=paths, classes=classes, copy_outside=True, program="segstudio app")

        def work(cancel: CancelToken) -> Project:
            return opening.open_or_read_only(open_and_add, r)

        self._start_open(f"Creating a project in {r}…", work)

    def _start_open(self, text: str, work: Callable[[CancelToken], Any]) -> None:
        if not self.close_project():
            return
        self.notifier.say(text)
        self.workers.cancel("open project")

        def open_and_score(cancel: CancelToken) -> tuple[Project | EmptyFolder, UncertaintyScores | None]:
            result = work(cancel)
            return result, UncertaintyScores.load(result) if isinstance(result, Project) else None

        self.workers.start("open project", open_and_score, on_finished=self._opened,
                           on_failed=lambda msg: self.notifier.error("Cannot open", msg))

    def _opened(self, opened: tuple[Project | EmptyFolder, UncertaintyScores | None]) -> None:
        result, scores = opened
        if isinstance(result, EmptyFolder):
            self.notifier.say(result.hint())
            self.emptyFolder.emit(result)
            return
        self.session.open(result, scores)
        self.projectChanged.emit(result)
        self.classesChanged.emit(result.classes)
        n = len(result.images)
        self.notifier.say(f"Opened {result.root} ({n} image{'s' if n != 1 else ''})"
                          + (" read-only" if result.read_only else ""))
        if result.read_only:
            self.notifier.error("Opened read-only", f"The project {result.root} is {result.read_only_reason}. "
                                    "You can look at it, but nothing is saved; close it there, then open it "
                                    "again here to edit.")
        if result.images:
            self.open_entry(result.images[0].path)

    def close_project(self) -> bool:
        """Save everything and close; False (and an error signal) when a label could not be saved."""
        if self.project is None:
            return True
        errors = self.flush()
        if errors:
            self.notifier.error("Could not save", "\n".join(errors))
            return False
        self.workers.cancel("load image")
        closing = self.session.detach()
        self.class_changes.undo_steps.clear()
        self.documentChanged.emit(None)
        self.projectChanged.emit(None)  # the panels stop (and join) their work on it
        self.workers.join("save prediction")
        if closing is not None:
            closing.close()  # releases the lock: another window or command may now write the project
        return True

    def rescan(self) -> None:
        """Add images that appeared in the project folder."""
        if self.project is None:
            return
        try:
            found = self.project.refresh()
            self.project.save()
        except (ProjectError, SaveError) as exc:
            self.notifier.error("Cannot rescan", str(exc))
            return
        self.projectChanged.emit(self.project)
        self.notifier.say(f"{len(found.added)} new image(s); {len(found.missing)} missing")

    # ------------------------------------------------------------------ images
    @property
    def requested_path(self) -> str | None:
        """The image asked for last (it may still be loading)."""
        return self.session.requested

    def document(self, path: str) -> ImageDocument | None:
        """The open document of an image, if it is open."""
        return self.session.documents.get(path)

    def open_entry(self, path: str) -> None:
        """Show the image ``path`` (project-relative): at once if it is open, else after loading it."""
        if self.project is None:
            return
        entry = self.project.entry(path)
        self.session.requested = entry.path
        doc = self.session.documents.get(entry.path)
        if doc is not None:
            self.workers.cancel("load image")
            self._make_current(doc)
            return
        self.workers.cancel("load image")
        project = self.project
        self.loadingStarted.emit(entry.path)
        self.notifier.say(f"Loading {entry.path}…")
        self.workers.start("load image", lambda c: load_document(project, entry, c),
                           on_finished=lambda loaded: self._loaded(project, loaded),
                           on_failed=lambda msg: self._load_failed(entry.path, msg))

    def _loaded(self, project: Project, loaded: LoadedDocument) -> None:
        if project is not self.project or loaded.entry.path != self.session.requested:
            return  # the user moved on while it loaded
        doc = ImageDocument(loaded)
        if project.read_only and doc.read_only_reason is None:
            doc.read_only_reason = f"the project is {project.read_only_reason}"  # said once, when it opened
            self._make_current(doc)
            self.notifier.say(f"{doc.path}: read-only")
            return
        self._make_current(doc)
        if doc.read_only_reason:
            self.notifier.error("Opened read-only", f"{doc.path}: {doc.read_only_reason}")
        elif doc.notes:
            self.notifier.say(f"{doc.path}: {'; '.join(doc.notes)}")
        else:
            self.notifier.say(f"{doc.path}: {doc.shape[1]}×{doc.shape[0]}")

    def _load_failed(self, path: str, msg: str) -> None:
        if path == self.session.requested:
            self.loadFailed.emit(path, msg)
            self.notifier.say(f"Cannot open {path}: {msg}")

    def _make_current(self, doc: ImageDocument) -> None:
        previous = self.current
        if previous is doc:
            return
        if previous is not None:
            previous.session.end_stroke()
            if previous.dirty:
                self.saver.save_async(previous)
        self.session.show(doc)
        self.documentChanged.emit(doc)

    # ------------------------------------------------------------------ edits and saving
    def note_edit(self) -> None:
        """Call after an edit of the current label (a stroke ended, undo, redo): schedules the autosave."""
        self.labelEdited.emit()
        self.saver.edited()

    def undo(self) -> None:
        """Undo the current image's last step; when it has none left, the last class change (a deletion, a
        merge or a move: the image histories start afresh after one, so what they hold is newer)."""
        doc = self.current
        if doc is not None and doc.editable and doc.session.history.can_undo:
            if doc.session.undo() is not None:
                self.note_edit()
            return
        self.class_changes.undo()

    def undo_text(self) -> str | None:
        """What Undo would undo now ("brush", "delete class 'Road'"), or None."""
        doc = self.current
        if doc is not None and doc.editable and doc.session.history.can_undo:
            return doc.session.history.undo_label
        return self.class_changes.undo_text

    def redo(self) -> None:
        if self.current is not None and self.current.editable and self.current.session.redo() is not None:
            self.note_edit()

    def accept_prediction(self) -> bool:
        """Take the current prediction into the label where nothing is labelled yet (one undo step)."""
        doc = self.current
        if doc is None or not doc.editable or doc.session.accept_prediction() is None:
            return False
        self.note_edit()
        return True

    def unsaved_paths(self) -> set[str]:
        """The images whose label has edits not yet on disk."""
        return self.session.documents.unsaved_paths()

    def open_documents(self) -> list[ImageDocument]:
        """The images open now (with their undo history), the current one among them."""
        return list(self.session.documents)

    def any_dirty(self) -> bool:
        return self.session.documents.any_dirty()

    def save_all_async(self) -> None:
        """Start saving every unsaved label now (File › Save; the autosave does the same)."""
        self.saver.save_all_async()

    def flush(self) -> list[str]:
        """Save every unsaved label now, on this thread (closing, switching projects); returns the errors."""
        return self.saver.flush()

    def discard_unsaved(self) -> None:
        """Forget unsaved edits (the user chose to close without saving after a failed save)."""
        self.saver.discard_unsaved()

    def toggle_reviewed(self) -> None:
        """Mark the current image reviewed (saving its label first), or back to corrected."""
        doc, project = self.current, self.project
        if doc is None or project is None:
            return
        if doc.dirty:
            errors = self.flush()
            if errors:
                self.notifier.error("Could not save", "\n".join(errors))
                return
        try:
            project.set_status(doc.entry, "corrected" if doc.entry.status == "reviewed" else "reviewed")
            project.save()
        except (ProjectError, SaveError) as exc:
            self.notifier.error("Cannot mark reviewed", str(exc))
            return
        self.statusChanged.emit(doc.path)

    # ------------------------------------------------------------------ predictions (the model panel's entry point)
    def set_prediction(self, path: str, labels: np.ndarray, uncertainty: np.ndarray | None = None,
                       model_id: str = "") -> None:
        """Give image ``path`` a prediction (class indices) and optionally its uncertainty (floats in [0, 1]
        or uint8 0..255).

        An open document shows it at once (hatched, apart from the user's label);
        the prediction, the uncertainty map and its score are saved in a worker
        and the image's status updates when that is done.
        """
        if self.project is None:
            raise RuntimeError("no project is open")
        entry = self.project.entry(path)
        labels = labels.astype(mask_dtype(len(self.project.classes)), copy=False)
        doc = self.session.documents.get(entry.path)
        if doc is not None:
            doc.set_prediction(labels, uncertainty)
            self.predictionChanged.emit(doc)
        project, scores = self.project, self.scores
        if project.read_only:
            return  # shown, not saved: another window owns the project

        def save(cancel: CancelToken) -> None:
            project.save_prediction(entry, labels)
            if uncertainty is not None and scores is not None:
                save_uncertainty(project, entry, uncertainty)
                scores.set(entry.path, mean_score(uncertainty), model_id)
                scores.save()
            project.save()

        self.workers.start("save prediction", save,
                           on_finished=lambda _: self.statusChanged.emit(entry.path),
                           on_failed=lambda msg: self.notifier.error("Could not save the prediction",
                                                                         f"{entry.path}: {msg}"))

    def show_prediction(self, path: str, labels: np.ndarray, uncertainty: np.ndarray | None) -> None:
        """Show a prediction a worker has already saved (labels in the project's classes): the open
        document (if any) shows it, and the file list its new status."""
        doc = self.session.documents.get(path)
        if doc is not None and doc.shape == labels.shape:
            doc.set_prediction(labels, uncertainty)
            self.predictionChanged.emit(doc)
        self.statusChanged.emit(path)

    def uncertainty_ranking(self) -> list[str]:
        """Images not labelled yet, most uncertain first (only those segmented: they have a score)."""
        if self.project is None or self.scores is None:
            return []
        return self.scores.ranking(self.project)

    # ------------------------------------------------------------------ classes
    @property
    def classes(self) -> ClassTable:
        return self.session.classes

    @property
    def busy(self) -> bool:
        return self.session.busy

    def project_job_blocked(self) -> str | None:
        """Why a job that rewrites the project's masks (a class change, an import) cannot start now, or None."""
        return self.session.job_blocked() or self.class_changes.blocked()

    def set_busy(self, busy: bool) -> None:
        """Hold the window still (no painting, no panels) while a project-wide job runs (a class change, an
        import)."""
        self.session.busy = busy
        self.busyChanged.emit(busy)

    def _documents_renumbered(self) -> None:
        """A class change renumbered the open images: show the current one again (zoom and position kept)."""
        if self.current is not None:
            self.documentChanged.emit(self.current)

    def reload_from_disk(self) -> None:
        """Forget the open images and show the current one again as its files now hold it (after an import
        wrote labels); the classes, the image list and its statuses follow (``imagesChanged``)."""
        project = self.project
        if project is None:
            return
        path = self.session.requested
        self.workers.cancel("load image")
        self.session.forget_documents()
        self.documentChanged.emit(None)
        self.classesChanged.emit(project.classes)
        self.imagesChanged.emit(project)
        if path is not None and any(e.path == path for e in project.images):
            self.open_entry(path)
