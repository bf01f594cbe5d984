"""Index masks: checking them, converting their dtype, and mapping foreign values to classes.

A mask is a 2-D array of class indices: uint8 with 255 = not labelled for up to
254 classes, uint16 with 65535 = not labelled beyond (see :mod:`segstudio.core.classes`).
Masks from elsewhere use other values (an ISBI mask: 0 = membrane, 255 = cell;
CamVid: 11 = void); :func:`apply_value_map` turns them into class indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

from segstudio.core.classes import ClassTable, mask_dtype, unlabelled_value

Unmapped = Literal["error", "unlabelled"]

UNLABELLED_WORDS = ("unlabelled", "unlabeled", "ignore", "void", "none")
"""Words that mean "not labelled" on the right-hand side of a value map (``--map 11=void``)."""


class MaskError(ValueError):
    """A mask that does not fit the classes: wrong shape, dtype or values. The message says which."""


def value_counts(mask: np.ndarray) -> dict[int, int]:
    """``{value: pixel count}`` of an integer mask (fast for uint8/uint16: one bincount)."""
    if mask.dtype in (np.uint8, np.uint16):
        counts = np.bincount(mask.ravel(), minlength=1)
        present = np.flatnonzero(counts)
        return {int(v): int(counts[v]) for v in present}
    values, counts = np.unique(mask, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def _describe_values(counts: Mapping[int, int], limit: int = 8) -> str:
    items = sorted(counts.items())
    text = ", ".join(f"{v} ({c} px)" for v, c in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def to_mask_dtype(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """``mask`` in the dtype a table of ``num_classes`` uses, with the "not labelled" marker translated.

    uint8 → uint16 turns 255 into 65535; uint16 → uint8 turns 65535 into 255 and
    fails (:class:`MaskError`) when a class index does not fit. Other integer
    dtypes are accepted when every value is a class index (no unlabelled marker).
    Returns ``mask`` itself when nothing needs converting.
    """
    if mask.ndim != 2:
        raise MaskError(f"a mask is 2-D (height × width), got shape {mask.shape}")
    target = mask_dtype(num_classes)
    if mask.dtype == target:
        return mask
    if mask.dtype == np.uint8 and target == np.uint16:
        out = mask.astype(np.uint16)
        out[mask == 255] = 65535
        return out
    if mask.dtype == np.uint16 and target == np.uint8:
        unl = mask == 65535
        big = (mask > 253) & ~unl
        if big.any():
            raise MaskError(f"class values up to {int(mask[big].max())} do not fit a uint8 mask")
        out = mask.astype(np.uint8)
        out[unl] = 255
        return out
    if mask.dtype.kind in "iu" or mask.dtype == bool:
        if mask.size and (int(mask.min()) < 0 or int(mask.max()) >= num_classes):
            raise MaskError(
                f"a {mask.dtype} mask must hold class indices 0..{num_classes - 1}; "
                f"it holds {int(mask.min())}..{int(mask.max())}"
            )
        return mask.astype(target)
    raise MaskError(f"a mask holds integers, got {mask.dtype}")


def check_mask(mask: np.ndarray, num_classes: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate a mask for a table of ``num_classes`` and return it in the right dtype, C-contiguous.

    Every value must be a class index or the "not labelled" marker; ``shape``
    (height, width), when given, must match. Raises :class:`MaskError` naming the
    offending values.
    """
    arr = to_mask_dtype(np.asarray(mask), num_classes)
    if shape is not None and arr.shape != tuple(shape):
        raise MaskError(f"the mask is {arr.shape[1]}×{arr.shape[0]} but the image is {shape[1]}×{shape[0]}")
    unl = unlabelled_value(arr.dtype)
    # max() is nearly free; the element-wise test runs only when some value is the marker or too large,
    # and the (slower) counting only when the mask is really wrong.
    if arr.size and int(arr.max()) >= num_classes:
        wrong = (arr >= num_classes) & (arr != unl)
        if wrong.any():
            bad = value_counts(arr[wrong])
            if num_classes < 1:
                raise MaskError(f"the project has no classes yet, but the mask holds values {_describe_values(bad)}")
            raise MaskError(
                f"mask values {_describe_values(bad)} are not classes (there are {num_classes}: "
                f"0..{num_classes - 1}, {unl} = not labelled)"
            )
    return np.ascontiguousarray(arr)


def parse_class_ref(text: str, classes: ClassTable) -> int | None:
    """A class given by name or index (``"cell"``, ``"1"``); ``None`` for a "not labelled" word.

    Raises ``KeyError`` with the valid names for an unknown class.
    """
    word = text.strip()
    if word in classes.names:  # a class really called "void" is that class
        return classes.index_of(word)
    if word.lower() in UNLABELLED_WORDS:
        return None
    if word.isdigit():
        index = int(word)
        if index < len(classes):
            return index
        raise KeyError(f"class index {index} does not exist; there are {len(classes)} classes")
    lowered = [n.lower() for n in classes.names]
    if lowered.count(word.lower()) == 1:
        return lowered.index(word.lower())
    raise KeyError(f"no class named {word!r}; classes are {', '.join(classes.names) or '(none)'}")


