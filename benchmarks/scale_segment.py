"""Batch segmentation on Ray against the local command: images/s with 1 and 2 local Ray workers, as ratios.

On the CamVid val images (101, 360×480) with the shipped Fast-SCNN's ONNX file by default, writing the
class-index maps (the command's default outputs):

- ``local``: :func:`~segstudio.inference.batch.segment_folder` in this process, as ``segstudio segment``
  runs (ONNX Runtime with its default threads, decode and encode threads around it);
- ``ray ×N``: :func:`~segstudio.inference.ray_batch.segment_on_ray` on a local Ray with N actors of
  one CPU each (one ONNX Runtime thread, one decode and one encode thread per actor).

Ray is started once; its start (``ray.init``) is the first fixed cost. Every Ray run then starts its actors
(each imports segstudio and opens the model), the second: the time to the first image shows it. Each row
gives the whole run's images/s (what a user waits for) and the steady rate after the first image (what a
long run converges to). Configurations are run in turns (``--rounds``), so that a change in the machine's
load touches them alike, and the best round of each is kept. The load average is printed: report it.

    PYTHONPATH=. python benchmarks/scale_segment.py                  # --rounds 2 --repeat 1
    PYTHONPATH=. python benchmarks/scale_segment.py --repeat 3       # 303 images: longer runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segstudio.core.image_io import list_images  # noqa: E402
from segstudio.inference.batch import BatchEvent  # noqa: E402


@dataclass
class Timing:
    """One run: images written, seconds in all, seconds to the first written image."""

    images: int
    seconds: float
    first_s: float

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    @property
    def steady_rate(self) -> float:
        return (self.images - 1) / max(self.seconds - self.first_s, 1e-9)


def time_events(events: object) -> Timing:
    """Run a batch's event iterator to its end; its :class:`Timing`."""
    t0 = time.perf_counter()
    first = None
    last: BatchEvent | None = None
    for ev in events:  # type: ignore[attr-defined]
        if first is None and ev.written:
            first = time.perf_counter() - t0
        last = ev
    seconds = time.perf_counter() - t0
    assert last is not None and last.finished and not last.failed, last
    return Timing(last.written, seconds, first if first is not None else seconds)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main(argv: list[str] | None = None) -> None:
    data = Path(os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=data / "camvid" / "val")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "camvid-fastscnn.onnx")
    ap.add_argument("--workers", default="1,2", help="Ray actor counts to measure (default 1,2)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="segment the folder this many times over per run")
    args = ap.parse_args(argv)

    import ray

    from segstudio.inference.batch import BatchOptions, segment_folder
    from segstudio.inference.predictor import Predictor
    from segstudio.inference.ray_batch import ModelSource, RayOptions, connect, segment_on_ray

    images = list_images(args.images)
    if not images:
        raise SystemExit(f"no images in {args.images} (set --images or SEGSTUDIO_DATA)")
    workers = [int(w) for w in args.workers.split(",")]
    cpus = os.cpu_count() or 1
    print(f"# {len(images) * args.repeat} images ({len(images)} from {args.images}, ×{args.repeat}), "
          f"model {args.model.name}, {cpus} CPUs; load average at the start {load()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for r in range(args.repeat):
            (src / str(r)).mkdir(parents=True)
            for f in images:
                (src / str(r) / f.name).symlink_to(f.resolve())
        options = BatchOptions(recursive=True, resume=False)
        t0 = time.perf_counter()
        connect(RayOptions(num_cpus=cpus))
        ray_start = time.perf_counter() - t0
        predictor = Predictor.from_file(args.model)
        best: dict[str, Timing] = {}
        try:
            for rnd in range(args.rounds):
                runs = {"local": lambda out: segment_folder([src], out, predictor, options)}
                for n in workers:
                    runs[f"ray ×{n}"] = lambda out, n=n: segment_on_ray(
                        [src], out, ModelSource(str(args.model)), options, RayOptions(actors=n))
                for name, run in runs.items():
                    timing = time_events(run(Path(tmp) / f"out-{rnd}-{name.replace(' ', '')}"))
                    print(f"round {rnd + 1}: {name}: {timing.images} images in {timing.seconds:.1f} s "
                          f"(first after {timing.first_s:.1f} s)", flush=True)
                    if name not in best or timing.rate > best[name].rate:
                        best[name] = timing
        finally:
            ray.shutdown()
    print(f"\nload average at the end {load()}; Ray's start (ray.init, local): {ray_start:.1f} s\n")
    local = best["local"].rate
    one = best.get(f"ray ×{workers[0]}")
    print("| run | images/s | steady images/s (after the first image) | first image after | vs local | vs ray ×1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t in best.items():
        vs_one = f"{t.rate / one.rate:.2f}×" if one is not None and name.startswith("ray") else ""
        print(f"| {name} | {t.rate:.1f} | {t.steady_rate:.1f} | {t.first_s:.1f} s | {t.rate / local:.2f}× "
              f"| {vs_one} |")


if __name__ == "__main__":
    main()
