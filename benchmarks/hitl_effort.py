"""Effort to target: how many seconds of a (simulated) user's corrections until the model is good enough.

The app's loop, headless through ``segstudio.workspace``: a project holds the
pool images; the simulated annotator (``benchmarks/sim_annotator.py``) takes
the pool's images in turn, looks at the active model's prediction, paints
corrective strokes on the largest errors and saves the label; meanwhile the
model trains in its own process, as in the app — ``--mode continuous`` (new
corrections join within seconds, better versions are published and swapped
in) or ``--mode rounds`` (rounds of ``--round-seconds``, each new version
judged on the held-out corrections before it becomes active). The
annotator's clock is the wall clock: the simulated seconds of painting pass in
real time, and the training process has exactly that time. When the pool is
done, the annotator starts over with the current model, correcting what is
still wrong.

Every model that became active is scored afterwards on the test images
(nothing measured during the run takes time from it), giving the curve of
test mIoU against annotation seconds: ETT — the seconds until ``--target``
is reached — and the area under the curve (its mean over the budget).

Baselines under the same simulated user: ``--baseline rf`` an ilastik-style
random forest (``benchmarks/isbi_forest.py``) refitted on the strokes after
every image (its fitting time is not charged to the user), and the start
model with no training.

    PYTHONPATH=. python benchmarks/hitl_effort.py --model small-data --pool-images isbi/image --pool-masks \\
        isbi/label --pool 0-9 --test 10-19 --map 0=membrane,255=cell --classes membrane,cell --target 0.75 \\
        --budget-seconds 600 --baseline rf --json isbi.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sim_annotator import TimeModel, corrective_strokes, image_seconds, paint  # noqa: E402

POLL_S = 0.25


@dataclass
class Frame:
    name: str
    path: Path
    image: np.ndarray  # H×W×C uint8 as read
    truth: np.ndarray  # class indices, 255 not labelled


@dataclass
class Trace:
    """What happened in one simulated session: when each model became active, and the user's work."""

    label: str
    changes: list[tuple[float, Any]] = field(default_factory=list)
    """(annotation seconds, model file or a score) from the start on."""
    strokes: int = 0
    visits: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)


def parse_range(text: str | None, n: int) -> list[int]:
    """``"0-9"`` or ``"0,2,5"`` → indices; None → all ``n``."""
    if not text:
        return list(range(n))
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def load_frames(images: Path, masks: Path, pick: str | None, value_map: Sequence[str], classes: list[str]
                ) -> list[Frame]:
    from segstudio.core.classes import ClassTable
    from segstudio.core.image_io import read_image, read_mask
    from segstudio.core.masks import apply_value_map, parse_value_map
    from segstudio.training.data import pair_by_stem

    pairs, _ = pair_by_stem(images, masks)
    pairs = sorted(pairs, key=lambda p: p[0].name)
    table = ClassTable.camvid() if classes == ["camvid"] else ClassTable.from_names(classes)
    vmap = parse_value_map(tuple(value_map), table)
    frames = []
    for i in parse_range(pick, len(pairs)):
        img, mask = pairs[i]
        truth = apply_value_map(read_mask(mask), len(table), vmap, "error").astype(np.uint8)
        frames.append(Frame(img.name, img, read_image(img).data, truth))
    return frames


def resolve_model(text: str) -> tuple[Any, str | None]:
    """(the workspace's model choice, the model file active at the start or None)."""
    from segstudio.inference.model_file import trainable_file
    from segstudio.paths import models_dir
    from segstudio.workspace.model_choice import ModelChoice
    from segstudio.zoo.presets import PRESETS

    if text in PRESETS:
        return ModelChoice.preset_network(text), None
    path = Path(text)
    if not path.is_file():
        shipped = models_dir() / f"{text}.onnx"
        if shipped.is_file():
            path = shipped
    if path.is_file():
        if trainable_file(path) is None:
            raise SystemExit(f"{path} cannot be trained (an ONNX file without its .safetensors twin)")
        return ModelChoice.file(path), str(path)
    return ModelChoice.untrained(text), None


def make_project(root: Path, frames: list[Frame], classes: list[str]) -> Any:
    from segstudio.core.classes import ClassTable
    from segstudio.core.project import Project

    root.mkdir(parents=True)
    for f in frames:
        shutil.copy(f.path, root / f.name)
    table = ClassTable.camvid() if classes == ["camvid"] else ClassTable.from_names(classes)
    return Project.create(root, classes=table)


