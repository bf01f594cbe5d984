"""torch → ONNX export with dynamic batch/H/W, and a parity check against torch.

The export always goes through :func:`export_onnx`; :func:`onnx_parity`
compares ONNX Runtime's logits with PyTorch's on inputs of sizes other than the
traced one, so a shape frozen into the graph is caught.
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
