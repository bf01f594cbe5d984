"""The export acceptance criterion, without torch (so that callers can catch a refusal anywhere)."""

from __future__ import annotations

from dataclasses import dataclass, field

PARITY_RTOL = 1e-4
"""Largest allowed |ONNX − PyTorch| as a fraction of the logits' scale, ``max(1, max |torch logits|)``."""
PARITY_MIN_ARGMAX_AGREEMENT = 0.999
"""Fraction of pixels whose arg-max class must agree between ONNX Runtime and PyTorch."""


class ExportMismatchError(RuntimeError):
    """The ONNX graph does not compute the same function as the PyTorch module; nothing was written."""

    def __init__(self, report: ParityReport) -> None:
        super().__init__(f"the ONNX export does not match PyTorch: {report.describe()}")
        self.report = report


@dataclass
class ParityReport:
    """ONNX Runtime vs PyTorch on test inputs.

    The criterion is "the same function within float32 rounding": the largest
    absolute difference must be at most :data:`PARITY_RTOL` times the logits'
    scale (``max(1, max|logits|)`` — float32 itself rounds large logits by more
    than a fixed 1e-4: a UNet with logits near 28 differs from float64 by 1.2e-4),
    and the arg-max class must agree on at least :data:`PARITY_MIN_ARGMAX_AGREEMENT`
    of the pixels (so that a small error in a low-logit region cannot hide behind
    a large logit elsewhere).
    """

    max_abs: float
    scale: float
    argmax_agreement: float
    shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def relative(self) -> float:
        return self.max_abs / self.scale

    @property
    def ok(self) -> bool:
        return self.relative <= PARITY_RTOL and self.argmax_agreement >= PARITY_MIN_ARGMAX_AGREEMENT

    def describe(self) -> str:
        return (f"max |difference| {self.max_abs:.3g} on logits of scale {self.scale:.3g} "
                f"(relative {self.relative:.2g}, limit {PARITY_RTOL:g}); arg-max agrees on "
                f"{self.argmax_agreement:.4%} of pixels (need {PARITY_MIN_ARGMAX_AGREEMENT:.1%}); "
                f"inputs {', '.join('x'.join(map(str, s)) for s in self.shapes)}")
