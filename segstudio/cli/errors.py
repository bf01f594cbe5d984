"""The error a command raises for a problem the user can fix (a bad option, a path that cannot be used)."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix (bad path, wrong option); printed as one line, without a traceback."""
