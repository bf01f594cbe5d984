"""Peak memory of one forward pass, per network, each in a fresh process; prints a table.

    PYTHONPATH=. python benchmarks/forward_memory.py segnext_s segformer_b0 --size 512 512
    PYTHONPATH=. python benchmarks/forward_memory.py segnext_s --device cuda --dtype fp16

Modes: ``eval`` (``model.eval()`` under ``torch.inference_mode()``, what
inference costs) and ``train`` (``model.train()`` with autograd recording:
the activations kept for a backward pass, the training cost before backward).

CPU methods, both measured on the first full-size forward of a freshly built
model (after one 64×64 forward that loads the kernels), so no heap cached by
an earlier big forward hides the growth:

* ``rss_peak``: the kernel's resident-set high-water mark (VmHWM in
  /proc/self/status), reset just before the forward by writing ``5`` to
  /proc/self/clear_refs, minus the resident set before the forward. This is
  what the process really took from the machine. Where the reset is not
  allowed, a thread samples the resident set every 0.2 ms instead (``rss_sampled``).
* ``alloc_peak``: the running sum, in time order, of the memory each
  operator allocated minus what it freed (torch profiler, ``profile_memory``):
  the tensor-allocator view, blind to allocator overhead and to workspaces an
  operator allocates and frees within itself.

On CUDA the column is ``torch.cuda.max_memory_allocated`` (and reserved)
around the forward; weights and input are included there and listed apart.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _vm(field: str) -> int:
    """A VmRSS/VmHWM-style field of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _vm("VmHWM") <= _vm("VmRSS") + 4096 * 16


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.0002)


def measure(name: str, size: tuple[int, int], mode: str, device: str, dtype: str, threads: int) -> dict:
    """One network in this process: returns the measurements as a dict (MiB)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from segstudio import nets

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nets.create(name, num_classes=19).to(device)
    model.train(mode == "train")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    x = torch.randn(1, 3, *size, device=device)
    amp = torch.autocast(device_type=device, dtype=torch.float16) if dtype == "fp16" else None
    grad = torch.enable_grad() if mode == "train" else torch.inference_mode()
    row: dict = {"net": name, "mode": mode, "size": f"{size[0]}x{size[1]}", "params_M": round(
        sum(p.numel() for p in model.parameters()) / 1e6, 3), "weights_MiB": round(weights / 2**20, 1)}

    def forward() -> None:
        with grad:
            if amp is None:
                out = model(x)
            else:
                with amp:
                    out = model(x)
            del out

    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        forward()
        torch.cuda.synchronize()
        row["cuda_peak_alloc_MiB"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        row["cuda_peak_reserved_MiB"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
        row["cuda_forward_extra_MiB"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
        return row

    import gc

    # One small forward first: it maps the oneDNN/attention kernels and library pages that the first
    # call loads, which are one-off costs, not the memory a forward of this size needs.
    small = torch.randn(1, 3, 64, 64, device=device)
    with grad:
        model(small)
    del small
    gc.collect()
    before = _vm("VmRSS")
    if _reset_hwm():
        forward()
        row["rss_peak_MiB"] = round((_vm("VmHWM") - before) / 2**20, 1)
    else:
        sampler = _Sampler()
        sampler.start()
        forward()
        sampler.stop.set()
        sampler.join()
        row["rss_sampled_MiB"] = round((sampler.peak - before) / 2**20, 1)
    # allocator view, on a second forward (the profiler's own bookkeeping would disturb the RSS figure)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        forward()
    # self memory excludes children, so every allocation is counted once; the sum over a forward is 0
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    running = peak = 0
    for e in events:
        running += e.self_cpu_memory_usage
        peak = max(peak, running)
    row["alloc_peak_MiB"] = round(peak / 2**20, 1)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="+")
    parser.add_argument("--size", nargs=2, type=int, default=[512, 512], metavar=("H", "W"))
    parser.add_argument("--modes", nargs="+", default=["eval", "train"], choices=["eval", "train"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = (args.size[0], args.size[1])
    if args.child:
        print(json.dumps(measure(args.nets[0], size, args.modes[0], args.device, args.dtype, args.threads)))
        return
    rows = []
    for name in args.nets:
        for mode in args.modes:
            cmd = [sys.executable, __file__, name, "--child", "--size", *map(str, size), "--modes", mode,
                   "--device", args.device, "--dtype", args.dtype, "--threads", str(args.threads)]
            res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise SystemExit(f"{name} {mode} failed:\n{res.stderr}")
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys))


if __name__ == "__main__":
    main()
