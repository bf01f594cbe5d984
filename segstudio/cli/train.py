"""``segstudio train`` and ``segstudio eval``: train or fine-tune a network on labelled images; score a model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.cli.errors import CliError
from segstudio.inference.backends import DEVICES, ENGINES

RECIPES = ("auto", "finetune", "small-data", "scratch", "plain")

if TYPE_CHECKING:
    from segstudio.training.config import TrainConfig
    from segstudio.training.data import DataSpec
    from segstudio.training.distributed import DistContext

_TRAIN_EPILOG = """\
data:
  --images DIR --masks DIR      images and masks paired by file stem
  --images ROOT                 a CamVid-style folder: ROOT/train + ROOT/trainannot
                                (and ROOT/val + ROOT/valannot for validation, when present)
  --project DIR                 a segstudio project: every image with a label (sparse strokes are enough)

recipes (--recipe, default auto):
  auto        fine-tune a model file with the fine-tuning recipe; a network name trains with the plain defaults
  finetune    the fine-tuning recipe (half a from-scratch learning rate, warm-up, BatchNorm statistics
              kept, the model's own augmentation, early stop on held-out images; never worse on them than the start)
  small-data  the small-data U-Net's recipe (narrow U-Net from scratch, 256² crops, flips and quarter turns)
  scratch     the CamVid recipe for a whole data set (focal+Dice, crops 256→384→full, median-frequency weights)
  plain       the engine's plain defaults

examples:
  fine-tune the shipped default model on corrected street frames (classes from its card; the new
  version camvid-fastscnn.v2.safetensors is written to -o):
    segstudio train --model camvid-fastscnn --images frames --masks masks --map 11=void --minutes 3 -o runs/ft
  CamVid from scratch:
    segstudio train --model fastscnn --images camvid --classes camvid --map 11=void --epochs 200 -o runs/camvid
  ISBI membranes, 2 minutes on the CPU with the small-data recipe:
    segstudio train --recipe small-data --images isbi/image --masks isbi/label \\
        --classes membrane,cell --map 0=membrane,255=cell --minutes 2 -o runs/isbi
  fine-tune a model on a project's corrections, as the app does (held-out split, the new version kept in the
  project and judged against the model on the held-out corrections):
    segstudio train --model models/cells.safetensors --project my-project --minutes 3
