"""COCO run-length encoding of binary masks, compressed string form included, without pycocotools.

A COCO RLE lists run lengths over the mask read column by column (Fortran
order), starting with a run of zeros (possibly empty). The compressed form
writes each count, minus the count two places earlier from the fourth on, as
5-bit groups in printable characters (offset 48), with 0x20 marking "more
groups follow" and sign extension from bit 0x10 of the last group.

Decoding checks everything before it allocates: the size against the image it
is for (``shape``) or, without one, against the image pixel limit of
:mod:`segstudio.core.image_io`; every count as a bounded, non-negative
integer; the number of counts and their exact sum (Python integers, which
cannot overflow) against the pixel count. A hostile RLE raises
:class:`RleError`, never an ``OverflowError``, a huge allocation or a write
out of bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segstudio.core.image_io import max_pixels

MAX_GROUPS = 13
"""5-bit groups in one compressed count: 65 bits, more than any 64-bit count (pycocotools' limit)."""


class RleError(ValueError):
    """A malformed RLE (bad characters, counts that do not add up to the mask size)."""


def runs_of(binary: np.ndarray) -> np.ndarray:
    """Run lengths (int64) of a 2-D boolean mask in column-major order, first run = zeros."""
    flat = np.asarray(binary, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(1, np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).astype(np.int64)
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return counts


def counts_to_string(counts: Sequence[int] | np.ndarray) -> str:
    """Compressed COCO string of run lengths."""
    values = [int(c) for c in counts]
    out: list[str] = []
    for i, x in enumerate(values):
        if i > 2:
            x -= values[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas keep their sign
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Run lengths from a compressed COCO string (``RleError`` on bad input)."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x = 0
        k = 0
        more = True
        c = 0
        while more:
            if p >= n:
                raise RleError("the compressed RLE string ends in the middle of a number")
            if k >= MAX_GROUPS:
                raise RleError(f"a count in the compressed RLE string is longer than {MAX_GROUPS} characters")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise RleError(f"character {text[p]!r} cannot appear in a compressed RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
        if c & 0x10:
            x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(binary: np.ndarray) -> dict[str, Any]:
    """``{"size": [h, w], "counts": str}`` of a 2-D boolean mask (pycocotools reads it)."""
    h, w = binary.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(runs_of(binary))}


def decode(rle: dict[str, Any], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean H×W mask of an RLE dict; counts may be the compressed string or a list of ints.

    ``shape`` (height, width): the image the RLE is for; a different ``size`` is
    refused before anything is decoded. Raises :class:`RleError` on any bad input.
    """
    try:
        size = rle["size"]
        raw = rle["counts"]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in size):
            raise TypeError
        h, w = int(size[0]), int(size[1])
    except (KeyError, TypeError, ValueError):
        raise RleError("an RLE needs 'size': [height, width] (two integers) and 'counts'") from None
    if h < 0 or w < 0:
        raise RleError(f"RLE size {h}×{w} is negative")
    if shape is not None and (h, w) != tuple(shape):
        raise RleError(f"the RLE is {w}×{h}, the image {shape[1]}×{shape[0]}")
    pixels = h * w
    limit = max_pixels()
    if pixels > limit:
        raise RleError(f"RLE size {w}×{h} is more than the limit of {limit / 1e6:.0f} Mpx")
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str):
        if len(raw) > MAX_GROUPS * (pixels + 1):
            raise RleError(f"the compressed RLE string is longer than any RLE of {pixels} pixels")
        values = string_to_counts(raw)
    elif isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        values = raw
    else:
        raise RleError("RLE counts must be a compressed string or a list of integers")
    if len(values) > pixels + 1:
        raise RleError(f"{len(values)} RLE counts for a mask of {pixels} pixels")
    if any(v < 0 for v in values):
        raise RleError("RLE counts must not be negative")
    total = sum(values)  # exact: Python integers do not overflow
    if total != pixels:
        raise RleError(f"RLE counts add up to {total} pixels, but the mask has {h}×{w} = {pixels}")
    counts = np.asarray(values, np.int64)
    runs = np.zeros(len(counts), bool)
    runs[1::2] = True
    flat = np.repeat(runs, counts)
    return flat.reshape((w, h)).T.copy()


def area(rle: dict[str, Any]) -> int:
    """Pixels set in an RLE."""
    raw = rle["counts"]
    counts = string_to_counts(raw) if isinstance(raw, str) else list(raw)
    return int(sum(counts[1::2]))


def bbox(binary: np.ndarray) -> list[float]:
    """COCO box ``[x, y, width, height]`` of the set pixels (zeros when none)."""
    ys = np.flatnonzero(binary.any(axis=1))
    xs = np.flatnonzero(binary.any(axis=0))
    if ys.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1)]
