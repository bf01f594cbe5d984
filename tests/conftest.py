"""Test-wide settings: headless Qt, quiet threads, and where the shared data lives.

Real data comes from ``$SEGSTUDIO_DATA`` (default ``../shared/data`` beside the
checkout). Tests that need it use the ``camvid_dir`` / ``isbi_dir`` fixtures:
they skip with a reason when the folder is absent, except in CI (``CI=true``),
where a missing data folder is a failure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Idle OpenMP workers sleep instead of spinning: on a shared, oversubscribed CPU, spinning workers
# steal the cores the busy ones need and make small-tensor tests several times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
# ONNX exports made by the tests go to a cache of their own, not the user's ~/.cache
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="segstudio-test-cache-")

try:  # property tests write nothing into the checkout (it may be read-only): no example database, caches in /tmp
    import tempfile

    from hypothesis import settings as _hypothesis_settings
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "segstudio-hypothesis")
    _hypothesis_settings.register_profile("segstudio", database=None, deadline=None)
    _hypothesis_settings.load_profile("segstudio")
except ImportError:  # hypothesis is in the test extra; without it only the property tests cannot run
    pass


@pytest.fixture(scope="session", autouse=True)
def _logs_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Error logs of the CLI and the app go to a temporary folder, never the user's (segstudio.logs)."""
    os.environ["SEGSTUDIO_LOG_DIR"] = str(tmp_path_factory.mktemp("logs"))


def data_root() -> Path:
    return Path(os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data")).resolve()


def _need(sub: str) -> Path:
    path = data_root() / sub
    if not path.is_dir():
        msg = f"data folder {path} is missing (set SEGSTUDIO_DATA to the folder holding camvid/ and isbi-membrane/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    return _need("camvid")


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    return _need("isbi-membrane")
