"""The training-curve picture: loss (raw and smoothed) and validation mIoU against the step, as a PNG.

Drawn with OpenCV (already a dependency) rather than a plotting library:
two panels with axes, a few ticks and labels, which is all a run summary needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.atomic import atomic_write_bytes

_W, _H = 900, 620
_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 70, 20, 30, 40
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def smooth(values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard shows)."""
    out = np.empty(len(values))
    acc, weight = 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = np.ceil(lo / step) * step
    return [float(t) for t in np.arange(start, hi + step * 0.5, step) if lo - 1e-12 <= t <= hi + 1e-12]


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:.3g}"


def _panel(img: np.ndarray, box: tuple[int, int, int, int], title: str, xs_list: Sequence[np.ndarray],
           ys_list: Sequence[np.ndarray], colours: Sequence[tuple[int, int, int]], x_range: tuple[float, float],
           y_range: tuple[float, float] | None = None, markers: bool = False) -> None:
    x0, y0, x1, y1 = box
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.putText(img, title, (x0, y0 - 8), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ys_all = np.concatenate([y for y in ys_list if len(y)]) if any(len(y) for y in ys_list) else np.zeros(1)
    lo, hi = y_range if y_range else (float(np.nanmin(ys_all)), float(np.nanmax(ys_all)))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    xlo, xhi = x_range
    xhi = xhi if xhi > xlo else xlo + 1

    def px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = x0 + (x - xlo) / (xhi - xlo) * (x1 - x0)
        v = y1 - (y - lo) / (hi - lo) * (y1 - y0)
        return np.stack([u, v], 1).round().astype(np.int32)

    for t in _ticks(lo, hi):
        v = round(y1 - (t - lo) / (hi - lo) * (y1 - y0))
        cv2.line(img, (x0, v), (x1, v), (225, 225, 225), 1)
        cv2.putText(img, _label(t), (x0 - 60, v + 4), _FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for t in _ticks(xlo, xhi):
        u = round(x0 + (t - xlo) / (xhi - xlo) * (x1 - x0))
        cv2.putText(img, _label(t), (u - 10, y1 + 16), _FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for xs, ys, colour in zip(xs_list, ys_list, colours):
        ok = np.isfinite(ys)
        if ok.sum() == 0:
            continue
        pts = px(np.asarray(xs, float)[ok], np.asarray(ys, float)[ok])
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, colour, 1 if not markers else 2, cv2.LINE_AA)
        if markers or len(pts) == 1:
            for p in pts:
                cv2.circle(img, (int(p[0]), int(p[1])), 3, colour, -1, cv2.LINE_AA)


def render_curves(steps: Sequence[int], losses: Sequence[float], val_steps: Sequence[int],
                  val_miou: Sequence[float], title: str = "") -> np.ndarray:
    """An RGB image of the two panels (loss; validation mIoU) against the optimizer step."""
    img = np.full((_H, _W, 3), 255, np.uint8)
    if title:
        cv2.putText(img, title, (_MARGIN_L, 18), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    xr = (0.0, float(max([*steps, *val_steps, 1])))
    half = (_H - _MARGIN_T - _MARGIN_B) // 2
    top = (_MARGIN_L, _MARGIN_T + 20, _W - _MARGIN_R, _MARGIN_T + half - 10)
    bottom = (_MARGIN_L, _MARGIN_T + half + 30, _W - _MARGIN_R, _H - _MARGIN_B)
    s = np.asarray(steps, float)
    loss = np.asarray(losses, float)
    alpha = min(0.3, max(0.01, 10 / max(1, len(loss))))  # about the last 10 % of a run's steps
    _panel(img, top, "training loss (grey: per step, blue: smoothed)", [s, s],
           [loss, smooth(loss, alpha) if len(loss) else loss], [(190, 190, 190), (200, 80, 20)], xr)
    _panel(img, bottom, "validation mIoU" if len(val_miou) else "validation mIoU (no validation set)",
           [np.asarray(val_steps, float)], [np.asarray(val_miou, float)], [(40, 150, 40)], xr, (0.0, 1.0),
           markers=True)
    cv2.putText(img, "step", (_W // 2, _H - 8), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_curves(path: Path | str, steps: Sequence[int], losses: Sequence[float], val_steps: Sequence[int],
                 val_miou: Sequence[float], title: str = "") -> Path:
    """Render the curves and write them as a PNG, atomically."""
    rgb = render_curves(steps, losses, val_steps, val_miou, title)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding of the curves failed")
    atomic_write_bytes(path, buf.tobytes())
    return Path(path)
