"""Inference speed and memory; prints tables (the figures in docs/BENCHMARKS.md come from here).

Parts (``--parts``, default all that the machine can run):

- ``cpu``: per network, one 512×512 image, PyTorch eager vs ONNX Runtime on the
  CPU with ``--threads`` threads, the network alone and through the predictor
  (normalise, pad, arg-max), plus how far the two outputs are apart.
- ``gpu``: batch-segment a folder (the 101 CamVid val images by default) with
  ``--gpu-net`` on CUDA, end to end (PNG decode, network, index-PNG encode and
  write) — and the network-only rate beside it. Needs CUDA.
- ``io``: the CPU side of a batch run without the network — PNG decode
  (``read_image``) and index-PNG encode per image, single-threaded and
  through thread pools — i.e. how many images/s this machine can feed a GPU.
- ``big``: segment a synthetic 10000×10000 RGB PNG with ONNX Runtime on the
  CPU in a child process (``segstudio segment``) and report its peak resident
  memory.

Random weights: speed and memory do not depend on what a network has learnt.

    python benchmarks/infer_speed.py --nets unet,fastscnn --parts cpu --threads 2
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _paired_ms(a: Callable[[], Any], b: Callable[[], Any], repeat: int, warmup: int = 2) -> tuple[float, float]:
    """Median ms of ``a`` and of ``b``, timed alternately so that a busy machine slows both alike."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


def _options(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def _model(name: str, classes: int, options: dict[str, Any]) -> Any:
    import torch

    from segstudio import nets, zoo

    torch.manual_seed(0)
    spec = zoo.get_spec(name)
    usable = {k: v for k, v in options.items() if k in spec.option_names()}
    model = nets.create(name, num_classes=classes, **usable)
    # Realistic BatchNorm statistics (as a trained model has) so that logits are not degenerate.
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 128, 128))
    return model.eval()


def _card(model: Any, name: str, classes: int) -> Any:
    from segstudio.core.classes import ClassTable
    from segstudio.zoo import ModelCard

    return ModelCard(arch=name, classes=ClassTable.from_names([f"class{i}" for i in range(classes)]),
                     options=dict(model.segstudio_options))


