"""Choosing a backend for a model file, and the cache of ONNX exports made on the fly.

``auto``: PyTorch on CUDA when torch and a GPU exist; else ONNX Runtime on the
CPU; else PyTorch on the CPU. A ``.safetensors`` model run by ONNX Runtime is
exported once (checked against PyTorch, see
:func:`~segstudio.inference.export.export_verified`) into the user's cache,
``$XDG_CACHE_HOME/segstudio/onnx/<stem>-<sha256[:16]>.onnx`` — never beside the
model, whose folder may be the install's ``models/`` (read-only, or shared by
every user). An export already in ``<model folder>/.onnx-cache/`` (where older
versions wrote it) is still used. The key is the model file's hash, so a
changed model is exported again and an unchanged one never is; with the
export cached, torch is not needed at all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.inference.backend import Backend
from segstudio.inference.model_file import ModelFileError, file_sha256, load_card, model_format
from segstudio.zoo import CARD_KEY, ModelCard

BACKENDS = ("auto", "torch", "onnx")
DEVICES = ("auto", "cuda", "cpu")
CACHE_FOLDER = ".onnx-cache"
SOURCE_HASH_KEY = "segstudio.source_sha256"


def _torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or str(Path.home() / ".cache")
    return Path(base) / "segstudio" / "onnx"


def cache_dirs(model_path: Path, cache_dir: Path | str | None = None) -> list[Path]:
    """Where an export of ``model_path`` is looked for; the last one is where a new export is written."""
    if cache_dir is not None:
        return [Path(cache_dir)]
    return [model_path.parent / CACHE_FOLDER, user_cache_dir()]


def _write_dirs(model_path: Path, cache_dir: Path | str | None) -> list[Path]:
    return cache_dirs(model_path, cache_dir)[-1:]


def cached_onnx(model_path: Path | str, cache_dir: Path | str | None = None) -> Path:
    """The ONNX export of a ``.safetensors`` model, made (and verified) now unless cached.

    Raises :class:`ModelFileError` when no export is cached and torch (needed to
    make one) is missing, and :class:`~segstudio.inference.export.ExportMismatchError`
    when the export does not match PyTorch.
    """
    p = Path(model_path)
    digest = file_sha256(p)
    name = f"{p.stem}-{digest[:16]}.onnx"
    dirs = cache_dirs(p, cache_dir)
    for d in dirs:
        if (d / name).is_file():
            return d / name
    if _torch() is None:
        raise ModelFileError(p, "ONNX Runtime needs an ONNX export of this model and none is cached; making one "
                                "needs PyTorch, which is not installed (install torch, or run "
                                "`segstudio export-onnx` on a machine that has it)")
    from segstudio.inference.export import export_verified
    from segstudio.inference.model_file import load_model
    from segstudio.inference.predictor import size_multiple_for

    model, card = load_model(p, device="cpu")
    data, _ = export_verified(model, card.in_channels, size_multiple_for(card),
                              metadata={CARD_KEY: card.to_json(), SOURCE_HASH_KEY: digest})
    errors = []
    for d in _write_dirs(p, cache_dir):
        try:
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(d / name, data)
        except (OSError, SaveError) as exc:
            errors.append(f"{d}: {exc}")
            continue
        for stale in d.glob(f"{p.stem}-*.onnx"):
            tail = stale.stem[len(p.stem) + 1:]
            if stale.name != name and len(tail) == 16 and all(c in "0123456789abcdef" for c in tail):
                with contextlib.suppress(OSError):
                    stale.unlink()
        return d / name
    raise ModelFileError(p, "could not write the ONNX export to any cache folder: " + "; ".join(errors))


def open_backend(path: Path | str, *, backend: str = "auto", device: str = "auto", precision: str = "fp16",
                 class_names: Sequence[str] | None = None, threads: int | None = None,
                 cache_dir: Path | str | None = None) -> tuple[Backend, ModelCard, list[str]]:
    """(backend, card, notes) for a model file; see the module docstring for the rules."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    p = Path(path)
    fmt = model_format(p)
    card = load_card(p, class_names)
    notes: list[str] = []

    if fmt == "onnx":
        if backend == "torch":
            raise ModelFileError(p, "an ONNX file runs with ONNX Runtime (backend onnx or auto); "
                                    "open the .safetensors model to use PyTorch")
        if device == "cuda":
            raise ModelFileError(p, "ONNX files run on the CPU here; open the .safetensors model to use CUDA")
        from segstudio.inference.onnx_backend import OnnxBackend

        return OnnxBackend(p, threads), card, notes

    torch = _torch() if backend in ("auto", "torch") else None
    cuda = bool(torch is not None and device != "cpu" and torch.cuda.is_available())
    if device == "cuda" and not cuda:
        raise ModelFileError(p, "CUDA was asked for but " + (
            "PyTorch is not installed" if _torch() is None else "no CUDA device is available"))
    if backend == "torch" and torch is None:
        raise ModelFileError(p, "the torch backend was asked for but PyTorch is not installed")

    if backend == "torch" or cuda:
        return _torch_backend(p, "cuda" if cuda else "cpu", precision), card, notes

    # No CUDA: ONNX Runtime on the CPU (backend "onnx", or "auto").
    if not _onnxruntime_available():
        if backend == "onnx" or torch is None:
            raise ModelFileError(p, "neither ONNX Runtime nor PyTorch is installed")
        notes.append("ONNX Runtime is not installed: running PyTorch on the CPU")
        return _torch_backend(p, "cpu", precision), card, notes
    from segstudio.inference.onnx_backend import OnnxBackend
    from segstudio.inference.parity import ExportMismatchError

    try:
        onnx_path = cached_onnx(p, cache_dir)
    except ExportMismatchError as exc:
        if backend == "onnx" or torch is None:
            raise
        notes.append(f"ONNX export refused ({exc.report.describe()}): running PyTorch on the CPU")
        return _torch_backend(p, "cpu", precision), card, notes
    notes.append(f"ONNX export: {onnx_path}")
    return OnnxBackend(onnx_path, threads), card, notes


def _torch_backend(path: Path, device: str, precision: str) -> Backend:
    from segstudio.inference.model_file import load_model
    from segstudio.inference.torch_backend import TorchBackend

    model, _ = load_model(path, device="cpu")
    return TorchBackend(model, device=device, precision=precision)  # type: ignore[arg-type]
