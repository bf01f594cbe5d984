"""Inference speed of every network in the zoo: GPU latency, FPS and memory; CPU latency (PyTorch, ONNX Runtime).

Usage (from the repository root)::

    python -m benchmarks.nets_speed --json out/speed.json            # everything
    python -m benchmarks.nets_speed --only unet,linknet --no-cpu     # GPU part of two networks
    python -m benchmarks.nets_speed --no-gpu --cpu-repeats 3         # CPU part only
    python -m benchmarks.nets_speed --sizes 512x512 --repeats 20 --markdown

Per network (19 classes, the spec's ``reference_options``, eval mode, batch 1,
random weights and input):

* parameters, and GMACs at 1024×2048 (see benchmarks/netstats.py);
* GPU, for each ``--sizes`` (default 1024×2048 and 512×512) and precision
  (fp32, fp16), channels_last: median latency over ``--repeats`` forward
  passes timed with CUDA events after ``--warmup`` passes, under
  ``torch.inference_mode`` with ``cudnn.benchmark``; FPS = 1000 / median ms;
  peak memory = ``torch.cuda.max_memory_allocated`` over the timed passes
  (weights, input and activations). fp16 is ``model.half()`` with fp16 input
  (``--fp16-mode autocast`` runs fp32 weights under ``torch.autocast``). fp32
  keeps PyTorch's defaults (cuDNN may use TF32 on Ampere and newer; the JSON
  records the flags). Without CUDA the GPU cells read "n/a (no CUDA)";
* CPU at ``--cpu-size`` (default 512×512), fp32: median latency of PyTorch
  eager and of ONNX Runtime (CPUExecutionProvider, ``--cpu-threads`` intra-op
  threads, default 2, all graph optimisations), the model exported with
  ``segstudio.inference.export``; the JSON also records the largest
  difference between the two outputs.

A failure (build, export, out of memory) is reported in that cell and the run
goes on. With ``--json`` the results are written after every network, so a run
cut short by a time limit keeps what it measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch import nn

from benchmarks.netstats import (
    build,
    count_macs,
    count_params,
    markdown_table,
    parse_sizes,
    select_networks,
    size_label,
    text_table,
)
from segstudio.core.atomic import atomic_write_text

NO_CUDA = "n/a (no CUDA)"
FLOP_SIZE = (1024, 2048)


@dataclass
class Settings:
    sizes: list[tuple[int, int]]
    precisions: list[str]
    repeats: int
    warmup: int
    fp16_mode: str
    gpu: bool
    cpu: bool
    cpu_size: tuple[int, int]
    cpu_repeats: int
    cpu_warmup: int
    cpu_threads: int


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


# ------------------------------------------------------------------------ GPU


def _gpu_one(model: nn.Module, hw: tuple[int, int], precision: str, s: Settings) -> dict[str, Any]:
    """Time one network at one size and precision on the current CUDA device."""
    dev = torch.device("cuda")
    half = precision == "fp16" and s.fp16_mode == "half"
    dtype = torch.float16 if half else torch.float32
    autocast = precision == "fp16" and s.fp16_mode == "autocast"

    def forward(m: nn.Module, x: torch.Tensor) -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
            m(x)

    m: nn.Module | None = None
    x: torch.Tensor | None = None
    try:
        m = copy.deepcopy(model).to(dev, dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = torch.randn(1, 3, *hw, device=dev, dtype=dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(s.warmup):  # includes cudnn.benchmark's algorithm search for this shape
                forward(m, x)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(s.repeats)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(s.repeats)]
            for start, end in zip(starts, ends):
                start.record()
                forward(m, x)
                end.record()
            torch.cuda.synchronize()
        times = [a.elapsed_time(b) for a, b in zip(starts, ends)]
        ms = statistics.median(times)
        return {"ms": ms, "fps": 1000.0 / ms, "ms_min": min(times), "ms_max": max(times),
                "peak_mib": torch.cuda.max_memory_allocated() / 2**20}
    finally:
        del m, x
        torch.cuda.empty_cache()


def measure_gpu(model: nn.Module, s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"error": NO_CUDA}
    torch.backends.cudnn.benchmark = True
    out: dict[str, Any] = {}
    for precision in s.precisions:
        for hw in s.sizes:
            key = f"{precision}@{hw[0]}x{hw[1]}"
            try:
                out[key] = _gpu_one(model, hw, precision, s)
                log(f"  GPU {key}: {out[key]['ms']:.2f} ms, {out[key]['peak_mib']:.0f} MiB")
            except torch.cuda.OutOfMemoryError:
                out[key] = {"error": "out of memory"}
                log(f"  GPU {key}: out of memory")
            except Exception as exc:
                out[key] = {"error": _error(exc)}
                log(f"  GPU {key}: {out[key]['error']}")
    return out


# ------------------------------------------------------------------------ CPU


def _median_seconds(run: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_cpu(model: nn.Module, s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """PyTorch eager and ONNX Runtime latency on the CPU (fp32, batch 1, ``s.cpu_size``)."""
    import onnxruntime as ort

    from segstudio.inference.export import INPUT_NAME, export_onnx_bytes

    out: dict[str, Any] = {}
    x = torch.randn(1, 3, *s.cpu_size, generator=torch.Generator().manual_seed(0))
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(s.cpu_threads)
    reference: np.ndarray | None = None
    try:
        with torch.inference_mode():
            reference = model(x).numpy()
            out["torch_ms"] = 1000 * _median_seconds(lambda: model(x), s.cpu_warmup, s.cpu_repeats)
        log(f"  CPU torch: {out['torch_ms']:.0f} ms")
    except Exception as exc:
        out["torch_error"] = _error(exc)
        log(f"  CPU torch: {out['torch_error']}")
    finally:
        torch.set_num_threads(saved_threads)
    try:
        t0 = time.perf_counter()
        data = export_onnx_bytes(model, in_channels=3)
        out["export_s"] = time.perf_counter() - t0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = s.cpu_threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        feed = {INPUT_NAME: x.numpy()}
        got = sess.run(None, feed)[0]
        if reference is not None:
            out["onnx_max_abs_diff"] = float(np.abs(got - reference).max())
        out["onnx_ms"] = 1000 * _median_seconds(lambda: sess.run(None, feed), s.cpu_warmup, s.cpu_repeats)
        log(f"  CPU onnxruntime: {out['onnx_ms']:.0f} ms")
    except Exception as exc:
        out["onnx_error"] = _error(exc)
        log(f"  CPU onnxruntime: {out['onnx_error']}")
    return out


# --------------------------------------------------------------------- driver


def measure(name: str, s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Everything for one network; failures end up in the result, never raised."""
    result: dict[str, Any] = {}
    try:
        model = build(name)
        result["params"] = count_params(model)
    except Exception as exc:
        result["error"] = _error(exc)
        return result
    try:
        result["gmacs_1024x2048"] = count_macs(model, FLOP_SIZE) / 1e9
    except Exception as exc:
        result["gmacs_error"] = _error(exc)
    if s.cpu:
        result["cpu"] = measure_cpu(model, s, log)
    if s.gpu:
        result["gpu"] = measure_gpu(model, s, log)
    return result


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import onnxruntime as ort

    env: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "cpu": _cpu_model(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env.update(
            gpu=torch.cuda.get_device_name(),
            cuda_version=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return env


def _gpu_cells(r: dict[str, Any], s: Settings) -> list[str]:
    gpu = r.get("gpu", {})
    cells = []
    for precision in s.precisions:
        for hw in s.sizes:
            key = f"{precision}@{hw[0]}x{hw[1]}"
            if "error" in gpu:
                cells += [gpu["error"], gpu["error"]]
                continue
            cell = gpu.get(key, {"error": r.get("error", "—")})
            if "error" in cell:
                cells += [cell["error"], "—"]
            else:
                cells += [f"{cell['ms']:.2f} ({cell['fps']:.0f})", f"{cell['peak_mib']:,.0f}"]
    return cells


def render(results: dict[str, dict[str, Any]], s: Settings, markdown: bool) -> str:
    headers = ["network", "params", f"GMACs {size_label(FLOP_SIZE)}"]
    if s.gpu:
        for precision in s.precisions:
            for hw in s.sizes:
                headers += [f"{precision} {size_label(hw)} ms (FPS)", f"{precision} {size_label(hw)} MiB"]
    if s.cpu:
        headers += [f"CPU torch {size_label(s.cpu_size)} ms", f"CPU ORT {size_label(s.cpu_size)} ms"]
    rows = []
    for name, r in results.items():
        gm = r.get("gmacs_1024x2048")
        row = [name, f"{r['params']:,}" if "params" in r else r.get("error", "—"),
               f"{gm:,.1f}" if gm is not None else r.get("gmacs_error", "—")]
        if s.gpu:
            row += _gpu_cells(r, s)
        if s.cpu:
            cpu = r.get("cpu", {})
            row += [f"{cpu['torch_ms']:,.0f}" if "torch_ms" in cpu else cpu.get("torch_error", "—"),
                    f"{cpu['onnx_ms']:,.0f}" if "onnx_ms" in cpu else cpu.get("onnx_error", "—")]
        rows.append([str(c).replace("|", "/") for c in row])
    right = [False] + [True] * (len(headers) - 1)
    return (markdown_table if markdown else text_table)(headers, rows, right)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated network names (default: every network)")
    p.add_argument("--skip", help="comma-separated network names to leave out")
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1024x2048,512x512"),
                   help="GPU input sizes HxW, comma-separated (default 1024x2048,512x512)")
    p.add_argument("--precisions", default="fp32,fp16", help="GPU precisions: fp32, fp16 or both (default)")
    p.add_argument("--fp16-mode", choices=("half", "autocast"), default="half",
                   help="fp16 as model.half() (default) or fp32 weights under torch.autocast")
    p.add_argument("--repeats", type=int, default=30, help="timed GPU passes per cell (median; default 30)")
    p.add_argument("--warmup", type=int, default=10, help="untimed GPU passes first (default 10)")
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU columns")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU columns")
    p.add_argument("--cpu-size", type=parse_sizes, default=parse_sizes("512x512"), help="CPU input size")
    p.add_argument("--cpu-repeats", type=int, default=5, help="timed CPU passes (median; default 5)")
    p.add_argument("--cpu-warmup", type=int, default=1, help="untimed CPU passes first (default 1)")
    p.add_argument("--cpu-threads", type=int, default=2, help="intra-op threads, PyTorch and ONNX Runtime")
    p.add_argument("--json", type=Path, help="write the results here (after every network)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args(argv)
    precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    bad = [v for v in precisions if v not in ("fp32", "fp16")]
    if bad or not precisions:
        p.error(f"--precisions takes fp32 and/or fp16, got {args.precisions!r}")
    if args.repeats < 1 or args.cpu_repeats < 1 or args.warmup < 0 or args.cpu_warmup < 0:
        p.error("repeats must be at least 1 and warm-up at least 0")
    if len(args.cpu_size) != 1:
        p.error("--cpu-size takes one size")
    s = Settings(sizes=args.sizes, precisions=precisions, repeats=args.repeats, warmup=args.warmup,
                 fp16_mode=args.fp16_mode, gpu=not args.no_gpu, cpu=not args.no_cpu,
                 cpu_size=args.cpu_size[0], cpu_repeats=args.cpu_repeats, cpu_warmup=args.cpu_warmup,
                 cpu_threads=args.cpu_threads)
    return args, s


def main(argv: list[str] | None = None) -> int:
    args, s = parse_args(argv)
    names = select_networks(args.only, args.skip)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    env = environment()
    log(f"torch {env['torch']}, onnxruntime {env['onnxruntime']}, GPU: {env.get('gpu', NO_CUDA)}")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        log(f"{name} ...")
        t0 = time.perf_counter()
        results[name] = measure(name, s, log)
        results[name]["wall_s"] = time.perf_counter() - t0
        if args.json:
            doc = {"environment": env, "settings": asdict(s), "results": results}
            atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    print(render(results, s, args.markdown))
    notes = [f"torch {env['torch']}", "batch 1", "19 classes"]
    if s.gpu:
        notes.append(f"GPU {env.get('gpu', NO_CUDA)}: median ms (FPS) over {s.repeats} passes after {s.warmup}, "
                     f"channels_last, fp16 = {s.fp16_mode}, MiB = peak allocated")
    if s.cpu:
        notes.append(f"CPU {env['cpu']}: fp32, {s.cpu_threads} intra-op threads, median of {s.cpu_repeats} "
                     f"after {s.cpu_warmup}, onnxruntime {env['onnxruntime']}")
    print("\n" + "; ".join(notes) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
