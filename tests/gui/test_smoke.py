"""``segstudio --smoke``: option parsing, and whole runs in a fresh process without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from segstudio.gui.smoke import DEFAULT_TIMEOUT_S, SmokeArgumentError, split_smoke_args

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "inference" / "assets" / "toy_unet.safetensors"
# The app as a torch-free installation runs it: importing torch fails as if it were not installed.
NO_TORCH_MAIN = "import sys; sys.modules['torch'] = None; from segstudio.__main__ import main; sys.exit(main())"


def test_split_smoke_args(tmp_path: Path) -> None:
    assert split_smoke_args(["a", "b"]) == (None, ["a", "b"])
    model = tmp_path / "m.onnx"
    opts, rest = split_smoke_args(["--smoke", f"--smoke-model={model}", "--smoke-timeout=5", "folder"])
    assert opts is not None and rest == ["folder"]
    assert (opts.model, opts.timeout_s, opts.screenshot) == (model, 5.0, None)
    opts, _ = split_smoke_args(["--smoke", "--smoke-screenshot=shot.png"])
    assert opts is not None and opts.screenshot == Path("shot.png") and opts.timeout_s == DEFAULT_TIMEOUT_S
    for bad in (["--smoke", "--smoke-model"], ["--smoke", "--smoke-timeout=soon"], ["--smoke", "--smoke-timeout=0"],
                ["--smoke", "--smoke-colour=red"], ["--smoke-model=m.onnx"]):
        with pytest.raises(SmokeArgumentError):
            split_smoke_args(bad)


@pytest.fixture(scope="module")
def toy_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segstudio.cli import main as cli_main

    path = tmp_path_factory.mktemp("onnx") / "toy.onnx"
    assert cli_main(["export-onnx", str(TOY), "-o", str(path)]) == 0
    return path


def _smoke(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "2", "XDG_RUNTIME_DIR": str(home)}
    return subprocess.run([sys.executable, "-c", NO_TORCH_MAIN, "--smoke", "--smoke-timeout=120", *args],
                          cwd=home, env=env, capture_output=True, text=True, timeout=300)


def test_smoke_run_segments_a_sample_without_torch(tmp_path: Path, toy_onnx: Path) -> None:
    shot = tmp_path / "window.png"
    res = _smoke([f"--smoke-model={toy_onnx}", f"--smoke-screenshot={shot}"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert any(line.startswith("smoke: torch: not installed") for line in lines)
    assert any(line.startswith("smoke: samples: ") and "with 6 images" in line for line in lines)
    segment = next(line for line in lines if line.startswith("smoke: segment: "))
    assert "onnxruntime" in segment and "480×360" in segment
    assert lines[-1].startswith("smoke: passed")
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 400
    # The user's own state was not touched: the run kept its settings and sample project in a temporary folder.
    assert not (tmp_path / ".config").exists() and not (tmp_path / ".local").exists()


def test_smoke_run_fails_on_a_broken_model(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    res = _smoke([f"--smoke-model={broken}"], tmp_path)
    assert res.returncode == 1
    assert "smoke: FAILED: segmenting with" in res.stdout
    assert "smoke: passed" not in res.stdout
