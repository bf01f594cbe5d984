"""The images open in the app, kept with their undo history while they fit a memory bound.

:class:`DocumentCache` holds :class:`~segstudio.workspace.document.ImageDocument`
objects, least recently shown first. :meth:`DocumentCache.evict` closes the
least recently used *saved* documents until the pixels, masks and undo history
of all of them fit ``max_bytes``; the one on screen, one with unsaved edits and
one being saved stay whatever their size. A document closed from the cache
starts a new history when it is opened again. Qt-free.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from segstudio.workspace.document import ImageDocument

CACHE_BYTES = 1536 * 1024 * 1024
"""The app's bound: 1.5 GB of pixels, masks and undo history."""


class DocumentCache:
    """Open documents by project-relative path, least recently shown first; see the module docstring."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._docs: OrderedDict[str, ImageDocument] = OrderedDict()

    def get(self, path: str) -> ImageDocument | None:
        return self._docs.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self._docs

    def __iter__(self) -> Iterator[ImageDocument]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)

    def touch(self, doc: ImageDocument) -> None:
        """Keep ``doc`` (adding it if new) as the most recently shown."""
        self._docs[doc.path] = doc
        self._docs.move_to_end(doc.path)

    def close(self, path: str) -> ImageDocument | None:
        """Close the document of ``path`` (its history is lost); returns it, or None when it was not open."""
        return self._docs.pop(path, None)

    def clear(self) -> None:
        self._docs.clear()

    def memory_bytes(self) -> int:
        return sum(d.memory_bytes() for d in self._docs.values())

    def evict(self, keep: ImageDocument | None = None) -> list[ImageDocument]:
        """Close saved documents, least recently shown first, until the rest fit ``max_bytes``; ``keep`` (the
        one on screen), unsaved ones and those being saved stay. Returns those closed."""
        total = self.memory_bytes()
        closed: list[ImageDocument] = []
        for doc in list(self._docs.values()):
            if total <= self.max_bytes:
                break
            if doc is keep or doc.dirty or doc.saving:
                continue
            total -= doc.memory_bytes()
            closed.append(self._docs.pop(doc.path))
        return closed

    def unsaved_paths(self) -> set[str]:
        """The images whose label has edits not yet on disk."""
        return {d.path for d in self._docs.values() if d.dirty}

    def any_dirty(self) -> bool:
        return any(d.dirty for d in self._docs.values())
