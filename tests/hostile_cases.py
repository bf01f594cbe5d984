"""The cases of the bad-input corpus (run by tests/test_hostile_corpus.py): one per hostile file or fault.

Each case builds its hostile input in a fresh :class:`World` (a project of
three small images, a valid model file, a folder *outside* the project that
must never change) with the makers of :mod:`tests.hostile_files`, and says
how the core API and the CLI must answer it (:class:`Run`). Nothing is
checked in: every file is made here, in a temporary folder.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from segstudio.core.project import LOCK_FILE, Project
from tests import hostile_files as hf
from tests.hostile_world import (
    CASES,
    CLASSES,
    Case,
    H,
    Run,
    W,
    World,
    case,
    coco_file,
    export_run,
    full_disk,
    import_run,
    labelme_file,
    model_run,
    segment_run,
    valid_model_bytes,
)

__all__ = ["CASES", "Case", "Run", "World", "valid_model_bytes"]


# ------------------------------------------------------------------- RLE and COCO: sizes and counts


@case("rle", "counts whose int64 sum wraps around to the pixel count (was a segfault)")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": hf.rle_overflowing_int64(H * W)}),
                      None, "add up to")


@case("rle", "a count of 10**30 (was an OverflowError traceback)")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": [10**30]}), None, "add up to")


@case("rle", "size 60000×60000 on a 64×48 image (was 6.9 GB allocated)")
def _(w: World) -> Run:
    rle = {"size": [60000, 60000], "counts": [60000 * 60000]}
    return import_run(w, "coco", coco_file(w, rle), None, "the RLE is 60000×60000, the image 64×48")


@case("rle", "a compressed count that never ends")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": chr(48 + 0x20) * 30_000}), None,
                      "longer than 13 characters")


@case("rle", "negative counts")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": [-5, H * W + 5]}), None, "negative")


@case("rle", "a size that is not two integers")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": ["a", 3], "counts": [3]}), None, "two integers")


@case("rle", "more counts than pixels")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": [0] * 50_000 + [H * W]}), None,
                      "RLE counts for a mask of")


@case("rle", "characters no compressed RLE holds")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": "\x01\x02"}), None, "cannot appear")


@case("coco", "a category id that is a list")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, {"size": [H, W], "counts": [H * W]}, category_id=[1]), None,
                      "unknown category_id")


@case("coco", "a polygon of strings")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, [["x", "y", "z", 1, 2, 3]]), None, "flat list of x, y numbers")


@case("coco", "a polygon with a NaN coordinate")
def _(w: World) -> Run:
    return import_run(w, "coco", coco_file(w, [[1.0, 2.0, math.nan, 4.0, 5.0, 6.0]]), None, "finite")


# ------------------------------------------------------------------------------------ JSON nesting


@case("json-depth", "a COCO file nested 200 000 levels deep")
def _(w: World) -> Run:
    from segstudio.core.formats import FormatError

    source = w.file("incoming/coco.json", hf.deep_json(200_000))
    return import_run(w, "coco", source, FormatError, "nested 200000 levels deep", codes=(2,))


@case("json-depth", "a labelme file nested 200 000 levels deep")
def _(w: World) -> Run:
    w.file("incoming/labelme/a.json", hf.deep_json(200_000))
    return import_run(w, "labelme", w.src / "labelme", None, "nested 200000 levels deep")


@case("json-depth", "a project file nested 200 000 levels deep: refused, the backup offered")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectFileError

    with w.open_project() as project:
        project.set_classes(project.classes.added("extra"))  # a second save: the first version is the backup
    w.file("project/segstudio.json", hf.deep_json(200_000))
    run = export_run(w, ProjectFileError, "a backup exists", codes=(2,))
    run.api = lambda: Project.open(w.project)
    return run


@case("json-depth", "a model card nested 200 000 levels deep")
def _(w: World) -> Run:
    return model_run(w, hf.with_card_text(w.model_bytes, hf.deep_json(200_000)), "nested 200000 levels deep")


@case("json-depth", "a safetensors header nested 200 000 levels deep")
def _(w: World) -> Run:
    return model_run(w, hf.safetensors_with_header_text('{"x": ' + hf.deep_json(200_000) + "}"),
                     "nested 200001 levels deep")


# ------------------------------------------------------------------------------ labelme geometry


@case("labelme", "a circle of radius 1e300 imports whole (was a cv2.error half-way)")
def _(w: World) -> Run:
    source = labelme_file(w, [hf.shape("circle", [[10, 10], [1e300, 10]])])
    return import_run(w, "labelme", source, None, "imported 1 labels", ok=True, codes=(0,),
                      changes=("project/labels/a.png", "project/segstudio.json", "project/segstudio.json.bak"))


@case("labelme", "a circle centred at 1e300")
def _(w: World) -> Run:
    source = labelme_file(w, [hf.shape("circle", [[1e300, 1e300], [1e300, 0]])])
    return import_run(w, "labelme", source, None, "imported 1 labels", ok=True, codes=(0,),
                      changes=("project/labels/a.png", "project/segstudio.json", "project/segstudio.json.bak"))


@case("labelme", "a polygon with a NaN point")
def _(w: World) -> Run:
    return import_run(w, "labelme", labelme_file(w, [hf.shape("polygon", [[1, 2], [math.nan, 3], [4, 5]])]),
                      None, "no usable points")


@case("labelme", "a rectangle with one corner")
def _(w: World) -> Run:
    return import_run(w, "labelme", labelme_file(w, [hf.shape("rectangle", [[1, 2]])]), None, "two corners")


@case("labelme", "points that are not pairs")
def _(w: World) -> Run:
    return import_run(w, "labelme", labelme_file(w, [hf.shape("polygon", [["a"], {"b": 1}])]), None,
                      "not [x, y] pairs")


# ------------------------------------------------------------------------ mask sizes against the image


@case("mask-size", "an index mask whose header claims 60000×60000 (a decompression bomb)")
def _(w: World) -> Run:
    w.file("incoming/masks/a.png", hf.png_claiming(60000, 60000))
    return import_run(w, "index", w.src / "masks", None, "60000×60000 but a.png is 64×48")


@case("mask-size", "an index TIFF whose header claims 50000×50000")
def _(w: World) -> Run:
    w.file("incoming/masks/a.tif", hf.tiff_claiming(50000, 50000))
    return import_run(w, "index", w.src / "masks", None, "50000×50000 but a.png is 64×48")


@case("mask-size", "a project label whose header claims 60000×60000")
def _(w: World) -> Run:
    from segstudio.core.image_io import ImageReadError

    w.file("project/labels/a.png", hf.png_claiming(60000, 60000))
    run = export_run(w, None, "60000×60000 but its image is 64×48", codes=(1,))
    run.error, run.api = ImageReadError, lambda: Project.open(w.project, read_only=True).load_label("a.png")
    return run


@case("mask-size", "a label the size of another image")
def _(w: World) -> Run:
    from segstudio.core.image_io import ImageReadError

    w.file("project/labels/a.png", hf.index_png(np.zeros((10, 10), np.uint8)))
    run = export_run(w, None, "10×10 but its image is 64×48", codes=(1,))
    run.error, run.api = ImageReadError, lambda: Project.open(w.project, read_only=True).load_label("a.png")
    return run


# -------------------------------------------------------------------------------- label value range


@case("label-range", "a project label holding class 7 of 2")
def _(w: World) -> Run:
    from segstudio.core.image_io import ImageReadError

    mask = np.zeros((H, W), np.uint8)
    mask[5:9, 5:9] = 7
    w.file("project/labels/a.png", hf.index_png(mask))
    run = export_run(w, None, "mask values 7 (16 px) are not classes", codes=(1,))
    run.error, run.api = ImageReadError, lambda: Project.open(w.project, read_only=True).load_label("a.png")
    return run


@case("label-range", "an imported index mask holding class 9 of 2")
def _(w: World) -> Run:
    mask = np.full((H, W), 9, np.uint8)
    w.file("incoming/masks/a.png", hf.index_png(mask))
    return import_run(w, "index", w.src / "masks", None, "mask values 9")


# -------------------------------------------------------------------------------- regular files only


@case("regular-files", "an image that is a FIFO (was a hang)")
def _(w: World) -> Run:
    fifo = hf.make_fifo(w.root / "images" / "x.png")
    return segment_run(w, [fifo], w.model, None, "FIFO", codes=(1,))


@case("regular-files", "an image that links to /dev/zero (was endless reading)")
def _(w: World) -> Run:
    link = hf.link_to(w.root / "images" / "zero.png", "/dev/zero")
    return segment_run(w, [link], w.model, None, "character device", codes=(1,))


@case("regular-files", "a model file that is a FIFO")
def _(w: World) -> Run:
    from segstudio.inference.model_file import ModelFileError

    fifo = hf.make_fifo(w.root / "models" / "m.safetensors")
    run = segment_run(w, [w.project / "a.png"], fifo, ModelFileError, "FIFO", codes=(2,))
    return run


@case("regular-files", "a model file that links to /dev/zero")
def _(w: World) -> Run:
    from segstudio.inference.model_file import ModelFileError

    link = hf.link_to(w.root / "models" / "zero.onnx", "/dev/zero")
    return segment_run(w, [w.project / "a.png"], link, ModelFileError, "character device", codes=(2,))


@case("regular-files", "a project file that is a FIFO")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectFileError

    (w.project / "segstudio.json").unlink()
    hf.make_fifo(w.project / "segstudio.json")
    run = export_run(w, ProjectFileError, "FIFO", codes=(2,))
    run.api = lambda: Project.open(w.project)
    return run


@case("regular-files", "a project image that is a FIFO, listed in the project file (was a hang in import)")
def _(w: World) -> Run:
    (w.project / "a.png").unlink()
    hf.make_fifo(w.project / "a.png")
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    return import_run(w, "index", w.src / "masks", None, "FIFO")


@case("regular-files", "a COCO file that is a FIFO")
def _(w: World) -> Run:
    from segstudio.core.formats import FormatError

    return import_run(w, "coco", hf.make_fifo(w.src / "coco.json"), FormatError, "FIFO", codes=(2,))


@case("regular-files", "a mask to import that is a FIFO")
def _(w: World) -> Run:
    hf.make_fifo(w.src / "masks" / "a.png")
    return import_run(w, "index", w.src / "masks", None, "FIFO")


@case("regular-files", "a checkpoint to import that is a FIFO")
def _(w: World) -> Run:
    from segstudio.inference.checkpoint import CheckpointError, read_checkpoint

    fifo = hf.make_fifo(w.src / "weights.pt")
    return Run(["import-checkpoint", str(fifo), "--arch", "unet", "--classes", "a,b", "-o",
                str(w.root / "models" / "new.safetensors")], lambda: read_checkpoint(fifo), CheckpointError, "FIFO",
               codes=(2,))


@case("regular-files", "a lock file that is a FIFO")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectError

    hf.make_fifo(w.project / LOCK_FILE)
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    run = import_run(w, "index", w.src / "masks", ProjectError, "not a regular file", codes=(2,))
    run.api = w.open_project
    return run


# ------------------------------------------------------------------- paths kept inside the project


@case("paths", "labels/ links to a folder outside the project (was written there)")
def _(w: World) -> Run:
    hf.link_to(w.project / "labels", w.outside)
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    return import_run(w, "index", w.src / "masks", None, "outside the project folder")


@case("paths", "predictions/ links outside the project")
def _(w: World) -> Run:
    hf.link_to(w.project / "predictions", w.outside)
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    return import_run(w, "index", w.src / "masks", None, "outside the project folder",
                      options={"as_predictions": True}, extra=("--as-predictions",))


@case("paths", "one label file links to a file outside the project")
def _(w: World) -> Run:
    from segstudio.core.image_io import ImageReadError

    hf.link_to(w.project / "labels" / "a.png", w.outside / "precious.txt")
    run = export_run(w, None, "outside the project folder", codes=(1,))
    run.error, run.api = ImageReadError, lambda: Project.open(w.project, read_only=True).load_label("a.png")
    return run


@case("paths", "images/ (where copies go) links outside the project")
def _(w: World) -> Run:
    from segstudio.core.project import OutsideProjectError

    hf.link_to(w.project / "images", w.outside)
    extra_images = w.root / "more"
    extra_images.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(extra_images / "d.png")
    w.file("incoming/masks/d.png", hf.index_png(np.zeros((H, W), np.uint8)))

    def api() -> Any:
        with w.open_project() as project:
            return project.add_images([extra_images / "d.png"], copy_outside=True)

    return Run(["import", "index", str(w.src / "masks"), str(w.project), "--images", str(extra_images)], api,
               OutsideProjectError, "outside the project folder", codes=(2,))


@case("paths", "a project file naming an image above the folder")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectFileError

    text = (w.project / "segstudio.json").read_text().replace('"path": "a.png"', '"path": "../outside/x.png"')
    w.file("project/segstudio.json", text)
    run = export_run(w, ProjectFileError, "escapes the project folder", codes=(2,))
    run.api = lambda: Project.open(w.project)
    return run


@case("paths", "a project file naming an absolute image path")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectFileError

    text = (w.project / "segstudio.json").read_text().replace('"path": "a.png"', '"path": "/etc/passwd"')
    w.file("project/segstudio.json", text)
    run = export_run(w, ProjectFileError, "is absolute", codes=(2,))
    run.api = lambda: Project.open(w.project)
    return run


@case("paths", "a lock file that links outside the project")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectError

    hf.link_to(w.project / LOCK_FILE, w.outside / "precious.txt")
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    run = import_run(w, "index", w.src / "masks", ProjectError, "symbolic link", codes=(2,))
    run.api = w.open_project
    return run


# -------------------------------------------------------------- model files: bounds before allocation


@case("model", "a card asking for base_width=6000 on a small file (was 20.7 GB)")
def _(w: World) -> Run:
    return model_run(w, hf.with_card(w.model_bytes, {}, {"base_width": 6000}), "do not fit the card's unet")


@case("model", "a card asking for base_width=200000 (was a raw allocator message)")
def _(w: World) -> Run:
    return model_run(w, hf.with_card(w.model_bytes, {}, {"base_width": 200000}), "do not fit the card's unet")


@case("model", "a card with std=0 (was NaN output with exit status 0)")
def _(w: World) -> Run:
    norm = {"mean": [0.5, 0.5, 0.5], "std": [0.0, 0.2, 0.2], "input_max": 255}
    return model_run(w, hf.with_card(w.model_bytes, {"normalization": norm}), "std must be positive")


@case("model", "a card with a NaN mean")
def _(w: World) -> Run:
    norm = {"mean": [math.nan, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}
    return model_run(w, hf.with_card(w.model_bytes, {"normalization": norm}), "finite numbers")


@case("model", "a card with 1000 input channels")
def _(w: World) -> Run:
    return model_run(w, hf.with_card(w.model_bytes, {"in_channels": 1000}), "1000 input channels")


@case("model", "a card with input_max 0")
def _(w: World) -> Run:
    norm = {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "input_max": 0}
    return model_run(w, hf.with_card(w.model_bytes, {"normalization": norm}), "no image depth")


@case("model", "a card without classes")
def _(w: World) -> Run:
    return model_run(w, hf.with_card(w.model_bytes, {"classes": []}), "lists no class")


@case("model", "an MSA card asking for inference at 64× scale")
def _(w: World) -> Run:
    card = {"arch": "msa", "options": {"base": "unet", "base_options": {"base_width": 4}, "scales": [1.0, 64.0]}}
    return model_run(w, hf.with_card(w.model_bytes, card), "scales above 4")


@case("model", "a card whose options break the network's constructor (negative width)")
def _(w: World) -> Run:
    return model_run(w, hf.with_card(w.model_bytes, {}, {"base_width": -5}), "cannot build")


@case("model", "a card whose metric value is text (broke `segstudio models`)")
def _(w: World) -> Run:
    metrics = [{"name": "mIoU", "value": "excellent", "data": "trust me"}]
    return model_run(w, hf.with_card(w.model_bytes, {"metrics": metrics}), "value that is no number")


@case("model", "a tensor whose offsets lie past the end of the file")
def _(w: World) -> Run:
    return model_run(w, hf.with_tensor(w.model_bytes, {"data_offsets": [0, 1 << 40]}), "outside the file's data")


@case("model", "a tensor whose shape needs more bytes than it has")
def _(w: World) -> Run:
    return model_run(w, hf.with_tensor(w.model_bytes, {"shape": [100000, 100000, 100]}),
                     "bytes; the file gives it")


@case("model", "a tensor of an unknown dtype")
def _(w: World) -> Run:
    return model_run(w, hf.with_tensor(w.model_bytes, {"dtype": "F1024"}), "unknown dtype")


@case("model", "a header length larger than the file")
def _(w: World) -> Run:
    return model_run(w, hf.header_longer_than_file(w.model_bytes), "not a model file")


@case("model", "an ONNX file with an operator of an unknown domain (was a traceback)")
def _(w: World) -> Run:
    from segstudio.inference.model_file import ModelFileError
    from segstudio.inference.onnx_backend import OnnxBackend

    path = w.file("models/custom.onnx", hf.onnx_with_custom_op())
    run = segment_run(w, [w.project / "a.png"], path, ModelFileError, "ONNX Runtime cannot run it", codes=(2,))
    run.cli[-4:] = ["--backend", "onnx", "--classes", "background,foreground"]
    run.api = lambda: OnnxBackend(path)
    return run


@case("model", "an ONNX file of random bytes")
def _(w: World) -> Run:
    from segstudio.inference.model_file import load_card

    path = w.file("models/garbage.onnx", b"\x0f" * 4096)  # field 1 with wire type 7: no protobuf at all
    run = segment_run(w, [w.project / "a.png"], path, None, "not a readable ONNX file", codes=(2,))
    from segstudio.inference.model_file import ModelFileError

    run.error, run.api = ModelFileError, lambda: load_card(path)
    return run


# -------------------------------------------------------------------- writers, outputs, faults


@case("writers", "a project open in another window (two writers lost 33 of 300 updates)")
def _(w: World) -> Run:
    from segstudio.core.project import ProjectLockedError

    w.hold_lock()
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    run = import_run(w, "index", w.src / "masks", ProjectLockedError, "open in another segstudio window",
                     codes=(2,))
    run.api = w.open_project
    return run


@case("writers", "a batch folder holding another model's results (was silently mixed)")
def _(w: World) -> Run:
    from segstudio.inference.batch import segment_folder
    from segstudio.inference.batch_record import OtherModelError
    from segstudio.inference.predictor import Predictor

    other = w.file("models/other.safetensors", hf.with_card(w.model_bytes, {"name": "other"}))
    inputs = [w.project / "a.png"]
    list(segment_folder(inputs, w.out, Predictor.from_file(other, backend="torch", device="cpu")))
    return segment_run(w, inputs, w.model, OtherModelError, "--overwrite", codes=(2,))


@case("writers", "a full disk while labels are imported")
def _(w: World) -> Run:
    w.file("incoming/masks/a.png", hf.index_png(np.zeros((H, W), np.uint8)))
    return import_run(w, "index", w.src / "masks", None, "No space left on device", fault=full_disk)


@case("writers", "a full disk while a class is added")
def _(w: World) -> Run:
    from segstudio.core.atomic import SaveError

    def api() -> Any:
        with w.open_project() as project:
            try:
                project.set_classes(project.classes.added("extra"))
            finally:
                assert project.classes.names == CLASSES  # rolled back in memory too

    return Run(["import", "index", str(w.src), str(w.project), "--classes", "x,y,z"], api, SaveError,
               "No space left on device", codes=(2,), fault=full_disk)
