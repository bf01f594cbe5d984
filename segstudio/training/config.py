"""TrainConfig: everything about a training run except the data, and the recipes the app suggests.

A config is plain data (picklable, JSON round-trip) so it can be sent to a
training process, stored in a checkpoint and written into the model card as
the recipe. Lengths: ``steps``, ``epochs`` and ``max_seconds`` may be combined;
the run ends at whichever comes first, and schedules (learning rate, staged
crop sizes and losses) follow the run's progress toward that end (see
:mod:`segstudio.training.schedule`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from segstudio.training.augment import AugmentConfig
from segstudio.training.losses import parse_loss
from segstudio.training.schedule import SCHEDULES, LRSchedule, Stages

Precision = Literal["auto", "fp32", "bf16", "fp16"]
FULL_IMAGE = 0
"""A crop size of 0 means the whole image (padded to the largest training image)."""


@dataclass
class TrainConfig:
    """A training recipe. See the field comments; ``validate()`` checks it and raises ``ValueError``."""

    arch: str = "unet"
    options: dict[str, Any] = field(default_factory=dict)
    init_model: str | None = None
    """Fine-tune from this model file (its arch/options win over ``arch``/``options``)."""
    in_channels: int | None = None
    """Input channels of a new network; default: 1 when every training image is gray, else 3."""

    # length (the first limit reached ends the run; at least one is needed)
    steps: int | None = None
    epochs: float | None = None
    max_seconds: float | None = None
    """Wall-time budget of the whole run, data loading and saving included (the schedule ends with it)."""
    session_seconds: float | None = None
    """Stop *this session* after so long, leaving a checkpoint to resume; unlike ``max_seconds`` it does not
    shorten the schedule (a long run as a series of short commands)."""

    # batches and augmentation
    batch_size: int = 8
    crop_stages: tuple[tuple[float, int], ...] = ((0.0, 512),)
    """Progressive resizing: ``((0, 256), (0.4, 512), (0.8, 0))`` — crop side per fraction of the run, 0 = full."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    jitter: bool = True
    workers: int = 1
    """CPU augmentation threads (the CUDA path augments on the GPU)."""
    augment_on_device: bool | None = None
    """Warp batches with ``grid_sample`` on the training device; None: on CUDA only."""

    # loss
    loss_stages: tuple[tuple[float, str], ...] = ((0.0, "ce"),)
    """E.g. ``((0, "focal+dice"), (0.8, "dice"))``: focal + Dice, then Dice alone for the last 20 %."""
    class_weights: Literal["none", "median_frequency"] = "none"
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000

    # optimiser and schedule
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    warmup: float = 0.0
    """Warm-up as a fraction of the run (``warmup_steps`` wins when set)."""
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    clip_grad_norm: float | None = 5.0
    ema_decay: float | None = None
    """Keep an exponential moving average of the weights (e.g. 0.999); it is what gets validated and saved."""

    # fine-tuning
    freeze_encoder_steps: int = 0
    """Fine-tuning: train only the decoder and head for this many first steps."""

    # validation and stopping
    val_every_epochs: float = 1.0
    val_every_steps: int | None = None
    early_stopping_patience: int | None = None
    """Stop after this many validations without a new best mIoU."""
    early_stopping_min_delta: float = 0.0
    """A validation counts as a new best only when it beats the best by more than this."""

    # hardware
    device: str = "auto"
    precision: Precision = "auto"
    """auto: bf16 autocast on CUDA where supported (else fp16); on the CPU fp32, or bf16 with ``cpu_bf16``.
    An explicit bf16 on the CPU needs native bf16 (AVX512-BF16 or AMX)."""
    cpu_bf16: bool = False
    """With precision auto on the CPU: bf16 autocast where the CPU computes bf16 natively (the small-data
    U-Net's steps are 2.4× faster that way on an AVX512-BF16 CPU), else fp32."""
    channels_last: bool | None = None
    """NHWC memory layout; None: on CUDA only."""
    threads: int | None = None
    """torch CPU threads; None leaves torch's setting."""
    seed: int = 0

    # output
    output_dir: str = "runs/train"
    model_name: str | None = None
    """File stem of the new model; default ``<arch>`` (from scratch) or ``<old stem>.vN`` (fine-tuning)."""
    checkpoint_every_s: float = 300.0
    resume: bool = False
    """Continue from ``output_dir/checkpoint.pt`` when it exists."""
    save_on_cancel: bool = False
    """On cancel, still write the model as trained so far (else only the checkpoint is kept)."""
    log_every_s: float = 2.0

    def validate(self) -> None:
        if self.steps is None and self.epochs is None and self.max_seconds is None:
            raise ValueError("give the run a length: steps, epochs or max_seconds")
        for name in ("steps", "epochs", "max_seconds", "session_seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.lr <= 0:
            raise ValueError("the learning rate must be positive")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer is adamw or sgd, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule is one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.class_weights not in ("none", "median_frequency"):
            raise ValueError(f"class_weights is none or median_frequency, got {self.class_weights!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision is auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.in_channels not in (None, 1, 3):
            raise ValueError(f"in_channels is 1 or 3, got {self.in_channels}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError("ema_decay is in (0, 1)")
        if any(size < 0 for _, size in self.crop_stages):
            raise ValueError("crop sizes are positive (or 0 for the full image)")
        Stages(self.crop_stages)
        for _, loss in Stages(self.loss_stages).items:
            parse_loss(loss)
        self.lr_schedule()

    def lr_schedule(self) -> LRSchedule:
        return LRSchedule(self.schedule, self.warmup, self.warmup_steps, min_lr_ratio=self.min_lr_ratio)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop_stages"] = [list(s) for s in self.crop_stages]
        d["loss_stages"] = [list(s) for s in self.loss_stages]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        d = dict(d)
        if "augment" in d and isinstance(d["augment"], dict):
            a = dict(d["augment"])
            a["scale_range"] = tuple(a.get("scale_range", (0.5, 2.0)))
            d["augment"] = AugmentConfig(**a)
        for key in ("crop_stages", "loss_stages"):
            if key in d:
                d[key] = tuple((float(f), v) for f, v in d[key])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


# ------------------------------------------------------------------------ recipes

SMALL_DATA_ARCH = "unet"
SMALL_DATA_OPTIONS: dict[str, Any] = {"base_width": 8}
"""The network the app suggests for fine-tuning on a few corrected images on a CPU
(benchmarks/train_hitl_isbi.py: ≥ 0.75 mIoU on ISBI slices 05–19 after 120 s on 2 cores)."""


def _with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``cfg`` with the named settings replaced; an unknown name is refused."""
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise ValueError(f"unknown training setting {k!r}")
        setattr(cfg, k, v)
    return cfg


def small_data_recipe(max_seconds: float | None = 120.0, **overrides: Any) -> TrainConfig:
    """The suggested recipe for learning from a handful of (possibly sparsely) labelled images on a CPU.

    A narrow U-Net (base width 8) trained from scratch, 256² crops, flips and
    quarter turns, AdamW with a short warm-up and cosine decay timed to end at
    the budget, focal + Dice; on the CPU channels_last and, where the CPU has
    native bf16, bf16 autocast. Use ``overrides`` for anything else (e.g.
    ``init_model=...`` to continue from an existing model, ``device="cuda"``).
    """
    cfg = TrainConfig(
        arch=SMALL_DATA_ARCH,
        options=dict(SMALL_DATA_OPTIONS),
        max_seconds=max_seconds,
        batch_size=4,
        crop_stages=((0.0, 256),),
        augment=AugmentConfig(scale_range=(0.8, 1.25), hflip=True, vflip=True, rot90=True,
                              brightness=0.08, contrast=0.2, saturation=0.2),
        loss_stages=((0.0, "focal+dice"),),
        optimizer="adamw",
        lr=5e-3,
        weight_decay=1e-4,
        schedule="cosine",
        warmup_steps=10,
        clip_grad_norm=5.0,
        val_every_epochs=0.0,
        threads=1,
        channels_last=True,
        cpu_bf16=True,
    )
    return _with_overrides(cfg, overrides)


def scratch_recipe(arch: str, epochs: float, **overrides: Any) -> TrainConfig:
    """Training a network from scratch on a full data set (the CamVid recipe, see benchmarks/train_camvid.py).

    Focal + Dice, then Dice alone for the last 20 % (the seed's recipe);
    progressive crops 256 → 384 → full; scale 0.5–2, flips, jitter; AdamW,
    5 % warm-up, poly decay; median-frequency class weights.
    """
    cfg = TrainConfig(
        arch=arch,
        epochs=epochs,
        batch_size=8,
        crop_stages=((0.0, 256), (0.3, 384), (0.7, FULL_IMAGE)),
        loss_stages=((0.0, "focal+dice"), (0.8, "dice")),
        class_weights="median_frequency",
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        schedule="poly",
        warmup=0.05,
        clip_grad_norm=5.0,
        val_every_epochs=5.0,
    )
    return _with_overrides(cfg, overrides)
