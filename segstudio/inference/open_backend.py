"""Opening the backend that :func:`~segstudio.inference.backends.decide` names for a model file.

The rule lives in :mod:`~segstudio.inference.backends`; this module carries it out: it looks for a
GPU only when the answer depends on one, builds the runner (importing torch or onnxruntime only for
the runner that needs it), and falls back from a refused ONNX export to PyTorch on the CPU when the
choice was ``auto``.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.inference.backend import Backend
from segstudio.inference.backends import Decision, decide, detect_runtimes, found_runtimes
from segstudio.inference.model_file import ModelFile, ModelFileError, load_model
from segstudio.inference.onnx_cache import cached_onnx
from segstudio.inference.parity import ExportMismatchError


def choose(model: ModelFile, engine: str = "auto", device: str = "auto") -> Decision:
    """The registry's decision for ``model`` on this machine (a GPU is looked for only when it matters)."""
    decision = decide(engine, device, model.format, found_runtimes())
    if decision.needs_cuda_check:
        decision = decide(engine, device, model.format, detect_runtimes())
    return decision


def open_backend(model: ModelFile, *, backend: str = "auto", device: str = "auto", precision: str = "fp16",
                 threads: int | None = None, cache_dir: Path | str | None = None) -> tuple[Backend, list[str]]:
    """(the backend running ``model``, notes on how it was chosen). ``backend`` is an engine of
    :data:`~segstudio.inference.backends.ENGINES`.

    Raises :class:`ModelFileError` with the registry's reason when nothing can run it, ``ValueError``
    for an engine or device that does not exist.
    """
    decision = choose(model, backend, device)
    if decision.problem is not None or decision.runner is None:
        raise ModelFileError(model.path, decision.problem or "no backend can run it")
    notes = [decision.note] if decision.note else []
    if decision.runner == "onnx":
        return _onnx(model.path, threads), notes
    if decision.runner in ("torch-cuda", "torch-cpu"):
        return _torch(model, "cuda" if decision.runner == "torch-cuda" else "cpu", precision), notes
    try:
        onnx_path = cached_onnx(model, cache_dir)
    except ExportMismatchError as exc:
        if backend != "auto" or found_runtimes().torch is None:
            raise
        notes.append(f"ONNX export refused ({exc.report.describe()}): running PyTorch on the CPU")
        return _torch(model, "cpu", precision), notes
    notes.append(f"ONNX export: {onnx_path}")
    return _onnx(onnx_path, threads), notes


def _onnx(path: Path, threads: int | None) -> Backend:
    from segstudio.inference.onnx_backend import OnnxBackend  # onnxruntime

    return OnnxBackend(path, threads)


def _torch(model: ModelFile, device: str, precision: str) -> Backend:
    from segstudio.inference.torch_backend import TorchBackend  # torch

    network, _ = load_model(model, device="cpu")
    return TorchBackend(network, device=device, precision=precision)  # type: ignore[arg-type]