class Session:
    """The simulated annotator's clock and loop, shared by the network run and the forest baseline."""

    def __init__(self, frames: list[Frame], budget: float, radius: int, max_strokes: int, tm: TimeModel,
                 realtime: bool) -> None:
        self.frames = frames
        self.budget = budget
        self.radius = radius
        self.max_strokes = max_strokes
        self.tm = tm
        self.realtime = realtime
        self.labels = {f.name: np.full(f.truth.shape, 255, np.uint8) for f in frames}
        self.clock = 0.0
        self.t0 = time.monotonic()

    def wall(self) -> float:
        return time.monotonic() - self.t0

    def run(self, trace: Trace, predict: Callable[[Frame], np.ndarray | None], saved: Callable[[Frame], None],
            idle: Callable[[], None]) -> None:
        """Visit the pool in turn until the budget is spent; ``idle`` is called while the user's time passes."""
        i = 0
        while self.clock < self.budget:
            f = self.frames[i % len(self.frames)]
            i += 1
            pred = predict(f)
            strokes = corrective_strokes(pred, f.truth, self.radius, max_strokes=self.max_strokes)
            for s in strokes:
                paint(self.labels[f.name], s, self.radius)
            self.clock += image_seconds(strokes, self.tm)
            trace.visits += 1
            trace.strokes += len(strokes)
            if strokes:
                saved(f)
            trace.log.append({"t": round(self.clock, 2), "image": f.name, "strokes": len(strokes)})
            if self.realtime:  # the annotator's clock is the wall clock
                while self.wall() < min(self.clock, self.budget):
                    idle()
                    time.sleep(min(POLL_S, max(0.0, self.clock - self.wall())))
                self.clock = max(self.clock, self.wall())
            idle()


def run_network(args: argparse.Namespace, frames: list[Frame], classes: list[str], work: Path) -> Trace:
    """The app's loop: the project, a training process, the simulated user painting in real time."""
    from segstudio.inference.predictor import Predictor
    from segstudio.workspace.project_training import ProjectTraining
    from segstudio.workspace.startpoint import RunSettings, start_point

    choice, active = resolve_model(args.model)
    project = make_project(work / "project", frames, classes)
    if active is not None and classes != ["camvid"] and Predictor.from_file(active).card.classes.names != \
            project.classes.names:
        print("note: the model's classes differ from the project's: its head is rebuilt on the first round")
    trace = Trace(f"{args.model} ({args.mode})", [(0.0, active)])
    state: dict[str, Any] = {"predictor": None, "run": None, "concluding": None}

    def load(model: str | None) -> None:
        state["predictor"] = (Predictor.from_file(model, backend="auto", device="cpu", threads=args.threads)
                              if model is not None else None)

    load(active)
    usable = active is not None and state["predictor"].card.classes.names == project.classes.names
    if not usable:
        state["predictor"] = None
    settings = RunSettings(mode=args.mode, seconds=args.round_seconds if args.mode == "rounds" else None,
                           lr=args.lr)
    session = Session(frames, args.budget_seconds, args.brush, args.max_strokes, TimeModel(), realtime=True)

    def predict(f: Frame) -> np.ndarray | None:
        p = state["predictor"]
        return None if p is None else p.predict(f.image).labels

    def saved(f: Frame) -> None:
        project.save_label(f.name, session.labels[f.name])
        project.save()
        if state["run"] is None and state["concluding"] is None:
            start()

    def start() -> None:
        nonlocal active
        run = ProjectTraining(project.root, start_point(choice), settings, active, threads=args.train_threads,
                              export_onnx=True)
        run.start()
        state["run"] = run

    def activate(model: str) -> None:
        nonlocal active
        active = model
        load(model)
        trace.changes.append((session.clock, model))

    def idle() -> None:
        run = state["run"]
        if run is None:
            return
        for ev in run.events():
            if ev.kind == "published" and ev.model_path:
                run.publish(ev)
                activate(ev.model_path)
            elif ev.kind == "finished" and ev.model_path and not run.continuous:
                state["run"] = None
                done: dict[str, Any] = {}

                def conclude(run: Any = run, ev: Any = ev, done: dict[str, Any] = done) -> None:
                    done["round"] = run.conclude(ev)

                thread = threading.Thread(target=conclude, daemon=True)
                thread.start()
                state["concluding"] = (thread, done)
            elif ev.kind in ("failed", "died", "cancelled", "stopped"):
                print(f"training ended: {ev.kind} {ev.message}", flush=True)
                state["run"] = None
        concluding = state["concluding"]
        if concluding is not None and not concluding[0].is_alive():
            state["concluding"] = None
            r = concluding[1].get("round")
            if r is not None and r.activated:
                activate(r.model_after)
            start()  # the next round at once

    session.run(trace, predict, saved, idle)
    run = state["run"]
    if run is not None:
        run.cancel()
        deadline = time.monotonic() + 60
        while run.is_alive() and time.monotonic() < deadline:
            run.events()
            time.sleep(0.2)
        run.kill()
    return trace


