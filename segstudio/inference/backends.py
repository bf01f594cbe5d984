"""The backend registry: every way segstudio can run a model file, and the one rule that picks one.

Read by the app and the command line alike, for:

- **names**: :data:`ENGINES` (``--backend``), :data:`DEVICES` (``--device``), :data:`PRECISIONS`
  (``--precision``) and :data:`CHOICES`, the app's four choices (a title over an engine and a device);
- **what runs**: :func:`decide` — the runner for an engine, a device, a model file's format and the
  runtimes this machine has (:class:`Runtimes`) — and the reason when nothing can;
- **opening**: :func:`~segstudio.inference.open_backend.open_backend` carries out what :func:`decide`
  said, for a :class:`~segstudio.inference.model_file.ModelFile` read once.

The rule. An ONNX file runs with ONNX Runtime on the CPU. A ``.safetensors`` file runs with PyTorch on
CUDA when asked for or, with ``auto``, when torch and a GPU exist; otherwise with ONNX Runtime on the
CPU through an export made once and cached (:mod:`~segstudio.inference.onnx_cache`); and with PyTorch on
the CPU where ONNX Runtime is missing, or where asked for.

Standard library only, so that the command line reads the names while it parses its arguments; torch
is imported only to look for a GPU, and only when the answer matters.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Literal

from segstudio.install_hints import TORCH_CPU, TORCH_CUDA

ENGINES: tuple[str, ...] = ("auto", "torch", "onnx")
"""What runs the network: the best available, PyTorch, or ONNX Runtime."""
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
PRECISIONS: tuple[str, ...] = ("fp16", "bf16", "fp32")
"""Autocast precisions on CUDA (the CPU runs float32)."""

Runner = Literal["torch-cuda", "torch-cpu", "onnx", "onnx-export"]
"""``onnx``: an ONNX file as it is; ``onnx-export``: a ``.safetensors`` model's cached ONNX export."""


@dataclass(frozen=True)
class BackendChoice:
    """One of the app's backend choices: a title over the engine and device it stands for."""

    key: str
    title: str
    engine: str
    device: str


CHOICES: dict[str, BackendChoice] = {c.key: c for c in (
    BackendChoice("auto", "Auto (best available)", "auto", "auto"),
    BackendChoice("cuda", "CUDA GPU (PyTorch)", "torch", "cuda"),
    BackendChoice("cpu-onnx", "CPU — ONNX Runtime", "onnx", "cpu"),
    BackendChoice("cpu-torch", "CPU — PyTorch", "torch", "cpu"),
)}
"""The app's backend choices, by key, in the order they are offered."""


def get_choice(key: str) -> BackendChoice:
    """The choice called ``key`` (``ValueError`` listing the valid keys)."""
    try:
        return CHOICES[key]
    except KeyError:
        raise ValueError(f"unknown backend {key!r}; one of {', '.join(CHOICES)}") from None


# ---------------------------------------------------------------------- runtimes

@dataclass(frozen=True)
class Runtimes:
    """What this machine can run: versions (``"installed"`` when only found, None when missing) and the
    CUDA device's name (None: none, or not looked for yet)."""

    torch: str | None
    cuda: str | None
    onnxruntime: str | None
    checked_cuda: bool = True
    """False while only the cheap check ran (torch not imported yet, so CUDA unknown)."""

    def decide(self, key: str, model_format: str | None = None) -> Decision:
        """:func:`decide` for the app's choice ``key`` (a key of :data:`CHOICES`)."""
        choice = get_choice(key)
        return decide(choice.engine, choice.device, model_format, self)

    def problem(self, key: str, model_format: str | None = None) -> str | None:
        """Why the app's choice ``key`` cannot run a model of ``model_format`` (None: unknown), or None."""
        return self.decide(key, model_format).problem


def _version(module: str) -> str | None:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "?"))
    except ImportError:
        return None


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def found_runtimes() -> Runtimes:
    """Which runtimes are installed, without importing any (instant); versions and CUDA unknown."""
    has_torch = _found("torch")
    return Runtimes("installed" if has_torch else None, None,
                    "installed" if _found("onnxruntime") else None, checked_cuda=not has_torch)