"""


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a network from scratch or fine-tune a model file on labelled images",
        description="Train a zoo network, or fine-tune a model file, on images with masks (full or sparse: "
        "pixels marked 'not labelled' are ignored). Writes a new model file (never over an existing one), "
        "train_log.jsonl, curves.png and a checkpoint to resume from.",
        epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, metavar="NAME|FILE",
                   help="a model file to fine-tune (.safetensors, or an .onnx with its .safetensors twin beside "
                        "it), a shipped model by name (e.g. camvid-fastscnn), or a zoo network to train from scratch "
                        "(see `segstudio models`; default: the recipe's network)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="network option for a new network, e.g. base_width=16 (repeatable)")
    p.add_argument("--recipe", choices=RECIPES, default="auto",
                   help="starting settings (see below); the options below override them")
    d = p.add_argument_group("data")
    d.add_argument("--images", type=Path, metavar="DIR", help="training images (or a CamVid-style root)")
    d.add_argument("--masks", type=Path, metavar="DIR", help="training masks, paired with the images by stem")
    d.add_argument("--val-images", type=Path, metavar="DIR", help="validation images")
    d.add_argument("--val-masks", type=Path, metavar="DIR", help="validation masks")
    d.add_argument("--project", type=Path, metavar="DIR", help="train on a segstudio project's labels")
    d.add_argument("--classes", metavar="NAME,NAME,…",
                   help="class names in index order; 'camvid' for CamVid's 11 (default when fine-tuning: the "
                        "model card's)")
    d.add_argument("--map", action="append", default=[], metavar="VALUE=CLASS[,…]",
                   help="what mask values mean, e.g. 0=membrane,255=cell or 11=void (not labelled)")
    d.add_argument("--unmapped", choices=("error", "unlabelled"), default="error",
                   help="a mask value that is neither mapped nor a class: stop (default) or ignore it")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="without a validation folder, from scratch: hold out this fraction of the images at random "
                        "(default 0.1; only with 10 or more images). Fine-tuning holds out the 2nd, 7th, 12th … "
                        "image instead, as the app does")
    r = p.add_argument_group("length (the first limit reached ends the run)")
    r.add_argument("--epochs", type=float)
    r.add_argument("--steps", type=int)
    r.add_argument("--minutes", type=float, help="wall-time budget of the run (the schedule ends with it)")
    r.add_argument("--session-minutes", type=float,
                   help="stop this command after so long with a checkpoint (resume with --resume); the schedule "
                        "is not shortened")
    o = p.add_argument_group("recipe")
    o.add_argument("--batch-size", type=int)
    o.add_argument("--crop", metavar="SIZE[,SIZE…]",
                   help="crop side; several = progressive resizing over equal parts of the run; 'full' = the "
                        "whole image (e.g. 256,512,full)")
    o.add_argument("--loss", help="e.g. ce, focal+dice, 0.5*ce+dice, ohem")
    o.add_argument("--final-loss", help="the loss for the last 20%% of the run (e.g. dice)")
    o.add_argument("--class-weights", choices=("none", "median_frequency"))
    o.add_argument("--optimizer", choices=("adamw", "sgd"))
    o.add_argument("--lr", type=float)
    o.add_argument("--weight-decay", type=float)
    o.add_argument("--schedule", choices=("poly", "cosine", "constant"))
    o.add_argument("--warmup", type=float, help="warm-up as a fraction of the run")
    o.add_argument("--ema", type=float, metavar="DECAY", help="keep an EMA of the weights, e.g. 0.999")
    o.add_argument("--freeze-encoder-steps", type=int, help="fine-tuning: train decoder and head only at first")
    o.add_argument("--freeze-encoder", action="store_true",
                   help="fine-tuning: train decoder and head only, the whole run (partial freezing)")
    o.add_argument("--bn", choices=("auto", "train", "frozen"),
                   help="BatchNorm statistics: learnt from the batches, or kept (auto: kept when fine-tuning with "
                        "small batches)")
    o.add_argument("--val-every", type=float, metavar="EPOCHS", help="validate every so many epochs")
    o.add_argument("--val-every-seconds", type=float, metavar="S", help="validate every so many seconds")
    o.add_argument("--early-stop", type=int, metavar="N", help="stop after N validations without improvement")
    h = p.add_argument_group("machine and output")
    h.add_argument("--device", default=None, help="auto (default), cpu or cuda[:N]")
    h.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"))
    h.add_argument("--threads", type=int, help="torch CPU threads")
    h.add_argument("--workers", type=int, help="CPU augmentation threads")
    h.add_argument("--seed", type=int)
    h.add_argument("-o", "--output", type=Path, default=Path("runs/train"),
                   help="output folder: the new model, log, curves and checkpoint (default runs/train; with "
                        "--project, the model goes into the project)")
    h.add_argument("--name", help="file stem of the new model")
    h.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT/checkpoint.pt (says so when there is none and a new run starts)")
    h.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                   help="write OUTPUT/checkpoint.pt this often (default 300)")
    h.add_argument("--json", action="store_true", help="print every event as a JSON line")
    h.add_argument("--nproc", type=int, metavar="N",
                   help="train with N processes on this machine, through torchrun (DDP: gloo on the CPU, NCCL on "
                        "CUDA); --batch-size is the global batch, shared between them; see docs/SCALE.md")
    h.add_argument("--distributed", action="store_true",
                   help="run as one process of a torchrun job: torchrun --nproc_per_node=N -m segstudio train "
                        "... --distributed (rank 0 alone writes)")
    h.add_argument("--sync-bn", action="store_true",
                   help="distributed on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)")
    p.set_defaults(handler=run_train)

    e = sub.add_parser(
        "eval", help="score a model file on images with masks: mIoU and per-class IoU",
        description="Segment the images with the model and compare with the masks (pixels not labelled do not "
        "count). Prints a table, or JSON with --json.",
    )
    e.add_argument("model", metavar="MODEL",
                   help="a .safetensors or .onnx model file, or a shipped model by name (e.g. camvid-fastscnn)")
    e.add_argument("--images", type=Path, required=True, metavar="DIR")
    e.add_argument("--masks", type=Path, required=True, metavar="DIR")
    e.add_argument("--map", action="append", default=[], metavar="VALUE=CLASS[,…]",
                   help="what mask values mean, in the model's class names (e.g. 11=void)")
    e.add_argument("--unmapped", choices=("error", "unlabelled"), default="error")
    e.add_argument("--classes", metavar="A,B,C", help="class names, for an ONNX file without a segstudio card")
    e.add_argument("--backend", choices=ENGINES, default="auto")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--tta", action="store_true", help="test-time augmentation (flips × scales)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(handler=run_eval)


def _options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--option takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _crop_stages(text: str) -> tuple[tuple[float, int], ...]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "full":
            sizes.append(0)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise CliError(f"--crop takes sizes in pixels or 'full', got {part!r}")
    return tuple((i / len(sizes), s) for i, s in enumerate(sizes))


def resolve_model(text: str | None) -> tuple[Path | None, str | None]:
    """(model file to fine-tune, network name) from ``--model``: a file, a shipped model's name, or a network.

    An ONNX file trains through its ``.safetensors`` twin; one without a twin is refused."""
    from segstudio.inference.model_file import ModelFileError, trainable_file
    from segstudio.paths import ModelNotFoundError, find_model

    if not text:
        return None, None
    path = Path(text)
    if not path.is_file() and not text.endswith((".safetensors", ".onnx")):
        try:
            path = find_model(text, prefer=(".safetensors", ".onnx"))
        except ModelNotFoundError:
            return None, text  # a network name (checked when the network is built)
    if not path.is_file():
        raise CliError(f"the model file {path} does not exist")
    try:
        trainable = trainable_file(path)
    except ModelFileError as exc:
        raise CliError(str(exc)) from None
    if trainable is None:
        raise CliError(f"{path} is an ONNX file without its .safetensors twin beside it; an ONNX file cannot be "
                       "trained (give the .safetensors model)")
    return trainable, None


def data_spec(args: argparse.Namespace, init: Path | None = None) -> DataSpec:
    from segstudio.core.holdout import HOLDOUT_EVERY
    from segstudio.training.data import FolderData, ProjectData, camvid_layout

    if args.project:
        if args.images or args.masks:
            raise CliError("give either --project or --images/--masks, not both")
        return ProjectData(str(args.project), val_fraction=args.val_fraction)
    if not args.images:
        raise CliError("say what to train on: --images DIR --masks DIR, a CamVid-style --images ROOT, or --project")
    images, masks, val_images, val_masks = args.images, args.masks, args.val_images, args.val_masks
    if masks is None:
        layout = camvid_layout(images)
        if layout is None:
            raise CliError(f"--masks is missing, and {images} is not a CamVid-style folder (train/ + trainannot/)")
        images, masks = layout
        val = camvid_layout(args.images, "val")
        if val and val_images is None:
            val_images, val_masks = val
    classes: tuple[str, ...] = tuple(c.strip() for c in args.classes.split(",")) if args.classes else ()
    if not classes and init is not None:
        from segstudio.inference.model_file import load_card

        classes = tuple(load_card(init).classes.names)
    return FolderData(str(images), str(masks), classes=classes, value_map=tuple(args.map), unmapped=args.unmapped,
                      val_images=str(val_images) if val_images else None,
                      val_masks=str(val_masks) if val_masks else None, val_fraction=args.val_fraction,
                      holdout_every=HOLDOUT_EVERY if init is not None else None)


def build_config(args: argparse.Namespace, init: Path | None = None, network: str | None = None) -> TrainConfig:
    from segstudio.inference.model_file import load_card
    from segstudio.training.config import TrainConfig, finetune_recipe, scratch_recipe, small_data_recipe

    recipe = args.recipe
    if recipe == "auto":
        recipe = "finetune" if init is not None else "plain"
    if init is not None and args.option:
        raise CliError("--option applies to a new network; a model file keeps its own options")
    arch_overrides: dict[str, Any] = {"arch": network} if network else {}
    if args.option:
        arch_overrides["options"] = _options(args.option)
    if recipe == "finetune":
        if init is None:
            raise CliError("--recipe finetune fine-tunes a trained model: give --model FILE")
        card = load_card(init)
        cfg = finetune_recipe(str(init), card.recipe, arch=card.arch)
    elif recipe == "small-data":
        cfg = small_data_recipe(None, **arch_overrides)
    elif recipe == "scratch":
        cfg = scratch_recipe(network or "fastscnn", epochs=args.epochs or 200,
                             **{k: v for k, v in arch_overrides.items() if k != "arch"})
        cfg.epochs = None
    else:
        cfg = TrainConfig(**arch_overrides)
    cfg.init_model = str(init) if init is not None else None
    simple = {"epochs": args.epochs, "steps": args.steps, "batch_size": args.batch_size,
              "class_weights": args.class_weights, "optimizer": args.optimizer, "lr": args.lr,
              "weight_decay": args.weight_decay, "schedule": args.schedule, "warmup": args.warmup,
              "ema_decay": args.ema, "freeze_encoder_steps": args.freeze_encoder_steps, "batchnorm": args.bn,
              "val_every_epochs": args.val_every, "val_every_s": args.val_every_seconds,
              "early_stopping_patience": args.early_stop, "device": args.device, "precision": args.precision,
              "threads": args.threads, "workers": args.workers, "seed": args.seed, "model_name": args.name,
              "checkpoint_every_s": args.checkpoint_every}
    for key, value in simple.items():
        if value is not None:
            setattr(cfg, key, value)
    if args.freeze_encoder:
        cfg.freeze_encoder = True
    if args.minutes:
        cfg.max_seconds = args.minutes * 60
    elif args.steps or args.epochs:
        cfg.max_seconds = None if recipe == "finetune" else cfg.max_seconds
    if args.session_minutes:
        cfg.session_seconds = args.session_minutes * 60
    if args.crop:
        cfg.crop_stages = _crop_stages(args.crop)
    if args.loss or args.final_loss:
        first = args.loss or cfg.loss_stages[0][1]
        cfg.loss_stages = ((0.0, first), (0.8, args.final_loss)) if args.final_loss else ((0.0, first),)
    cfg.output_dir = str(args.output)
    cfg.resume = bool(args.resume)
    if cfg.steps is None and cfg.epochs is None and cfg.max_seconds is None:
        raise CliError("give the run a length: --epochs, --steps or --minutes")
    try:
        cfg.validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return cfg


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.last = 0.0

    def show(self, ev: Any) -> None:
        from segstudio.core.tasks import format_eta

        if self.as_json:
            print(json.dumps(ev.to_json()), flush=True)
            return
        now = time.monotonic()
        if ev.kind == "step" and now - self.last < 5.0 and ev.step != 1:
            return
        self.last = now
        if ev.kind == "step":
            total = f"/{ev.total_steps}" if ev.total_steps else ""
            print(f"step {ev.step}{total}  epoch {ev.epoch:.1f}  loss {ev.loss:.4f}  lr {ev.lr:.2e}  "
                  f"{ev.images_per_s or 0:.1f} img/s  ETA {format_eta(ev.eta_s)}", file=sys.stderr, flush=True)
        elif ev.kind == "validated":
            best = f"  best {ev.best_miou:.4f}" if ev.best_miou is not None else ""
            print(f"step {ev.step}: mIoU {ev.val_miou:.4f} on the {ev.message}{best}", file=sys.stderr, flush=True)
        else:
            print(f"{ev.kind}: {ev.message}" + (f" -> {ev.model_path}" if ev.model_path else ""),
                  file=sys.stderr, flush=True)


def run_train(args: argparse.Namespace) -> int:
    from segstudio.core.tasks import Cancelled, CancelToken
    from segstudio.inference.model_file import ModelFileError
    from segstudio.training.data import DataError
    from segstudio.training.distributed import leave_process_group
    from segstudio.training.engine import train
    from segstudio.training.outputs import CHECKPOINT_NAME, CheckpointError
    from segstudio.zoo import BadOptionError, UnknownNetworkError

    init, network = resolve_model(args.model)
    cfg = build_config(args, init, network)
    spec = data_spec(args, init)
    if args.project:
        from segstudio.workspace.versions import versions_dir

        cfg.model_dir = str(versions_dir(args.project))
    if args.checkpoint_every is not None and args.checkpoint_every <= 0:
        raise CliError(f"--checkpoint-every takes a number of seconds above 0, got {args.checkpoint_every:g}")
    if args.resume and not (args.output / CHECKPOINT_NAME).is_file():
        print(f"--resume: no checkpoint in {args.output}; starting a new run", file=sys.stderr, flush=True)
    if args.nproc is not None and not args.distributed:  # the launcher: torchrun runs this command N times
        return _launch(args, cfg)
    dist = _join(args, cfg)
    printer = _Printer(args.json)
    cancel = CancelToken()
    last = None
    try:
        for ev in train(cfg, spec, cancel, dist):
            if dist.is_main:  # the other ranks' events are the same run's: one printer is enough
                printer.show(ev)
            last = ev
    except KeyboardInterrupt:
        cancel.cancel("interrupted")
        raise
    except Cancelled:
        return 130
    except (DataError, ModelFileError, CheckpointError, UnknownNetworkError, BadOptionError, ValueError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    finally:
        if dist.active:
            leave_process_group()
    if last is None or last.kind not in ("finished", "stopped"):
        return 1
    if last.kind == "finished" and last.model_path and not args.json:
        _say_how_it_went(last)
        if args.project and dist.is_main:
            _conclude_project_round(args.project, init, network or cfg.arch, last)
        print(last.model_path)
    return 0


def _say_how_it_went(last: Any) -> None:
    """The held-out score before → after (fine-tuning with held-out images), on stderr."""
    if last.start_miou is None or last.best_miou is None:
        return
    n = f"{last.val_images} held-out image{'s' if last.val_images != 1 else ''}"
    if last.best_miou > last.start_miou:
        print(f"held-out mIoU {last.start_miou:.4f} → {last.best_miou:.4f} on {n}", file=sys.stderr)
    else:
        print(f"no gain on the {n} ({last.start_miou:.4f}): the model written keeps the starting weights",
              file=sys.stderr)


def _conclude_project_round(project: Path, init: Path | None, network: str, last: Any) -> None:
    """As the app does after a round: judge the new version against the start model on the held-out
    corrections and record it in the project (accepted or candidate)."""
    from segstudio.workspace.rounds import Round, RoundHistory, conclude_round

    r = Round(RoundHistory.load(project).next_number(), str(init) if init is not None else None, last.model_path,
              last.step, last.elapsed_s)
    trained_from = init.name if init is not None else f"{network} from scratch"
    conclude_round(r, project, trained_from)
    print(f"round {r.number}: {'accepted' if r.activated else 'kept as a candidate'} — {r.verdict}", file=sys.stderr)


def _launch(args: argparse.Namespace, cfg: TrainConfig) -> int:
    """``segstudio train --nproc N``: this command again, in N processes under torchrun's launcher."""
    from segstudio.training.distributed import DistributedError, launch

    if args.nproc > 0 and cfg.batch_size % args.nproc:
        raise CliError(f"--batch-size is the global batch, shared by the {args.nproc} processes: make it a "
                       f"multiple of {args.nproc} (it is {cfg.batch_size})")
    try:
        return launch(args.command_line, args.nproc)
    except DistributedError as exc:
        raise CliError(str(exc)) from None


