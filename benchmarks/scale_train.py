"""Training throughput on the CPU with 1 and 2 processes (DistributedDataParallel over gloo), as a ratio.

Every run is the ``segstudio train`` command on the ISBI-2012 slices (20 images, 512×512) with the same
recipe and the same *global* batch (the batch rule of docs/SCALE.md): one process with one thread, two
processes (``--nproc 2``) with one thread each, each taking half of every batch, and one process with all
the CPU's threads.
Images/s are counted over the optimizer steps after ``--warmup`` steps, from the elapsed time that rank
0 reports for each step (``--json``), so loading the data and starting the processes are left out; the
processes' start is reported beside. Runs alternate (``--rounds``) and the best of each is kept. The load
average is printed: report it.

    PYTHONPATH=. python benchmarks/scale_train.py                   # fastscnn, crop 256, batch 8, 40 steps
    PYTHONPATH=. python benchmarks/scale_train.py --model unet --option base_width=8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Throughput:
    """Images/s over the steps after the warm-up, and the seconds from the command's start to its first step."""

    images_per_s: float
    start_s: float


def measure(steps: list[tuple[int, float]], batch: int, warmup: int) -> float:
    """Images/s from ``(step, elapsed seconds)`` pairs, counting the steps after ``warmup``."""
    kept = [(s, t) for s, t in steps if s >= warmup]
    if len(kept) < 2:
        raise ValueError(f"too few steps after a warm-up of {warmup} to measure")
    (s0, t0), (s1, t1) = kept[0], kept[-1]
    return (s1 - s0) * batch / (t1 - t0)


def run(command: list[str], batch: int, warmup: int, env: dict[str, str]) -> Throughput:
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = [(e["step"], e["elapsed_s"]) for e in events if e["kind"] == "step"]
    started = next(e["elapsed_s"] for e in events if e["kind"] == "step")
    wall_to_first = time.perf_counter() - t0 - (events[-1]["elapsed_s"] - started)
    return Throughput(measure(steps, batch, warmup), wall_to_first)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main(argv: list[str] | None = None) -> None:
    data = Path(os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data")) / "isbi-membrane"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=data, help="a folder with image/ and label/ (ISBI-2012)")
    ap.add_argument("--model", default="fastscnn")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.data / "image").is_dir():
        raise SystemExit(f"{args.data}/image not found (set --data or SEGSTUDIO_DATA)")
    cpus = os.cpu_count() or 1
    print(f"# {args.model}, crops {args.crop}², global batch {args.batch_size}, {args.steps} steps on "
          f"{args.data}; {cpus} CPUs; load average at the start {load()}\n")
    configs = [(1, 1), (2, 1)] + ([(1, cpus)] if cpus > 1 else [])
    best: dict[tuple[int, int], Throughput] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for nproc, threads in configs:
                command = [sys.executable, "-m", "segstudio", "train", "--model", args.model,
                           "--images", str(args.data / "image"), "--masks", str(args.data / "label"),
                           "--classes", "membrane,cell", "--map", "0=membrane,255=cell",
                           "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                           "--crop", str(args.crop), "--threads", str(threads), "--val-every", "1000",
                           "--json", "-o", str(Path(tmp) / f"run-{rnd}-{nproc}-{threads}")]
                command += [a for o in args.option for a in ("--option", o)]
                if nproc > 1:
                    command += ["--nproc", str(nproc)]
                # Idle OpenMP threads sleep rather than spin: on a shared CPU spinning makes threads fight.
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
                result = run(command, args.batch_size, args.warmup, env)
                print(f"round {rnd + 1}: {nproc} process(es) × {threads} thread(s): "
                      f"{result.images_per_s:.2f} images/s", flush=True)
                if (nproc, threads) not in best or result.images_per_s > best[nproc, threads].images_per_s:
                    best[nproc, threads] = result
    print(f"\nload average at the end {load()}\n")
    base = best[1, 1].images_per_s
    print("| processes × threads | images/s (steps after the warm-up) | start to first step | vs 1 × 1 |")
    print("|---|---:|---:|---:|")
    for (nproc, threads), r in best.items():
        print(f"| {nproc} × {threads} | {r.images_per_s:.2f} | {r.start_s:.1f} s | {r.images_per_s / base:.2f}× |")


if __name__ == "__main__":
    main()
