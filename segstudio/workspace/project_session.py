"""The app's open project: the project (and its lock), its uncertainty scores, the open images, the one shown.

:class:`ProjectSession` is the state the window's controllers share; it changes
only through its methods. Opening a project takes it (its lock is held while it
is open: another window or command opens it read-only); :meth:`ProjectSession.detach`
forgets it and hands it back still locked, so that whoever closed it releases the
lock (``Project.close``) once nothing writes to it any more. Qt-free: the
controllers announce the changes.
"""

from __future__ import annotations

from segstudio.core.classes import ClassTable
from segstudio.core.project import Project
from segstudio.workspace.document import ImageDocument
from segstudio.workspace.document_cache import CACHE_BYTES, DocumentCache
from segstudio.workspace.uncertainty import UncertaintyScores


class ProjectSession:
    """The open project and what the window has open of it; see the module docstring."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self.project: Project | None = None
        self.scores: UncertaintyScores | None = None
        """The open project's uncertainty scores (see :mod:`segstudio.workspace.uncertainty`)."""
        self.documents = DocumentCache(cache_bytes)
        """The open images, with their undo history (see :mod:`segstudio.workspace.document_cache`)."""
        self.current: ImageDocument | None = None
        """The image shown and edited."""
        self.requested: str | None = None
        """The image asked for last (it may still be loading)."""
        self.busy = False
        """A project-wide job (a class change, an import) is rewriting the project's masks."""

    @property
    def classes(self) -> ClassTable:
        return self.project.classes if self.project is not None else ClassTable()

    def open(self, project: Project, scores: UncertaintyScores | None) -> None:
        """Take ``project`` (opened, its lock held) as the open one; nothing may be open."""
        if self.project is not None:
            raise RuntimeError(f"{self.project.root} is still open")
        self.project, self.scores = project, scores

    def detach(self) -> Project | None:
        """Forget the open project, its images and scores; returns it with its lock still held, or None."""
        project = self.project
        self.project = None
        self.scores = None
        self.forget_documents()
        self.requested = None
        return project

    def forget_documents(self) -> None:
        """Close every open image (none is shown; their histories are lost)."""
        self.documents.clear()
        self.current = None

    def show(self, doc: ImageDocument) -> None:
        """Make ``doc`` the image shown (the most recently used), closing old saved images beyond the bound."""
        self.documents.touch(doc)
        self.current = doc
        self.documents.evict(keep=doc)

    def job_blocked(self) -> str | None:
        """Why a job that rewrites the project's masks cannot start now (no project, read-only, another one
        running), or None."""
        if self.project is None:
            return "no project is open"
        if self.project.read_only:
            return f"the project is {self.project.read_only_reason}"
        if self.busy:
            return "another change to the project is running"
        return None
