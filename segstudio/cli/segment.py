"""``segstudio segment``: segment images and folders with a model file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from segstudio.cli.errors import CliError
from segstudio.core.tasks import format_eta
from segstudio.inference.backends import DEVICES, ENGINES, PRECISIONS
from segstudio.paths import DEFAULT_MODEL, ModelNotFoundError, find_model

if TYPE_CHECKING:
    from tqdm import tqdm

    from segstudio.core.tasks import CancelToken
    from segstudio.inference.batch import BatchEvent, BatchOptions


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment",
        help="segment images and folders with a model file",
        description="Write OUT/masks/<stem>.png class-index maps (palette PNGs: the pixel value is the class "
        "index, the palette the class colours) and OUT/classes.json (the legend) for the images (and folders of "
        "images) given, keeping the folders' structure. Images already done are skipped, so an interrupted run "
        "resumes. Files that fail are listed at the end; the exit status is 1 if any failed.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and folders")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (created if needed)")
    p.add_argument("--model", default=None, metavar="NAME|FILE",
                   help=f"a .safetensors or .onnx model file, or a shipped model by name (default: {DEFAULT_MODEL}; "
                        "`segstudio models --files` lists them)")
    p.add_argument("--backend", choices=ENGINES, default="auto",
                   help="auto: PyTorch on CUDA if there is a GPU, else ONNX Runtime on the CPU (default)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="fp16",
                   help="autocast precision on CUDA (default fp16)")
    p.add_argument("--classes", metavar="A,B,C", help="class names, for an ONNX file without a segstudio card")
    p.add_argument("--tta", action="store_true", default=None,
                   help="test-time augmentation: flips × scales 0.5–2 (slower). Without it, a model trained with "
                        "quarter turns averages its 8 turned and mirrored views; others see the image alone")
    p.add_argument("--no-tta", dest="tta", action="store_false", help="the image alone, whatever the model")
    p.add_argument("--overlay", action="store_true", help="also write OUT/overlays/<stem>.png colour overlays")
    p.add_argument("--masks-per-class", action="store_true",
                   help="also write a 0/255 mask per class (OUT/classes/NN-<class>/<stem>.png)")
    p.add_argument("--recursive", action="store_true", help="also segment images in sub-folders")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="segment images again even if their outputs exist")
    p.add_argument("--overwrite", action="store_true",
                   help="when OUT holds results of another model, segment those images again with this one "
                        "(refused without it, so that OUT never mixes two models' results)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="images per network call (default: 16 on CUDA, 1 on CPU)")
    p.add_argument("--tile-size", type=int, metavar="PX",
                   help="window size for large images (default: 1024 on CUDA, 512 on CPU)")
    p.add_argument("--workers", type=int, metavar="N", help="decode threads and encode threads (each)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="spread the work over a Ray cluster (needs segstudio[cluster]; see docs/SCALE.md): no "
                        "ADDRESS starts a local Ray, 'auto' joins this machine's cluster, or HOST:PORT / "
                        "ray://HOST:10001; inputs and OUT must be paths every node sees")
    p.add_argument("--actors", type=int, metavar="N",
                   help="with --ray: model replicas (default: one per GPU of the cluster, else one per CPU)")
    p.set_defaults(handler=run)


class _Reporter:
    """A progress bar (tqdm) with images/s and ETA on a terminal; elsewhere (a log file, a pipe) a plain line when
    the count changed and at least 10 s passed, and the last one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.bar: tqdm | None = None
        self.last_line = 0.0
        self.last_done = -1

    def show(self, ev: BatchEvent) -> None:
        extra = [f"{n} {what}" for n, what in ((ev.skipped, "skipped"), (ev.failed, "failed")) if n]
        rate = f"{ev.images_per_s:.1f} images/s" if ev.images_per_s else "- images/s"
        facts = ", ".join([rate, f"ETA {format_eta(ev.eta_s)}", *extra])
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm  # here: the app imports the command line to read its own arguments

                self.bar = tqdm(total=ev.total, file=self.stream, unit="image", dynamic_ncols=True,
                                bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} images{postfix}")
            self.bar.n = ev.done
            self.bar.set_postfix_str(facts, refresh=False)
            self.bar.refresh()
            if ev.finished:
                self.bar.close()
            return
        now = time.monotonic()
        if ev.finished or (ev.done != self.last_done and now - self.last_line >= 10.0):
            print(f"{ev.done}/{ev.total} images, {facts}", file=self.stream, flush=True)
            self.last_line, self.last_done = now, ev.done


