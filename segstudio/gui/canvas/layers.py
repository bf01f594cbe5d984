"""Tiled canvas layers: images, masks and heat maps drawn tile by tile from a pyramid.

A :class:`TiledLayer` asks its source for the tiles that intersect the exposed
area, at the pyramid level that matches the zoom (level l = 1/2^l size), and
caches them. Editing a mask invalidates only the tiles under the changed
rectangle, so a brush dab on a 12000×9000 image redraws a few 256² tiles, not
the whole overlay. Sources are numpy-backed; Qt only sees finished tiles.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segstudio.core.classes import unlabelled_value

TILE = 256
SMOOTH_BELOW = 2.0
_CACHE_BYTES = 192 * 1024 * 1024


def _qimage(arr: np.ndarray) -> QImage:
    """A QImage owning a copy of an H×W×3 (RGB) or H×W×4 (RGBA) uint8 array.

    Stored as RGB32 / premultiplied ARGB32, the formats the raster engine draws
    without converting: a cached tile is converted once, not at every repaint.
    """
    arr = np.ascontiguousarray(arr)
    h, w, c = arr.shape
    if c == 3:
        return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888).convertToFormat(
            QImage.Format.Format_RGB32)
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888).convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied)


class TileSource(ABC):
    """Something that renders rectangles of itself at pyramid levels."""

    width: int
    height: int

    def level_count(self) -> int:
        return 1

    @abstractmethod
    def render(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage | None:
        """Pixels [y0:y1, x0:x1] of ``level`` as a QImage (None: nothing to draw there)."""


class ImageSource(TileSource):
    """An RGB image with its pyramid (see :func:`build_pyramid`)."""

    def __init__(self, levels: list[np.ndarray]) -> None:
        self.levels = levels
        self.height, self.width = levels[0].shape[:2]

    def level_count(self) -> int:
        return len(self.levels)

    def render(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage | None:
        return _qimage(self.levels[level][y0:y1, x0:x1])


def _lut32(lut: np.ndarray) -> np.ndarray:
    """An N×4 RGBA table as N packed uint32 (fully transparent entries all zero): one gather per pixel."""
    rgba = np.ascontiguousarray(lut, dtype=np.uint8).copy()
    rgba[rgba[:, 3] == 0] = 0
    return rgba.view(np.uint32).ravel()


class MaskSource(TileSource):
    """An index mask drawn through an RGBA lookup table.

    ``style``: "fill" (class colours), "outline" (only class borders),
    "hatched" (fill with diagonal stripes: a prediction not yet accepted),
    "binary" (mask view of ``binary_class``: white where it is, black elsewhere;
    with ``clear_unlabelled`` not-labelled pixels are transparent, so a prediction
    beneath shows through), "binary-hatched" (the mask view of a prediction:
    white and grey stripes where the class is predicted, black elsewhere).
    ``cover``: a label mask; wherever it is labelled nothing is drawn (a prediction
    shows only where the user has not labelled, so an accepted one loses its hatching).
    Lower levels subsample the mask (nearest), which keeps thin classes visible.
    Every style is one gather per pixel from a packed 32-bit table; the hatched
    styles index a doubled table (full and faint colours) with a cached stripe offset.
    """

    def __init__(self, mask: np.ndarray, lut: np.ndarray, style: str = "fill", binary_class: int = 0,
                 clear_unlabelled: bool = False, cover: np.ndarray | None = None) -> None:
        self.mask = mask
        self.lut = lut
        self.style = style
        self.binary_class = binary_class
        self.cover = cover
        self.height, self.width = mask.shape
        if style in ("binary", "binary-hatched"):
            table = np.zeros_like(lut)
            table[:, 3] = 255
            table[binary_class, :3] = 255
            if clear_unlabelled:
                table[len(table) - 1] = 0  # the not-labelled marker: the last entry (255, or 65535)
            self._lut32 = _lut32(table)
            faint = table.copy()
            faint[binary_class, :3] = 110
        else:
            self._lut32 = _lut32(lut)
            faint = lut.copy()
            faint[:, 3] //= 3
        if style in ("hatched", "binary-hatched"):
            # one table of both: index i is the full colour, i + len(lut) the faint one
            self._lut32 = np.concatenate([self._lut32, _lut32(faint)])
        self._stripes: dict[tuple[int, int, int, int], np.ndarray] = {}

    def level_count(self) -> int:
        return max(1, math.ceil(math.log2(max(self.width, self.height) / TILE)) + 1)

    def _stripe_offsets(self, s: int, phase: int, h: int, w: int) -> np.ndarray:
        # Stripes 6 image pixels wide along x + y; a tile's pattern depends only on (x0 + y0)·s mod 12.
        # Stored as index offsets into the doubled table (0: full colour, len(lut): faint).
        key = (s, phase, h, w)
        offsets = self._stripes.get(key)
        if offsets is None:
            d = (np.arange(h)[:, None] + np.arange(w)[None, :]) * s + phase
            offsets = np.where((d // 6) % 2 == 1, len(self.lut), 0).astype(np.int32)
            self._stripes[key] = offsets
        return offsets

    def render(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage | None:
        s = 1 << level
        sub = self.mask[y0 * s:y1 * s:s, x0 * s:x1 * s:s]
        if sub.size == 0:
            return None
        if self.style in ("hatched", "binary-hatched"):
            offsets = self._stripe_offsets(s, ((x0 + y0) * s) % 12, *sub.shape)
            packed = np.take(self._lut32, sub.astype(np.int32) + offsets)
        else:
            packed = np.take(self._lut32, sub)
        if self.cover is not None and self.cover.shape == self.mask.shape:
            covered = self.cover[y0 * s:y1 * s:s, x0 * s:x1 * s:s] != unlabelled_value(self.cover.dtype)
            packed[covered] = 0
        if self.style == "outline":
            edge = np.zeros(sub.shape, bool)
            edge[1:, :] |= sub[1:, :] != sub[:-1, :]
            edge[:-1, :] |= sub[:-1, :] != sub[1:, :]
            edge[:, 1:] |= sub[:, 1:] != sub[:, :-1]
            edge[:, :-1] |= sub[:, :-1] != sub[:, 1:]
            packed[~edge] = 0
        if self.style != "binary" and not packed.any():
            return None
        h, w = sub.shape
        return _qimage(packed.view(np.uint8).reshape(h, w, 4))


def heat_lut() -> np.ndarray:
    """256×4 RGBA: transparent-ish dark blue for low values through yellow to opaque red for high ones."""
    t = np.linspace(0.0, 1.0, 256)
    r = np.clip(1.5 * t + 0.1, 0, 1)
    g = np.clip(1.6 * t * (1.1 - t) * 2.2, 0, 1)
    b = np.clip(0.6 - 1.2 * t, 0, 1)
    a = np.clip(0.15 + 0.85 * t, 0, 1)
    return (np.stack([r, g, b, a], 1) * 255).astype(np.uint8)


class HeatSource(TileSource):
    """A map in [0, 1] as floats, or 0..255 as uint8 (e.g. uncertainty), drawn with :func:`heat_lut`."""

    def __init__(self, values: np.ndarray) -> None:
        if values.dtype == np.uint8:
            self.values8 = values  # already in the drawn form: no copy
        else:
            self.values8 = np.clip(np.nan_to_num(values.astype(np.float32)) * 255, 0, 255).astype(np.uint8)
        self.height, self.width = values.shape
        self.lut = heat_lut()

    def level_count(self) -> int:
        return max(1, math.ceil(math.log2(max(self.width, self.height) / TILE)) + 1)

    def render(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage | None:
        s = 1 << level
        sub = self.values8[y0 * s:y1 * s:s, x0 * s:x1 * s:s]
        return _qimage(self.lut[sub]) if sub.size else None


class TiledLayer(QGraphicsItem):
    """Draws a :class:`TileSource` in image coordinates, one cached tile at a time."""

    def __init__(self, source: TileSource | None = None) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._source = source
        self._cache: OrderedDict[tuple[int, int, int], QImage | None] = OrderedDict()
        self._cache_bytes = 0

    @property
    def source(self) -> TileSource | None:
        return self._source

    def set_source(self, source: TileSource | None) -> None:
        self.prepareGeometryChange()
        self._source = source
        self.clear_cache()
        self.update()

    def clear_cache(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0

    def boundingRect(self) -> QRectF:
        if self._source is None:
            return QRectF()
        return QRectF(0, 0, self._source.width, self._source.height)

    def invalidate(self, y0: int, x0: int, y1: int, x1: int) -> None:
        """Drop the cached tiles over image rows y0:y1, columns x0:x1 at every level and repaint them."""
        if self._source is None:
            return
        for key in list(self._cache):
            level, ty, tx = key
            span = TILE << level
            if ty * span < y1 and (ty + 1) * span > y0 and tx * span < x1 and (tx + 1) * span > x0:
                img = self._cache.pop(key)
                self._cache_bytes -= img.sizeInBytes() if img is not None else 0
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _tile(self, level: int, ty: int, tx: int) -> QImage | None:
        key = (level, ty, tx)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        assert self._source is not None
        s = 1 << level
        lw, lh = -(-self._source.width // s), -(-self._source.height // s)
        x0, y0 = tx * TILE, ty * TILE
        img = self._source.render(level, x0, y0, min(lw, x0 + TILE), min(lh, y0 + TILE))
        self._cache[key] = img
        self._cache_bytes += img.sizeInBytes() if img is not None else 0
        while self._cache_bytes > _CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.sizeInBytes() if old is not None else 0
        return img

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        src = self._source
        if src is None:
            return
        # Device pixels per image pixel: on a high-DPI screen the world transform is in logical pixels and
        # the device transform adds the pixel ratio, so tiles are chosen for what is really drawn.
        scale = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.deviceTransform())
        level = 0
        if scale < 1.0:
            level = min(src.level_count() - 1, max(0, math.floor(math.log2(1.0 / scale))))
        # smooth below 2× (nearest-neighbour there makes uneven 1- and 2-pixel columns); square pixels above
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < SMOOTH_BELOW)
        exposed = option.exposedRect.intersected(self.boundingRect())  # type: ignore[attr-defined]
        if exposed.isEmpty():
            return
        span = TILE << level
        tx0, ty0 = int(exposed.left()) // span, int(exposed.top()) // span
        tx1, ty1 = math.ceil(exposed.right()) // span, math.ceil(exposed.bottom()) // span
        s = 1 << level
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                img = self._tile(level, ty, tx)
                if img is None:
                    continue
                target = QRectF(tx * span, ty * span, img.width() * s, img.height() * s)
                if exposed.contains(target):
                    painter.drawImage(target, img)
                    continue
                # Only the exposed part (a scrolled-in strip, a brush dab), in whole source pixels plus one
                # of margin so that smooth filtering at the cut reads real neighbours whatever the paint
                # engine; the painter's clip keeps the drawing inside the exposed area.
                part = target.intersected(exposed)
                if part.isEmpty():
                    continue
                sx0 = max(0, math.floor((part.left() - target.left()) / s) - 1)
                sy0 = max(0, math.floor((part.top() - target.top()) / s) - 1)
                sx1 = min(img.width(), math.ceil((part.right() - target.left()) / s) + 1)
                sy1 = min(img.height(), math.ceil((part.bottom() - target.top()) / s) + 1)
                painter.drawImage(QRectF(target.left() + sx0 * s, target.top() + sy0 * s, (sx1 - sx0) * s,
                                         (sy1 - sy0) * s), img, QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0))