def _join(args: argparse.Namespace, cfg: TrainConfig) -> DistContext:
    """This process's place in the run: one process, or a rank of a torchrun job (``--distributed``)."""
    from segstudio.training.distributed import SINGLE_PROCESS, DistributedError, join_process_group

    if not args.distributed:
        if args.sync_bn:
            raise CliError("--sync-bn applies to a run on several processes: add --nproc N (or run under "
                           "torchrun with --distributed)")
        return SINGLE_PROCESS
    try:
        return join_process_group(cfg.device, args.sync_bn)
    except DistributedError as exc:
        raise CliError(str(exc)) from None


def run_eval(args: argparse.Namespace) -> int:
    from segstudio.inference.model_file import ModelFileError
    from segstudio.inference.predictor import TTA, Predictor
    from segstudio.paths import ModelNotFoundError, find_model
    from segstudio.training.data import DataError, FolderData, load_folders
    from segstudio.training.evaluate import score_samples
    from segstudio.zoo import CardError

    names = [n.strip() for n in args.classes.split(",")] if args.classes else None
    try:
        args.model = find_model(args.model, prefer=(".safetensors", ".onnx") if args.backend == "torch"
                                else (".onnx", ".safetensors"))
        predictor = Predictor.from_file(args.model, backend=args.backend, device=args.device, class_names=names)
    except (ModelNotFoundError, ModelFileError, CardError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    classes = predictor.card.classes.names
    spec = FolderData(str(args.images), str(args.masks), classes=tuple(classes), value_map=tuple(args.map),
                      unmapped=args.unmapped, val_fraction=0.0)
    try:
        data = load_folders(spec)
    except DataError as exc:
        raise CliError(str(exc)) from None
    metrics = score_samples(predictor, data.train, tta=TTA() if args.tta else None)
    result = metrics.as_dict(classes)
    result.update({"model": str(args.model), "images": len(data.train), "skipped": data.skipped})
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    width = max(len(c) for c in classes) + 2
    print(f"{args.model}: {len(data.train)} images from {args.images}" +
          (f" ({len(data.skipped)} skipped)" if data.skipped else ""))
    for reason in data.skipped:  # each "file: why"
        print(f"  skipped {reason}", file=sys.stderr)
    print(f"{'class':<{width}} IoU")
    for name, iou in result["per_class_iou"].items():
        print(f"{name:<{width}} {'-' if iou is None else f'{iou:.4f}'}")
    print(f"{'mIoU':<{width}} {result['miou']:.4f}" if result["miou"] is not None else "mIoU -")
    print(f"{'pixel acc.':<{width}} {result['pixel_accuracy']:.4f}" if result["pixel_accuracy"] is not None else "")
    return 0
