"""Run hostile headers under a memory limit and report each one's peak: ``python -m tests.memory_probe [CASE…]``.

Run by tests/test_memory_bounds.py in a subprocess. Before each case the
address space is limited to what it is then plus 1 GiB (``resource.RLIMIT_AS``;
measured per case, since a C decoder may keep what it reserved on an error
path), so a regression fails with a MemoryError instead of taking the machine;
the peak resident size is reset (``/proc/self/clear_refs``), and after the case
the peak (``VmHWM``) is printed with the error it raised, one JSON line per
case. Linux only.
"""

from __future__ import annotations

import io
import json
import resource
import struct
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests import hostile_files as hf

LIMIT_ABOVE_BASELINE = 1 << 30
WORK = Path(tempfile.mkdtemp(prefix="segstudio-memory-"))


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _file(name: str, data: bytes | str) -> Path:
    path = WORK / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _model_bytes() -> bytes:
    from tests.hostile_world import valid_model_bytes

    folder = WORK / "valid"
    folder.mkdir(exist_ok=True)
    return valid_model_bytes(folder)


def _lying_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _lying_webp(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    at = data.index(b"VP8L") + 9
    rest = int.from_bytes(data[at:at + 4], "little") & ~((1 << 28) - 1)
    data[at:at + 4] = ((width - 1) | ((height - 1) << 14) | rest).to_bytes(4, "little")
    return bytes(data)


def _project(size: int = 512) -> Path:
    from segstudio.core.classes import ClassTable
    from segstudio.core.project import Project

    root = WORK / f"project{size}"
    if not root.exists():
        root.mkdir()
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(root / "a.png")
        Project.create(root, classes=ClassTable.from_names(["background", "foreground"])).close()
    return root


def read_image(data: bytes, name: str) -> Callable[[], object]:
    from segstudio.core.image_io import read_image as read

    return lambda: read(_file(name, data))


def coco_import(segmentation: object) -> Callable[[], object]:
    def run() -> object:
        from segstudio.core.formats import ImportOptions, get_format
        from segstudio.core.project import Project

        root = _project()
        source = _file("coco.json", json.dumps(hf.coco_document("a.png", 512, 512, segmentation)))
        with Project.open(root) as project:
            report = get_format("coco").import_project(project, source, ImportOptions(overwrite=True))
        if report.errors:
            raise ValueError(report.errors[0][1])
        return report
    return run


def load_model(data: bytes) -> Callable[[], object]:
    def run() -> object:
        from segstudio.inference.model_file import load_model as load

        return load(_file("hostile.safetensors", data))
    return run


def _cases() -> dict[str, Callable[[], object]]:
    model = _model_bytes()
    many_classes = [{"index": i, "name": f"c{i}", "colour": [0, 0, 0]} for i in range(100_000)]

    def deep_project() -> object:
        from segstudio.core.project import Project

        root = WORK / "deep"
        root.mkdir(exist_ok=True)
        (root / "segstudio.json").write_text(hf.deep_json(1_000_000))
        return Project.open(root)

    def mask_bomb(shape: tuple[int, int] | None) -> Callable[[], object]:
        from segstudio.core.image_io import read_mask

        return lambda: read_mask(_file("mask.png", hf.png_claiming(60000, 60000)), shape)

    def rle_decode(rle: dict[str, object], shape: tuple[int, int] | None) -> Callable[[], object]:
        from segstudio.core.formats.rle import decode

        return lambda: decode(rle, shape)

    def onnx_custom_op() -> object:
        from segstudio.inference.onnx_backend import OnnxBackend

        return OnnxBackend(_file("custom.onnx", hf.onnx_with_custom_op()))

    def labelme_circle() -> object:
        from segstudio.core.formats import labelme

        doc = hf.labelme_document("a.png", 4096, 4096, [hf.shape("circle", [[10, 10], [1e300, 10]])])
        return labelme.document_to_mask(doc, (4096, 4096), {"foreground": 1}, 255, np.uint8)

    return {
        "png-claiming-100000x100000": read_image(hf.png_claiming(100000, 100000, colour_type=2), "big.png"),
        "png-claiming-15000x15000": read_image(hf.png_claiming(15000, 15000, colour_type=2), "lie.png"),
        "jpeg-claiming-15000x15000": read_image(_lying_jpeg(15000, 15000), "lie.jpg"),
        "webp-claiming-15000x15000": read_image(_lying_webp(15000, 15000), "lie.webp"),
        "tiff-claiming-50000x50000": read_image(hf.tiff_claiming(50000, 50000), "lie.tif"),
        "tiff-claiming-15000x15000": read_image(hf.tiff_claiming(15000, 15000), "lie2.tif"),
        "mask-claiming-60000x60000-for-512x512": mask_bomb((512, 512)),
        "mask-claiming-60000x60000": mask_bomb(None),
        "rle-size-60000x60000-for-512x512": rle_decode({"size": [60000, 60000], "counts": [60000 * 60000]},
                                                       (512, 512)),
        "rle-size-60000x60000": rle_decode({"size": [60000, 60000], "counts": [60000 * 60000]}, None),
        "rle-counts-overflowing-int64": rle_decode({"size": [512, 512], "counts": hf.rle_overflowing_int64(512 * 512)},
                                                   None),
        "coco-rle-60000x60000": coco_import({"size": [60000, 60000], "counts": [60000 * 60000]}),
        "coco-json-nested-1000000-deep": lambda: _coco_deep(),
        "project-file-nested-1000000-deep": deep_project,
        "model-card-base_width-6000": load_model(hf.with_card(model, {}, {"base_width": 6000})),
        "model-card-base_width-200000": load_model(hf.with_card(model, {}, {"base_width": 200000})),
        "model-card-100000-classes": load_model(hf.with_card(model, {"classes": many_classes})),
        "model-tensor-shape-1e12": load_model(hf.with_tensor(model, {"shape": [100000, 100000, 100]})),
        "model-header-length-1TB": load_model(hf.header_longer_than_file(model)),
        "onnx-custom-op": onnx_custom_op,
        "labelme-circle-radius-1e300": labelme_circle,
    }


def _coco_deep() -> object:
    from segstudio.core.formats import ImportOptions, get_format
    from segstudio.core.project import Project

    source = _file("deep.json", hf.deep_json(1_000_000))
    with Project.open(_project()) as project:
        return get_format("coco").import_project(project, source, ImportOptions())


def main(names: list[str]) -> None:
    import torch  # noqa: F401 - the baseline includes what a real run has loaded

    cases = _cases()
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    clear = Path("/proc/self/clear_refs")
    for name in names or list(cases):
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, hard))
        baseline = _status_mb("VmSize")
        limit = int(baseline * (1 << 20)) + LIMIT_ABOVE_BASELINE
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        try:
            clear.write_text("5")  # reset the peak resident size
            reset = True
        except OSError:
            reset = False
        try:
            cases[name]()
            error, message = None, ""
        except MemoryError:
            error, message = "MemoryError", traceback.format_exc(limit=3)
        except Exception as exc:
            error, message = type(exc).__name__, str(exc)[:300]
        print(json.dumps({"case": name, "error": error, "message": message, "peak_mb": _status_mb("VmHWM"),
                          "peak_reset": reset, "baseline_vm_mb": baseline}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
