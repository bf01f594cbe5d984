"""Train a network from scratch on CamVid (SegNet split, 360×480, 11 classes, void ignored); report val mIoU.

The recipe (``segstudio.training.config.scratch_recipe``, the seed's advice):
focal + Dice loss, then Dice alone for the last 20 % of the run; median-frequency
class weights; progressive crops 256 → 384 → the full 360×480 image (padded
to the network's size multiple); random scale 0.5–2, horizontal flip,
photometric jitter; AdamW (lr 2e-3, weight decay 1e-4), 5 % warm-up then
poly decay; gradient clipping at 5; on CUDA bf16 autocast, channels_last and
augmentation on the GPU. Validation on the 101 val images every
``--val-every`` epochs; the best weights are kept.

A long schedule runs as a series of short commands: ``--minutes`` ends this
command with a checkpoint, ``--resume`` continues it (the schedule is set by
``--epochs`` and is not shortened by ``--minutes``). The wall time reported is
the sum over all sessions.

    PYTHONPATH=. python benchmarks/train_camvid.py --net fastscnn --epochs 600 --minutes 9 -o runs/camvid-fastscnn
    PYTHONPATH=. python benchmarks/train_camvid.py --net fastscnn --epochs 600 --minutes 9 \
        -o runs/camvid-fastscnn --resume
    PYTHONPATH=. python benchmarks/train_camvid.py --device cpu --limit 4 --epochs 1 --crop 64 --batch-size 2  # tiny
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def camvid_root(given: str | None) -> Path:
    root = Path(given or os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data")) / "camvid"
    if not (root / "train").is_dir():
        raise SystemExit(f"CamVid not found in {root} (give --data or set SEGSTUDIO_DATA)")
    return root


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding camvid/ (default $SEGSTUDIO_DATA)")
    ap.add_argument("--net", default="fastscnn", help="zoo network (default fastscnn)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="network option")
    ap.add_argument("--epochs", type=float, help="length of the schedule (default 600, or none with --budget-minutes)")
    ap.add_argument("--budget-minutes", type=float,
                    help="wall-time length of the whole run (all sessions): the schedule decays to end with it")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--crop", default="256,384,full", help="progressive crop sides, 'full' = whole image")
    ap.add_argument("--val-every", type=float, default=10.0, help="validate every so many epochs (default 10)")
    ap.add_argument("--ema", type=float, help="EMA decay of the weights (off by default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="auto: bf16/fp16 on CUDA, fp32 on the CPU; bf16 also on a CPU with native bf16")
    ap.add_argument("--channels-last", action="store_true", help="NHWC layout on the CPU too (always on CUDA)")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--workers", type=int, default=2, help="CPU augmentation threads (CPU runs only)")
    ap.add_argument("--minutes", type=float, help="end this session after so long with a checkpoint")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    ap.add_argument("--limit", type=int, help="only the first N train and val images (quick tries, tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", default=None, help="output folder (default runs/camvid-<net>)")
    ap.add_argument("--json", help="write the result to this JSON file as well")
    return ap


def crop_stages(text: str) -> tuple[tuple[float, int], ...]:
    sizes = [0 if s.strip() == "full" else int(s) for s in text.split(",")]
    return tuple((i / len(sizes), s) for i, s in enumerate(sizes))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    import torch

    from segstudio.core.atomic import atomic_write_text
    from segstudio.inference.model_file import load_card
    from segstudio.training.config import scratch_recipe
    from segstudio.training.data import FolderData
    from segstudio.training.engine import train

    root = camvid_root(args.data)
    out = Path(args.out or f"runs/camvid-{args.net}")
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
    if args.epochs is None and args.budget_minutes is None:
        args.epochs = 600.0
    budget_s = args.budget_minutes * 60 if args.budget_minutes else None
    cfg = scratch_recipe(args.net, args.epochs, max_seconds=budget_s, options=options,
                         batch_size=args.batch_size, lr=args.lr,
                         crop_stages=crop_stages(args.crop), val_every_epochs=args.val_every, ema_decay=args.ema,
                         device=args.device, precision=args.precision, threads=args.threads, workers=args.workers,
                         channels_last=True if args.channels_last else None,
                         seed=args.seed, output_dir=str(out), model_name=f"camvid-{args.net}", resume=args.resume,
                         session_seconds=args.minutes * 60 if args.minutes else None, checkpoint_every_s=120.0)
    spec = FolderData(str(root / "train"), str(root / "trainannot"), classes=("camvid",), value_map=("11=void",),
                      val_images=str(root / "val"), val_masks=str(root / "valannot"), limit=args.limit)
    t0 = time.perf_counter()
    last = None
    for ev in train(cfg, spec):
        last = ev
        if ev.kind == "validated":
            print(f"epoch {ev.epoch:6.1f}  step {ev.step:6d}  val mIoU {ev.val_miou:.4f}  best {ev.best_miou:.4f}  "
                  f"{ev.images_per_s or 0:.1f} img/s  total {ev.elapsed_s / 60:.1f} min", flush=True)
        elif ev.kind in ("started", "stopped", "cancelled", "finished"):
            print(f"{ev.kind}: {ev.message}", flush=True)
    assert last is not None
    result: dict[str, Any] = {
        "network": args.net, "options": options, "status": last.kind, "epochs_done": round(last.epoch, 2),
        "epochs_planned": args.epochs, "steps": last.step, "batch_size": args.batch_size,
        "best_val_miou": last.best_miou, "wall_s_total": round(last.elapsed_s, 1),
        "wall_s_session": round(time.perf_counter() - t0, 1), "images_per_s": last.images_per_s,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "model": last.model_path,
    }
    if last.kind == "finished" and last.model_path:
        card = load_card(last.model_path)
        if card.metrics:
            result["per_class_iou"] = next((m["per_class"] for m in reversed(card.metrics) if m.get("per_class")),
                                           None)
    print()
    print("| network | status | epochs | steps | wall (all sessions) | img/s | best val mIoU | device |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    miou = f"{result['best_val_miou']:.4f}" if result["best_val_miou"] is not None else "-"
    print(f"| {args.net} | {last.kind} | {result['epochs_done']:.1f}/{args.epochs or 0:g} | {last.step} | "
          f"{result['wall_s_total'] / 60:.1f} min | {result['images_per_s'] or 0:.1f} | {miou} | {result['device']} |")
    if result.get("per_class_iou"):
        print("per-class IoU: " + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -"
                                            for k, v in result["per_class_iou"].items()))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
