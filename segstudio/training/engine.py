"""The training loop: ``train(config, data, cancel) -> iterator of TrainEvent``.

One generator serves the app's "Fine-tune on my corrections" (through
:mod:`segstudio.training.process`), ``segstudio train`` and the scripts that
make the shipped models. It

1. loads the data (the snapshot of the masks) and builds the network — new, or
   from a model file with its head rebuilt when the classes differ;
2. runs optimizer steps: augmented batches (on the GPU on CUDA), the network's
   train-mode outputs scored by :class:`~segstudio.training.losses.SegLoss`
   (auxiliary outputs weighted per its NetSpec), AdamW/SGD, warm-up + decay,
   gradient clipping, AMP and channels_last on CUDA, optional EMA, optional
   frozen encoder for the first steps;
3. validates (mIoU and per-class IoU), keeps the best weights, stops early
   when asked, checkpoints for resuming;
4. writes a new model file (never over an existing one), ``train_log.jsonl``
   and ``curves.png``.

The cancel token is checked before every optimizer step, so a cancel takes
effect within one step; the run then leaves a checkpoint (and, with
``save_on_cancel``, the model as trained so far). Errors are raised to the
caller; :mod:`~segstudio.training.process` turns them into events.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from segstudio.core.tasks import NEVER_CANCELLED, Cancelled, CancelToken
from segstudio.inference.model_file import ModelFileError
from segstudio.inference.onnx_cache import cached_onnx
from segstudio.inference.parity import ExportMismatchError
from segstudio.inference.predictor import Predictor
from segstudio.inference.tta import card_tta
from segstudio.training.batches import CpuBatcher, DeviceBatcher, InputMaker, epoch_of
from segstudio.training.config import FULL_IMAGE, TrainConfig
from segstudio.training.curves import write_curves
from segstudio.training.data import DataError, DataSpec, ProjectData, TrainData, load_data, load_project
from segstudio.training.distributed import SINGLE_PROCESS, DistContext
from segstudio.training.evaluate import score_samples
from segstudio.training.keep_start import HeldOutScore, StartModel, judge, sparse_batch
from segstudio.training.losses import SegLoss, median_frequency_weights
from segstudio.training.netsetup import EMA, parameter_groups, set_encoder_trainable
from segstudio.training.outputs import (
    CHECKPOINT_NAME,
    CURVES_NAME,
    LOG_NAME,
    JsonlLog,
    load_checkpoint,
    save_checkpoint,
)
from segstudio.training.run_state import RunState, build_network, final_card, write_model
from segstudio.training.schedule import Stages, run_progress

EventKind = Literal["loading", "started", "step", "validated", "checkpoint", "refreshed", "published", "finished",
                    "stopped", "cancelled", "failed", "died"]
_MAX_BAD_STEPS = 5


@dataclass
class TrainEvent:
    """One progress report. ``kind`` says what happened; the other fields are the run's state then.

    ``finished`` carries ``model_path`` (the new model file); ``stopped`` means
    the session time ran out (resume to continue); ``failed``/``died`` come only
    from a training process (an exception / the process vanished). Continuous
    runs also send ``refreshed`` (the project was re-read: new corrections
    joined) and ``published`` (``model_path``: a new version that beat the best
    so far on the held-out images). ``start_miou`` is the starting weights'
    validation mIoU (fine-tuning), ``best_miou`` the best so far — what is written.
    """

    kind: EventKind
    step: int = 0
    total_steps: int | None = None
    epoch: float = 0.0
    loss: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    progress: float = 0.0
    val_miou: float | None = None
    best_miou: float | None = None
    start_miou: float | None = None
    per_class_iou: dict[str, float | None] | None = None
    val_images: int = 0
    message: str = ""
    model_path: str | None = None
    output_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but this PyTorch has no usable CUDA device")
    return dev


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in probes:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(config: TrainConfig, device: torch.device) -> str:
    """The autocast precision of a run: ``auto`` is bf16 (or fp16) on CUDA and fp32 on the CPU."""
    if device.type != "cuda":
        if config.precision == "fp16":
            raise ValueError("fp16 mixed precision is for CUDA; the CPU trains in fp32 or bf16")
        if config.precision == "bf16" and not cpu_has_native_bf16():
            raise ValueError("this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 would be slower; use fp32")
        if config.precision == "bf16" or (config.precision == "auto" and config.cpu_bf16 and cpu_has_native_bf16()):
            return "bf16"
        return "fp32"
    if config.precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return config.precision


def train(config: TrainConfig, data: TrainData | DataSpec, cancel: CancelToken = NEVER_CANCELLED,
          dist: DistContext = SINGLE_PROCESS) -> Iterator[TrainEvent]:
    """Run ``config`` on ``data``; yields :class:`TrainEvent` s, the last one ``finished``, ``stopped`` or
    ``cancelled``. Raises ``ValueError``/``DataError``/``ModelFileError`` for bad settings or data and
    ``RuntimeError`` when the loss diverges. ``dist``: this process's rank in a run under torchrun
    (:mod:`~segstudio.training.distributed`); only rank 0 writes, and its ``finished`` has the model path."""
    config.validate()
    t0 = time.monotonic()
    yield TrainEvent("loading", message="reading the labelled images", output_dir=config.output_dir)
    try:
        loaded = load_data(data, cancel)
        run = _Run(config, loaded, cancel, t0, data if not isinstance(data, TrainData) else None, dist)
    except Cancelled as exc:
        yield TrainEvent("cancelled", message=str(exc) or "cancelled", elapsed_s=time.monotonic() - t0)
        return
    yield from run.events()


class _Run:
    """The state of one run; :meth:`events` is the loop."""

    def __init__(self, config: TrainConfig, data: TrainData, cancel: CancelToken, t0: float,
                 spec: DataSpec | None = None, dist: DistContext = SINGLE_PROCESS) -> None:
        self.cfg = config
        self.dist = dist
        self.data = data
        self.spec = spec
        self.cancel = cancel
        self.t0 = t0
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = dist.device(resolve_device(config.device))
        self.precision = resolve_precision(config, self.device)
        self.cuda = self.device.type == "cuda"
        torch.manual_seed(config.seed)
        self.net = build_network(config, data)
        self.model = self.net.model.to(self.device)
        self.channels_last = config.channels_last if config.channels_last is not None else self.cuda
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        self.frozen_bn = config.frozen_batchnorm()
        self.start_model = (StartModel(self.model, config.keep_start)
                            if config.keep_start > 0 and config.init_model and not self.net.head_rebuilt else None)
        self._start_predictor: Predictor | None = None
        self.teacher = self.start_model
        """The soft target's teacher: the starting model, or in a continuous run from scratch with
        ``keep_published`` the last published version (see :meth:`_publish`)."""
        self.judge_views = card_tta(config.to_dict())
        """The views the held-out judgement sees: those the app will segment with (the card's, see
        inference/tta.card_tta), so that a version is judged as the user will see it."""
        self._train_mode()
        # Under torchrun the training forward goes through DDP; self.model stays the plain module.
        self.model, self.train_model = dist.wrap(self.model, self.device,
                                                 find_unused=config.freeze_encoder_steps > 0 or config.freeze_encoder)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay else None
        groups = parameter_groups(self.model, config.weight_decay)
        if config.optimizer == "adamw":
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=config.lr)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.schedule = config.lr_schedule()
        self.crop_stages = Stages(config.crop_stages)
        self.loss_stages = Stages(config.loss_stages)
        self.losses = self._make_losses(data)
        self.maker = InputMaker(self.net.card.normalization, self.net.card.in_channels, self.device,
                                self.channels_last)
        self.batcher = self._make_batcher()
        n = len(data.train)
        self.total_steps = config.steps
        if config.epochs is not None:
            by_epochs = math.ceil(config.epochs * n / config.batch_size)
            self.total_steps = by_epochs if self.total_steps is None else min(self.total_steps, by_epochs)
        self.val_interval = config.val_every_steps or (
            max(1, round(config.val_every_epochs * n / config.batch_size)) if config.val_every_epochs > 0 else 0)
        self.out_dir = Path(config.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self.state = RunState()
        self._pending: tuple[int, torch.Tensor] | None = None
        self.log = JsonlLog(self.out_dir / LOG_NAME)
        if config.resume and self.checkpoint_path.is_file():
            self._resume()
        self.log = dist.log(self.log)  # rank 0 alone writes it
        self.full_hw = self._round(data.largest_size())

    # --------------------------------------------------------------- helpers

    def _make_batcher(self) -> CpuBatcher | DeviceBatcher:
        cfg, data = self.cfg, self.data
        on_device = cfg.augment_on_device if cfg.augment_on_device is not None else self.cuda
        if on_device:
            return DeviceBatcher(data.train, cfg.batch_size, cfg.augment, self.maker, data.ignore_index, cfg.seed,
                                 self.device, cfg.jitter, shard=self.dist.shard)
        return CpuBatcher(data.train, cfg.batch_size, cfg.augment, self.maker, data.ignore_index, cfg.seed,
                          cfg.workers, cfg.jitter, shard=self.dist.shard)

    def _train_mode(self) -> None:
        """Training mode; with frozen BatchNorm its layers stay in eval mode (running statistics kept)."""
        self.model.train()
        if self.frozen_bn:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _round(self, hw: tuple[int, int]) -> tuple[int, int]:
        m = self.net.spec.size_multiple
        return (-(-hw[0] // m) * m, -(-hw[1] // m) * m)

    def _crop(self, progress: float) -> tuple[int, int]:
        size = self.crop_stages.at(progress)
        if size == FULL_IMAGE:
            return self.full_hw
        side = self._round((size, size))
        return (min(side[0], self.full_hw[0]), min(side[1], self.full_hw[1]))

    def elapsed(self) -> float:
        return self.state.elapsed_before + time.monotonic() - self.t0

    def _reserve_s(self) -> float:
        """Time kept back from a budget for the final evaluation and saving."""
        if not self.state.step_time:
            return 2.0
        samples = self.data.val or self.data.train
        pixels = sum(s.label.size for s in samples)
        crop = self.state.last_crop or self.full_hw
        batch_pixels = self.cfg.batch_size * crop[0] * crop[1]
        return 1.0 + 0.5 * self.state.step_time * pixels / max(1, batch_pixels)

    def _progress(self) -> float:
        budget = self.cfg.max_seconds
        if budget:
            budget = max(1e-3, budget - self._reserve_s())
        return run_progress(self.state.step, self.total_steps, self.elapsed(), budget)

    def eval_model(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _event(self, kind: EventKind, **kw: Any) -> TrainEvent:
        s = self.state
        progress = kw.pop("progress", self._progress())
        eta = None
        if s.step_time and self.total_steps:
            eta = max(0.0, (self.total_steps - s.step) * s.step_time)
        if self.cfg.max_seconds:
            left = max(0.0, self.cfg.max_seconds - self.elapsed())
            eta = left if eta is None else min(eta, left)
        return TrainEvent(kind, step=s.step, total_steps=self.total_steps,
                          epoch=epoch_of(s.step, self.cfg.batch_size, len(self.data.train)),
                          loss=s.last_loss, lr=s.last_lr,
                          images_per_s=self.cfg.batch_size / s.step_time if s.step_time else None,
                          eta_s=eta, elapsed_s=self.elapsed(), progress=progress, best_miou=s.best_miou,
                          start_miou=s.start_miou, val_images=len(self.data.val), output_dir=str(self.out_dir),
                          **kw)

    def _log(self, ev: TrainEvent) -> None:
        self.log.add({"t": round(ev.elapsed_s, 3), **ev.to_json()})

    # --------------------------------------------------------------- resume

    def _resume(self) -> None:
        ck = load_checkpoint(self.checkpoint_path)
        self.state = RunState.from_checkpoint(ck, self.cfg, self.net.card)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.ema is not None and "ema" in ck:
            self.ema.load_state_dict(ck["ema"])
        if self.scaler is not None and "scaler" in ck:
            self.scaler.load_state_dict(ck["scaler"])
        self.log = JsonlLog.resume(self.out_dir / LOG_NAME)

    def _save_checkpoint(self) -> None:
        self._flush_pending()  # a checkpoint never holds weights from after a non-finite loss
        self.state.last_checkpoint = time.monotonic()
        if not self.dist.is_main:  # rank 0 alone writes
            return
        state = self.state.to_checkpoint(self.cfg, self.net.card, self.elapsed())
        state["model"] = self.model.state_dict()
        state["optimizer"] = self.optimizer.state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        save_checkpoint(self.checkpoint_path, state)

    # ------------------------------------------------------------ the loop

    def events(self) -> Iterator[TrainEvent]:
        cfg, s = self.cfg, self.state
        notes = list(self.net.notes)
        if self.data.skipped:
            notes.append(f"{len(self.data.skipped)} file(s) skipped: {'; '.join(self.data.skipped[:3])}"
                         + (" …" if len(self.data.skipped) > 3 else ""))
        if self.frozen_bn:
            notes.append("BatchNorm statistics kept from the model (small batches)")
        start = self._event("started", message=(
            f"{self.net.card.arch} on {self.device.type} ({self.precision}), {len(self.data.train)} training "
            f"images, {self.data.val_source or 'no validation set'}" + "".join(f"; {n}" for n in notes)))
        self._log(start)
        if self.data.skipped:
            self.log.add({"skipped": self.data.skipped})
        yield start
        if cfg.validates_start() and s.step == 0 and s.start_miou is None and (self.data.val or cfg.continuous):
            # the bar: the weights written are never worse on the held-out images than the start's (a continuous
            # run keeps them to score once held-out images exist)
            s.best_weights, s.best_step = self._weights_copy(), 0
            if self.data.val:
                yield self._validate(what="the starting weights, before training")
        elif cfg.continuous and cfg.bar_model and s.step == 0:
            self._rescore_best()
        s.last_checkpoint = time.monotonic()
        frozen = False
        if cfg.init_model and (cfg.freeze_encoder or cfg.freeze_encoder_steps > s.step):
            frozen = set_encoder_trainable(self.model, False) > 0
        session_start = time.monotonic()
        last_log = 0.0
        last_refresh = time.monotonic()
        stop_reason = ""
        try:
            while True:
                # Rank 0 decides (distributed training): every rank leaves the loop at the same step.
                cancelled, progress, session_over = self.dist.decide(
                    self.cancel.cancelled, self._progress(),
                    bool(cfg.session_seconds and time.monotonic() - session_start >= cfg.session_seconds))
                if cancelled:
                    if cfg.continuous:
                        break
                    yield from self._cancelled()
                    return
                if progress >= 1.0:
                    break
                if session_over:
                    self._save_checkpoint()
                    self.log.flush()
                    yield self._event("stopped", message="session time is up; resume to continue "
                                                         f"(checkpoint {self.checkpoint_path})")
                    return
                if frozen and not cfg.freeze_encoder and s.step >= cfg.freeze_encoder_steps:
                    set_encoder_trainable(self.model, True)
                    frozen = False
                if cfg.continuous and time.monotonic() - last_refresh >= cfg.refresh_every_s:
                    ev = self._refresh()
                    last_refresh = time.monotonic()
                    if ev is not None:
                        yield ev
                self._step(progress)
                ev = self._event("step")
                now = time.monotonic()
                if now - last_log >= cfg.log_every_s or s.step == 1:
                    self._log(ev)
                    last_log = now
                yield ev
                if self.dist.decide(self._validation_due(now))[0]:  # all ranks validate at the same step
                    ev = self._validate()
                    yield ev
                    if cfg.continuous and s.best_step == s.step:
                        yield self._publish(ev)
                    if cfg.early_stopping_patience and s.since_best >= cfg.early_stopping_patience:
                        stop_reason = (f"early stop: no better validation mIoU in "
                                       f"{cfg.early_stopping_patience} validations")
                        break
                if self.dist.decide(now - s.last_checkpoint >= cfg.checkpoint_every_s)[0]:
                    self._save_checkpoint()
                    self.log.flush()
                    yield self._event("checkpoint", message=str(self.checkpoint_path))
        except Cancelled:
            if not cfg.continuous:
                yield from self._cancelled()
                return
        finally:
            self.batcher.close()
        if cfg.continuous:
            yield self._continuous_end()
            return
        yield from self._finish(stop_reason)

    def _make_losses(self, data: TrainData) -> dict[str, SegLoss]:
        """The loss of each stage, its class weights from ``data``'s training labels (made again when a
        continuous run's training set changes)."""
        cfg = self.cfg
        weights = None
        if cfg.class_weights == "median_frequency":
            weights = torch.from_numpy(median_frequency_weights(*data.class_statistics())).to(self.device)
        return {text: SegLoss(text, self.net.spec, data.num_classes, data.ignore_index, weights, cfg.ohem_thresh,
                              cfg.ohem_min_kept)
                for _, text in self.loss_stages.items}

    def _validation_due(self, now: float) -> bool:
        if not self.data.val:
            return False
        s = self.state
        if self.val_interval and s.step % self.val_interval == 0:
            return True
        return bool(self.cfg.val_every_s) and now - s.last_val_time >= (self.cfg.val_every_s or 0.0)

    def _weights_copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.eval_model().state_dict().items()}

    # ------------------------------------------------------------ continuous mode

    def _refresh(self) -> TrainEvent | None:
        """Re-read the project (new and changed corrections join); None when nothing changed."""
        if not isinstance(self.spec, ProjectData):
            return None
        try:
            new = load_project(self.spec, self.cancel, previous=self.data)
        except DataError as exc:
            return self._event("refreshed", message=f"the project could not be re-read ({exc}); training goes on "
                                                    "with the images it has")
        if new.classes.names != self.data.classes.names:
            raise DataError("the project's classes changed while training: start fine-tuning again")
        old_train, old_val = [id(x) for x in self.data.train], [id(x) for x in self.data.val]
        if [id(x) for x in new.train] == old_train and [id(x) for x in new.val] == old_val:
            return None
        val_changed = [id(x) for x in new.val] != old_val
        self.data = new
        self.losses = self._make_losses(new)
        self.batcher.close()
        self.batcher = self._make_batcher()
        if self.cfg.val_every_epochs > 0 and not self.cfg.val_every_steps:
            self.val_interval = max(1, round(self.cfg.val_every_epochs * len(new.train) / self.cfg.batch_size))
        message = f"{len(new.train)} training image(s), {new.val_source}"
        if val_changed:
            self._rescore_best()
            if self.state.best_miou is not None:
                message += f"; the best so far scores {self.state.best_miou:.4f} on them"
        ev = self._event("refreshed", message=message)
        self._log(ev)
        return ev

    def _rescore_best(self) -> None:
        """The held-out set changed: score the best weights on it again (or, before anything was published, the
        bar model), which is the bar to beat."""
        s = self.state
        if not self.data.val or (s.best_weights is None and not self.cfg.bar_model):
            s.best_miou = None
            return
        if s.best_weights is None:
            assert self.cfg.bar_model is not None
            bar = self.cfg.bar_model
            predictor = Predictor.from_file(bar, backend="torch" if bar.endswith(".safetensors") else "auto",
                                            device=self.device.type, tta=self.judge_views or False)
        else:
            model = copy.deepcopy(self.eval_model())
            model.load_state_dict(s.best_weights)
            predictor = self.net.predictor(model, self.device, self.precision, self.judge_views)
        miou = self._judge(predictor, self.data.val).score
        s.best_miou = None if np.isnan(miou) else float(miou)
        s.since_best = 0

    def _publish(self, validated: TrainEvent) -> TrainEvent:
        """Write the weights just validated as a new model version (continuous mode)."""
        path = write_model(self, "published while training continuously")
        self.state.published.append(str(path))
        if self.cfg.keep_published > 0 and self.start_model is None:
            self.teacher = StartModel(self.eval_model(), self.cfg.keep_published)
        note = ""
        if self.cfg.export_onnx:
            try:
                cached_onnx(path)
            except (ModelFileError, ExportMismatchError, OSError) as exc:
                note = f" (no ONNX export: {exc})"
        ev = self._event("published", model_path=str(path), val_miou=validated.val_miou,
                         message=f"{path.name}: held-out mIoU {validated.val_miou:.4f}{note}")
        self._log(ev)
        self.log.flush()
        return ev

    def _continuous_end(self) -> TrainEvent:
        s = self.state
        last = s.published[-1] if s.published else None
        text = (f"stopped; {len(s.published)} version(s) published, the last {Path(last).name}" if last
                else "stopped; no version beat the starting model on the held-out corrections")
        ev = self._event("finished", model_path=last, val_miou=s.best_miou, message=text)
        self._log(ev)
        self.log.flush()
        return ev

    def _step(self, progress: float) -> None:
        cfg, s = self.cfg, self.state
        lr = cfg.lr * self.schedule.factor(progress, s.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        crop = self._crop(progress)
        loss_fn = self.losses[self.loss_stages.at(progress)]
        t = time.perf_counter()
        batch = self.batcher.get(s.step, crop)
        torch.manual_seed(cfg.seed * 1_000_003 + s.step)  # dropout & co. depend on the step only (resumable)
        if self.autocast is not None:
            with torch.autocast(self.device.type, dtype=self.autocast):
                outputs = self.train_model(batch.x)
        else:
            outputs = self.train_model(batch.x)
        loss, _ = loss_fn(outputs, batch.y, batch.complete)
        if self.teacher is not None and sparse_batch(batch.y, self.data.ignore_index):
            loss = loss + self.teacher.loss(outputs, batch.x, batch.y, self.data.ignore_index, self.autocast)
        batch_loss = self.dist.mean(loss.detach())  # the global batch's, the same on every rank
        if not self.cuda and not torch.isfinite(batch_loss):  # free on the CPU; on CUDA see _record_loss
            self._record_loss(s.step + 1, batch_loss)
            self.optimizer.zero_grad(set_to_none=True)
            s.step += 1
            return
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        s.step += 1
        s.last_lr, s.last_crop = lr, crop
        if self.cuda:
            # Reading the loss waits for the GPU. Read the previous step's instead: by now the GPU is busy
            # with this step, and the CPU goes on to queue the next one.
            previous, self._pending = self._pending, (s.step, batch_loss)
            if previous is not None:
                self._record_loss(*previous)
        else:
            self._record_loss(s.step, batch_loss)
        dt = time.perf_counter() - t
        s.step_time = dt if not s.step_time else 0.9 * s.step_time + 0.1 * dt

    def _record_loss(self, step: int, loss: torch.Tensor) -> None:
        """Log a step's loss; count non-finite ones and stop the run when they persist.

        On the CPU a non-finite loss is seen before the update, which is then
        skipped. On CUDA it is seen a step late; with fp16 the gradient scaler
        has already skipped the update, with bf16/fp32 the weights are spoilt,
        so the run stops at once (the last checkpoint is from before).
        """
        s = self.state
        value = float(loss)
        if not math.isfinite(value):
            s.bad_steps += 1
            spoilt = self.cuda and self.scaler is None
            if spoilt or s.bad_steps >= _MAX_BAD_STEPS:
                raise RuntimeError(f"the loss is not finite at step {step} ({s.bad_steps} step(s) in a row); "
                                   "lower the learning rate" + ("" if self.precision == "fp32" else " or use fp32"))
            return
        s.bad_steps = 0
        s.last_loss = value
        s.loss_history.append((step, value))

    def _flush_pending(self) -> None:
        if self._pending is not None:
            previous, self._pending = self._pending, None
            self._record_loss(*previous)

    def _validate(self, samples: list | None = None, what: str = "validation") -> TrainEvent:
        self._flush_pending()
        s = self.state
        model = self.eval_model()
        predictor = self.net.predictor(model, self.device, self.precision,
                                       self.judge_views if samples is None else None)
        uncertainties: list[float] = []
        try:
            if samples is None:  # the held-out images: the judgement (keep_start.judge)
                held_out = self._judge(predictor, self.data.val, uncertainties)
                metrics, score = held_out.labelled, held_out.score
                what = f"{what}: {held_out.describe()}"
            else:
                metrics = score_samples(predictor, samples, self.cancel, uncertainties=uncertainties)
                score = metrics.miou
        finally:
            self._train_mode()
        s.last_val_time = time.monotonic()
        s.last_val_uncertainty = float(np.mean(uncertainties)) if uncertainties else None
        miou = self.dist.decide(score)[0]  # rank 0's, so that every rank takes the same decisions
        per_class = metrics.as_dict(self.data.classes.names)["per_class_iou"]
        if samples is None and not np.isnan(miou):
            s.val_history.append((s.step, float(miou)))
            if s.step == 0 and s.start_miou is None:
                s.start_miou = float(miou)
            if s.best_miou is None or miou > s.best_miou + self.cfg.early_stopping_min_delta:
                s.best_miou = float(miou)
                s.best_step = s.step
                s.best_per_class = per_class
                s.best_uncertainty = s.last_val_uncertainty
                s.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                s.since_best = 0
            else:
                s.since_best += 1
        ev = self._event("validated", val_miou=None if np.isnan(miou) else float(miou), per_class_iou=per_class,
                         message=what)
        ev.val_images = len(samples if samples is not None else self.data.val)
        self._log(ev)
        self.log.flush()
        return ev

    def _judge(self, predictor: Predictor, samples: list, uncertainties: list[float] | None = None) -> HeldOutScore:
        """The held-out judgement of ``predictor`` (with the starting model's predictions where labels are
        sparse, when there is a starting model to keep)."""
        start = self.start_model
        if start is not None and self._start_predictor is None:
            self._start_predictor = self.net.predictor(start.module, self.device, self.precision, self.judge_views)
        return judge(predictor, samples, start, self._start_predictor, self.cancel, uncertainties)

    def _cancelled(self) -> Iterator[TrainEvent]:
        self._save_checkpoint()
        path = None
        if self.cfg.save_on_cancel and self.state.step > 0 and self.dist.is_main:
            path = str(write_model(self, "cancelled"))
        ev = self._event("cancelled", message=self.cancel.reason or "cancelled", model_path=path)
        self._log(ev)
        self.log.flush()
        yield ev

    def _finish(self, stop_reason: str) -> Iterator[TrainEvent]:
        self._flush_pending()
        s = self.state
        final: TrainEvent | None = None
        if self.data.val and (not s.val_history or s.val_history[-1][0] != s.step):
            final = self._validate()
            yield final
        elif not self.data.val:
            final = self._validate(self.data.train, "training images (no held-out validation set)")
            s.train_miou = final.val_miou
            s.train_per_class = final.per_class_iou
            yield final
        self._save_checkpoint()
        if not self.dist.is_main:  # rank 0 alone writes the model and the curves
            yield self._event("finished", progress=1.0, message=stop_reason or "done")
            return
        path = write_model(self, stop_reason)
        steps, losses = zip(*s.loss_history) if s.loss_history else ((), ())
        vsteps, vmiou = zip(*s.val_history) if s.val_history else ((), ())
        write_curves(self.out_dir / CURVES_NAME, list(steps), list(losses), list(vsteps), list(vmiou),
                     title=f"{self.net.card.arch}: {path.name}")
        miou = s.best_miou if s.best_miou is not None else s.train_miou
        ev = self._event("finished", progress=1.0, model_path=str(path), val_miou=miou,
                         message=stop_reason or "done")
        self._log(ev)
        self.log.flush()
        yield ev


__all__ = ["TrainEvent", "final_card", "resolve_device", "train"]
