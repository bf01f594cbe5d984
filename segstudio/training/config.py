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
from segstudio.zoo.presets import SMALL_DATA

Precision = Literal["auto", "fp32", "bf16", "fp16"]
FULL_IMAGE = 0
"""A crop size of 0 means the whole image (padded to the largest training image)."""
FROZEN_BN_BELOW = 16
"""``batchnorm="auto"``: a fine-tuning run with smaller batches keeps the model's BatchNorm statistics."""


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
    freeze_encoder: bool = False
    """Partial freezing: train only the decoder and head for the whole run (the encoder keeps its weights)."""
    batchnorm: Literal["auto", "train", "frozen"] = "auto"
    """BatchNorm statistics: ``train`` updates them from every batch; ``frozen`` keeps the model's running
    statistics (BatchNorm layers in eval mode, their scale and shift still learn); ``auto``: frozen when
    fine-tuning with batches of fewer than :data:`FROZEN_BN_BELOW` images, whose statistics are too noisy."""
    keep_start: float = 0.0
    """Fine-tuning: weight of the soft target that keeps the starting model's predictions where nothing is
    labelled, and judge held-out images with sparse labels partly by agreement with it there
    (:mod:`segstudio.training.keep_start`); 0 turns both off. Only when the model's classes are the data's."""
    keep_published: float = 0.0
    """Continuous mode without a starting model (a network trained from scratch): weight of the same soft target
    with the last *published* version as the teacher, replaced at each publication, so that where no stroke is
    (the boundaries strokes stop short of) the network keeps what the version on screen predicts; nothing before
    the first publication. The held-out judgement stays by the labels alone. 0 turns it off."""
    validate_start: bool | None = None
    """Score the starting weights on the validation set before the first step, so that the best weights —
    what is written — are never worse there than the start. None: when fine-tuning."""

    # validation and stopping
    val_every_epochs: float = 1.0
    val_every_steps: int | None = None
    val_every_s: float | None = None
    """Also validate whenever this much wall time has passed since the last validation."""
    early_stopping_patience: int | None = None
    """Stop after this many validations without a new best mIoU."""
    early_stopping_min_delta: float = 0.0
    """A validation counts as a new best only when it beats the best by more than this."""

    # continuous mode (the app's "keep training while I correct")
    continuous: bool = False
    """Train until cancelled: constant learning rate after the warm-up, the training set re-read from the
    project every ``refresh_every_s`` (new corrections join), and a new model file *published* (a
    ``published`` event) each time the validation mIoU beats the best so far."""
    refresh_every_s: float = 5.0
    bar_model: str | None = None
    """Continuous mode: a model file whose validation score is the first bar to beat (the app's active model when
    another network is trained from scratch), so that no published version is worse than it."""
    export_onnx: bool = False
    """Continuous mode: also export each published version for ONNX Runtime (into the user's ONNX cache), here
    in the training process, so that the app loads it without an export of its own."""

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
    model_dir: str | None = None
    """Where the new model file goes; default ``output_dir``. Never beside the model fine-tuned (that may be
    the read-only install)."""
    checkpoint_every_s: float = 300.0
    resume: bool = False
    """Continue from ``output_dir/checkpoint.pt`` when it exists."""
    save_on_cancel: bool = False
    """On cancel, still write the model as trained so far (else only the checkpoint is kept)."""
    log_every_s: float = 2.0

    def validate(self) -> None:
        if self.steps is None and self.epochs is None and self.max_seconds is None and not self.continuous:
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
        if self.keep_start < 0 or self.keep_published < 0:
            raise ValueError(f"keep_start and keep_published are weights (0 or more), got {self.keep_start} and "
                             f"{self.keep_published}")
        if self.batchnorm not in ("auto", "train", "frozen"):
            raise ValueError(f"batchnorm is auto, train or frozen, got {self.batchnorm!r}")
        for name in ("val_every_s", "refresh_every_s"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")
        if any(size < 0 for _, size in self.crop_stages):
            raise ValueError("crop sizes are positive (or 0 for the full image)")
        Stages(self.crop_stages)
        for _, loss in Stages(self.loss_stages).items:
            parse_loss(loss)
        self.lr_schedule()

    def lr_schedule(self) -> LRSchedule:
        name = "constant" if self.continuous else self.schedule
        return LRSchedule(name, self.warmup, self.warmup_steps, min_lr_ratio=self.min_lr_ratio)

    @property
    def fine_tuning(self) -> bool:
        return bool(self.init_model)

    def frozen_batchnorm(self) -> bool:
        """Whether BatchNorm keeps its running statistics in this run (see :attr:`batchnorm`)."""
        if self.batchnorm == "auto":
            return self.fine_tuning and self.batch_size < FROZEN_BN_BELOW
        return self.batchnorm == "frozen"

    def validates_start(self) -> bool:
        return self.fine_tuning if self.validate_start is None else self.validate_start

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

SMALL_DATA_ARCH = SMALL_DATA.arch
SMALL_DATA_OPTIONS: dict[str, Any] = dict(SMALL_DATA.options)
"""The small-data U-Net (:data:`segstudio.zoo.presets.SMALL_DATA`; benchmarks/train_hitl_isbi.py: ≥ 0.75 mIoU on
ISBI slices 05–19 after 120 s on 2 cores)."""


def _with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``cfg`` with the named settings replaced; an unknown name is refused."""
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise ValueError(f"unknown training setting {k!r}")
        setattr(cfg, k, v)
    return cfg


MASKS_SCALE_RANGE = (0.8, 1.25)
"""The small-data recipe's crop scales for masks (a folder of them): they label thin parts and edges themselves."""
STROKES_SCALE_RANGE = (0.64, 1.0)
"""The small-data recipe's crop scales for brush strokes (a project's corrections): strokes stay inside a region,
so its labelled examples of a thin structure are the middles of its wide parts; crops seen zoomed out show the
network those labels on thinner structures (docs/TRAINING.md, "Crops seen zoomed out"). Masks lose 0.03 mIoU
zoomed out, so they keep :data:`MASKS_SCALE_RANGE`."""


def small_data_recipe(max_seconds: float | None = 120.0, strokes: bool = False, **overrides: Any) -> TrainConfig:
    """The suggested recipe for learning from a handful of (possibly sparsely) labelled images on a CPU.

    A narrow U-Net (base width 8) trained from scratch, 256² crops at the scales
    of :data:`MASKS_SCALE_RANGE` (``strokes``: labels painted with a brush, as a
    project's corrections are: :data:`STROKES_SCALE_RANGE`), flips and
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
        augment=AugmentConfig(scale_range=STROKES_SCALE_RANGE if strokes else MASKS_SCALE_RANGE, hflip=True, vflip=True,
                              rot90=True, brightness=0.08, contrast=0.2, saturation=0.2),
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


def domain_augment(card_recipe: dict[str, Any] | None) -> AugmentConfig:
    """Augmentation for fine-tuning a trained model: the geometry its own recipe used (flips, quarter turns
    only when it had them: street scenes have an up, micrographs do not), a milder scale range, and light
    photometric jitter. A model without a recipe gets horizontal flips only."""
    trained = (card_recipe or {}).get("augment")
    if not isinstance(trained, dict):
        return AugmentConfig(scale_range=(0.75, 1.5), hflip=True, vflip=False, rot90=False)
    lo, hi = trained.get("scale_range", (0.5, 2.0))
    return AugmentConfig(scale_range=(max(0.75, float(lo)), min(1.5, float(hi))),
                         hflip=bool(trained.get("hflip", True)), vflip=bool(trained.get("vflip", False)),
                         rot90=bool(trained.get("rot90", False)), rotate_deg=float(trained.get("rotate_deg", 0.0)),
                         brightness=0.1, contrast=0.2, saturation=0.2)


def finetune_recipe(init_model: str, card_recipe: dict[str, Any] | None = None, max_seconds: float | None = 180.0,
                    arch: str | None = None, **overrides: Any) -> TrainConfig:
    """The recipe for fine-tuning a *trained* model on a few corrected images (chosen automatically whenever
    training starts from a model file; docs/TRAINING.md says what was measured).

    AdamW at the learning rate of a from-scratch CPU run (2e-3; a quarter of
    it, 5e-4, for the transformer families — ``arch`` names the network) with a
    short warm-up and cosine decay to a tenth; BatchNorm statistics kept (batches of
    4 are too small to estimate them); the model's own augmentation geometry (:func:`domain_augment`);
    the starting weights scored on the held-out corrections before the first
    step and then every few seconds, the best kept — so the model written is
    never worse there than the one it started from — and an early stop when
    the held-out score has not improved for a while. On a CPU with native
    bfloat16 (AVX512-BF16/AMX) the steps run under bf16 autocast in channels_last:
    about a third more steps in the same minutes, the same gain per step.
    """
    crop = FULL_IMAGE
    cfg = TrainConfig(
        init_model=init_model,
        max_seconds=max_seconds,
        batch_size=4,
        crop_stages=((0.0, crop),),
        augment=domain_augment(card_recipe),
        loss_stages=((0.0, "ce"),),
        optimizer="adamw",
        lr=finetune_lr(arch),
        weight_decay=1e-4,
        schedule="cosine",
        warmup_steps=10,
        min_lr_ratio=0.1,
        clip_grad_norm=5.0,
        batchnorm="auto",
        keep_start=5.0,
        validate_start=True,
        val_every_epochs=0.0,
        val_every_s=15.0,
        early_stopping_patience=8,
        channels_last=True,
        cpu_bf16=True,
    )
    return _with_overrides(cfg, overrides)


CONTINUOUS_EMA_DECAY = 0.998
"""Continuous mode judges and publishes an exponential moving average of the weights (horizon up to about 500
steps, a couple of minutes on a CPU; the EMA's warm-up keeps it to about a tenth of the steps so far): at a
constant learning rate the weights of one moment scatter widely in quality, and the held-out judgement then
keeps a version that was lucky on the held-out strokes (docs/TRAINING.md, "Continuous mode: the average of the
weights")."""


CONTINUOUS_KEEP_PUBLISHED = 2.0
"""Continuous mode from scratch keeps the last published version's predictions where nothing is labelled
(:attr:`TrainConfig.keep_published`): without it a run's membranes thinned after its peak where no stroke reaches.
Measured live on ISBI (docs/TRAINING.md, "Keeping the last published version"): at 2, four 600 s runs of five
reached 0.75 test mIoU, none declined, and all ended at 0.746-0.756; at 5 none declined either but they learned
slower (one of three reached 0.75)."""


TRANSFORMER_FAMILIES = frozenset({"segformer", "segnext", "rtformer"})
"""Families whose attention layers want a smaller learning rate (AdamW)."""


def finetune_lr(arch: str | None) -> float:
    """The fine-tuning recipe's learning rate for network ``arch`` (None or unknown: a convolutional one)."""
    from segstudio.zoo import get_spec

    try:
        family = get_spec(arch).family if arch else ""
    except KeyError:
        family = ""
    return 5e-4 if family in TRANSFORMER_FAMILIES else 2e-3


def network_scratch_recipe(arch: str, options: dict[str, Any] | None = None, max_seconds: float | None = 600.0,
                           **overrides: Any) -> TrainConfig:
    """A zoo network trained from scratch on a project's (few) corrections on a CPU: the small-data recipe's
    loop (256² crops, batches of 4, focal + Dice, cosine decay ending with the budget) with the chosen network
    and a learning rate for it (2e-3; 5e-4 for transformers), horizontal flips only (the images may have an
    up), and every core of the machine but one."""
    from segstudio.zoo import get_spec

    family = get_spec(arch).family
    cfg = small_data_recipe(max_seconds, arch=arch, options=dict(options or {}),
                            lr=5e-4 if family in TRANSFORMER_FAMILIES else 2e-3, cpu_bf16=True)
    cfg.augment = AugmentConfig(scale_range=(0.75, 1.5), hflip=True, vflip=False, rot90=False, brightness=0.08,
                                contrast=0.2, saturation=0.2)
    return _with_overrides(cfg, overrides)