def parse_value_map(items: Iterable[str], classes: ClassTable) -> dict[int, int | None]:
    """Parse ``VALUE=CLASS`` pairs (comma-separated or one per item) into ``{value: class index or None}``.

    ``CLASS`` is a class name, a class index, or ``unlabelled``/``ignore``/``void``
    (None: the pixel becomes "not labelled"). ``VALUE`` is an integer as found in
    the foreign mask. Raises ``ValueError``/``KeyError`` with a readable message.
    """
    out: dict[int, int | None] = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            if "=" not in pair:
                raise ValueError(f"{pair.strip()!r} is not VALUE=CLASS (e.g. 0=membrane)")
            value_text, class_text = pair.split("=", 1)
            try:
                value = int(value_text.strip())
            except ValueError:
                raise ValueError(f"{value_text.strip()!r} in {pair.strip()!r} is not an integer mask value") from None
            if value < 0:
                raise ValueError(f"mask values are not negative, got {value}")
            out[value] = parse_class_ref(class_text, classes)
    return out


def apply_value_map(
    values: np.ndarray,
    num_classes: int,
    value_map: Mapping[int, int | None] | None = None,
    unmapped: Unmapped = "error",
) -> np.ndarray:
    """Turn a foreign 2-D integer map into a class mask for ``num_classes`` classes.

    A value listed in ``value_map`` becomes that class (``None``: not labelled).
    A value not listed keeps its meaning as a class index when it is one, and the
    "not labelled" marker of its dtype (255 / 65535) stays not labelled; any other
    value is an error listing the values and their pixel counts, or becomes "not
    labelled" with ``unmapped="unlabelled"``.
    """
    if values.ndim != 2:
        raise MaskError(f"a mask is 2-D (height × width), got shape {values.shape}")
    if values.dtype.kind not in "iub":
        raise MaskError(f"a mask holds integers, got {values.dtype}")
    vmap = dict(value_map or {})
    out_dtype = mask_dtype(num_classes)
    out_unl = unlabelled_value(out_dtype)
    for v, c in vmap.items():
        if c is not None and not 0 <= c < num_classes:
            raise MaskError(f"value {v} maps to class {c}, but there are {num_classes} classes")
    src_unl = unlabelled_value(values.dtype) if values.dtype in (np.uint8, np.uint16) else None
    if values.dtype in (np.uint8, np.uint16, np.bool_):
        src = values.astype(np.uint8) if values.dtype == np.bool_ else values
        size = 256 if src.dtype == np.uint8 else 65536
        lut = np.full(size, -1, np.int64)
        lut[: min(num_classes, size)] = np.arange(min(num_classes, size))
        if src_unl is not None:
            lut[src_unl] = out_unl
        for v, c in vmap.items():
            if v < size:
                lut[v] = out_unl if c is None else c
        counts = np.bincount(src.ravel(), minlength=size)
        missing = {int(v): int(counts[v]) for v in np.flatnonzero((lut < 0) & (counts > 0))}
        if missing and unmapped == "error":
            raise MaskError(
                f"mask values {_describe_values(missing)} are not mapped to classes; "
                "give them with --map VALUE=CLASS (or VALUE=unlabelled), or pass --unmapped unlabelled"
            )
        lut[lut < 0] = out_unl
        return lut.astype(out_dtype)[src]
    # Other integer types (int32 TIFFs, …): go through the distinct values.
    uniq, inverse = np.unique(values, return_inverse=True)
    mapped = np.empty(len(uniq), np.int64)
    missing = {}
    for i, v in enumerate(uniq.tolist()):
        if v in vmap:
            c = vmap[v]
            mapped[i] = out_unl if c is None else c
        elif 0 <= v < num_classes:
            mapped[i] = v
        else:
            mapped[i] = out_unl
            missing[int(v)] = int(np.count_nonzero(inverse == i))
    if missing and unmapped == "error":
        raise MaskError(
            f"mask values {_describe_values(missing)} are not mapped to classes; "
            "give them with --map VALUE=CLASS (or VALUE=unlabelled), or pass --unmapped unlabelled"
        )
    return mapped.astype(out_dtype)[inverse.reshape(values.shape)]


def remap_lut(lut: np.ndarray, old_num_classes: int, new_num_classes: int) -> np.ndarray:
    """A lookup table from old masks (dtype of ``old_num_classes``) to new masks (dtype of ``new_num_classes``).

    ``lut[old_index]`` is the new class index (as returned by
    :meth:`ClassTable.merged`), or the new dtype's "not labelled" marker (a deleted
    class, :meth:`ClassTable.removed`); the marker is translated between dtypes,
    and values that are no class at all become "not labelled".
    """
    old_dtype, new_dtype = mask_dtype(old_num_classes), mask_dtype(new_num_classes)
    size = 256 if old_dtype == np.uint8 else 65536
    unl = unlabelled_value(new_dtype)
    out = np.full(size, unl, np.int64)
    n = min(old_num_classes, len(lut))
    target = np.asarray(lut[:n], np.int64)
    if n and (target.min() < 0 or ((target >= new_num_classes) & (target != unl)).any()):
        raise MaskError(f"the lookup table maps classes outside 0..{new_num_classes - 1}")
    out[:n] = target
    return out.astype(new_dtype)
