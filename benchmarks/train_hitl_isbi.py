"""Human-in-the-loop benchmark on ISBI-2012 EM slices, on the CPU: fine-tune for a fixed wall time.

The user has corrected slices 00–04 (2 classes: 0 → membrane, 255 → cell) —
completely (``full``) or with scattered clicks only (``sparse``: 2 % of each
slice's pixels drawn at random from the true mask, the rest not labelled).
The network is trained on them for at most ``--seconds`` of wall time (the
whole ``train()`` call: reading the masks from disk, training, the final
evaluation on the training slices and writing the model file), then scored on
slices 05–19 (mIoU over membrane and cell; outside the budget).

The bar is an ilastik-style random forest on a Gaussian / Laplacian-of-Gaussian
/ gradient-magnitude / Hessian-eigenvalue filter bank, fitted on the same
slices in the same run (``--rf``; needs scikit-learn and SciPy, a
benchmark-only dependency).

Because the CPU may be shared, every row reports the load average before and
after, and the CPU time the run got (CPU s / wall s ≈ cores actually used).

    PYTHONPATH=. python benchmarks/train_hitl_isbi.py                 # the suggestion, 1 thread, both settings
    PYTHONPATH=. python benchmarks/train_hitl_isbi.py --threads 1,2 --rf --json hitl.json
    PYTHONPATH=. python benchmarks/train_hitl_isbi.py --nets unet:base_width=8,unet:base_width=16,linknet
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: a shared CPU needs its cores

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAIN_SLICES = range(0, 5)
TEST_SLICES = range(5, 20)
CLASSES = ("membrane", "cell")


def data_root(given: str | None) -> Path:
    root = Path(given or os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data")) / "isbi-membrane"
    if not (root / "image").is_dir():
        raise SystemExit(f"ISBI slices not found in {root} (give --data or set SEGSTUDIO_DATA)")
    return root


def read_slice(root: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(image H×W uint8, label H×W uint8 with 0 = membrane, 1 = cell)."""
    from segstudio.core.image_io import read_image, read_mask

    image = read_image(root / "image" / f"{i:02d}.png").data[:, :, 0]
    label = (read_mask(root / "label" / f"{i:02d}.png") > 127).astype(np.uint8)
    return image, label


def prepare_folders(root: Path, fraction: float, seed: int, work: Path) -> dict[str, tuple[Path, Path]]:
    """Image and mask folders holding only the training slices, as a user's folders would.

    ``full``: the original masks (0/255); ``sparse``: index masks (0 membrane, 1 cell, 255 not labelled)
    keeping ``fraction`` of each slice's pixels, drawn at random.
    """
    import shutil

    from segstudio.core.image_io import write_mask
    from segstudio.training.data import sparsify

    images, full, sparse = work / "image", work / "label", work / "sparse"
    for d in (images, full, sparse):
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in TRAIN_SLICES:
        shutil.copy(root / "image" / f"{i:02d}.png", images)
        shutil.copy(root / "label" / f"{i:02d}.png", full)
        _, label = read_slice(root, i)
        write_mask(sparse / f"{i:02d}.png", sparsify(label, fraction, rng))
    return {"full": (images, full), "sparse": (images, sparse)}


def load_now() -> float:
    return os.getloadavg()[0]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def parse_net(text: str) -> tuple[str, dict[str, Any]]:
    """``unet:base_width=8`` → ("unet", {"base_width": 8}); several options joined with ``+``."""
    arch, _, rest = text.partition(":")
    opts: dict[str, Any] = {}
    for item in filter(None, rest.split("+")):
        key, _, value = item.partition("=")
        opts[key] = int(value) if value.lstrip("-").isdigit() else value
    return arch, opts


def score(predictor: Any, root: Path) -> tuple[float, dict[str, float | None]]:
    """mIoU and per-class IoU on slices 05–19 through the app's predictor."""
    from segstudio.core.metrics import SegMetrics

    m = SegMetrics(2)
    for i in TEST_SLICES:
        image, label = read_slice(root, i)
        m.update(predictor.predict(image).labels, label)
    d = m.as_dict(list(CLASSES))
    return float(d["miou"]), d["per_class_iou"]