def part_cpu(nets_: list[str], size: int, threads: int, repeat: int, options: dict[str, Any]) -> None:
    import torch

    from segstudio.inference.export import check_export, export_onnx_bytes
    from segstudio.inference.onnx_backend import OnnxBackend
    from segstudio.inference.predictor import Predictor
    from segstudio.inference.tta import DIHEDRAL
    from segstudio.nets import available

    torch.set_num_threads(threads)
    print(f"\n## CPU, {threads} threads, 1×3×{size}×{size}, median of {repeat}, torch and ORT timed alternately "
          f"(torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__})\n")
    print("| network | params | torch eager ms | ORT ms | ORT speed-up | predict torch ms | predict ORT ms "
          "| predict ORT, 8 views ms | max abs diff | rel. diff | arg-max agree |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), np.uint8)
    for name in nets_:
        if name not in available():
            print(f"| {name} | not in this branch |  |  |  |  |  |  |  |  |  |")
            continue
        model = _model(name, 11, options)
        params = sum(p.numel() for p in model.parameters())
        data = export_onnx_bytes(model, 3)
        ort = OnnxBackend(data, threads=threads)
        x = np.random.default_rng(1).normal(0, 1, (1, 3, size, size)).astype(np.float32)
        xt = torch.from_numpy(x)

        def run_torch(model: Any = model, xt: Any = xt) -> Any:
            with torch.inference_mode():
                return model(xt)

        t_torch, t_ort = _paired_ms(run_torch, lambda ort=ort, x=x: ort.forward(x), repeat)
        report = check_export(model, data, [(1, 3, size, size)])
        card = _card(model, name, 11)
        from segstudio.inference.backend import Backend
        from segstudio.inference.torch_backend import TorchBackend

        backends: list[Backend] = [TorchBackend(model, "cpu"), ort]
        pt, po = (Predictor(b, card, size_multiple=card.size_multiple) for b in backends)
        p_torch, p_ort = _paired_ms(lambda pt=pt: pt.predict(image), lambda po=po: po.predict(image), repeat)
        p_views = _median_ms(lambda po=po: po.predict(image, tta=DIHEDRAL), repeat)  # a model trained turned
        print(f"| {name} | {params / 1e6:.2f} M | {t_torch:.1f} | {t_ort:.1f} | {t_torch / t_ort:.2f}× "
              f"| {p_torch:.1f} | {p_ort:.1f} | {p_views:.1f} | {report.max_abs:.2e} | {report.relative:.1e} "
              f"| {report.argmax_agreement:.4%} |")


def part_gpu(net: str, folder: Path, batch: int, precision: str, options: dict[str, Any]) -> None:
    import torch

    from segstudio.core.image_io import list_images, read_image
    from segstudio.inference.batch import BatchOptions, segment_folder
    from segstudio.inference.model_file import save_model
    from segstudio.inference.predictor import Predictor

    if not torch.cuda.is_available():
        print("\n## GPU: skipped (no CUDA device)")
        return
    if not folder.is_dir():
        print(f"\n## GPU: skipped ({folder} not found; set --images or SEGSTUDIO_DATA)")
        return
    from segstudio.nets import available

    if net not in available():
        print(f"\n## GPU: skipped ({net} is not in this branch)")
        return
    files = list_images(folder)
    model = _model(net, 11, options)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / f"{net}.safetensors", model, _card(model, net, 11))
        pred = Predictor.from_file(path, backend="torch", device="cuda", precision=precision)
        pred.backend.batch_size = batch
        print(f"\n## GPU: {torch.cuda.get_device_name()}, {net}, {len(files)} images from {folder}, "
              f"batch {batch}, {pred.backend.name}\n")
        rates = []
        for run in range(3):  # the first run pays cudnn's algorithm search
            out = Path(tmp) / f"out{run}"
            t0 = time.perf_counter()
            events = list(segment_folder([folder], out, pred, BatchOptions(batch_size=batch)))
            last = events[-1]
            dt = time.perf_counter() - t0
            assert last.written == len(files), last
            rates.append(len(files) / dt)
        images = [read_image(f).data for f in files]
        shapes = {im.shape for im in images}
        x = np.stack(images[:batch]) if len(shapes) == 1 else None

        def network_only() -> None:
            with pred.backend.session():
                for start in range(0, len(images), batch):
                    chunk = images[start:start + batch]
                    pred.predict_batch(chunk)
            torch.cuda.synchronize()

        t_net = _median_ms(network_only, 5, warmup=1) / 1000
        fwd_rate = float("nan")
        if x is not None:
            scale, shift = pred._normaliser(255.0)
            h, w = x.shape[1:3]
            m = pred.size_multiple
            with pred.backend.session():
                xt = pred.backend.pad(pred.backend.prepare(x, scale, shift), (-h) % m, (-w) % m)

            def forward_only() -> None:
                with pred.backend.session():
                    pred.backend.forward(xt)
                torch.cuda.synchronize()

            fwd_rate = batch / (_median_ms(forward_only, 20) / 1000)
        print("| measure | images/s |")
        print("|---|---:|")
        print(f"| end to end (decode, network, encode, write), best of {len(rates)} | {max(rates):.0f} |")
        print(f"| predictor on decoded images (upload, network, arg-max, download) | {len(images) / t_net:.0f} |")
        print(f"| network forward only, batch {batch} | {fwd_rate:.0f} |")