def run_forest(args: argparse.Namespace, frames: list[Frame], test: list[Frame]) -> Trace:
    """The same user with an ilastik-style random forest refitted after every corrected image."""
    from benchmarks.isbi_forest import features, fit_forest, predict_features

    feats = {f.name: features(_gray_or_channels(f.image)) for f in [*frames, *test]}
    trace = Trace("random forest (ilastik-style)", [(0.0, 0.0)])
    session = Session(frames, args.budget_seconds, args.brush, args.max_strokes, TimeModel(), realtime=False)
    state: dict[str, Any] = {"forest": None}

    def predict(f: Frame) -> np.ndarray | None:
        forest = state["forest"]
        return None if forest is None else predict_features(forest, feats[f.name])

    def saved(f: Frame) -> None:
        labelled = [(feats[g.name], session.labels[g.name]) for g in frames if (session.labels[g.name] != 255).any()]
        classes_seen = np.unique(np.concatenate([lab[lab != 255] for _, lab in labelled]))
        if classes_seen.size < 2:
            return
        state["forest"], _ = fit_forest([x for x, _ in labelled], [y for _, y in labelled], threads=args.rf_threads,
                                        seed=0, max_pixels=args.rf_pixels, precomputed=True)
        trace.changes.append((session.clock, _score_forest(state["forest"], test, feats, args.num_classes)))

    session.run(trace, predict, saved, lambda: None)
    return trace


def _gray_or_channels(image: np.ndarray) -> np.ndarray:
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _score_forest(forest: Any, test: list[Frame], feats: dict[str, np.ndarray], k: int) -> float:
    """The forest's test mIoU on every second pixel of every second row (a quarter of the pixels: the forest
    is scored after every saved image, and predicting whole slices each time took longer than the session)."""
    from benchmarks.isbi_forest import predict_features
    from segstudio.core.metrics import SegMetrics

    m = SegMetrics(k)
    for f in test:
        m.update(predict_features(forest, feats[f.name][::2, ::2]), f.truth[::2, ::2])
    return float(m.miou)


def score_models(trace: Trace, test: list[Frame], k: int, threads: int) -> list[tuple[float, float]]:
    """The curve: test mIoU of each model that became active, from when it did."""
    from segstudio.core.metrics import SegMetrics
    from segstudio.inference.predictor import Predictor

    scores: dict[Any, float] = {}
    curve = []
    for t, model in trace.changes:
        if isinstance(model, float):
            curve.append((t, model))
            continue
        if model not in scores:
            if model is None:
                scores[model] = 0.0
            else:
                p = Predictor.from_file(model, backend="auto", device="cpu", threads=threads)
                m = SegMetrics(k)
                for f in test:
                    m.update(p.predict(f.image).labels, f.truth)
                scores[model] = float(m.miou)
        curve.append((t, scores[model]))
    return curve


def ett(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, m in curve if m >= target), None)


