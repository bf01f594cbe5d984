"""The display pyramid of an image: level 0 is the image, each next level half the size. Qt-free.

The canvas draws tiles from the level that matches the zoom, so a huge image
is never drawn from one giant bitmap; the pyramid is built in a worker when
the image is opened (:func:`segstudio.workspace.document.load_document`).
"""

from __future__ import annotations

import cv2
import numpy as np


def build_pyramid(rgb: np.ndarray, min_side: int = 256) -> list[np.ndarray]:
    """Level 0 is ``rgb`` itself; each next level halves the size (area averaging)."""
    levels = [rgb]
    while max(levels[-1].shape[:2]) > min_side:
        prev = levels[-1]
        h, w = max(1, prev.shape[0] // 2), max(1, prev.shape[1] // 2)
        levels.append(cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA))
    return levels
