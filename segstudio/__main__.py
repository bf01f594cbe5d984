"""``python -m segstudio`` and the ``segstudio`` command.

With no sub-command the desktop app starts; with one (``segment``, ``train``,
``import`` …) the headless CLI runs it. ``segstudio --help`` lists them.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from segstudio import cli

    args = sys.argv[1:] if argv is None else argv
    if cli.wants_cli(args):
        return cli.main(args)
    from segstudio.gui.app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