def auc(curve: list[tuple[float, float]], budget: float) -> float:
    """Mean test mIoU over the budget (the curve is a step function)."""
    total = 0.0
    for (t, m), (t_next, _) in zip(curve, [*curve[1:], (budget, 0.0)]):
        total += m * max(0.0, min(t_next, budget) - min(t, budget))
    return total / budget


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a model file (fine-tuned), a shipped model's name, a zoo "
                                                   "network or 'small-data' (trained from scratch)")
    ap.add_argument("--pool-images", type=Path, required=True)
    ap.add_argument("--pool-masks", type=Path, required=True)
    ap.add_argument("--pool", help="which pool pairs (in name order), e.g. 0-9")
    ap.add_argument("--test-images", type=Path, help="default: the pool folders")
    ap.add_argument("--test-masks", type=Path)
    ap.add_argument("--test", help="which test pairs (in name order), e.g. 10-19")
    ap.add_argument("--map", action="append", default=[], help="mask values, e.g. 0=membrane,255=cell or 11=void")
    ap.add_argument("--classes", help="class names (default: the model's card; 'camvid' for CamVid's 11)")
    ap.add_argument("--target", type=float, default=0.75, help="test mIoU to reach (default 0.75)")
    ap.add_argument("--budget-seconds", type=float, default=600.0, help="annotation seconds (default 600)")
    ap.add_argument("--mode", choices=("continuous", "rounds"), default="continuous")
    ap.add_argument("--round-seconds", type=float, default=60.0, help="length of a round in rounds mode")
    ap.add_argument("--lr", type=float, help="learning rate (default: the recipe's, as the app)")
    ap.add_argument("--baseline", choices=("rf", "none"), default="none")
    ap.add_argument("--rf-threads", type=int, default=2, help="threads fitting the forest (its time is not charged)")
    ap.add_argument("--rf-pixels", type=int, default=100_000, help="labelled pixels the forest is fitted on")
    ap.add_argument("--brush", type=int, default=4, help="brush radius in pixels (default 4)")
    ap.add_argument("--max-strokes", type=int, default=8, help="strokes per image visit (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="threads of the annotator's process (the app's UI)")
    ap.add_argument("--train-threads", type=int, default=1, help="threads of the training process (the app: 1)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the project (labels, training log, versions) in this folder")
    return ap


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    from segstudio.inference.model_file import load_card

    value_map = [m for item in args.map for m in item.split(",")]
    if args.classes:
        classes = [c.strip() for c in args.classes.split(",")]
    else:
        _, active = resolve_model(args.model)
        if active is None:
            raise SystemExit("give --classes (the network is trained from scratch: it has no card yet)")
        classes = load_card(active).classes.names
    args.num_classes = 11 if classes == ["camvid"] else len(classes)
    frames = load_frames(args.pool_images, args.pool_masks, args.pool, value_map, classes)
    test = load_frames(args.test_images or args.pool_images, args.test_masks or args.pool_masks, args.test,
                       value_map, classes)
    if {f.name for f in frames} & {f.name for f in test} and args.test_images is None:
        raise SystemExit("the pool and the test images overlap: give --pool and --test ranges")
    print(f"pool {len(frames)} images, test {len(test)}; budget {args.budget_seconds:.0f} s, {args.mode}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="segstudio-hitl-") as tmp:
        trace = run_network(args, frames, classes, Path(tmp))
        curve = score_models(trace, test, args.num_classes, threads=2)
        if args.keep:
            shutil.copytree(Path(tmp) / "project", args.keep, dirs_exist_ok=True)
    rows = [(trace, curve)]
    _, active = resolve_model(args.model)
    start = curve[0][1]
    start_curve = [(0.0, start)]
    rows.append((Trace(f"start model, no training ({Path(active).name if active else 'none'})"), start_curve))
    if args.baseline == "rf":
        rf = run_forest(args, frames, test)
        rows.append((rf, rf.changes))
    result: dict[str, Any] = {
        "model": args.model, "mode": args.mode, "target": args.target, "budget_seconds": args.budget_seconds,
        "ett_seconds": ett(curve, args.target), "auc": auc(curve, args.budget_seconds),
        "final_miou": curve[-1][1], "curve": curve, "strokes": trace.strokes, "visits": trace.visits,
        "baseline_ett_seconds": ett(rows[-1][1], args.target) if args.baseline == "rf" else None,
        "baselines": {r.label: {"ett_seconds": ett(c, args.target), "auc": auc(c, args.budget_seconds),
                                "final_miou": c[-1][1], "curve": c, "strokes": r.strokes} for r, c in rows[1:]},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_after": round(os.getloadavg()[0], 1)},
    }
    print()
    print(f"| run | ETT to {args.target} (s) | mIoU at {args.budget_seconds:.0f} s | mean mIoU (AUC) | strokes | "
          "image visits |")
    print("|---|---:|---:|---:|---:|---:|")
    for r, c in rows:
        e = ett(c, args.target)
        print(f"| {r.label} | {'not reached' if e is None else f'{e:.0f}'} | {c[-1][1]:.3f} | "
              f"{auc(c, args.budget_seconds):.3f} | {r.strokes} | {r.visits} |")
    print("curve (s, test mIoU): " + ", ".join(f"{t:.0f}:{m:.3f}" for t, m in curve))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
