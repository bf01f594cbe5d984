"""Training throughput in images/s for networks of different sizes, through the real training loop.

Each network trains for ``--steps`` optimizer steps on synthetic images held
in memory (random scenes; speed does not depend on the content), through
:func:`segstudio.training.engine.train` — the same batches, augmentation (on
the GPU on CUDA), loss with auxiliary outputs, AMP and optimizer as a real
run. The first ``--warmup`` steps (cuDNN autotuning, allocator growth) are
not timed. On CUDA the peak allocated memory is reported too.

    PYTHONPATH=. python benchmarks/train_throughput.py                           # fastscnn, linknet, deeplabv3_r50
    PYTHONPATH=. python benchmarks/train_throughput.py --device cpu --nets fastscnn --steps 4 --warmup 1 --crop 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_NETS = "fastscnn,linknet,deeplabv3_r50"
"""Small (1.2 M parameters, real-time), medium (11.5 M), large (68 M with its auxiliary head)."""


def synthetic_data(n: int, height: int, width: int, classes: int, seed: int = 0) -> Any:
    import numpy as np

    from segstudio.core.classes import ClassTable
    from segstudio.training.data import TrainData, make_sample

    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        label = rng.integers(0, classes, (height // 8 + 1, width // 8 + 1)).astype(np.uint8)
        label = np.kron(label, np.ones((8, 8), np.uint8))[:height, :width]
        samples.append(make_sample(f"synthetic{i}", image, np.ascontiguousarray(label)))
    return TrainData(ClassTable.from_names([f"class {k}" for k in range(classes)]), samples, source="synthetic")


def measure(arch: str, data: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from segstudio.training.config import TrainConfig
    from segstudio.training.engine import resolve_device, train

    device = resolve_device(args.device)
    cfg = TrainConfig(arch=arch, steps=args.warmup + args.steps, batch_size=args.batch_size,
                      crop_stages=((0.0, args.crop),), loss_stages=((0.0, "ce"),), device=str(device),
                      precision=args.precision, threads=args.threads, workers=args.workers, val_every_epochs=0.0,
                      output_dir=str(out / arch), checkpoint_every_s=1e9, log_every_s=1e9)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times: dict[int, float] = {}
    for ev in train(cfg, data):
        if ev.kind == "step":
            times[ev.step] = time.perf_counter()
    timed = args.steps
    seconds = times[args.warmup + args.steps] - times[args.warmup] if args.warmup else \
        times[args.steps] - times[1]
    if not args.warmup:
        timed -= 1
    row = {"network": arch, "device": str(device), "batch_size": args.batch_size, "crop": args.crop,
           "steps_timed": timed, "images_per_s": round(args.batch_size * timed / seconds, 2),
           "step_ms": round(1000 * seconds / timed, 1)}
    if device.type == "cuda":
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        row["gpu"] = torch.cuda.get_device_name(device)
    return row


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default=DEFAULT_NETS)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=512, help="square crop side (default 512)")
    ap.add_argument("--image-size", default="720x960", help="synthetic source images HxW (default 720x960)")
    ap.add_argument("--images", type=int, default=32, help="synthetic images in memory")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    import tempfile

    from segstudio.core.atomic import atomic_write_text

    h, w = (int(v) for v in args.image_size.lower().split("x"))
    data = synthetic_data(args.images, h, w, 11)
    rows = []
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        for arch in [n.strip() for n in args.nets.split(",") if n.strip()]:
            rows.append(measure(arch, data, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"training throughput: batch {args.batch_size}, {args.crop}² crops from {h}×{w} images, "
          f"{args.steps} timed steps after {args.warmup} warm-up, precision {args.precision}")
    print("| network | device | images/s | ms/step | peak GPU memory |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        mem = f"{r['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in r else "-"
        device = r.get("gpu", r["device"])
        print(f"| {r['network']} | {device} | {r['images_per_s']:.1f} | {r['step_ms']:.0f} | {mem} |")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
