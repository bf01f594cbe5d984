"""The backend contract: run the network, plus the few array operations the predictor needs.

The predictor (pre/post-processing, padding, tiling, blending, TTA) is written
once against this interface; a backend supplies the network call and a dozen
array primitives on its own array type — numpy arrays for ONNX Runtime, torch
tensors (on the GPU when there is one) for PyTorch. So the CUDA path keeps
every intermediate on the device and downloads only the class map, while the
ONNX path works with numpy alone and never imports torch.

Arrays are N×C×H×W float32 unless stated otherwise.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

Array = Any
"""A backend's array type: ``numpy.ndarray`` or ``torch.Tensor``."""


class Backend(ABC):
    """Runs one network; used by one :class:`~segstudio.inference.predictor.Predictor` at a time."""

    name: str = ""
    """For people: e.g. ``"torch cuda (fp16 autocast)"``, ``"onnxruntime cpu (8 threads)"``."""
    device: str = "cpu"
    batch_size: int = 1
    """A good number of equal-sized images (or tiles) per network call."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Context entered around one prediction (torch: ``inference_mode``)."""
        yield

    @abstractmethod
    def prepare(self, batch: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> Array:
        """N×H×W×C image data (uint8, uint16 or float32) → N×C×H×W ``x * scale + shift`` (per channel)."""

    @abstractmethod
    def forward(self, x: Array) -> Array:
        """The network's logits (float32, N×K×H×W) for a normalised input whose sides fit its stride."""

    @abstractmethod
    def pad(self, x: Array, bottom: int, right: int) -> Array:
        """Pad H at the bottom and W at the right by repeating the edge pixels."""

    @abstractmethod
    def resize(self, x: Array, height: int, width: int) -> Array:
        """Bilinear resize (half-pixel centres, no antialias) to height×width."""

    @abstractmethod
    def flip(self, x: Array) -> Array:
        """Mirror along W."""

    @abstractmethod
    def flip_rows(self, x: Array) -> Array:
        """Mirror along H."""

    @abstractmethod
    def transpose(self, x: Array) -> Array:
        """Swap H and W."""

    @abstractmethod
    def softmax(self, x: Array) -> Array:
        """Softmax over the class axis (1)."""

    @abstractmethod
    def log(self, x: Array) -> Array:
        """Natural log, clamped below at 1e-12 so that a zero probability stays finite."""

    @abstractmethod
    def amax(self, x: Array) -> Array:
        """Maximum over the class axis: N×H×W."""

    @abstractmethod
    def sum(self, x: Array) -> Array:
        """Sum over the class axis: N×H×W."""

    @abstractmethod
    def argmax(self, x: Array, dtype: np.dtype) -> np.ndarray:
        """Arg-max over the class axis as a host N×H×W array of ``dtype``."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...]) -> Array:
        """A float32 zero array on the backend's device."""

    @abstractmethod
    def constant(self, a: np.ndarray) -> Array:
        """A float32 host array moved to the backend's device."""

    @abstractmethod
    def to_numpy(self, x: Array, dtype: np.dtype) -> np.ndarray:
        """A host copy in ``dtype`` (e.g. float16 for probabilities)."""

    def release(self) -> None:  # noqa: B027 - optional hook: most backends hold no cache
        """Free cached device memory (optional)."""


class NumpyOps(Backend, ABC):
    """The array primitives for numpy arrays (used by the ONNX Runtime backend)."""

    def prepare(self, batch: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        x = batch.astype(np.float32, copy=False).transpose(0, 3, 1, 2)
        out = x * scale.astype(np.float32)[None, :, None, None]
        out += shift.astype(np.float32)[None, :, None, None]
        return np.ascontiguousarray(out)

    def pad(self, x: np.ndarray, bottom: int, right: int) -> np.ndarray:
        return np.pad(x, ((0, 0), (0, 0), (0, bottom), (0, right)), mode="edge")

    def resize(self, x: np.ndarray, height: int, width: int) -> np.ndarray:
        n, c = x.shape[:2]
        out = np.empty((n, c, height, width), np.float32)
        # cv2 takes at most 512 channels per call and H×W×C layout.
        for i in range(n):
            for c0 in range(0, c, 512):
                chunk = np.ascontiguousarray(x[i, c0:c0 + 512].transpose(1, 2, 0))
                r = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
                out[i, c0:c0 + 512] = r.reshape(height, width, -1).transpose(2, 0, 1)
        return out

    def flip(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[..., ::-1])

    def flip_rows(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[..., ::-1, :])

    def transpose(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.swapaxes(2, 3))

    def softmax(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e

    def log(self, x: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(x, 1e-12))

    def amax(self, x: np.ndarray) -> np.ndarray:
        return x.max(axis=1)

    def sum(self, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=1)

    def argmax(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return x.argmax(axis=1).astype(dtype)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def constant(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, np.float32)

    def to_numpy(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return np.asarray(x).astype(dtype, copy=False)
