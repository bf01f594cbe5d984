"""The dependency direction of docs/ARCHITECTURE.md, enforced by import-linter contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    res = subprocess.run([exe, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "broken" not in res.stdout.lower() or " 0 broken" in res.stdout.lower()


def test_core_and_zoo_import_without_torch_or_qt() -> None:
    code = (
        "import sys\n"
        "for m in ('torch', 'PySide6', 'onnxruntime'):\n"
        "    sys.modules[m] = None\n"
        "import segstudio.core.classes, segstudio.core.tasks, segstudio.core.atomic, segstudio.zoo\n"
        "import segstudio.cli\n"
        "assert segstudio.zoo.net_names()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
