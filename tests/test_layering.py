"""The dependency direction of docs/ARCHITECTURE.md, enforced by import-linter contracts in pyproject.toml, and
its other side: a module in gui/ that needs no Qt belongs below gui/."""

from __future__ import annotations

import ast
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


GUI = REPO / "segstudio" / "gui"


def imports_pyside6(path: Path) -> bool:
    """Whether the module at ``path`` imports PySide6 itself (anywhere in its text: ``app.py`` imports Qt inside
    ``run_app``), not only through another module of the package."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "PySide6" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "PySide6":
            return True
    return False


def test_every_gui_module_imports_qt(tmp_path: Path) -> None:
    """A module in gui/ that needs no Qt belongs below it (workspace/, core/): each one imports PySide6."""
    modules = [p for p in GUI.rglob("*.py") if p.name != "__init__.py"]
    assert len(modules) > 20
    qt_free = [str(p.relative_to(REPO)) for p in modules if not imports_pyside6(p)]
    assert not qt_free, "gui/ modules without Qt (move their logic below gui/):\n" + "\n".join(qt_free)
    # and the check sees one: a module that only names Qt in a string or imports a Qt-free helper is caught
    sample = tmp_path / "sample.py"
    sample.write_text('"""PySide6 is mentioned."""\nimport numpy\nfrom segstudio.gui.workers import WorkerPool\n')
    assert not imports_pyside6(sample)
    sample.write_text("from PySide6.QtCore import QObject\n")
    assert imports_pyside6(sample)
