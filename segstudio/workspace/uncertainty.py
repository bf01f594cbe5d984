"""The model's uncertainty per image: a map beside each prediction, one score per image, and the ranking.

Decisions (see docs/GUI_ARCHITECTURE.md):

- **What**: the predictor's entropy divided by log K (0 = sure, 1 = all classes
  equally likely), so maps and scores of models with different class counts
  compare. The map is what the heat-map view (key H) shows.
- **Where**: ``uncertainty/<label name>`` in the project folder, an 8-bit PNG
  (entropy × 255; 1/255 is far finer than a heat map shows, and the file is a
  quarter of a float32 one). The name mirrors the label's, so it can never
  collide with another image's map; ``uncertainty/`` is reserved, never
  scanned for images.
- **Score**: the mean of the entropy over the whole image, kept in
  ``uncertainty/scores.json`` with the id of the model that made it (so
  "Segment all unlabelled" knows which predictions a newer model should redo).
  Mean entropy rather than the margin: it needs only the two maps the predictor
  makes anyway, never the K×H×W probabilities. The maps are the truth and the
  scores file a summary: a score lost in a crash is recomputed from its map
  when the project is opened.

Qt-free: the workers and the tests use it directly.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from segstudio.core import safe_json
from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.image_io import ImageReadError, read_mask, write_mask
from segstudio.core.project import UNCERTAINTY_DIR, ImageEntry, OutsideProjectError, Project
from segstudio.core.project_file import inside_root
from segstudio.core.regular_file import read_regular_text

SCORES_FILE = "scores.json"
SCORES_KIND = "segstudio uncertainty scores"
RANKED_STATUSES = ("unlabelled", "predicted")
"""Images the ranking offers: those the user has not labelled yet."""


def to_uint8(values: np.ndarray) -> np.ndarray:
    """An uncertainty map as stored and shown: uint8 0..255. A float map in [0, 1] is scaled; uint8 is kept."""
    if values.dtype == np.uint8:
        return values
    scaled = np.nan_to_num(values.astype(np.float32), nan=1.0) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def mean_score(values: np.ndarray) -> float:
    """The image's score: mean uncertainty in [0, 1] (float maps as they are, uint8 maps divided by 255)."""
    mean = float(values.mean(dtype=np.float64))
    return mean / 255.0 if values.dtype == np.uint8 else mean


def uncertainty_path(project: Project, entry: ImageEntry | str) -> Path:
    return project.root / UNCERTAINTY_DIR / project.entry(entry).label_name


def save_uncertainty(project: Project, entry: ImageEntry | str, values: np.ndarray) -> None:
    """Write an image's uncertainty map (atomically), only inside the project (``OutsideProjectError``)."""
    path = project.inside(uncertainty_path(project, entry), "uncertainty map")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mask(path, to_uint8(values))


def load_uncertainty(project: Project, entry: ImageEntry | str, shape: tuple[int, int]) -> np.ndarray | None:
    """An image's stored uncertainty map (uint8), or None when there is none or it does not fit ``shape``.

    Raises ``ImageReadError`` when the file exists but cannot be read.
    """
    path = uncertainty_path(project, entry)
    if not path.exists():
        return None
    try:
        values = read_mask(project.inside(path, "uncertainty map"))
    except OutsideProjectError as exc:
        raise ImageReadError(path, str(exc)) from None
    if values.dtype != np.uint8 or values.shape != shape:
        return None
    return values


class UncertaintyScores:
    """The per-image scores of one project (thread-safe); :meth:`save` writes ``uncertainty/scores.json``.

    Workers call :meth:`set` for every image they segment and :meth:`save`
    now and then; the ranking reads them on the UI thread.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._scores: dict[str, tuple[float, str]] = {}
        self._dirty = False

    @property
    def file(self) -> Path:
        return self.root / UNCERTAINTY_DIR / SCORES_FILE

    @classmethod
    def load(cls, project: Project) -> UncertaintyScores:
        """Read the scores of ``project``; maps without a score (a crash before saving) are scored again.

        A missing or unreadable scores file starts empty; nothing raises.
        """
        scores = cls(project.root)
        try:
            doc = safe_json.loads(read_regular_text(project.inside(scores.file, "scores file")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, OutsideProjectError):
            doc = {}
        items = doc.get("images") if isinstance(doc, dict) and doc.get("kind") == SCORES_KIND else None
        if isinstance(items, dict):
            for path, item in items.items():
                if isinstance(item, dict) and isinstance(item.get("score"), int | float):
                    scores._scores[str(path)] = (float(item["score"]), str(item.get("model", "")))
        for e in project.images:
            if e.path in scores._scores or not uncertainty_path(project, e).exists():
                continue
            try:
                scores._scores[e.path] = (mean_score(read_mask(uncertainty_path(project, e))), "")
                scores._dirty = True
            except ImageReadError:
                continue
        return scores

    def set(self, path: str, score: float, model_id: str) -> None:
        with self._lock:
            self._scores[path] = (float(score), model_id)
            self._dirty = True

    def get(self, path: str) -> float | None:
        with self._lock:
            item = self._scores.get(path)
        return item[0] if item is not None else None

    def model_of(self, path: str) -> str | None:
        """The id of the model whose prediction the score belongs to ("" when unknown), None without a score."""
        with self._lock:
            item = self._scores.get(path)
        return item[1] if item is not None else None

    def scores_of(self, model_id: str) -> list[float]:
        """The scores of every image whose prediction came from the model ``model_id``."""
        with self._lock:
            return [score for score, model in self._scores.values() if model == model_id]

    def save(self) -> None:
        """Write the scores file if anything changed (atomically). Raises ``SaveError``."""
        with self._lock:
            if not self._dirty:
                return
            doc = {"kind": SCORES_KIND, "schema": 1,
                   "images": {p: {"score": round(s, 6), "model": m} for p, (s, m) in sorted(self._scores.items())}}
            file = inside_root(self.root, self.file, "scores file")
            file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(file, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))
            self._dirty = False

    def ranking(self, project: Project) -> list[str]:
        """Images not labelled by the user yet that have a score, most uncertain first (ties: project order)."""
        with self._lock:
            scored = dict(self._scores)
        order = [(-scored[e.path][0], i, e.path) for i, e in enumerate(project.images)
                 if e.status in RANKED_STATUSES and e.path in scored]
        return [path for _, _, path in sorted(order)]


def next_in_ranking(ranking: list[str], current: str | None, walking: bool) -> str | None:
    """The image to show next: with ``walking`` (the user got to ``current`` through the ranking), the one
    after ``current``; otherwise the most uncertain one that is not ``current``. None when there is none."""
    if walking and current in ranking:
        i = ranking.index(current) + 1
        return ranking[i] if i < len(ranking) else None
    return next((p for p in ranking if p != current), None)
