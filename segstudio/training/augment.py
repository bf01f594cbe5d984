"""On-the-fly augmentation: random scale, rotation and flips folded into one affine warp, crop with
ignore-labelled padding, and photometric jitter.

Every geometric change of one sample (scale in ``scale_range``, optional small
rotation, quarter turns and flips, crop position) is one 2×3 matrix that maps
an output (crop) pixel to a source pixel, drawn by :func:`draw_params`. Two
executors apply it identically:

- :func:`warp_sample` on the CPU: ``cv2.warpAffine`` (bilinear for the image,
  nearest for the label), so a crop costs one pass over the *crop*, not over
  the rescaled full image;
- :func:`warp_batch_torch` on any torch device (the CUDA path: the source
  images live on the GPU and a batch is warped there with ``grid_sample``, so
  two CPU cores do not starve the GPU).

Pixels that fall outside the source image (padding) get the label "not
labelled" and image value 0; the loss ignores them. Photometric jitter
(brightness, contrast, saturation) runs on the batch as a torch tensor in both
paths (:func:`photometric_jitter`), after the warp and before normalisation.

Pixel-centre convention: source pixel ``i`` covers ``[i - 0.5, i + 0.5]``, so a
pure scale by ``s`` maps output pixel ``x`` to ``(x + 0.5) / s - 0.5``, which
matches ``cv2.resize`` and ``F.interpolate(align_corners=False)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """What to randomise. Defaults follow the usual street-scene recipe (mmseg): scale 0.5–2, h-flip."""

    scale_range: tuple[float, float] = (0.5, 2.0)
    hflip: bool = True
    vflip: bool = False
    """Vertical flips and quarter turns suit images without an up (microscopy, aerial), not street scenes."""
    rot90: bool = False
    rotate_deg: float = 0.0
    """Maximum random rotation in degrees (uniform in ±rotate_deg)."""
    brightness: float = 0.125
    """Maximum brightness shift as a fraction of the value range."""
    contrast: float = 0.25
    """Contrast factor drawn from 1 ± contrast."""
    saturation: float = 0.25
    """Saturation factor drawn from 1 ± saturation (RGB images only)."""
    elastic_px: float = 0.0
    """Elastic deformation (U-Net paper): random displacements with this standard deviation in (crop) pixels
    on a coarse ``elastic_grid`` × ``elastic_grid`` grid, interpolated bicubically. 0 = off."""
    elastic_grid: int = 3

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")
        if self.rotate_deg < 0 or min(self.brightness, self.contrast, self.saturation, self.elastic_px) < 0:
            raise ValueError("rotation, jitter and deformation amounts must not be negative")
        if self.elastic_grid < 2:
            raise ValueError("the elastic grid has at least 2×2 points")


@dataclass(frozen=True)
class SampleParams:
    """The random draw for one sample: the crop→source affine and the photometric factors."""

    matrix: np.ndarray
    """2×3 float64: source (x, y) = matrix @ (crop x, crop y, 1), in pixel units."""
    brightness: float
    contrast: float
    saturation: float
    displacement: np.ndarray | None = None
    """2×g×g float32 (dx, dy) in crop pixels on a coarse grid, or None: crop pixel (x, y) is moved by the
    bicubically interpolated displacement before the affine map."""


def draw_params(rng: np.random.Generator, src_hw: tuple[int, int], crop_hw: tuple[int, int],
                cfg: AugmentConfig) -> SampleParams:
    """Draw one sample's augmentation for a source of ``src_hw`` cropped to ``crop_hw`` (height, width).

    The crop is placed uniformly over the scaled, rotated image's bounding box;
    when that box is smaller than the crop, the image lands at a random place
    inside the crop and the rest is padding.
    """
    H, W = src_hw
    ch, cw = crop_hw
    lo, hi = cfg.scale_range
    s = float(rng.uniform(lo, hi)) if hi > lo else lo
    angle = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if cfg.rotate_deg > 0 else 0.0
    if cfg.rot90:
        angle += 90.0 * int(rng.integers(4))
    fx = -1.0 if cfg.hflip and rng.random() < 0.5 else 1.0
    fy = -1.0 if cfg.vflip and rng.random() < 0.5 else 1.0
    t = math.radians(angle)
    cos, sin = math.cos(t), math.sin(t)
    # forward (source → crop): q = s · R · F · (p - c_src) + c_dst + offset
    rf = np.array([[cos * fx, -sin * fy], [sin * fx, cos * fy]])
    a = s * rf
    box_w = s * (abs(cos) * W + abs(sin) * H)
    box_h = s * (abs(sin) * W + abs(cos) * H)
    off_x = float(rng.uniform(-1, 1)) * abs(box_w - cw) / 2
    off_y = float(rng.uniform(-1, 1)) * abs(box_h - ch) / 2
    c_src = np.array([(W - 1) / 2, (H - 1) / 2])
    c_dst = np.array([(cw - 1) / 2 + off_x, (ch - 1) / 2 + off_y])
    inv = np.linalg.inv(a)
    matrix = np.empty((2, 3))
    matrix[:, :2] = inv
    matrix[:, 2] = c_src - inv @ c_dst
    brightness = float(rng.uniform(-cfg.brightness, cfg.brightness))
    contrast = float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast))
    saturation = float(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation))
    displacement = None
    if cfg.elastic_px > 0:  # drawn last, so that switching it on leaves the other draws as they were
        g = cfg.elastic_grid
        displacement = rng.normal(0.0, cfg.elastic_px, (2, g, g)).astype(np.float32)
    return SampleParams(matrix, brightness, contrast, saturation, displacement)


def displacement_field(params: SampleParams, crop_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The per-pixel (dx, dy) of the crop, H×W float32 each (bicubic from the coarse grid)."""
    if params.displacement is None:
        raise ValueError("these parameters have no displacement")
    ch, cw = crop_hw
    dx = cv2.resize(params.displacement[0], (cw, ch), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(params.displacement[1], (cw, ch), interpolation=cv2.INTER_CUBIC)
    return dx, dy


def warp_sample(image: np.ndarray, label: np.ndarray, params: SampleParams, crop_hw: tuple[int, int],
                ignore_value: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``params`` on the CPU: (crop image H×W×C in the source dtype, crop label H×W).

    Padding is 0 in the image and ``ignore_value`` in the label.
    """
    ch, cw = crop_hw
    if params.displacement is not None:
        dx, dy = displacement_field(params, crop_hw)
        xs = np.arange(cw, dtype=np.float32)[None, :] + dx
        ys = np.arange(ch, dtype=np.float32)[:, None] + dy
        m = params.matrix.astype(np.float32)
        map_x = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        map_y = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        img = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        lab = cv2.remap(label, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=ignore_value)
        return (img[:, :, None] if img.ndim == 2 else img), lab
    flags_img = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    flags_lab = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    img = cv2.warpAffine(image, params.matrix, (cw, ch), flags=flags_img, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    if img.ndim == 2:
        img = img[:, :, None]
    lab = cv2.warpAffine(label, params.matrix, (cw, ch), flags=flags_lab, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=ignore_value)
    return img, lab


def host_to(array: np.ndarray, device: torch.device) -> Tensor:
    """A small host array on ``device``. On CUDA the copy goes through pinned memory without blocking: a copy
    from ordinary (pageable) memory would first wait for all queued GPU work, stalling the training step."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def normalized_theta(matrix: np.ndarray, src_hw: tuple[int, int], crop_hw: tuple[int, int]) -> np.ndarray:
    """The pixel-unit crop→source affine as ``F.affine_grid``'s theta (normalised, align_corners=False)."""
    H, W = src_hw
    ch, cw = crop_hw
    m = np.vstack([matrix, [0.0, 0.0, 1.0]])
    # crop pixel from normalised: x = ((u + 1) · cw - 1) / 2
    from_norm = np.array([[cw / 2, 0, (cw - 1) / 2], [0, ch / 2, (ch - 1) / 2], [0, 0, 1]])
    # normalised source from pixel: u = (2x + 1) / W - 1
    to_norm = np.array([[2 / W, 0, 1 / W - 1], [0, 2 / H, 1 / H - 1], [0, 0, 1]])
    return (to_norm @ m @ from_norm)[:2]


def warp_batch_torch(images: list[Tensor], labels: list[Tensor], params: list[SampleParams],
                     crop_hw: tuple[int, int], ignore_value: int) -> tuple[Tensor, Tensor]:
    """Apply ``params`` on the tensors' device: images C×H×W (any dtype), labels H×W (integers).

    Returns (N×C×h×w float32 in the images' value range, N×h×w int64 labels with
    padding = ``ignore_value``). Samples whose sources share a size are warped in
    one ``grid_sample`` call.
    """
    n = len(images)
    if not n or len(labels) != n or len(params) != n:
        raise ValueError("need one label and one parameter set per image")
    device = images[0].device
    ch, cw = crop_hw
    out_img = torch.empty((n, images[0].shape[0], ch, cw), dtype=torch.float32, device=device)
    out_lab = torch.empty((n, ch, cw), dtype=torch.int64, device=device)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape), []).append(i)
    for shape, members in groups.items():
        src_hw = (shape[1], shape[2])
        theta = host_to(np.stack([normalized_theta(params[i].matrix, src_hw, crop_hw)
                                  for i in members]).astype(np.float32), device)
        grid = F.affine_grid(theta, [len(members), 1, ch, cw], align_corners=False)
        if any(params[i].displacement is not None for i in members):
            grid = grid + _displacement_grid([params[i] for i in members], src_hw, crop_hw, device)
        src = torch.stack([images[i] for i in members]).float()
        img = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # labels + 1 so that zero padding reads as "outside" (classes ≤ 65535 are exact in float32)
        lab = torch.stack([labels[i] for i in members]).float().add_(1).unsqueeze(1)
        warped = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        warped = warped.squeeze(1).round_().long().sub_(1)
        warped = torch.where(warped < 0, ignore_value, warped)
        if len(groups) == 1:
            return img, warped
        index = host_to(np.asarray(members, np.int64), device)
        out_img[index] = img
        out_lab[index] = warped
    return out_img, out_lab


