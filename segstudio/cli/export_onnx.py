"""``segstudio export-onnx``: a model file to ONNX, verified against PyTorch before it is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segstudio.cli.errors import CliError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx",
        help="export a model file to ONNX (dynamic batch/H/W, card included)",
        description="Export a .safetensors model to ONNX with dynamic batch, height and width and the model card "
        "in its metadata. The export is run beside PyTorch on test inputs and refused (nothing written, exit "
        "status 1) unless both compute the same function within float32 rounding: max difference at most 1e-4 "
        "of the logits' scale and the arg-max class agreeing on 99.9% of pixels.",
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors model file")
    p.add_argument("-o", "--output", metavar="FILE", help="the .onnx file (default: MODEL with .onnx)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from segstudio.inference.export import ExportMismatchError, export_verified
    from segstudio.inference.model_file import ModelFileError, load_model
    from segstudio.zoo import CARD_KEY, CardError

    src = Path(args.model)
    out = Path(args.output) if args.output else src.with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        raise CliError(f"the output file should end in .onnx, got {out.name}")
    try:
        model, card = load_model(src, device="cpu")
    except (ModelFileError, CardError) as exc:
        raise CliError(str(exc)) from None
    try:
        _, report = export_verified(model, card.in_channels, card.size_multiple,
                                    metadata={CARD_KEY: card.to_json()}, path=out)
    except ExportMismatchError as exc:
        print(f"segstudio: export refused, nothing written: {exc.report.describe()}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); check: {report.describe()}")
    return 0
