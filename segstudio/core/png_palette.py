"""Palette PNGs made from grey ones: the pixel values stay, a palette says how to show them.

An 8-bit grey PNG and an 8-bit palette PNG store their pixels the same way
(one byte per pixel, the same filters and compression), so a class map encoded
as grey (fast, by OpenCV) becomes a palette PNG by changing one byte of its
header and adding a ``PLTE`` chunk: every viewer then shows the class colours,
while every reader that asks for the indices (``read_mask``, PIL's ``P`` mode,
OpenCV's ``IMREAD_UNCHANGED`` of a palette PNG aside) still gets the class
indices.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _PALETTE = 0, 3


class PngPaletteError(ValueError):
    """Bytes that are not an 8-bit grey PNG, or a palette that is not 1–256 RGB colours."""


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def with_palette(png: bytes, colours: Sequence[tuple[int, int, int]], fill: tuple[int, int, int] = (0, 0, 0)
                 ) -> bytes:
    """``png`` (an 8-bit grey PNG) as a palette PNG: value ``i`` is shown as ``colours[i]``, values beyond
    the colours as ``fill``. The pixel values are unchanged."""
    if not png.startswith(_SIGNATURE) or png[12:16] != b"IHDR" or int.from_bytes(png[8:12], "big") != 13:
        raise PngPaletteError("not PNG data with a header chunk")
    ihdr = bytearray(png[16:29])
    if ihdr[8] != 8 or ihdr[9] != _GREY:
        raise PngPaletteError(f"only 8-bit grey PNGs can take a palette (bit depth {ihdr[8]}, colour type {ihdr[9]})")
    if len(colours) > 256:
        raise PngPaletteError(f"a PNG palette holds at most 256 colours, not {len(colours)}")
    table = [*colours, *([fill] * (256 - len(colours)))]
    try:
        plte = bytes(v for rgb in table for v in rgb)
    except ValueError:
        raise PngPaletteError("palette colours are RGB values 0..255") from None
    if len(plte) != 768:
        raise PngPaletteError("palette colours are three values each")
    ihdr[9] = _PALETTE
    return png[:8] + _chunk(b"IHDR", bytes(ihdr)) + _chunk(b"PLTE", plte) + png[33:]
