"""Forward-pass throughput of zoo networks, in PyTorch and (on CPU) ONNX Runtime; prints a table.

Examples::

    python -m benchmarks.bench_realtime_nets                          # fastscnn, dfanet_a/b at 360×480 on CPU
    python -m benchmarks.bench_realtime_nets --device cuda --half --channels-last --size 1024x2048 --batch 1
    python -m benchmarks.bench_realtime_nets --onnx --threads 1 fastscnn

Timings are of the network alone (random input already on the device, eval
mode, no pre/post-processing), median over ``--iters`` runs after
``--warmup`` runs. The machine is printed with the table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from segstudio import nets


def _median_ms(fn: Callable[[], object], warmup: int, iters: int, sync: Callable[[], None]) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=["fastscnn", "dfanet_a", "dfanet_b"])
    parser.add_argument("--size", type=_parse_size, default=(360, 480), help="H×W, e.g. 360x480")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="fp16 weights and input (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--onnx", action="store_true", help="also time ONNX Runtime on CPU")
    parser.add_argument("--threads", type=int, default=0, help="torch / ORT intra-op threads (0: default)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if args.half else torch.float32
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    h, w = args.size
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# {where}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"input {args.batch}×3×{h}×{w}; {dtype}; {'channels_last' if args.channels_last else 'NCHW'}")
    header = f"| {'network':<10} | {'params':>10} | {'torch ms':>9} | {'torch img/s':>11} |"
    if args.onnx:
        header += f" {'ORT ms':>8} | {'ORT img/s':>9} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")

    for name in args.names:
        model = nets.create(name, num_classes=args.classes).eval()
        params = sum(p.numel() for p in model.parameters())
        model = model.to(device=device, dtype=dtype, memory_format=memory_format)  # type: ignore[call-overload]
        x = torch.randn(args.batch, 3, h, w, device=device, dtype=dtype).contiguous(memory_format=memory_format)
        with torch.inference_mode():
            ms = _median_ms(lambda m=model, t=x: m(t), args.warmup, args.iters, sync)
        row = f"| {name:<10} | {params:>10,} | {ms:>9.2f} | {args.batch * 1e3 / ms:>11.1f} |"
        if args.onnx:
            row += _onnx_cells(name, args)
        print(row, flush=True)


def _onnx_cells(name: str, args: argparse.Namespace) -> str:
    import onnxruntime as ort

    from segstudio.inference.export import export_onnx_bytes

    model = nets.create(name, num_classes=args.classes).eval()
    options = ort.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(export_onnx_bytes(model, 3), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((args.batch, 3, *args.size), dtype=np.float32)
    ms = _median_ms(lambda: session.run(None, {"image": x}), args.warmup, args.iters, lambda: None)
    return f" {ms:>8.2f} | {args.batch * 1e3 / ms:>9.1f} |"


if __name__ == "__main__":
    main()
