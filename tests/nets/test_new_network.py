"""Adding a network takes one module and one spec, and the contract test covers it with no other edit.

The worked example of CONTRIBUTING.md ("Adding a network") is copied, as written there, into a copy of
the package; the contract test then runs on it there. So the example stays right, and the catalogue,
the factory and the contract test keep needing nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = re.compile(r"^`(segstudio/[\w/]+\.py)`:\n\n```python\n(.*?)^```", re.M | re.S)


def example_files() -> dict[str, str]:
    """The files of CONTRIBUTING.md's worked example: path → text."""
    return dict(EXAMPLE.findall((REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")))


def test_the_worked_example_is_one_module_and_one_spec() -> None:
    files = example_files()
    assert sorted(files) == ["segstudio/nets/tinyfcn.py", "segstudio/zoo/catalog/tinyfcn.py"]
    assert not any((REPO / path).exists() for path in files), "the example is not part of the zoo"


@pytest.mark.slow
def test_the_contract_test_covers_a_new_network_with_no_other_edit(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "segstudio", tmp_path / "segstudio", ignore=ignore)
    (tmp_path / "tests" / "nets").mkdir(parents=True)
    for name in ("tests/__init__.py", "tests/conftest.py", "tests/nets/__init__.py", "tests/nets/bn.py",
                 "tests/nets/test_contract.py", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    for path, text in example_files().items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/nets/test_contract.py", "-k", "tinyfcn", "-q",
                          "-p", "no:cacheprovider", "-rs"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", run.stdout).group(1))  # type: ignore[union-attr]
    assert passed >= 7, run.stdout[-2000:]