def quick_runtimes() -> Runtimes:
    """Installed runtimes without importing torch (fast); ONNX Runtime's version; CUDA left unknown."""
    has_torch = _found("torch")
    return Runtimes("installed" if has_torch else None, None, _version("onnxruntime"), checked_cuda=not has_torch)


def detect_runtimes() -> Runtimes:
    """Installed runtimes and the CUDA device. Imports torch (seconds): run it in a worker."""
    torch_version = _version("torch")
    cuda = None
    if torch_version is not None:
        import torch

        if torch.cuda.is_available():
            cuda = str(torch.cuda.get_device_name(0))
    return Runtimes(torch_version, cuda, _version("onnxruntime"))


# ---------------------------------------------------------------------- the rule

@dataclass(frozen=True)
class Decision:
    """What runs a model: a runner, or the problem that none can.

    ``needs_cuda_check``: the answer depends on a GPU that was not looked for (:attr:`Runtimes.checked_cuda`);
    ``runner`` is then what runs without one. ``note`` says why the runner is not the obvious one.
    """

    runner: Runner | None
    problem: str | None = None
    note: str | None = None
    needs_cuda_check: bool = False

    @property
    def exports_onnx(self) -> bool:
        """The model runs through an ONNX export, made (slowly, once) unless it is cached."""
        return self.runner == "onnx-export"


def _refused(problem: str, needs_cuda_check: bool = False) -> Decision:
    return Decision(None, problem, needs_cuda_check=needs_cuda_check)


NO_ONNXRUNTIME = "ONNX Runtime is not installed (pip install onnxruntime)"
NO_TORCH = f"PyTorch is not installed ({TORCH_CPU}; with an NVIDIA GPU: {TORCH_CUDA})"


def decide(engine: str, device: str, model_format: str | None, runtimes: Runtimes) -> Decision:
    """The runner for a model of ``model_format`` (``"safetensors"``, ``"onnx"``; None: not known yet, taken
    as ``.safetensors``) on ``engine`` and ``device``, given ``runtimes``; see the module docstring.

    Raises ``ValueError`` for an engine or device that does not exist.
    """
    if engine not in ENGINES:
        raise ValueError(f"backend must be one of {', '.join(ENGINES)}, got {engine!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    rt = runtimes
    if model_format == "onnx":
        if engine == "torch":
            return _refused("an ONNX file runs with ONNX Runtime; open the .safetensors model to use PyTorch")
        if device == "cuda":
            return _refused("ONNX files run on the CPU here; open the .safetensors model to use CUDA")
        return Decision("onnx") if rt.onnxruntime else _refused(NO_ONNXRUNTIME)
    if engine == "onnx":
        if device == "cuda":
            return _refused("ONNX Runtime runs on the CPU here; CUDA needs the PyTorch backend")
        return Decision("onnx-export") if rt.onnxruntime else _refused(NO_ONNXRUNTIME)
    # a .safetensors model on torch or auto
    if rt.torch is None:
        if engine == "torch" or device == "cuda":
            return _refused(("CUDA needs PyTorch: " if device == "cuda" else "") + NO_TORCH)
        if rt.onnxruntime:
            return Decision("onnx-export")
        return _refused("neither PyTorch nor ONNX Runtime is installed")
    unknown = not rt.checked_cuda and device != "cpu"
    if device == "cuda":
        if unknown:
            return _refused("checking for a CUDA GPU…", needs_cuda_check=True)
        if rt.cuda is None:
            return _refused(f"PyTorch {rt.torch} finds no CUDA GPU on this machine")
        return Decision("torch-cuda")
    if device == "auto" and rt.cuda is not None:
        return Decision("torch-cuda")
    if engine == "torch":
        return Decision("torch-cpu", needs_cuda_check=unknown)
    if rt.onnxruntime:
        return Decision("onnx-export", needs_cuda_check=unknown)
    return Decision("torch-cpu", note="ONNX Runtime is not installed: running PyTorch on the CPU",
                    needs_cuda_check=unknown)
