"""Label I/O and metrics speed on 4096×4096 masks: PNG save/load, the project's save_label/load_label, mIoU.

Usage::

    PYTHONPATH=. python benchmarks/io_speed.py [--size 4096] [--repeats 5]

The label is a realistic one (smooth regions of 11 classes with a band of
not-labelled pixels, as a user's corrections look), plus a worst case of
per-pixel noise for the PNG rows. Prints a Markdown table (median and best of
``--repeats`` runs) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.image_io import encode_mask_png, read_mask, write_mask
from segstudio.core.metrics import SegMetrics, confusion_matrix, mean_iou
from segstudio.core.project import Project


def realistic_mask(size: int, classes: int = 11, seed: int = 0) -> np.ndarray:
    """Smooth regions (blurred noise quantised into classes) and 5% not-labelled rows."""
    rng = np.random.default_rng(seed)
    small = cv2.GaussianBlur(rng.random((size // 8, size // 8)).astype(np.float32), (0, 0), 3)
    levels = np.quantile(small, np.linspace(0, 1, classes + 1)[1:-1])
    coarse = np.digitize(small, levels).astype(np.uint8)
    mask = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST)
    mask[: size // 20] = 255
    return mask


def prediction_like(truth: np.ndarray, classes: int = 11, seed: int = 1) -> np.ndarray:
    """A prediction that agrees with ``truth`` on most pixels: shifted edges plus scattered errors."""
    rng = np.random.default_rng(seed)
    pred = np.roll(truth, 3, axis=1).copy()
    pred[pred == 255] = 0
    noise = rng.random(truth.shape) < 0.02
    pred[noise] = rng.integers(0, classes, int(noise.sum()), dtype=np.uint8)
    return pred


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, best) wall time in milliseconds; one untimed warm-up run first."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096, help="mask side in pixels (default 4096)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (default 5)")
    args = parser.parse_args(argv)
    n = args.size
    truth = realistic_mask(n)
    pred = prediction_like(truth)
    noise = np.random.default_rng(2).integers(0, 11, (n, n), dtype=np.uint8)
    rows: list[tuple[str, float, float, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, mask in (("realistic", truth), ("noise (worst case)", noise)):
            path = folder / f"{name[:5]}.png"
            write_mask(path, mask)
            size_kb = f"{path.stat().st_size / 1024:,.0f} KiB"
            rows.append((f"save label PNG, {name} (encode + fsync + rename)",
                         *timed(lambda m=mask, p=path: write_mask(p, m), args.repeats), size_kb))  # type: ignore[misc]
            rows.append((f"load label PNG, {name}", *timed(lambda p=path: read_mask(p), args.repeats), size_kb))
        Image.fromarray(np.zeros((n, n), np.uint8)).save(folder / "image.png")
        project = Project.create(folder, images=[folder / "image.png"], classes=ClassTable.camvid())
        rows.append(("Project.save_label (checks values and size, then saves)",
                     *timed(lambda: project.save_label("image.png", truth), args.repeats), ""))
        rows.append(("Project.load_label", *timed(lambda: project.load_label("image.png"), args.repeats), ""))
        rows.append(("encode only (PNG, compression 1)", *timed(lambda: encode_mask_png(truth), args.repeats),
                     f"{len(encode_mask_png(truth)) / 1024:,.0f} KiB"))

    rows.append(("confusion matrix + mIoU, uint8 (one bincount)",
                 *timed(lambda: mean_iou(confusion_matrix(pred, truth, 11)), args.repeats), ""))
    pred16, truth16 = pred.astype(np.int32), truth.astype(np.int32)
    rows.append(("confusion matrix + mIoU, int32 masks (general path)",
                 *timed(lambda: mean_iou(confusion_matrix(pred16, truth16, 11)), args.repeats), ""))
    metrics = SegMetrics(11)
    metrics.update(pred, truth)

    print(f"## Label I/O and metrics on {n}×{n} masks\n")
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPU cores; Python {platform.python_version()}, "
          f"numpy {np.__version__}, OpenCV {cv2.__version__}; {args.repeats} runs per row\n")
    print("| operation | median ms | best ms | file |")
    print("| --- | ---: | ---: | --- |")
    for name, med, best, extra in rows:
        print(f"| {name} | {med:,.0f} | {best:,.0f} | {extra} |")
    print(f"\nmIoU of the synthetic prediction: {metrics.miou:.4f} (pixel accuracy {metrics.pixel_accuracy:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
