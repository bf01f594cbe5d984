"""``segstudio models``: list the networks in the zoo and the model files on disk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import segstudio

REPO_MODELS = Path(segstudio.__file__).resolve().parents[1] / "models"
"""The repository's shipped models (``models/`` beside the package)."""


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the networks in the zoo and the model files found",
        description="List the networks that can be built and trained, then the model files (.safetensors, "
        ".onnx) in the repository's models/ folder and in any --dir folders, with their cards' key facts.",
    )
    p.add_argument("--json", action="store_true",
                   help="print JSON instead of tables (the networks, or with --files the model files)")
    p.add_argument("--dir", action="append", default=[], metavar="FOLDER", help="also list model files here")
    p.add_argument("--files", action="store_true", help="list only the model files")
    p.set_defaults(handler=run)


def _files(folders: list[Path]) -> list[dict[str, Any]]:
    from segstudio.inference.model_file import describe_model_file, find_model_files

    seen: set[Path] = set()
    out = []
    for folder in folders:
        for path in find_model_files(folder):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                out.append(describe_model_file(path))
    return out


def _file_line(f: dict[str, Any]) -> str:
    if "error" in f:
        return f"  {Path(f['file']).name}: unreadable ({f['error']})"
    if f.get("needs_classes"):
        return f"  {Path(f['file']).name} [onnx, {f['size_mb']} MB]: no segstudio card; open it with --classes A,B,…"
    miou = f.get("mIoU")
    score = f"mIoU {miou['value']:.3f} on {miou['data']}" if miou and miou.get("value") is not None else "no metrics"
    res = "x".join(map(str, f["train_resolution"])) if f.get("train_resolution") else "?"
    classes = ", ".join(f["classes"][:6]) + (" …" if len(f["classes"]) > 6 else "")
    return (f"  {Path(f['file']).name} [{f['format']}, {f['size_mb']} MB]: {f['arch']}, "
            f"{len(f['classes'])} classes ({classes}), {f['in_channels']} ch, trained at {res}, {score}")


def run(args: argparse.Namespace) -> int:
    from segstudio import zoo

    folders = [REPO_MODELS, *(Path(d) for d in args.dir)]
    if args.files:
        files = _files(folders)
        if args.json:
            print(json.dumps(files, indent=2, ensure_ascii=False))
        else:
            for f in files:
                print(_file_line(f))
        return 0
    specs = [zoo.get_spec(n) for n in zoo.net_names()]
    if args.json:
        print(json.dumps([s.summary() for s in specs], indent=2))
        return 0
    print(f"{'network':<16} {'family':<10} {'stride':>6}  description")
    for s in specs:
        print(f"{s.name:<16} {s.family:<10} {s.output_stride:>6}  {s.title}")
    for folder in folders:
        files = _files([folder])
        if files or folder != REPO_MODELS:
            print(f"\nmodel files in {folder}:" + ("" if files else " none"))
            for f in files:
                print(_file_line(f))
    return 0
