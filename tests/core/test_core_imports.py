"""Every core module imports with torch, onnxruntime and Qt unavailable (the import-linter contract, at run time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULES = [
    "segstudio.core.image_io", "segstudio.core.masks", "segstudio.core.metrics", "segstudio.core.project",
    "segstudio.core.project_file", "segstudio.core.formats", "segstudio.cli.formats",
]


def test_core_modules_import_without_torch_onnxruntime_or_qt() -> None:
    code = (
        "import sys\n"
        "for m in ('torch', 'PySide6', 'onnxruntime'):\n"
        "    sys.modules[m] = None\n"
        f"for name in {MODULES!r}:\n"
        "    __import__(name)\n"
        "from segstudio import cli\n"
        "assert {'import', 'export'} <= set(cli.command_names())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