def run(args: argparse.Namespace) -> int:
    from segstudio.core.tasks import Cancelled, CancelToken
    from segstudio.inference.batch import BatchOptions
    from segstudio.inference.ray_batch import RayRunError, RayUnavailableError

    if args.actors is not None and args.ray is None:
        raise CliError("--actors applies to a run on Ray: add --ray")
    names = [n.strip() for n in args.classes.split(",")] if args.classes else None
    try:
        args.model = find_model(args.model, prefer=_preferred_suffixes(args.backend, args.device))
    except ModelNotFoundError as exc:
        raise CliError(str(exc)) from None
    options = BatchOptions(overlay=args.overlay, masks_per_class=args.masks_per_class, recursive=args.recursive,
                           tta=args.tta, resume=args.resume, overwrite=args.overwrite, batch_size=args.batch_size,
                           decode_workers=args.workers, encode_workers=args.workers)
    cancel = CancelToken()
    events = _on_ray(args, names, options, cancel) if args.ray is not None else _here(args, names, options, cancel)
    reporter = _Reporter(sys.stderr)
    last = None
    try:
        for ev in events:
            reporter.show(ev)
            last = ev
    except (ValueError, RayRunError, RayUnavailableError) as exc:  # bad folders; a Ray that fails
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    except Cancelled:
        return 130
    assert last is not None
    print(f"written {last.written}, skipped {last.skipped} (already done), failed {last.failed}"
          + (f"; {last.images_per_s:.1f} images/s" if last.written else ""), file=sys.stderr)
    if last.errors:
        print("failed:", file=sys.stderr)
        for err in last.errors:
            print(f"  {err}", file=sys.stderr)
        return 1
    return 0


def _preferred_suffixes(backend: str, device: str) -> tuple[str, ...]:
    """Which of a shipped model's files to run: the PyTorch one where PyTorch runs it (asked for, or CUDA
    there for ``auto``), else the ONNX one."""
    torch_first = (".safetensors", ".onnx")
    if backend == "torch":
        return torch_first
    if backend == "onnx" or device == "cpu":
        return (".onnx", ".safetensors")
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return torch_first
    return (".onnx", ".safetensors")


def _here(args: argparse.Namespace, names: list[str] | None, options: BatchOptions, cancel: CancelToken
          ) -> Iterator[BatchEvent]:
    """The batch events of a run in this process (threads around one predictor)."""
    from segstudio.inference.batch import segment_folder
    from segstudio.inference.model_file import ModelFileError
    from segstudio.inference.predictor import Predictor
    from segstudio.zoo import CardError

    try:
        predictor = Predictor.from_file(args.model, backend=args.backend, device=args.device,
                                        precision=args.precision, class_names=names, tile_size=args.tile_size)
    except (ModelFileError, CardError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    print(f"model {args.model}: {predictor.card.arch}, {predictor.num_classes} classes; "
          f"running on {predictor.backend.name}", file=sys.stderr)
    for note in predictor.notes:
        print(f"  {note}", file=sys.stderr)
    return segment_folder(args.inputs, args.output, predictor, options, cancel)


def _on_ray(args: argparse.Namespace, names: list[str] | None, options: BatchOptions, cancel: CancelToken
            ) -> Iterator[BatchEvent]:
    """The batch events of a run on Ray: the same work, by actors that each open the model."""
    from segstudio.inference.model_file import ModelFileError, load_card
    from segstudio.inference.ray_batch import ModelSource, RayOptions, segment_on_ray
    from segstudio.zoo import CardError

    try:
        ray_options = RayOptions(address=args.ray, actors=args.actors)
    except ValueError as exc:
        raise CliError(f"{exc} (put --ray after the inputs, or write --ray=ADDRESS)") from None
    try:
        card = load_card(args.model, names)
    except (ModelFileError, CardError, ValueError) as exc:
        raise CliError(str(exc)) from None
    where = "a local Ray" if args.ray == "local" else f"the Ray cluster at {args.ray}"
    print(f"model {args.model}: {card.arch}, {card.num_classes} classes; running on {where}", file=sys.stderr)
    model = ModelSource(str(args.model), backend=args.backend, device=args.device, precision=args.precision,
                        class_names=tuple(names) if names else None, tile_size=args.tile_size)
    return segment_on_ray(args.inputs, args.output, model, options, ray_options, cancel,
                          note=lambda text: print(f"  {text}", file=sys.stderr))
