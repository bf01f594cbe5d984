"""Headless command line: ``segstudio <command> ...``.

``segstudio`` with no command (or with a path) opens the desktop app; every
command below runs without a window. Each command's work lives in the
sub-package that owns it; this module only parses arguments and reports.
Heavy modules (torch, onnxruntime) are imported inside the handlers so that
``segstudio --help`` is instant.

No command shows a traceback. A problem the user can fix (a bad option, a file
that cannot be read or written, a project open elsewhere) is one line
``segstudio: error: …``; anything unexpected is one line naming a log file
that holds the details (:mod:`segstudio.logs`). Exit status: see
:data:`EXIT_CODES` (also in ``segstudio --help`` and docs/RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from segstudio import __version__
from segstudio.cli import export_onnx, formats, import_checkpoint, models, segment, train
from segstudio.cli.errors import CliError
from segstudio.logs import one_line, write_error_log

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_PARTIAL: "the command ran, but some inputs failed (each listed with its reason) or nothing was done",
    EXIT_ERROR: "the command could not run: a bad option or input, a file that cannot be read or written, a "
                "project open in another window (one line says which)",
    EXIT_INTERNAL: "an unexpected error inside segstudio (one line, and a log file with the details)",
    EXIT_INTERRUPTED: "interrupted (Ctrl+C); finished outputs are kept",
}
"""Every exit status of a command and what it means."""

# The project's own error types carry messages written for users. They are looked up among the modules
# already imported (an exception can only be of a type whose module is loaded), so that this module imports
# none of them and `segstudio --help` stays instant.
_USER_ERRORS = (
    ("segstudio.core.atomic", "SaveError"),
    ("segstudio.core.project_file", "ProjectError"),
    ("segstudio.core.formats.base", "FormatError"),
    ("segstudio.core.image_io", "ImageReadError"),
    ("segstudio.core.masks", "MaskError"),
    ("segstudio.core.formats.rle", "RleError"),
    ("segstudio.inference.model_file", "ModelFileError"),
    ("segstudio.zoo.card", "CardError"),
    ("segstudio.zoo.spec", "BadOptionError"),
    ("segstudio.zoo.spec", "UnknownNetworkError"),
    ("segstudio.training.data", "DataError"),
    ("segstudio.training.outputs", "CheckpointError"),
)

Handler = Callable[[argparse.Namespace], int]
"""A command's handler: parsed arguments in, exit status out."""

_DESCRIPTION = """\
segstudio: semantic segmentation with a human in the loop.

Run `segstudio` with no command to open the desktop app, or
`segstudio FOLDER` to open a folder of images in it.
The commands below work without a window."""


def _commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """One module per command group; each exposes ``add(subparsers)``."""
    return [models.add, segment.add, train.add, export_onnx.add, import_checkpoint.add, formats.add]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.epilog = "exit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
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


def _user_error_types() -> tuple[type[BaseException], ...]:
    found = []
    for module, name in _USER_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(getattr(loaded, name, None), type):
            found.append(getattr(loaded, name))
    return tuple(found)


def _error(text: str) -> None:
    print(f"segstudio: error: {text}", file=sys.stderr)


def _unexpected(exc: BaseException, arguments: Sequence[str]) -> int:
    """One line for an error nobody planned for, the details in a log file."""
    log = write_error_log(exc, arguments)
    where = f"details in {log}" if log is not None else "no log file could be written"
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        _error(f"not enough memory for this ({where})")
        return EXIT_ERROR
    _error(f"unexpected {type(exc).__name__}: {one_line(exc, 200)} ({where}; please report it)")
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns its exit status (:data:`EXIT_CODES`). Never raises, except ``SystemExit``
    from ``--help``, ``--version`` and argument errors (status 2, with argparse's usage line).

    A rank of a distributed run (``train --distributed``) does not return: it ends here, with its
    status (:func:`segstudio.training.distributed.end_rank`)."""
    status = _run(argv)
    distributed = sys.modules.get("segstudio.training.distributed")  # loaded only by a training command
    if distributed is not None:
        distributed.end_rank(status)
    return status


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.command_line = arguments  # what was asked, for a command that runs itself again (train --nproc)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return handler(args)
    except CliError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            return _unexpected(exc, arguments)
        # export-onnx, import-checkpoint (and training) need torch; the base install and the frozen app lack it.
        from segstudio.install_hints import torch_hint

        _error(f"`segstudio {arguments[0]}` needs PyTorch, which is not installed here; {torch_hint()}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("segstudio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_PARTIAL  # the reader of our output went away (`| head`): nothing to tell anyone
    except Exception as exc:
        if isinstance(exc, _user_error_types()):
            _error(one_line(exc, 1000))
            return EXIT_ERROR
        if isinstance(exc, OSError) and exc.strerror:  # the file system said no: the user can act on that
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in exc.strerror else ""
            _error(f"{exc.strerror}{where}")
            return EXIT_ERROR
        return _unexpected(exc, arguments)
    except BaseException as exc:  # SystemExit from a handler keeps its status; anything else is ours
        if isinstance(exc, SystemExit):
            raise
        return _unexpected(exc, arguments)


if __name__ == "__main__":
    sys.exit(main())
