"""The app's open project without Qt: the document cache's bound and the session's state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segstudio.core.image_io import LoadedImage
from segstudio.core.project import Project
from segstudio.core.project_file import ImageEntry
from segstudio.workspace.document import ImageDocument, LoadedDocument
from segstudio.workspace.document_cache import DocumentCache
from segstudio.workspace.project_session import ProjectSession


def _document(name: str) -> ImageDocument:
    pixels = np.zeros((30, 40, 3), np.uint8)
    image = LoadedImage(Path(name), pixels, pixels, "png", 255.0, [])
    label = np.full((30, 40), 255, np.uint8)
    return ImageDocument(LoadedDocument(ImageEntry(name, name), image, [pixels], label, None))


def test_the_cache_closes_the_least_recently_shown_saved_documents_first() -> None:
    docs = [_document(f"img{i}.png") for i in range(4)]
    cache = DocumentCache(max_bytes=int(docs[0].memory_bytes() * 2.5))
    for doc in docs[:3]:
        cache.touch(doc)
    docs[0].session.paint((5, 5), (5, 5), 1, 1)  # unsaved: stays
    cache.touch(docs[1])  # shown again: now the most recent
    cache.touch(docs[3])
    closed = cache.evict(keep=docs[3])
    assert [d.path for d in closed] == ["img2.png", "img1.png"]
    assert [d.path for d in cache] == ["img0.png", "img3.png"]
    assert cache.unsaved_paths() == {"img0.png"} and cache.any_dirty()
    assert cache.close("img0.png") is docs[0] and "img0.png" not in cache and len(cache) == 1


def test_the_shown_document_stays_whatever_its_size() -> None:
    session = ProjectSession(cache_bytes=1)
    a, b = _document("a.png"), _document("b.png")
    session.show(a)
    session.show(b)
    assert session.current is b and list(session.documents) == [b]


def test_a_session_holds_one_project_and_hands_it_back_locked(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    project = Project.create(tmp_path, images=[tmp_path / "a.png"])
    session = ProjectSession()
    assert session.job_blocked() == "no project is open" and not len(session.classes)
    session.open(project, None)
    with pytest.raises(RuntimeError):
        session.open(project, None)
    session.busy = True
    assert session.job_blocked() == "another change to the project is running"
    session.busy = False
    assert session.job_blocked() is None
    session.show(_document("a.png"))
    session.requested = "a.png"
    assert session.detach() is project
    assert session.project is None and session.current is None and session.requested is None
    assert not len(session.documents)
    project.close()
