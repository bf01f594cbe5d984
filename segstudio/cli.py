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

_DESCRIPTION = """\
segstudio: semantic segmentation with a human in the loop.

Run `segstudio` with no command to open the desktop app, or
`segstudio FOLDER` to open a folder of images in it.
The commands below work without a window."""


class CliError(Exception):
    """A problem the user can fix (bad path, wrong option); printed without a traceback."""


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the networks in the zoo and the model files found",
        description="List the networks that can be trained and the trained model files shipped in models/.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    import json

    from segstudio import zoo

    specs = [zoo.get_spec(n) for n in zoo.net_names()]
    if args.json:
        print(json.dumps([s.summary() for s in specs], indent=2))
        return 0
    print(f"{'network':<16} {'family':<10} {'stride':>6}  description")
    for s in specs:
        print(f"{s.name:<16} {s.family:<10} {s.output_stride:>6}  {s.title}")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_models]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
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
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CliError as exc:
        print(f"segstudio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segstudio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