def run_finetune(root: Path, setting: str, folders: tuple[Path, Path], arch: str, options: dict[str, Any],
                 threads: int, seconds: float, init: str | None, seed: int, out_dir: Path,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    import torch

    from segstudio import nets
    from segstudio.core.classes import ClassTable
    from segstudio.inference.model_file import load_card
    from segstudio.inference.predictor import Predictor
    from segstudio.training.config import small_data_recipe
    from segstudio.training.data import FolderData
    from segstudio.training.engine import train
    from segstudio.zoo import ModelCard, get_spec

    torch.set_num_threads(threads)
    settings: dict[str, Any] = {"arch": arch, "options": options, "threads": threads, "seed": seed,
                                "output_dir": str(out_dir), "model_name": f"{arch}-{setting}", **overrides}
    if init:
        settings["init_model"] = init
    cfg = small_data_recipe(seconds, **settings)
    images, masks = folders
    value_map = ("0=membrane", "255=cell") if setting == "full" else ()
    spec = FolderData(str(images), str(masks), classes=CLASSES, value_map=value_map)
    # "before": the starting point on 05–19 (the given model, or the freshly initialised network)
    if init:
        before, _ = score(Predictor.from_file(init, backend="torch", device="cpu"), root)
    else:
        torch.manual_seed(seed)
        fresh = nets.create(arch, num_classes=2, in_channels=1, **options)
        card = ModelCard(arch=arch, classes=ClassTable.from_names(list(CLASSES)), in_channels=1,
                         options=dict(fresh.segstudio_options), normalization=get_spec(arch).normalization)
        before, _ = score(Predictor.from_module(fresh, card), root)
    load_before, cpu0, t0 = load_now(), cpu_seconds(), time.perf_counter()
    last = None
    for ev in train(cfg, spec):  # the whole call counts: loading, training, final train-set score, saving
        last = ev
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    load_after = load_now()
    if last is None or last.kind != "finished" or not last.model_path:
        raise RuntimeError(f"the run did not finish: {last}")
    after, per_class = score(Predictor.from_file(last.model_path, backend="torch", device="cpu"), root)
    card = load_card(last.model_path)
    return {
        "setting": setting, "network": arch, "options": options, "threads": threads, "start": init or "scratch",
        "budget_s": seconds, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "steps": last.step,
        "images_per_s": round(last.images_per_s or 0.0, 2), "miou_before": round(before, 4),
        "miou_after": round(after, 4), "iou_membrane": round(per_class["membrane"] or 0.0, 4),
        "iou_cell": round(per_class["cell"] or 0.0, 4), "train_slices_miou": card.metric("mIoU"),
        "load_before": round(load_before, 2), "load_after": round(load_after, 2), "model": last.model_path,
    }


def run_forest(root: Path, folders: dict[str, tuple[Path, Path]], setting: str, threads: int, seed: int,
               max_pixels: int) -> dict[str, Any]:
    from benchmarks.isbi_forest import fit_forest, predict_forest
    from segstudio.core.image_io import read_image, read_mask
    from segstudio.core.metrics import SegMetrics

    images, masks = folders[setting]
    load_before, cpu0, t0 = load_now(), cpu_seconds(), time.perf_counter()
    train_images, train_labels = [], []
    for i in TRAIN_SLICES:
        train_images.append(read_image(images / f"{i:02d}.png").data[:, :, 0])
        m = read_mask(masks / f"{i:02d}.png")
        train_labels.append((m > 127).astype(np.uint8) if setting == "full" else m)
    forest, n_pixels = fit_forest(train_images, train_labels, threads, seed, max_pixels)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    load_after = load_now()
    m = SegMetrics(2)
    for i in TEST_SLICES:
        image, label = read_slice(root, i)
        m.update(predict_forest(forest, image), label)
    d = m.as_dict(list(CLASSES))
    return {"setting": setting, "network": "random forest", "options": {"trees": forest.n_estimators,
                                                                          "pixels": n_pixels},
            "threads": threads, "start": "-", "budget_s": None, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "steps": None, "images_per_s": None, "miou_before": None, "miou_after": round(float(d["miou"]), 4),
            "iou_membrane": round(d["per_class_iou"]["membrane"] or 0.0, 4),
            "iou_cell": round(d["per_class_iou"]["cell"] or 0.0, 4), "train_slices_miou": None,
            "load_before": round(load_before, 2), "load_after": round(load_after, 2), "model": None}


def config_value(key: str, value: Any) -> Any:
    """A JSON value as the TrainConfig field wants it (stages as tuples, augmentation as its dataclass)."""
    from segstudio.training.config import TrainConfig

    return getattr(TrainConfig.from_dict({key: value}), key)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("setting", "network", "thr", "start", "wall s", "CPU s", "steps", "img/s", "before", "after",
            "membrane", "cell", "load before→after")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = r["network"] + ("" if not r["options"] or r["network"] == "random forest"
                               else " " + ",".join(f"{k}={v}" for k, v in r["options"].items()))
        if r["network"] == "random forest":
            name += f" ({r['options']['trees']} trees, {r['options']['pixels']} px)"

        def f(v: Any, fmt: str = "{:.3f}") -> str:
            return "-" if v is None else fmt.format(v)

        lines.append("| " + " | ".join([
            r["setting"], name, str(r["threads"]), r["start"], f(r["wall_s"], "{:.1f}"), f(r["cpu_s"], "{:.1f}"),
            f(r["steps"], "{}"), f(r["images_per_s"], "{:.1f}"), f(r["miou_before"]), f(r["miou_after"]),
            f(r["iou_membrane"]), f(r["iou_cell"]), f"{r['load_before']:.2f}→{r['load_after']:.2f}",
        ]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from segstudio.training.config import SMALL_DATA_ARCH, SMALL_DATA_OPTIONS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_net = SMALL_DATA_ARCH + ":" + "+".join(f"{k}={v}" for k, v in SMALL_DATA_OPTIONS.items())
    ap.add_argument("--data", help="folder holding isbi-membrane/ (default $SEGSTUDIO_DATA)")
    ap.add_argument("--nets", default=default_net, help=f"networks, comma-separated (default {default_net})")
    ap.add_argument("--settings", default="full,sparse", help="full, sparse or both (default)")
    ap.add_argument("--threads", default="1", help="torch threads to try, e.g. 1,2 (default 1)")
    ap.add_argument("--seconds", type=float, default=120.0, help="wall-time budget of each fine-tuning run")
    ap.add_argument("--sparse-fraction", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this model file instead of from scratch")
    ap.add_argument("--lr", type=float, help="override the recipe's learning rate")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override any TrainConfig field of the recipe, e.g. --set batch_size=8 "
                         "--set 'loss_stages=[[0, \"ce\"]]' (repeatable)")
    ap.add_argument("--rf", action="store_true", help="also fit the random-forest baseline (scikit-learn)")
    ap.add_argument("--rf-pixels", type=int, default=200_000,
                    help="labelled pixels the forest is fitted on at most (random subset; default 200000)")
    ap.add_argument("--json", help="write the rows (and the machine) to this JSON file")
    ap.add_argument("--keep", help="keep the model files in this folder (default: a temporary folder)")
    args = ap.parse_args(argv)

    root = data_root(args.data)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if not set(settings) <= {"full", "sparse"}:
        ap.error("--settings takes full and/or sparse")
    threads = [int(t) for t in args.threads.split(",")]
    nets_ = [parse_net(n.strip()) for n in args.nets.split(",") if n.strip()]
    overrides: dict[str, Any] = {"lr": args.lr} if args.lr else {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = config_value(key, json.loads(value))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hitl-isbi-") as tmp:
        work = Path(tmp)
        out_root = Path(args.keep) if args.keep else work / "runs"
        folders = prepare_folders(root, args.sparse_fraction, args.seed, work / "data")
        for setting in settings:
            if args.rf:
                for t in threads:
                    rows.append(run_forest(root, folders, setting, t, args.seed, args.rf_pixels))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
            for arch, opts in nets_:
                for t in threads:
                    out = out_root / f"{setting}-{arch}-{len(rows)}"
                    rows.append(run_finetune(root, setting, folders[setting], arch, opts, t, args.seconds,
                                             args.init, args.seed, out, overrides))
                    rows[-1]["recipe_changes"] = ([f"lr={args.lr}"] if args.lr else []) + list(args.set)
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
    import torch

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version(), "torch": torch.__version__,
               "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "uptime_load": list(os.getloadavg())}
    print()
    print(f"ISBI-2012 slices 00–04 → scored on 05–19; budget {args.seconds:.0f} s wall per fine-tuning run; "
          f"sparse = {args.sparse_fraction:.0%} of the pixels; {machine['cores']} cores; load (1-min average) "
          "before→after each run")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
        print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