def part_io(folder: Path, workers: int) -> None:
    import concurrent.futures as cf

    from segstudio.core.image_io import encode_mask_png, list_images, read_image

    if not folder.is_dir():
        print(f"\n## I/O: skipped ({folder} not found)")
        return
    files = list_images(folder)
    labels = np.random.default_rng(0).integers(0, 11, (360, 480)).astype(np.uint8)

    def decode_all(pool: cf.Executor | None) -> None:
        if pool is None:
            for f in files:
                read_image(f)
        else:
            list(pool.map(read_image, files))

    def encode_all(pool: cf.Executor | None) -> None:
        if pool is None:
            for _ in files:
                encode_mask_png(labels)
        else:
            list(pool.map(lambda _: encode_mask_png(labels), files))

    print(f"\n## I/O without the network: {len(files)} images from {folder}, {os.cpu_count()} CPUs\n")
    print("| step | 1 thread images/s | " + f"{workers} threads images/s |")
    print("|---|---:|---:|")
    with cf.ThreadPoolExecutor(workers) as pool:
        for name, fn in (("decode (read_image)", decode_all), ("encode index PNG", encode_all)):
            one = len(files) / (_median_ms(lambda fn=fn: fn(None), 3, 1) / 1000)
            many = len(files) / (_median_ms(lambda fn=fn: fn(pool), 3, 1) / 1000)
            print(f"| {name} | {one:.0f} | {many:.0f} |")


def _big_image(path: Path, side: int) -> None:
    import cv2

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (side // 64, side // 64, 3), np.uint8)
    image = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_LINEAR)
    image = cv2.add(image, rng.integers(0, 16, (side, side, 3), np.uint8))
    cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])


def part_big(net: str, side: int, tile: int, threads: int, options: dict[str, Any]) -> None:
    from segstudio.core.image_io import read_mask
    from segstudio.inference.export import export_verified
    from segstudio.zoo import CARD_KEY

    model = _model(net, 11, options)
    card = _card(model, net, 11)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / f"{net}.onnx"
        export_verified(model, 3, card.size_multiple, metadata={CARD_KEY: card.to_json()}, path=onnx)
        big = Path(tmp) / "big.png"
        _big_image(big, side)
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "segstudio", "segment", str(big), "-o", str(Path(tmp) / "out"),
               "--model", str(onnx), "--backend", "onnx", "--tile-size", str(tile)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if res.returncode != 0:
            print(res.stderr)
            raise SystemExit("the big-image run failed")
        labels = read_mask(Path(tmp) / "out" / "big.png")
        assert labels.shape == (side, side)
        print(f"\n## Big image: {side}×{side} RGB PNG, {net} {options or ''}, ONNX Runtime CPU, tile {tile}\n")
        print("| measure | value |")
        print("|---|---:|")
        print(f"| peak resident memory of `segstudio segment` | {peak_kb / 1024**2:.2f} GB |")
        print(f"| wall time (decode, {side * side / 1e6:.0f} Mpx through the network, encode) | {dt:.0f} s |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="fastscnn,unet", help="comma-separated network names")
    ap.add_argument("--parts", default="cpu,gpu,io,big")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--options", default="", help="network options where a network has them, e.g. base_width=16")
    ap.add_argument("--gpu-net", default="fastscnn")
    ap.add_argument("--images", type=Path, help="folder for the GPU part (default: CamVid val)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "fp32"))
    ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)),
                    help="threads for the io part (the batch engine's default per pool)")
    ap.add_argument("--big-net", default="unet")
    ap.add_argument("--big-options", default="base_width=16")
    ap.add_argument("--big-side", type=int, default=10000)
    ap.add_argument("--tile", type=int, default=512)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    nets_ = [n for n in args.nets.split(",") if n]
    if "cpu" in parts:
        part_cpu(nets_, args.size, args.threads, args.repeat, _options(args.options))
    if "gpu" in parts:
        data = Path(os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data"))
        part_gpu(args.gpu_net, args.images or data / "camvid" / "val", args.batch, args.precision,
                 _options(args.options))
    if "io" in parts:
        data = Path(os.environ.get("SEGSTUDIO_DATA", REPO.parent / "shared" / "data"))
        part_io(args.images or data / "camvid" / "val", args.workers)
    if "big" in parts:
        part_big(args.big_net, args.big_side, args.tile, args.threads, _options(args.big_options))


if __name__ == "__main__":
    main()
