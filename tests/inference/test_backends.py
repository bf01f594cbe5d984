"""The backend registry's rule, the ONNX export cache, and running without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segstudio.inference import export as export_mod
from segstudio.inference.backends import CHOICES, DEVICES, ENGINES, Runtimes, decide
from segstudio.inference.model_file import ModelFileError, file_sha256, load_card, load_model, save_model
from segstudio.inference.onnx_cache import CACHE_FOLDER
from segstudio.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]
NO_TORCH = "import sys; sys.modules['torch'] = None; "


def _copy(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine auto picks torch on the GPU")
def test_auto_uses_onnx_on_the_cpu_and_caches_the_export(tmp_path: Path, random_model_file: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model_path = _copy(random_model_file, tmp_path / "models")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "xdg" / "segstudio" / "onnx"
    p = Predictor.from_file(model_path)
    assert "onnxruntime" in p.backend.name
    cached = cache / f"random-{file_sha256(model_path)[:16]}.onnx"
    assert cached.is_file()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["random.safetensors"]  # nothing beside it
    assert load_card(cached).to_json() == load_card(model_path).to_json()

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again although the export is cached")

    with monkeypatch.context() as m:
        m.setattr(export_mod, "export_verified", no_export)
        again = Predictor.from_file(model_path)
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)
    assert np.array_equal(again.predict(image).labels, p.predict(image).labels)
    # A changed model gets a new export, and the stale one is removed.
    model, card = load_model(model_path)
    card.description = "fine-tuned"
    save_model(model_path, model, card)
    Predictor.from_file(model_path)
    files = sorted(cache.glob("*.onnx"))
    assert [f.name for f in files] == [f"random-{file_sha256(model_path)[:16]}.onnx"]


def test_an_export_beside_the_model_is_still_used(tmp_path: Path, random_model_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Older versions wrote the export into <model folder>/.onnx-cache; it is read, never written."""
    model_path = _copy(random_model_file, tmp_path / "shipped")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    Predictor.from_file(model_path, backend="onnx")
    made = next((tmp_path / "xdg" / "segstudio" / "onnx").glob("random-*.onnx"))
    beside = tmp_path / "shipped" / CACHE_FOLDER
    beside.mkdir()
    made.rename(beside / made.name)

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again although an export is beside the model")

    monkeypatch.setattr(export_mod, "export_verified", no_export)
    assert "onnxruntime" in Predictor.from_file(model_path, backend="onnx").backend.name


CPU_ONLY = Runtimes("2.3.0", None, "1.17.0")
GPU = Runtimes("2.3.0", "RTX 4090", "1.17.0")
UNCHECKED = Runtimes("installed", None, "installed", checked_cuda=False)
ONLY_ONNX = Runtimes(None, None, "1.17.0")
NO_ORT = Runtimes("2.3.0", None, None)


def test_the_rule_picks_one_runner_per_machine_and_format() -> None:
    assert decide("auto", "auto", "safetensors", GPU).runner == "torch-cuda"
    assert decide("auto", "auto", "safetensors", CPU_ONLY).runner == "onnx-export"
    assert decide("auto", "cpu", "safetensors", GPU).runner == "onnx-export"
    assert decide("torch", "auto", "safetensors", CPU_ONLY).runner == "torch-cpu"
    assert decide("onnx", "auto", "safetensors", GPU).exports_onnx
    assert decide("auto", "auto", "onnx", GPU).runner == "onnx"
    assert decide("auto", "auto", "safetensors", ONLY_ONNX).runner == "onnx-export"
    fallback = decide("auto", "auto", "safetensors", NO_ORT)
    assert fallback.runner == "torch-cpu" and "ONNX Runtime is not installed" in (fallback.note or "")
    # where a GPU was not looked for, the answer says so and what runs without one
    unknown = decide("auto", "auto", "safetensors", UNCHECKED)
    assert unknown.needs_cuda_check and unknown.runner == "onnx-export"
    assert not decide("auto", "cpu", "safetensors", UNCHECKED).needs_cuda_check
    assert not decide("auto", "auto", "onnx", UNCHECKED).needs_cuda_check


