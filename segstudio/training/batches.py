"""Training batches: which samples, how they are augmented, and how they become network input.

The sample order is a stream of per-epoch permutations, and every random
draw of batch ``b`` comes from a generator seeded with ``(seed, b, slot)``, so
batch ``b`` is the same whatever happened before it: a resumed run sees
exactly the batches the uninterrupted run would have seen, and worker threads
cannot change the result by finishing in another order.

- :class:`CpuBatcher`: ``cv2.warpAffine`` per sample in a small thread pool,
  the next batch prepared in the background while the current step runs.
- :class:`DeviceBatcher`: the source images are uploaded to the device once
  (or per batch when they do not fit in memory) and warped there with
  ``grid_sample`` — the CUDA path, which keeps two CPU cores from starving a GPU.

Both return :class:`Batch`: normalised N×C×h×w float input on the device,
N×h×w int64 targets (``ignore_index`` where not labelled or padded) and a
per-image "completely labelled" flag for presence losses.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from segstudio.training.augment import (
    AugmentConfig,
    SampleParams,
    draw_params,
    host_to,
    photometric_jitter,
    warp_batch_torch,
    warp_sample,
)
from segstudio.training.data import Sample
from segstudio.zoo import Normalization

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class Batch:
    x: Tensor
    y: Tensor
    complete: Tensor
    index: int
    crop: tuple[int, int]


@lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5E9]).permutation(n)


def batch_members(batch: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Sample indices of batch ``batch``: positions ``batch·size …`` of the stream of epoch permutations."""
    out = []
    for q in range(batch * batch_size, (batch + 1) * batch_size):
        epoch, pos = divmod(q, n)
        out.append(int(_permutation(seed, epoch, n)[pos]))
    return out


def epoch_of(batch: int, batch_size: int, n: int) -> float:
    """Epochs completed at the start of batch ``batch`` (fractional)."""
    return batch * batch_size / n


def sample_params(batch: int, slot: int, seed: int, src_hw: tuple[int, int], crop: tuple[int, int],
                  aug: AugmentConfig) -> SampleParams:
    return draw_params(np.random.default_rng([seed, batch, slot]), src_hw, crop, aug)


class InputMaker:
    """Float images (values in 0..1) → the network's normalised input, with photometric jitter."""

    def __init__(self, norm: Normalization, channels: int, device: torch.device, channels_last: bool) -> None:
        n = norm.for_channels(channels)
        self.mean = torch.tensor(n.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(n.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.channels = channels
        self.channels_last = channels_last

    def convert_channels(self, x: Tensor) -> Tensor:
        """N×c×h×w with c = 1 or 3 → the model's channel count (gray repeated, RGB to luma)."""
        c = x.shape[1]
        if c == self.channels:
            return x
        if self.channels == 3 and c == 1:
            return x.expand(-1, 3, -1, -1)
        if self.channels == 1 and c == 3:
            return x[:, 0:1] * float(_LUMA[0]) + x[:, 1:2] * float(_LUMA[1]) + x[:, 2:3] * float(_LUMA[2])
        raise ValueError(f"cannot feed {c}-channel images to a {self.channels}-channel network")

    def __call__(self, x01: Tensor, params: Sequence[SampleParams], jitter: bool) -> Tensor:
        x = self.convert_channels(x01)
        if jitter:
            x = photometric_jitter(x, list(params), 1.0)  # makes new tensors: the caller's batch is untouched
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()


def _value_max(dtype: np.dtype) -> float:
    return 65535.0 if dtype == np.uint16 else 255.0


def shard_slots(members: Sequence[int], rank: int, world_size: int) -> list[tuple[int, int]]:
    """The distributed sampler: ``(slot, sample index)`` pairs of rank ``rank``'s share of a global batch.

    Rank ``r`` of ``world_size`` takes the ``r``-th equal slice of the batch's members, keeping each
    member's slot in the global batch (which seeds its augmentation). The ranks' shares are disjoint
    and together are the whole batch — so N processes see exactly the samples and augmentations one
    process would, which is what lets a run resume with another number of processes.
    """
    if world_size < 1 or not 0 <= rank < world_size or len(members) % world_size:
        raise ValueError(f"a batch of {len(members)} cannot be shared by {world_size} processes "
                         f"(rank {rank}): the batch size must be a multiple of the number of processes")
    share = len(members) // world_size
    return [(slot, members[slot]) for slot in range(rank * share, (rank + 1) * share)]


class _Batcher:
    """What both batchers hold: the samples, the batch size, the augmentation and the seed.

    ``batch_size`` is the global batch; with ``shard=(rank, world_size)`` this batcher makes only
    that rank's share of each batch (see :func:`shard_slots`).
    """

    def __init__(self, samples: Sequence[Sample], batch_size: int, aug: AugmentConfig, maker: InputMaker,
                 ignore_index: int, seed: int, jitter: bool, shard: tuple[int, int] = (0, 1)) -> None:
        if not samples:
            raise ValueError("no samples to batch")
        self.samples = list(samples)
        self.batch_size = batch_size
        self.aug = aug
        self.maker = maker
        self.ignore_index = ignore_index
        self.seed = seed
        self.jitter = jitter
        self.shard = shard
        shard_slots(range(batch_size), *shard)  # refuse a batch the processes cannot share, now

    def slots(self, batch: int) -> list[tuple[int, int]]:
        """``(slot, sample index)`` of this batcher's share of batch ``batch``."""
        return shard_slots(batch_members(batch, self.batch_size, len(self.samples), self.seed), *self.shard)


class CpuBatcher(_Batcher):
    """Batches augmented with OpenCV in worker threads; one batch is prepared ahead."""

    def __init__(self, samples: Sequence[Sample], batch_size: int, aug: AugmentConfig, maker: InputMaker,
                 ignore_index: int, seed: int, workers: int = 1, jitter: bool = True,
                 shard: tuple[int, int] = (0, 1)) -> None:
        super().__init__(samples, batch_size, aug, maker, ignore_index, seed, jitter, shard)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="segstudio-augment")
        self._ahead: tuple[int, tuple[int, int], Future] | None = None
        self._lock = threading.Lock()

    def _one(self, batch: int, slot: int, index: int, crop: tuple[int, int]
             ) -> tuple[np.ndarray, np.ndarray, SampleParams]:
        s = self.samples[index]
        image = s.image
        params = sample_params(batch, slot, self.seed, image.shape[:2], crop, self.aug)
        img, lab = warp_sample(image, s.label, params, crop, s.ignore_value)
        img = img.astype(np.float32) * np.float32(1.0 / _value_max(image.dtype))
        if img.shape[2] != self.maker.channels:
            img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else (img @ _LUMA)[:, :, None]
        return img, lab, params

    def _host(self, batch: int, crop: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[SampleParams],
                                                                  list[bool]]:
        slots = self.slots(batch)
        parts = [self._one(batch, slot, i, crop) for slot, i in slots]
        images = np.stack([p[0] for p in parts])
        labels = np.stack([p[1] for p in parts])
        return images, labels, [p[2] for p in parts], [self.samples[i].complete for _, i in slots]

    def _submit(self, batch: int, crop: tuple[int, int]) -> Future:
        return self._pool.submit(self._host, batch, crop)

    def get(self, batch: int, crop: tuple[int, int]) -> Batch:
        """Batch ``batch`` at crop size ``crop`` (h, w); starts preparing ``batch + 1`` at the same size."""
        with self._lock:
            ahead = self._ahead
            if ahead is not None and ahead[0] == batch and ahead[1] == crop:
                fut = ahead[2]
            else:
                if ahead is not None:
                    ahead[2].cancel()
                fut = self._submit(batch, crop)
            self._ahead = (batch + 1, crop, self._submit(batch + 1, crop))
        images, labels, params, complete = fut.result()
        x01 = torch.from_numpy(images).permute(0, 3, 1, 2)
        x = self.maker(x01, params, self.jitter)
        y = torch.from_numpy(labels.astype(np.int64))
        return Batch(x, y, torch.tensor(complete), batch, crop)

    def close(self) -> None:
        with self._lock:
            if self._ahead is not None:
                self._ahead[2].cancel()
                self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)


