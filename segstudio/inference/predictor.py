"""The predictor: one image (or a batch) in, a class map (and optional uncertainty maps) out.

Shared by every backend (see :mod:`segstudio.inference.backend`):

- **Normalisation** from the card: ``(pixel / input_max - mean) / std``, where
  ``input_max`` is 255 for uint8 images and, for uint16 images, the card's
  ``input_max`` when the model was trained on 16-bit data (e.g. 4095 for
  12-bit microscopy), else 65535; float images are taken as already in 0..1.
  A gray image given to an RGB model is repeated over three channels; an RGB
  image given to a gray model is converted with the Rec. 601 luma weights.
- **Padding** to the network's ``size_multiple`` by repeating the edge pixels,
  and cropping the logits back, so any H×W works.
- **Tiling** (:mod:`segstudio.inference.tiling`) of images larger than
  ``tile_size``: windows with overlap whose logits are blended with raised-cosine
  weights, processed one row of windows at a time.
- **TTA** (:mod:`segstudio.inference.tta`): views of the image (a horizontal
  mirror × several scales, the DeepLabv3 evaluation recipe, or the eight
  symmetries of the square), probabilities averaged; the blend then works on
  log-probabilities. A model file trained with quarter turns and mirrors gets
  the eight symmetries by default (:attr:`Predictor.tta`).
- **Outputs**: the arg-max class map (uint8 up to 254 classes, else uint16);
  optionally the confidence (max probability), the entropy normalised to 0..1
  (divided by log K) and the per-class probabilities (K×H×W), all float16.

Memory, for an H×W image with C channels, K classes and windows of T×T
(``tile_size``; the window count and overlap do not matter):

- the outputs: H·W·(1 or 2) bytes for the labels, + 4·H·W for confidence and
  entropy, + 2·K·H·W for probabilities (only when asked for);
- untiled (H and W ≤ T): the logits, K·H·W·4 bytes per image in the batch,
  about three times that while softmax temporaries live;
- tiled: two row bands of blended logits and weights, 2·(K+1)·T·W·4 bytes,
  plus the finalised part of a band under softmax, ≈ 3·K·T·W·4 bytes, plus
  at most 9 distinct T×T float32 blending-weight maps — e.g. K=11, T=512,
  W=10000: ≈ 1.1 GB; it grows with the width, never with the height, so an
  image of any height streams through;
- the network's activations for ``batch_size`` windows of T×T (×4 in area at
  TTA scale 2.0).

The input image itself is the caller's; a 10000×10000 RGB image is 0.3 GB.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.classes import mask_dtype
from segstudio.core.image_io import LoadedImage
from segstudio.core.tasks import NEVER_CANCELLED, CancelToken, Progress
from segstudio.inference.backend import Array, Backend
from segstudio.inference.model_file import ModelFile
from segstudio.inference.open_backend import open_backend
from segstudio.inference.tiling import TilePlan, plan_tiles
from segstudio.inference.tta import TTA, TTAChoice, View, card_tta, resolve_tta
from segstudio.zoo import ModelCard

ProgressCallback = Callable[[Progress], None]
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class Prediction:
    """The result for one image: ``labels`` always, the rest when asked for.

    ``labels``: H×W class indices (uint8, or uint16 beyond 254 classes).
    ``confidence``: H×W float16, the winning class's probability.
    ``entropy``: H×W float16, the probabilities' entropy divided by log K (0 sure … 1 uniform).
    ``probabilities``: K×H×W float16.
    """

    labels: np.ndarray
    confidence: np.ndarray | None = None
    entropy: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    windows: int = 1
    seconds: float = 0.0


class Predictor:
    """Runs a model on images. Thread-safe for one caller at a time (calls are serialised by a lock).

    Build one with :meth:`from_file` (a model file; the backend registry chooses for the
    machine) or :meth:`from_module` (a module in memory, e.g. during training).
    """

    def __init__(self, backend: Backend, card: ModelCard, *, size_multiple: int | None = None,
                 tile_size: int | None = None, overlap: int | None = None, notes: Sequence[str] = (),
                 tta: TTA | None = None) -> None:
        self.backend = backend
        self.card = card
        self.size_multiple = size_multiple or card.size_multiple
        self.tile_size = tile_size or (1024 if backend.device == "cuda" else 512)
        self.overlap = self.tile_size // 4 if overlap is None else overlap
        self.notes = list(notes)
        """Why this backend was chosen (e.g. a fallback), for the GUI's status line and the CLI."""
        self.label_dtype = mask_dtype(card.num_classes)
        self.tta = tta
        """The views :meth:`predict` averages unless told otherwise (``None``: the image alone)."""
        self.source: Path | None = None
        """The model file, when opened from one (it identifies the model in batch outputs)."""
        self.model_file: ModelFile | None = None
        """The model file as read when opened (its hash computed once, when first asked for)."""
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path | str | ModelFile, backend: str = "auto", device: str = "auto", *,
                  precision: str = "fp16", class_names: Sequence[str] | None = None,
                  tile_size: int | None = None, overlap: int | None = None, threads: int | None = None,
                  cache_dir: Path | str | None = None, tta: TTAChoice = None) -> Predictor:
        """Open a ``.safetensors`` or ``.onnx`` model file (or a :class:`ModelFile` already read).

        ``backend`` and ``device`` are an engine and a device of the backend registry
        (:mod:`segstudio.inference.backends`, which says what ``auto`` picks).
        ``class_names`` is needed only for an ONNX file without a segstudio card.
        ``tta``: the default views of :meth:`predict` (``None``: the card's, see
        :func:`~segstudio.inference.tta.card_tta`; ``False``: none).
        """
        model = path if isinstance(path, ModelFile) else ModelFile.read(path, class_names)
        be, notes = open_backend(model, backend=backend, device=device, precision=precision, threads=threads,
                                 cache_dir=cache_dir)
        views = resolve_tta(tta, card_tta(model.card.recipe))
        if views is not None and tta is None:
            notes = [*notes, f"averages {views.passes} turned and mirrored views: the model was trained with them"]
        predictor = cls(be, model.card, tile_size=tile_size, overlap=overlap, notes=notes, tta=views)
        predictor.source = model.path
        predictor.model_file = model
        return predictor

    @classmethod
    def from_module(cls, model: Any, card: ModelCard, device: str = "cpu", precision: str = "fp16",
                    **kwargs: Any) -> Predictor:
        """A predictor over a torch module in memory (it is put in eval mode and moved to ``device``); no default
        views (training scores its weights as they are)."""
        from segstudio.inference.torch_backend import TorchBackend

        return cls(TorchBackend(model, device=device, precision=precision), card, **kwargs)  # type: ignore[arg-type]

    @property
    def num_classes(self) -> int:
        return self.card.num_classes

    # ----------------------------------------------------------------- input

    def _input(self, image: np.ndarray | LoadedImage) -> tuple[np.ndarray, float]:
        """H×W×C data with the model's channel count, and the value that maps to 1.0."""
        data = image.data if isinstance(image, LoadedImage) else np.asarray(image)
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim != 3 or data.shape[2] not in (1, 3, 4) or data.shape[0] < 1 or data.shape[1] < 1:
            raise ValueError(f"an image is H×W, H×W×1, H×W×3 or H×W×4, got shape {data.shape}")
        if data.shape[2] == 4:
            data = data[:, :, :3]
        if data.dtype == np.uint8:
            top = 255.0
        elif data.dtype == np.uint16:
            top = self.card.input_max if self.card.input_max > 255 else 65535.0
        elif data.dtype.kind == "f":
            top, data = 1.0, data.astype(np.float32, copy=False)
        else:
            raise ValueError(f"unsupported image dtype {data.dtype} (use uint8, uint16 or float in 0..1)")
        want = self.card.in_channels
        if want == 3 and data.shape[2] == 1:
            data = np.repeat(data, 3, axis=2)
        elif want == 1 and data.shape[2] == 3:
            data = (data.astype(np.float32) @ _LUMA)[:, :, None]
        elif data.shape[2] != want:
            raise ValueError(f"the model takes {want}-channel images, got {data.shape[2]} channels")
        return data, top

    def _normaliser(self, top: float) -> tuple[np.ndarray, np.ndarray]:
        norm = self.card.normalization.for_channels(self.card.in_channels)
        mean, std = np.asarray(norm.mean, np.float64), np.asarray(norm.std, np.float64)
        return (1.0 / (top * std)).astype(np.float32), (-mean / std).astype(np.float32)

    # ------------------------------------------------------------- network

    def _logits(self, x: Array, h: int, w: int) -> Array:
        B, m = self.backend, self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        y = B.forward(B.pad(x, ph, pw) if ph or pw else x)
        if y.shape[1] != self.num_classes:
            raise ValueError(f"the network outputs {y.shape[1]} classes but its card lists {self.num_classes} "
                             f"({', '.join(self.card.classes.names[:5])}…)")
        if tuple(y.shape[2:]) != (h + ph, w + pw):  # a foreign network that outputs at a lower resolution
            y = B.resize(y, h + ph, w + pw)
        return y[:, :, :h, :w] if ph or pw else y

    def _window_scores(self, crops: np.ndarray, scale: np.ndarray, shift: np.ndarray, tta: TTA | None) -> Array:
        """N×K×h×w scores for N equal crops: logits, or log mean probabilities under TTA."""
        B = self.backend
        h, w = crops.shape[1:3]
        x = B.prepare(crops, scale, shift)
        if tta is None:
            return self._logits(x, h, w)
        acc: Array = None
        for s in tta.scales:
            hs, ws = max(1, round(h * s)), max(1, round(w * s))
            xs = x if (hs, ws) == (h, w) else B.resize(x, hs, ws)
            for view in tta.views():
                y = self._view(xs, view, hs, ws)
                if (hs, ws) != (h, w):
                    y = B.resize(y, h, w)
                p = B.softmax(y)
                acc = p if acc is None else acc + p
        return B.log(acc / tta.passes)

    def _view(self, x: Array, view: View, h: int, w: int) -> Array:
        """The logits of ``x`` (h×w) seen in ``view``, mapped back onto ``x``'s pixels."""
        B = self.backend
        if view.transpose:
            x, h, w = B.transpose(x), w, h
        if view.flip_rows:
            x = B.flip_rows(x)
        if view.flip_cols:
            x = B.flip(x)
        y = self._logits(x, h, w)
        if view.flip_cols:
            y = B.flip(y)
        if view.flip_rows:
            y = B.flip_rows(y)
        return B.transpose(y) if view.transpose else y

    def _finish(self, scores: Array, confidence: bool, probabilities: bool) -> dict[str, np.ndarray]:
        """Host arrays (N×…) of the outputs from N×K×h×w scores."""
        B = self.backend
        out = {"labels": B.argmax(scores, self.label_dtype)}
        if confidence or probabilities:
            p = B.softmax(scores)
            if confidence:
                out["confidence"] = B.to_numpy(B.amax(p), np.dtype(np.float16))
                k = self.num_classes
                ent = -B.sum(p * B.log(p)) / math.log(k) if k > 1 else B.amax(p) * 0.0
                out["entropy"] = B.to_numpy(ent, np.dtype(np.float16))
            if probabilities:
                out["probabilities"] = B.to_numpy(p, np.dtype(np.float16))
        return out

    # ------------------------------------------------------------- public

    def plan(self, height: int, width: int, tile_size: int | None = None, overlap: int | None = None) -> TilePlan:
        """The windows :meth:`predict` would use for an image of this size (one window when it fits a tile)."""
        tile = tile_size or self.tile_size
        if max(height, width) <= tile:
            return plan_tiles(height, width, max(height, width), 0)
        ov = overlap if overlap is not None else (tile // 4 if tile_size else self.overlap)
        return plan_tiles(height, width, tile, ov, self.size_multiple)

    def predict(self, image: np.ndarray | LoadedImage, *, confidence: bool = False, probabilities: bool = False,
                tta: TTAChoice = None, tile_size: int | None = None, overlap: int | None = None,
                cancel: CancelToken | None = None, progress: ProgressCallback | None = None) -> Prediction:
        """Segment one image (H×W[×C], uint8/uint16/float 0..1, or a :class:`LoadedImage`).

        ``tta``: ``None`` the predictor's default views (:attr:`tta`), ``False`` the image alone, ``True``
        the multi-scale mirror recipe, or a :class:`TTA`. Images larger than ``tile_size`` (default: the
        predictor's) are tiled;
        ``cancel`` is checked before every window batch (raising
        :class:`~segstudio.core.tasks.Cancelled`) and ``progress`` gets
        ``Progress(windows done, windows total)`` after each.
        """
        tta_cfg = resolve_tta(tta, self.tta)
        cancel = cancel or NEVER_CANCELLED
        with self._lock, self.backend.session():
            data, top = self._input(image)
            scale, shift = self._normaliser(top)
            plan = self.plan(data.shape[0], data.shape[1], tile_size, overlap)
            return self._predict_planned(data, scale, shift, plan, tta_cfg, confidence, probabilities,
                                         cancel, progress)

    def predict_batch(self, images: Sequence[np.ndarray | LoadedImage], *, confidence: bool = False,
                      probabilities: bool = False, tta: TTAChoice = None,
                      cancel: CancelToken | None = None) -> list[Prediction]:
        """Segment several images; equal-sized ones that fit one window run ``backend.batch_size`` at a time."""
        tta_cfg = resolve_tta(tta, self.tta)
        cancel = cancel or NEVER_CANCELLED
        results: list[Prediction | None] = [None] * len(images)
        with self._lock, self.backend.session():
            inputs = [self._input(im) for im in images]
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i, (data, top) in enumerate(inputs):
                groups.setdefault((data.shape, data.dtype.str, top), []).append(i)
            for (shape, _, top), members in groups.items():
                scale, shift = self._normaliser(top)
                plan = self.plan(shape[0], shape[1])
                if plan.tiled:
                    for i in members:
                        results[i] = self._predict_planned(inputs[i][0], scale, shift, plan, tta_cfg,
                                                           confidence, probabilities, cancel, None)
                    continue
                size = max(1, self.backend.batch_size)
                for start in range(0, len(members), size):
                    cancel.raise_if_cancelled()
                    chunk = members[start:start + size]
                    t0 = time.perf_counter()
                    stacked = np.stack([inputs[i][0] for i in chunk])
                    out = self._finish(self._window_scores(stacked, scale, shift, tta_cfg), confidence,
                                       probabilities)
                    dt = (time.perf_counter() - t0) / len(chunk)
                    for n, i in enumerate(chunk):
                        results[i] = Prediction(**{k: v[n] for k, v in out.items()}, seconds=dt)
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Free cached device memory; the predictor stays usable."""
        self.backend.release()

    # ------------------------------------------------------------ planned

    def _predict_planned(self, data: np.ndarray, scale: np.ndarray, shift: np.ndarray, plan: TilePlan,
                         tta: TTA | None, confidence: bool, probabilities: bool, cancel: CancelToken,
                         progress: ProgressCallback | None) -> Prediction:
        t0 = time.perf_counter()
        started = time.monotonic()
        cancel.raise_if_cancelled()
        if not plan.tiled:
            out = self._finish(self._window_scores(data[None], scale, shift, tta), confidence, probabilities)
            if progress is not None:
                progress(Progress(1, 1, "1 window", started))
            return Prediction(**{k: v[0] for k, v in out.items()}, seconds=time.perf_counter() - t0)
        pred = self._predict_tiled(data, scale, shift, plan, tta, confidence, probabilities, cancel,
                                   progress, started)
        pred.seconds = time.perf_counter() - t0
        return pred

    def _predict_tiled(self, data: np.ndarray, scale: np.ndarray, shift: np.ndarray, plan: TilePlan,
                       tta: TTA | None, confidence: bool, probabilities: bool, cancel: CancelToken,
                       progress: ProgressCallback | None, started: float) -> Prediction:
        B, K = self.backend, self.num_classes
        H, W = data.shape[:2]
        th, tw = plan.height, plan.width
        pred = Prediction(labels=np.empty((H, W), self.label_dtype))
        if confidence:
            pred.confidence = np.empty((H, W), np.float16)
            pred.entropy = np.empty((H, W), np.float16)
        if probabilities:
            pred.probabilities = np.empty((K, H, W), np.float16)
        pred.windows = plan.count
        wx = [plan.weights_x(j) for j in range(len(plan.xs))]
        weight_cache: dict[tuple[int, int], Array] = {}
        carry: tuple[Array, Array] | None = None
        done, size = 0, max(1, self.backend.batch_size)
        for i, y0 in enumerate(plan.ys):
            wy = plan.weights_y(i)
            acc, wsum = B.zeros((1, K, th, W)), B.zeros((1, 1, th, W))
            if carry is not None:
                rows = carry[0].shape[2]
                acc[:, :, :rows] = carry[0]
                wsum[:, :, :rows] = carry[1]
            for start in range(0, len(plan.xs), size):
                cancel.raise_if_cancelled()
                js = range(start, min(start + size, len(plan.xs)))
                crops = np.stack([data[y0:y0 + th, plan.xs[j]:plan.xs[j] + tw] for j in js])
                scores = self._window_scores(crops, scale, shift, tta)
                for n, j in enumerate(js):
                    # Interior windows share weights: only the first/last row/column differ.
                    key = (min(i, 1) + (i == len(plan.ys) - 1) * 2, min(j, 1) + (j == len(plan.xs) - 1) * 2)
                    if key not in weight_cache:
                        weight_cache[key] = B.constant(np.outer(wy, wx[j])[None, None])
                    wmap = weight_cache[key]
                    x0 = plan.xs[j]
                    acc[:, :, :, x0:x0 + tw] += scores[n:n + 1] * wmap
                    wsum[:, :, :, x0:x0 + tw] += wmap
                done += len(js)
                if progress is not None:
                    progress(Progress(done, plan.count, f"window {done} of {plan.count}", started))
            r = plan.final_rows(i)
            out = self._finish(acc[:, :, :r] / wsum[:, :, :r], confidence, probabilities)
            pred.labels[y0:y0 + r] = out["labels"][0]
            if confidence:
                pred.confidence[y0:y0 + r] = out["confidence"][0]  # type: ignore[index]
                pred.entropy[y0:y0 + r] = out["entropy"][0]  # type: ignore[index]
            if probabilities:
                pred.probabilities[:, y0:y0 + r] = out["probabilities"][0]  # type: ignore[index]
            carry = (acc[:, :, r:], wsum[:, :, r:]) if r < th else None
            del acc, wsum, out
        return pred
