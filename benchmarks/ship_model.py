"""Put a trained model into ``models/``: a clean card (no machine paths), the weights, and a verified ONNX export.

    PYTHONPATH=. python benchmarks/ship_model.py runs/camvid-fastscnn/camvid-fastscnn.safetensors \
        --name camvid-fastscnn --description "Fast-SCNN trained from scratch on CamVid ..."

The card's data strings (which name the folders the run read, e.g. ``/root/gpu/camvid/val``)
are replaced by ``--train-data`` / ``--val-data``; metrics, history and recipe are kept.
The ONNX file is written by ``segstudio export-onnx`` (refused unless it matches PyTorch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--name", required=True, help="file stem and card name, e.g. camvid-fastscnn")
    ap.add_argument("--description", required=True)
    ap.add_argument("--train-data", default="CamVid train (SegNet split, 367 images, 360×480)")
    ap.add_argument("--val-data", default="CamVid val (SegNet split, 101 images, 360×480)")
    ap.add_argument("--out", type=Path, default=REPO / "models")
    ap.add_argument("--metric", action="append", default=[], metavar="JSON",
                    help='another metric for the card, e.g. the result of `segstudio eval --tta --json`: '
                         '{"name": "mIoU (TTA)", "value": 0.74, "data": "...", "per_class": {...}}')
    args = ap.parse_args(argv)

    from segstudio.inference.model_file import load_model, save_model

    model, card = load_model(args.model)
    metrics = [{**m, "data": args.val_data} for m in card.metrics if m.get("name") == "mIoU"]
    metrics += [json.loads(text) for text in args.metric]
    history = []
    for h in card.history:
        h = dict(h)
        if "data" in h:
            h["data"] = args.train_data
        if "validation" in h:
            h["validation"] = args.val_data
        history.append(h)
    recipe = {k: v for k, v in card.recipe.items() if k not in ("output_dir", "init_model")}
    card = dataclasses.replace(card, name=args.name, description=args.description, metrics=metrics,
                               history=history, recipe=recipe)
    args.out.mkdir(parents=True, exist_ok=True)
    target = save_model(args.out / f"{args.name}.safetensors", model, card)
    subprocess.run([sys.executable, "-m", "segstudio", "export-onnx", str(target)], check=True, cwd=REPO)
    print(f"wrote {target} and {target.with_suffix('.onnx')}")
    return target


if __name__ == "__main__":
    main()
