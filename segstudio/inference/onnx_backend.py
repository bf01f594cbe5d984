"""ONNX Runtime on the CPU: all graph optimisations, one intra-op thread per physical core, one session reused.

Needs onnxruntime and numpy only (no torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segstudio.inference.backend import NumpyOps
from segstudio.inference.model_file import ModelFileError


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads share a core's vector units, so more threads do not help convs)."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:
        n = None
    return max(1, n or os.cpu_count() or 1)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "…"


class OnnxBackend(NumpyOps):
    """One ``onnxruntime.InferenceSession`` (CPU execution provider) over an ONNX model."""

    def __init__(self, model: bytes | Path | str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.threads = threads or physical_cores()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        src = model if isinstance(model, bytes) else str(model)
        shown = "the ONNX model" if isinstance(model, bytes) else str(model)
        try:
            self.session_ = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types (InvalidGraph, NotImplemented, Fail, …) for bad graphs
            raise ModelFileError(shown, f"ONNX Runtime cannot run it ({_first_line(exc)})") from None
        inp = self.session_.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.name = f"onnxruntime cpu ({self.threads} threads)"
        self.device = "cpu"
        self.batch_size = 1  # on the CPU a batch is no faster per image than single images

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.session_.run(None, {self.input_name: x.astype(self.input_dtype, copy=False)})[0]
        out = np.asarray(out)
        if out.ndim != 4:
            raise ValueError(f"the ONNX model's first output has shape {out.shape}; a segmentation network "
                             "outputs N×classes×H×W logits")
        return out.astype(np.float32, copy=False)