def test_the_rule_says_why_nothing_runs() -> None:
    assert "ONNX Runtime" in (decide("torch", "cpu", "onnx", GPU).problem or "")
    assert "CPU" in (decide("auto", "cuda", "onnx", GPU).problem or "")
    assert "no CUDA GPU" in (decide("auto", "cuda", "safetensors", CPU_ONLY).problem or "")
    assert "PyTorch is not installed" in (decide("torch", "cpu", "safetensors", ONLY_ONNX).problem or "")
    assert "ONNX Runtime is not installed" in (decide("onnx", "cpu", "safetensors", NO_ORT).problem or "")
    assert "neither" in (decide("auto", "auto", "safetensors", Runtimes(None, None, None)).problem or "")
    with pytest.raises(ValueError, match="backend"):
        decide("tensorrt", "auto", "onnx", GPU)
    with pytest.raises(ValueError, match="device"):
        decide("auto", "tpu", "onnx", GPU)


def test_the_app_choices_are_engines_and_devices_of_the_registry() -> None:
    assert list(CHOICES) == ["auto", "cuda", "cpu-onnx", "cpu-torch"]
    for choice in CHOICES.values():
        assert choice.engine in ENGINES and choice.device in DEVICES and choice.title
    assert GPU.decide("cuda", "safetensors").runner == "torch-cuda"
    assert CPU_ONLY.decide("cpu-onnx", "safetensors").exports_onnx


def test_explicit_choices(random_model_file: Path, tmp_path: Path) -> None:
    assert "torch cpu" in Predictor.from_file(random_model_file, backend="torch", device="cpu").backend.name
    if not torch.cuda.is_available():
        with pytest.raises(ModelFileError, match="CUDA"):
            Predictor.from_file(random_model_file, device="cuda")
    onnx = tmp_path / "m.onnx"
    from segstudio.cli import main as cli_main

    assert cli_main(["export-onnx", str(random_model_file), "-o", str(onnx)]) == 0
    with pytest.raises(ModelFileError, match="ONNX Runtime"):
        Predictor.from_file(onnx, backend="torch")
    with pytest.raises(ValueError, match="backend"):
        Predictor.from_file(random_model_file, backend="tensorrt")


def _run_without_torch(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = NO_TORCH + "from segstudio.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                            "HOME": str(cwd), "OMP_NUM_THREADS": "2",
                                            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]})


def test_segment_works_without_torch(tmp_path: Path, random_model_file: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no export of this model cached yet
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), np.random.default_rng(i).integers(0, 256, (40, 50, 3), np.uint8))
    onnx = tmp_path / "m.onnx"
    from segstudio.cli import main as cli_main

    assert cli_main(["export-onnx", str(random_model_file), "-o", str(onnx)]) == 0
    res = _run_without_torch(["segment", str(images), "-o", str(tmp_path / "out"), "--model", str(onnx),
                              "--overlay"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "onnxruntime" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "masks").glob("?.png")) == ["0.png", "1.png", "2.png"]
    # A .safetensors model works too once its export is cached; without the cache the message says why.
    fresh = _copy(random_model_file, tmp_path / "fresh")
    res = _run_without_torch(["segment", str(images), "-o", str(tmp_path / "out2"), "--model", str(fresh)],
                             tmp_path)
    assert res.returncode == 2 and "PyTorch, which is not installed" in res.stderr
    Predictor.from_file(fresh, backend="onnx")  # makes the cached export (here, with torch)
    res = _run_without_torch(["segment", str(images), "-o", str(tmp_path / "out2"), "--model", str(fresh)],
                             tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "out2" / "masks").glob("*.png"))) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_cuda_matches_cpu(toy_model_file: Path, precision: str) -> None:
    from tests.inference.toy import scene

    gpu = Predictor.from_file(toy_model_file, backend="torch", device="cuda", precision=precision)
    cpu = Predictor.from_file(toy_model_file, backend="torch", device="cpu")
    assert "cuda" in gpu.backend.name
    images = [scene(360, 480, seed=s)[0] for s in range(5)]
    gpu.backend.batch_size = 4
    for image, got in zip(images, gpu.predict_batch(images, confidence=True)):
        ref = cpu.predict(image, confidence=True)
        assert (got.labels == ref.labels).mean() > 0.995
        assert np.abs(got.confidence.astype(np.float32) - ref.confidence).mean() < 0.01
    big = scene(1500, 2100, seed=9)[0]
    tiled = gpu.predict(big, tile_size=512)
    assert tiled.windows > 4 and (tiled.labels == cpu.predict(big, tile_size=512).labels).mean() > 0.995
