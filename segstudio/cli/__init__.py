"""Headless command line: ``segstudio <command> ...``.

``segstudio`` with no command (or with a path) opens the desktop app; every
command below runs without a window. Each command's work lives in the
sub-package that owns it; this module only parses arguments and reports.
Heavy modules (torch, onnxruntime) are imported inside the handlers so that
``segstudio --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from segstudio import __version__

Handler = Callable[[argparse.Namespace], int]
"""A command's handler: parsed arguments in, exit status out."""

_DESCRIPTION = """\
segstudio: semantic segmentation with a human in the loop.

Run `segstudio` with no command to open the desktop app, or
`segstudio FOLDER` to open a folder of images in it.
The commands below work without a window."""


class CliError(Exception):
    """A problem the user can fix (bad path, wrong option); printed without a traceback."""


def _commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    # One module per command group; each exposes add(subparsers). Imported here,
    # not at module top, so that the modules may import CliError from this package.
    from segstudio.cli import export_onnx, formats, import_checkpoint, models, segment, train

    return [models.add, segment.add, train.add, export_onnx.add, import_checkpoint.add, formats.add]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _commands():
        add(sub)
    return parser


def command_names() -> list[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def wants_cli(argv: Sequence[str]) -> bool:
    """True when ``argv`` asks for a headless command rather than the app."""
    if not argv:
        return False
    first = argv[0]
    return first in ("-h", "--help", "--version") or first in command_names()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.command_line = arguments  # what was asked, for a command that runs itself again (train --nproc)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CliError as exc:
        print(f"segstudio: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        # export-onnx, import-checkpoint (and training) need torch; the base install and the frozen app lack it.
        print(f"segstudio: error: `segstudio {arguments[0]}` needs PyTorch, which is not installed here; "
              "install it with the torch extra: pip install 'segstudio[torch]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segstudio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
