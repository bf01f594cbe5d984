"""Property tests of the codecs: random valid input round-trips exactly; random invalid input raises the module's
own error (never an OverflowError, a cv2.error, a crash or a huge allocation).

Codecs: COCO RLE (``formats/rle.py``, both count forms), polygons (``formats/polygons.py`` with the labelme and
YOLO-seg documents built on it), index-mask PNGs (``image_io``) and mask checking (``masks.py``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segstudio.core.classes import ClassTable
from segstudio.core.formats import coco, labelme, rle, yolo
from segstudio.core.formats.base import FormatError
from segstudio.core.formats.polygons import Shape, fill_polygon, mask_to_shapes, shapes_to_mask
from segstudio.core.image_io import ImageReadError, encode_mask_png, read_mask
from segstudio.core.masks import MaskError, check_mask

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

sides = st.integers(1, 40)


@st.composite
def binary_masks(draw: st.DrawFn) -> np.ndarray:
    h, w = draw(sides), draw(sides)
    return draw(hnp.arrays(np.bool_, (h, w)))


@st.composite
def class_masks(draw: st.DrawFn, classes: int = 4, dtype: type = np.uint8) -> np.ndarray:
    h, w = draw(sides), draw(sides)
    unl = 255 if dtype == np.uint8 else 65535
    values = st.sampled_from([*range(classes), unl])
    return draw(hnp.arrays(dtype, (h, w), elements=values))


# --------------------------------------------------------------------------------------------- RLE


@FAST
@given(binary_masks())
def test_rle_round_trips_any_binary_mask(mask: np.ndarray) -> None:
    encoded = rle.encode(mask)
    assert np.array_equal(rle.decode(encoded, shape=mask.shape), mask)
    as_list = {"size": encoded["size"], "counts": [int(c) for c in rle.runs_of(mask)]}
    assert np.array_equal(rle.decode(as_list), mask)
    assert rle.area(encoded) == int(mask.sum())


@FAST
@given(st.lists(st.integers(0, 1 << 40), max_size=60))
def test_compressed_counts_round_trip(counts: list[int]) -> None:
    assert rle.string_to_counts(rle.counts_to_string(counts)) == counts


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 80), 1 << 80) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@FAST
@given(size=json_values, counts=json_values | st.text(max_size=40) | st.lists(st.integers(-(1 << 70), 1 << 70)))
def test_any_rle_dict_decodes_correctly_or_raises_rle_error(size: Any, counts: Any) -> None:
    try:
        mask = rle.decode({"size": size, "counts": counts})
    except rle.RleError:
        return
    h, w = size  # it decoded: then it was a valid RLE of that size
    assert mask.shape == (h, w) and mask.dtype == bool


@FAST
@given(binary_masks(), st.integers(1, 1 << 70))
def test_counts_that_do_not_add_up_raise_rle_error(mask: np.ndarray, extra: int) -> None:
    counts = [int(c) for c in rle.runs_of(mask)]
    counts[-1] += extra
    with pytest.raises(rle.RleError, match="add up to"):
        rle.decode({"size": list(mask.shape), "counts": counts})
    with pytest.raises(rle.RleError, match=r"add up to|longer than"):  # beyond 64 bits: no count at all
        rle.decode({"size": list(mask.shape), "counts": rle.counts_to_string(counts)})


@FAST
@given(binary_masks(), st.tuples(sides, sides))
def test_an_rle_of_another_size_is_refused_before_decoding(mask: np.ndarray, other: tuple[int, int]) -> None:
    if other == mask.shape:
        return
    with pytest.raises(rle.RleError, match="the image"):
        rle.decode(rle.encode(mask), shape=other)


@FAST
@given(class_masks())
def test_coco_rle_annotations_round_trip_class_masks(mask: np.ndarray) -> None:
    anns = coco.mask_to_annotations(mask, 4, image_id=1, first_id=1)
    back = coco.annotations_to_mask(anns, mask.shape, {c: c - 1 for c in range(1, 5)}, 255, np.uint8)
    assert np.array_equal(back, mask)


# --------------------------------------------------------------------------------------------- polygons


@st.composite
def rectangle_masks(draw: st.DrawFn) -> np.ndarray:
    """Masks of separate filled rectangles (what polygons represent exactly), one per cell of a grid."""
    rows, cols, cell = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(4, 12))
    mask = np.full((rows * cell, cols * cell), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            cls = draw(st.sampled_from([0, 1, 2, None]))
            if cls is None:
                continue
            y0, x0 = draw(st.integers(1, cell - 2)), draw(st.integers(1, cell - 2))
            y1, x1 = draw(st.integers(y0, cell - 2)), draw(st.integers(x0, cell - 2))
            mask[r * cell + y0:r * cell + y1 + 1, c * cell + x0:c * cell + x1 + 1] = cls
    return mask


@FAST
@given(rectangle_masks())
def test_polygons_round_trip_separate_regions(mask: np.ndarray) -> None:
    shapes = mask_to_shapes(mask, [0, 1, 2])
    assert np.array_equal(shapes_to_mask(shapes, mask.shape, 255, np.uint8), mask)


@FAST
@given(rectangle_masks())
def test_labelme_and_yolo_documents_round_trip(mask: np.ndarray) -> None:
    classes = ClassTable.from_names(["a", "b", "c"])
    doc = json.loads(json.dumps(labelme.mask_to_document(mask, classes, "x.png")))
    back, notes = labelme.document_to_mask(doc, mask.shape, {"a": 0, "b": 1, "c": 2}, 255, np.uint8)
    assert np.array_equal(back, mask) and notes == []
    text = yolo.mask_to_text(mask, {0: 0, 1: 1, 2: 2})
    assert np.array_equal(yolo.text_to_mask(text, mask.shape, {0: 0, 1: 1, 2: 2}, 255, np.uint8), mask)


coordinates = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(1 << 70), 1 << 70)


@FAST
@given(st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=8))
def test_fill_polygon_paints_any_finite_polygon_and_refuses_the_rest(points: list[tuple[float, float]]) -> None:
    mask = np.zeros((16, 20), np.uint8)
    finite = all(math.isfinite(float(v)) for p in points for v in p)
    if finite:
        fill_polygon(mask, [(float(x), float(y)) for x, y in points], 1)
        assert set(np.unique(mask).tolist()) <= {0, 1}
    else:
        with pytest.raises(ValueError, match="finite"):
            fill_polygon(mask, [(float(x), float(y)) for x, y in points], 1)


shape_dicts = st.fixed_dictionaries({
    "label": st.sampled_from(["a", "b"]),
    "shape_type": st.sampled_from(["polygon", "rectangle", "circle", "line", None]) | st.text(max_size=5),
    "points": json_values,
})


@FAST
@given(st.lists(shape_dicts | json_values, max_size=5))
def test_any_labelme_shapes_give_a_mask_or_a_format_error(shapes: list[Any]) -> None:
    try:
        mask, _ = labelme.document_to_mask({"shapes": shapes}, (12, 16), {"a": 0, "b": 1}, 255, np.uint8)
    except FormatError:
        return
    assert mask.shape == (12, 16) and set(np.unique(mask).tolist()) <= {0, 1, 255}


@FAST
@given(st.text(alphabet=st.sampled_from(list("0123456789 .-e\nnaif")), max_size=80))
def test_any_yolo_text_gives_a_mask_or_a_format_error(text: str) -> None:
    try:
        mask = yolo.text_to_mask(text, (12, 16), {0: 0, 1: 1}, 255, np.uint8)
    except FormatError:
        return
    assert mask.shape == (12, 16)


def test_a_shape_of_one_point_still_round_trips() -> None:
    mask = np.full((5, 5), 255, np.uint8)
    mask[2, 3] = 1
    shapes = mask_to_shapes(mask, [1])
    assert shapes == [Shape(1, shapes[0].points)]
    assert np.array_equal(shapes_to_mask(shapes, mask.shape, 255, np.uint8), mask)


# --------------------------------------------------------------------------------------------- mask PNGs


@FAST
@given(st.one_of(class_masks(), class_masks(classes=300, dtype=np.uint16)))
def test_mask_pngs_round_trip_and_check(tmp_path_factory: pytest.TempPathFactory, mask: np.ndarray) -> None:
    path = tmp_path_factory.mktemp("png") / "m.png"
    path.write_bytes(encode_mask_png(mask))
    back = read_mask(path, shape=mask.shape)
    assert back.dtype == mask.dtype and np.array_equal(back, mask)
    classes = 4 if mask.dtype == np.uint8 else 300
    assert np.array_equal(check_mask(back, classes, mask.shape), mask)


@FAST
@given(class_masks(), st.integers(4, 254))
def test_a_value_that_is_no_class_raises_mask_error(mask: np.ndarray, wrong: int) -> None:
    bad = mask.copy()
    bad.flat[0] = wrong
    with pytest.raises(MaskError, match=f"mask values {wrong}"):
        check_mask(bad, 4)


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_are_no_mask(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "m.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    try:
        mask = read_mask(path)
    except ImageReadError:
        return
    assert mask.ndim == 2  # random bytes that happen to be a valid PNG


@FAST
@given(st.integers(1, 1 << 31), st.integers(1, 1 << 31))
def test_mask_headers_larger_than_their_image_are_refused_before_decoding(
        tmp_path_factory: pytest.TempPathFactory, width: int, height: int) -> None:
    from tests.hostile_files import png_claiming

    path: Path = tmp_path_factory.mktemp("bomb") / "m.png"
    path.write_bytes(png_claiming(width, height))
    if (height, width) == (3, 4):
        return
    with pytest.raises(ImageReadError, match="but its image is 4×3"):
        read_mask(path, shape=(3, 4))