class DeviceBatcher(_Batcher):
    """Batches augmented on the device (``grid_sample``); sources uploaded once when they are in memory."""

    def __init__(self, samples: Sequence[Sample], batch_size: int, aug: AugmentConfig, maker: InputMaker,
                 ignore_index: int, seed: int, device: torch.device, jitter: bool = True,
                 shard: tuple[int, int] = (0, 1)) -> None:
        super().__init__(samples, batch_size, aug, maker, ignore_index, seed, jitter, shard)
        self.device = device
        self._images: dict[int, Tensor] = {}
        self._labels: dict[int, Tensor] = {}
        for i, s in enumerate(self.samples):
            if s._image is not None:
                self._images[i], self._labels[i] = self._upload(s.image, s.label)

    def _upload(self, image: np.ndarray, label: np.ndarray) -> tuple[Tensor, Tensor]:
        img = image if image.dtype == np.uint8 else image.astype(np.int32)  # torch's uint16 support is partial
        lab = label if label.dtype == np.uint8 else label.astype(np.int32)
        t_img = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(self.device, non_blocking=True)
        return t_img, torch.from_numpy(np.ascontiguousarray(lab)).to(self.device, non_blocking=True)

    def get(self, batch: int, crop: tuple[int, int]) -> Batch:
        slots = self.slots(batch)
        images, labels, params, scale = [], [], [], []
        for slot, i in slots:
            s = self.samples[i]
            if i in self._images:
                img, lab = self._images[i], self._labels[i]
            else:
                img, lab = self._upload(s.image, s.label)
            images.append(img)
            labels.append(lab)
            params.append(sample_params(batch, slot, self.seed, (int(img.shape[1]), int(img.shape[2])), crop,
                                        self.aug))
            scale.append(1.0 / _value_max(s.dtype))
        x, y = warp_batch_torch(images, labels, params, crop, self.ignore_index)
        x = x * host_to(np.asarray(scale, np.float32), self.device).view(-1, 1, 1, 1)
        complete = host_to(np.array([self.samples[i].complete for _, i in slots]), self.device)
        return Batch(self.maker(x, params, self.jitter), y, complete, batch, crop)

    def close(self) -> None:
        self._images.clear()
        self._labels.clear()
