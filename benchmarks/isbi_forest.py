"""The ilastik-style pixel classifier the human-in-the-loop benchmark compares against.

Features per pixel (ilastik's default bank, 2-D): Gaussian smoothing at
σ = 0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0, and for σ ≥ 0.7 the Laplacian of
Gaussian, the Gaussian gradient magnitude and the two eigenvalues of the
Hessian of Gaussian — 31 features. A random forest of 100 trees (ilastik's
default) is fitted on the labelled pixels (a random subset when there are
more than ``max_pixels``). Needs SciPy and scikit-learn (benchmark only).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

SIGMAS = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)


def features(image: np.ndarray) -> np.ndarray:
    """H×W×31 float32 filter responses of a gray image; H×W×(31·C) for a C-channel image (per channel, as
    ilastik does)."""
    from scipy import ndimage as ndi

    if image.ndim == 3:
        return np.concatenate([features(image[:, :, c]) for c in range(image.shape[2])], axis=-1)
    x = image.astype(np.float32)
    out = []
    for s in SIGMAS:
        out.append(ndi.gaussian_filter(x, s))
        if s < 0.7:
            continue
        out.append(ndi.gaussian_laplace(x, s))
        out.append(ndi.gaussian_gradient_magnitude(x, s))
        hxx = ndi.gaussian_filter(x, s, order=(0, 2))
        hyy = ndi.gaussian_filter(x, s, order=(2, 0))
        hxy = ndi.gaussian_filter(x, s, order=(1, 1))
        mean = (hxx + hyy) / 2
        root = np.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
        out.append(mean + root)
        out.append(mean - root)
    return np.stack(out, axis=-1).astype(np.float32)


def _quiet() -> None:
    """Keep scikit-learn from warning once per tree that it cannot propagate its configuration.

    Its thread workers reset the process's warning filters inside ``catch_warnings`` concurrently; once
    that race leaves the filter list empty, every later fit and predict warns per tree (280 000 lines in a
    1200 s ``hitl_effort`` run). Re-installing a filter before each call gives the dispatcher a non-empty
    list to propagate. The configuration it would propagate is the default one.
    """
    warnings.filterwarnings("ignore", message=r".*sklearn\.utils\.parallel\.delayed.*", category=UserWarning)


def fit_forest(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], threads: int, seed: int,
               max_pixels: int, trees: int = 100, precomputed: bool = False) -> tuple[object, int]:
    """A fitted ``RandomForestClassifier`` and the number of labelled pixels it saw (255 = not labelled).
    ``precomputed``: ``images`` are already :func:`features` of the images."""
    from sklearn.ensemble import RandomForestClassifier

    xs, ys = [], []
    for image, label in zip(images, labels):
        keep = label != 255
        xs.append((image if precomputed else features(image))[keep])
        ys.append(label[keep])
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    if len(y) > max_pixels:
        pick = np.random.default_rng(seed).choice(len(y), max_pixels, replace=False)
        x, y = x[pick], y[pick]
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=threads, random_state=seed)
    _quiet()
    forest.fit(x, y)
    return forest, len(y)


def predict_features(forest: object, feats: np.ndarray) -> np.ndarray:
    """H×W uint8 classes from H×W×F :func:`features`."""
    h, w, c = feats.shape
    _quiet()
    pred = forest.predict(feats.reshape(-1, c))  # type: ignore[attr-defined]
    return np.asarray(pred, np.uint8).reshape(h, w)


def predict_forest(forest: object, image: np.ndarray) -> np.ndarray:
    return predict_features(forest, features(image))
