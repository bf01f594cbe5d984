"""``segstudio import-checkpoint``: a foreign PyTorch state dict to a segstudio model file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from segstudio.cli.errors import CliError


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"an option is NAME=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word such as bilinear


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-checkpoint",
        help="make a model file from another project's PyTorch checkpoint",
        description="Load a state dict (.pt/.pth/.safetensors) into a zoo network and write a .safetensors model "
        "file. The checkpoint is read with torch.load(weights_only=True): it cannot run code. Tensors are "
        "matched by name (a wrapper prefix such as 'module.' is stripped) and shape; missing, unexpected and "
        "mis-shaped tensors are reported, and the unmatched ones keep their initial values.",
    )
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--arch", required=True, help="the zoo network (see `segstudio models`)")
    p.add_argument("--classes", required=True, metavar="A,B,C", help="class names, in the checkpoint's order")
    p.add_argument("--in-channels", type=int, default=3, choices=(1, 3))
    p.add_argument("--option", type=_option, action="append", default=[], metavar="NAME=VALUE",
                   help="a network option (repeatable), e.g. --option base_width=32")
    p.add_argument("--strict", action="store_true", help="refuse unless every tensor matches exactly")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .safetensors file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists (refused without this)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from segstudio.inference.checkpoint import CheckpointError, import_checkpoint
    from segstudio.inference.model_file import save_model
    from segstudio.zoo import BadOptionError, UnknownNetworkError

    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        raise CliError(f"the output file should end in .safetensors, got {out.name}")
    if out.is_dir():
        raise CliError(f"{out} is a folder; name the .safetensors file to write")
    if os.path.lexists(out) and not args.force:
        raise CliError(f"{out} already exists; choose another name, or pass --force to replace it")
    names = [n.strip() for n in args.classes.split(",") if n.strip()]
    try:
        model, card, report = import_checkpoint(args.checkpoint, args.arch, names, in_channels=args.in_channels,
                                                options=dict(args.option), strict=args.strict)
    except (CheckpointError, UnknownNetworkError, BadOptionError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(report.describe(), file=sys.stderr)
    save_model(out, model, card)
    print(f"wrote {out}" + ("" if report.ok else " (partial match: see the report above)"))
    return 0
