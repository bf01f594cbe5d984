"""Entry script of the frozen app: the same ``main`` as the ``segstudio`` command and ``python -m segstudio``.

PyInstaller needs a script file outside the package; this one only calls
``segstudio.__main__.main``, so the frozen app and an installed one behave alike.
"""

from __future__ import annotations

import multiprocessing
import sys

from segstudio.__main__ import main

if __name__ == "__main__":
    # A frozen app re-runs this script for every child process a multiprocessing pool or a
    # spawned worker starts; freeze_support() makes those children run their task, not the app.
    multiprocessing.freeze_support()
    sys.exit(main())
