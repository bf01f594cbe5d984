"""Makers of hostile files, for the bad-input corpus and the memory checks: nothing here is checked in.

Each function returns bytes (or writes a file) crafted as an attacker would:
headers that lie about sizes, JSON nested a million levels deep, model files
whose card asks for a network far larger than its weights, FIFOs and devices
where files are expected.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int, colour_type: int = 0, bit_depth: int = 8) -> bytes:
    """A PNG whose header claims ``width``×``height`` but whose data is a few bytes: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose single page claims ``width``×``height`` 8-bit pixels, with 8 bytes of data."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    ifd_offset = 16
    body = struct.pack("<2sHI", b"II", 42, ifd_offset) + b"\0" * 8
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return body + ifd + struct.pack("<I", 0)


def deep_json(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep: ``[[[…]]]``."""
    return "[" * depth + "]" * depth


def make_fifo(path: Path) -> Path:
    """A named pipe at ``path``: reading it blocks until a writer appears (for ever, here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def link_to(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def safetensors_bytes(header: dict[str, Any], data: bytes) -> bytes:
    text = json.dumps(header).encode("utf-8")
    return struct.pack("<Q", len(text)) + text + data


def safetensors_with_header_text(text: str) -> bytes:
    """A safetensors file whose header is ``text`` as it is (e.g. nested JSON), with no tensor data."""
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def split_safetensors(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, data) of a safetensors file."""
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def with_card(raw: bytes, change: dict[str, Any], options: dict[str, Any] | None = None) -> bytes:
    """A model file whose card has ``change`` applied (and ``options`` merged into its options)."""
    from segstudio.zoo import CARD_KEY

    header, data = split_safetensors(raw)
    card = json.loads(header["__metadata__"][CARD_KEY])
    card.update(change)
    if options:
        card["options"] = {**card.get("options", {}), **options}
    header["__metadata__"][CARD_KEY] = json.dumps(card)
    return safetensors_bytes(header, data)


def with_card_text(raw: bytes, text: str) -> bytes:
    from segstudio.zoo import CARD_KEY

    header, data = split_safetensors(raw)
    header["__metadata__"][CARD_KEY] = text
    return safetensors_bytes(header, data)


def with_tensor(raw: bytes, change: dict[str, Any]) -> bytes:
    """A model file whose first tensor's header entry has ``change`` applied."""
    header, data = split_safetensors(raw)
    first = next(k for k in header if k != "__metadata__")
    header[first] = {**header[first], **change}
    return safetensors_bytes(header, data)


def header_longer_than_file(raw: bytes) -> bytes:
    return struct.pack("<Q", 1 << 40) + raw[8:]


def onnx_with_custom_op() -> bytes:
    """An ONNX graph using an operator of a domain ONNX Runtime does not know."""
    from onnx import TensorProto, helper

    node = helper.make_node("StealSecrets", ["x"], ["y"], domain="com.attacker")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.attacker", 1)])
    return model.SerializeToString()


def coco_document(file_name: str, width: int, height: int, segmentation: Any, category_id: Any = 1
                  ) -> dict[str, Any]:
    return {"images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": category_id, "segmentation": segmentation}],
            "categories": [{"id": 1, "name": "foreground"}]}


def labelme_document(image: str, width: int, height: int, shapes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "5.5.0", "shapes": shapes, "imagePath": image, "imageData": None,
            "imageHeight": height, "imageWidth": width}


def shape(kind: str, points: list[list[float]], label: str = "foreground") -> dict[str, Any]:
    return {"label": label, "points": points, "shape_type": kind}


def rle_overflowing_int64(pixels: int) -> list[int]:
    """Counts whose int64 sum wraps around to exactly ``pixels`` (each count fits int64 on its own)."""
    return [pixels] + [1 << 62] * 4


def index_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", mask)
    assert ok
    return buf.tobytes()
