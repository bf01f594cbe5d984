"""torch → ONNX export with dynamic batch/H/W, and a parity check against torch.

The export always goes through :func:`export_onnx`; :func:`onnx_parity`
compares ONNX Runtime's logits with PyTorch's on inputs of sizes other than the
traced one, so a shape frozen into the graph is caught. :func:`export_verified`
is what users get (``segstudio export-onnx``, the predictor's on-the-fly
export): it refuses an export that is not the same function within float32
rounding (see :class:`ParityReport`).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segstudio.core.atomic import atomic_write_bytes
from segstudio.inference.parity import (
    PARITY_MIN_ARGMAX_AGREEMENT,
    PARITY_RTOL,
    ExportMismatchError,
    ParityReport,
)

__all__ = [
    "PARITY_MIN_ARGMAX_AGREEMENT",
    "PARITY_RTOL",
    "ExportMismatchError",
    "ParityReport",
    "check_export",
    "export_onnx",
    "export_onnx_bytes",
    "export_verified",
    "onnx_parity",
    "parity_input",
    "parity_shapes",
]

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def export_onnx_bytes(model: nn.Module, in_channels: int = 3, sample_hw: tuple[int, int] = (96, 128),
                      opset: int = OPSET, metadata: dict[str, str] | None = None) -> bytes:
    """Serialise ``model`` (eval mode, CPU, float32) to ONNX with dynamic batch, height and width.

    ``metadata`` goes into the model's ``metadata_props`` (the model card travels this way).
    """
    was_training = model.training
    model = model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    sample = torch.randn(1, in_channels, *sample_hw, device=device)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-to-int conversions we handle
            torch.onnx.export(
                model,
                (sample,),
                buf,  # type: ignore[arg-type]  # a file object is accepted
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                              OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
                opset_version=opset,
                do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    data = buf.getvalue()
    if metadata:
        import onnx

        proto = onnx.load_from_string(data)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        data = proto.SerializeToString()
    return data


def export_onnx(model: nn.Module, path: Path | str, in_channels: int = 3, sample_hw: tuple[int, int] = (96, 128),
                opset: int = OPSET, metadata: dict[str, str] | None = None) -> Path:
    """Export ``model`` to ``path`` atomically (see :func:`export_onnx_bytes`)."""
    data = export_onnx_bytes(model, in_channels, sample_hw, opset, metadata)
    atomic_write_bytes(path, data)
    return Path(path)


def onnx_parity(model: nn.Module, onnx_model: bytes | Path | str, shapes: Sequence[tuple[int, int, int, int]],
                seed: int = 0) -> float:
    """Largest absolute difference between ONNX Runtime (CPU) and PyTorch logits over ``shapes`` (N,C,H,W)."""
    import onnxruntime as ort

    src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        for shape in shapes:
            x = torch.randn(*shape, generator=gen)
            with torch.inference_mode():
                ref = model(x.to(next(model.parameters()).device)).float().cpu().numpy()
            got = sess.run(None, {INPUT_NAME: x.numpy()})[0]
            if got.shape != ref.shape:
                raise AssertionError(f"ONNX output shape {got.shape} != torch {ref.shape} for input {shape}")
            worst = max(worst, float(np.abs(got - ref).max()))
    finally:
        model.train(was_training)
    return worst


def parity_shapes(in_channels: int, size_multiple: int) -> list[tuple[int, int, int, int]]:
    """Two test shapes, neither the traced one, both multiples of the network's stride (one with batch 2)."""
    b = max(32, size_multiple)
    return [(1, in_channels, 4 * b, 5 * b), (2, in_channels, 3 * b, 6 * b)]


def parity_input(shape: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """A normalised image-like input: smooth random structure plus fine noise (float32, N×C×H×W).

    Real images are mostly smooth regions and edges; pure white noise would
    exercise the network far from where it is used.
    """
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, (n, c, max(2, h // 16), max(2, w // 16))).astype(np.float32)
    smooth = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(h, w), mode="bicubic",
                                             align_corners=False).numpy()
    return (smooth + rng.normal(0.0, 0.2, (n, c, h, w))).astype(np.float32)


def check_export(model: nn.Module, onnx_model: bytes | Path | str,
                 shapes: Sequence[tuple[int, int, int, int]], seed: int = 0) -> ParityReport:
    """Run ONNX Runtime (CPU) and the PyTorch module on :func:`parity_input` inputs and compare."""
    import onnxruntime as ort

    src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    max_abs, scale, agree, count = 0.0, 1.0, 0, 0
    try:
        for i, shape in enumerate(shapes):
            x = parity_input(shape, seed + i)
            with torch.inference_mode():
                ref = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
            got = sess.run(None, {input_name: x})[0]
            if got.shape != ref.shape:
                raise ExportMismatchError(ParityReport(float("inf"), 1.0, 0.0, [tuple(shape)]))
            max_abs = max(max_abs, float(np.abs(got.astype(np.float64) - ref).max()))
            scale = max(scale, float(np.abs(ref).max()))
            agree += int((got.argmax(1) == ref.argmax(1)).sum())
            count += ref.shape[0] * ref.shape[2] * ref.shape[3]
    finally:
        model.train(was_training)
    return ParityReport(max_abs, scale, agree / max(count, 1), [tuple(s) for s in shapes])


def export_verified(model: nn.Module, in_channels: int, size_multiple: int,
                    metadata: dict[str, str] | None = None,
                    path: Path | str | None = None) -> tuple[bytes, ParityReport]:
    """Export to ONNX, check it against PyTorch (:class:`ParityReport`) and only then write ``path``.

    Raises :class:`ExportMismatchError` (and writes nothing) when the check fails.
    """
    data = export_onnx_bytes(model, in_channels=in_channels, metadata=metadata)
    report = check_export(model, data, parity_shapes(in_channels, size_multiple))
    if not report.ok:
        raise ExportMismatchError(report)
    if path is not None:
        atomic_write_bytes(path, data)
    return data, report
