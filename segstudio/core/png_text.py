"""Text chunks in PNG files: a small record (key, value) carried inside the image itself.

:func:`with_text` puts a ``tEXt`` chunk right after the header of encoded PNG
bytes (so it is found without reading the pixels); :func:`read_text` reads
the text chunks that come before the image data. Used to record which model
made a batch output, so that the record can never be separated from it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from segstudio.core.regular_file import open_regular

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEAD_BYTES = 64 * 1024


class PngTextError(ValueError):
    """Bytes that are not a PNG with a header chunk, or a key/value PNG text cannot hold."""


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def with_text(png: bytes, key: str, value: str) -> bytes:
    """``png`` with a ``tEXt`` chunk ``key: value`` after its IHDR chunk (Latin-1 text, key 1–79 characters)."""
    if not png.startswith(_SIGNATURE) or png[12:16] != b"IHDR":
        raise PngTextError("not PNG data with a header chunk")
    try:
        k, v = key.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise PngTextError("PNG text is Latin-1") from None
    if not 1 <= len(k) <= 79 or b"\x00" in k or b"\x00" in v:
        raise PngTextError(f"{key!r} cannot be a PNG text key")
    end_of_ihdr = 8 + 12 + int.from_bytes(png[8:12], "big")
    return png[:end_of_ihdr] + _chunk(b"tEXt", k + b"\x00" + v) + png[end_of_ihdr:]


def read_text(path: Path | str) -> dict[str, str]:
    """The ``tEXt`` chunks before the image data of a PNG file (empty when there are none or it is no PNG)."""
    try:
        with open_regular(path) as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return {}
    if not head.startswith(_SIGNATURE):
        return {}
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(head):
        length = int.from_bytes(head[pos:pos + 4], "big")
        kind = head[pos + 4:pos + 8]
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"tEXt" and pos + 8 + length <= len(head):
            key, _, value = head[pos + 8:pos + 8 + length].partition(b"\x00")
            found[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return found