def _displacement_grid(params: list[SampleParams], src_hw: tuple[int, int], crop_hw: tuple[int, int],
                       device: torch.device) -> Tensor:
    """N×h×w×2 offsets of ``grid_sample``'s normalised source coordinates caused by the displacements.

    Source = M · (x + dx, y + dy, 1) = M · (x, y, 1) + M[:, :2] · (dx, dy); in normalised units the
    second term is scaled by (2/W, 2/H). The coarse fields are interpolated bicubically on the device.
    """
    H, W = src_hw
    g = next(p.displacement for p in params if p.displacement is not None).shape[-1]  # type: ignore[union-attr]
    coarse = np.stack([p.displacement if p.displacement is not None else np.zeros((2, g, g), np.float32)
                       for p in params])
    linear = np.stack([p.matrix[:, :2] for p in params]) * np.array([[2 / W], [2 / H]])
    d = F.interpolate(host_to(coarse.astype(np.float32), device), size=crop_hw, mode="bicubic",
                      align_corners=False)
    a = host_to(linear.astype(np.float32), device)
    return torch.einsum("nij,njhw->nhwi", a, d)


def photometric_jitter(x: Tensor, params: list[SampleParams], value_max: float) -> Tensor:
    """Brightness, contrast and (RGB) saturation per sample on an N×C×H×W float batch in 0..value_max.

    Contrast scales around each image's mean; saturation mixes each pixel with
    its gray value. The result is clipped to the value range.
    """
    n = x.shape[0]
    factors = host_to(np.array([[p.brightness * value_max, p.contrast, p.saturation] for p in params],
                               np.float32), x.device).to(x.dtype).view(n, 3, 1, 1, 1)
    b, c, s = factors[:, 0], factors[:, 1], factors[:, 2]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c + mean + b
    if x.shape[1] == 3:
        gray = x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114
        x = gray + (x - gray) * s
    return x.clamp_(0.0, value_max)
