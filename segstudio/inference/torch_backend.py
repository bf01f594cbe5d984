"""PyTorch: CUDA (fp16/bf16 autocast, channels_last, cudnn benchmark, pinned uploads) or CPU float32.

Imported only when the torch backend is chosen, so that segmenting with an
ONNX file works where torch is not installed. On CUDA every intermediate stays
on the GPU: the image goes up as uint8 through a reused pinned buffer, is
normalised there, and only the class map (and any requested confidence or
probability maps) comes back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segstudio.inference.backend import Backend
from segstudio.inference.backends import PRECISIONS

Precision = Literal["fp16", "bf16", "fp32"]
_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cuda_available() -> bool:
    return torch.cuda.is_available()


class TorchBackend(Backend):
    """A module in eval mode on ``device``; ``precision`` applies on CUDA (the CPU runs float32)."""

    def __init__(self, model: nn.Module, device: str = "cpu", precision: Precision = "fp16",
                 batch_size: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.torch_device = torch.device(device)
        self.device = self.torch_device.type
        self.cuda = self.device == "cuda"
        if self.cuda and not torch.cuda.is_available():
            raise RuntimeError("CUDA was asked for but this PyTorch has no usable CUDA device")
        self.autocast_dtype = _AUTOCAST.get(precision) if self.cuda else None
        if self.autocast_dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise RuntimeError("this GPU does not support bf16; use fp16 or fp32")
        self.model = model.eval().to(self.torch_device)
        if self.cuda:
            # NHWC is what tensor-core convolutions want; cudnn picks the fastest algorithm per input shape
            # (a batch folder of equal-sized images pays the search once).
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            torch.backends.cudnn.benchmark = True
        self.precision = precision if self.cuda else "fp32"
        self.batch_size = batch_size or (16 if self.cuda else 1)
        self.name = (f"torch cuda ({torch.cuda.get_device_name(self.torch_device)}, "
                     f"{'fp32' if self.autocast_dtype is None else self.precision + ' autocast'})"
                     if self.cuda else f"torch cpu (fp32, {torch.get_num_threads()} threads)")
        self._staging: Tensor | None = None
        self._staging_free: torch.cuda.Event | None = None
        self._affine: dict[bytes, tuple[Tensor, Tensor]] = {}

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with torch.inference_mode():
            yield

    def _upload(self, batch: np.ndarray) -> Tensor:
        host = torch.from_numpy(np.ascontiguousarray(batch))
        if not self.cuda:
            return host
        nbytes = batch.nbytes
        if self._staging is None or self._staging.numel() < nbytes:
            # A normal (not inference-mode) tensor, so that it may be refilled in or out of inference mode.
            with torch.inference_mode(False):
                self._staging = torch.empty(max(nbytes, 1 << 20), dtype=torch.uint8, pin_memory=True)
            self._staging_free = None
        if self._staging_free is not None:
            # The previous asynchronous copy may still be reading the buffer.
            self._staging_free.synchronize()
        staged = self._staging[:nbytes].view(host.dtype).view(host.shape)
        staged.copy_(host)
        dev = staged.to(self.torch_device, non_blocking=True)
        self._staging_free = torch.cuda.Event()
        self._staging_free.record()
        return dev

    def prepare(self, batch: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> Tensor:
        if batch.dtype not in (np.uint8, np.float32):
            batch = batch.astype(np.float32)  # torch's uint16 support is partial
        t = self._upload(batch)
        # NHWC permuted to NCHW is channels_last in memory: exactly the layout the CUDA model runs in.
        x = t.permute(0, 3, 1, 2).float()
        key = scale.astype(np.float32).tobytes() + shift.astype(np.float32).tobytes()
        if key not in self._affine:  # a few bytes, but a synchronous upload per call otherwise
            self._affine[key] = (self.constant(scale).view(1, -1, 1, 1), self.constant(shift).view(1, -1, 1, 1))
        s, b = self._affine[key]
        x = torch.addcmul(b, x, s)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x.contiguous()

    def forward(self, x: Tensor) -> Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(device_type="cuda", dtype=self.autocast_dtype):
                y = self.model(x)
        else:
            y = self.model(x)
        if isinstance(y, dict):  # a module left in train mode by its owner
            y = y["out"]
        return y.float()

    def pad(self, x: Tensor, bottom: int, right: int) -> Tensor:
        return F.pad(x, (0, right, 0, bottom), mode="replicate")

    def resize(self, x: Tensor, height: int, width: int) -> Tensor:
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)

    def flip(self, x: Tensor) -> Tensor:
        return x.flip(3)

    def flip_rows(self, x: Tensor) -> Tensor:
        return x.flip(2)

    def transpose(self, x: Tensor) -> Tensor:
        return x.transpose(2, 3).contiguous()

    def softmax(self, x: Tensor) -> Tensor:
        return x.softmax(1)

    def log(self, x: Tensor) -> Tensor:
        return x.clamp_min(1e-12).log()

    def amax(self, x: Tensor) -> Tensor:
        return x.amax(1)

    def sum(self, x: Tensor) -> Tensor:
        return x.sum(1)

    def argmax(self, x: Tensor, dtype: np.dtype) -> np.ndarray:
        idx = x.argmax(1)
        # Narrow on the device so that only 1 (or 4) bytes per pixel cross the bus.
        idx = idx.to(torch.uint8) if np.dtype(dtype) == np.uint8 else idx.to(torch.int32)
        return idx.cpu().numpy().astype(dtype, copy=False)

    def zeros(self, shape: tuple[int, ...]) -> Tensor:
        return torch.zeros(shape, dtype=torch.float32, device=self.torch_device)

    def constant(self, a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.torch_device)

    def to_numpy(self, x: Tensor, dtype: np.dtype) -> np.ndarray:
        if np.dtype(dtype) == np.float16:
            return x.half().cpu().numpy()
        return x.float().cpu().numpy().astype(dtype, copy=False)

    def release(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
