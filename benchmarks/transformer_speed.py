"""Speed and FLOPs of SegFormer / SegNeXt, ours against the reference formulation of the same weights.

    PYTHONPATH=. python benchmarks/transformer_speed.py segformer_b0 segnext_t --size 512 1024
    PYTHONPATH=. python benchmarks/transformer_speed.py segformer_b0 --device cuda --dtype fp16 \\
        --channels-last --size 1024 2048

For each network it times ``ours`` and, with the same module and weights, the
formulation of the released code: ``concat head`` (SegFormer: Linear per stage,
resize, concat [c4, c3, c2, c1], 4E→E 1×1 conv at 1/4; SegNeXt: resize to 1/8,
concat, squeeze), ``explicit attention`` (q·kᵀ·scale, softmax, ·v, the
attention matrix materialised; SegFormer only) and both together
(``reference``). The outputs are checked to agree first. GFLOPs are counted
with ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs) with attention
in its matmul form so every row counts it alike. Batch 1, eval, no grad;
median of ``--repeat`` timed runs after ``--warmup`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from segstudio import nets
from segstudio.nets import segformer, segnext


def _segformer_concat_head(head: segformer.AllMLPHead, feats: list[Tensor]) -> Tensor:
    size = feats[0].shape[1:3]
    maps = [F.interpolate(lin(f).permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
            for lin, f in zip(head.linear_c, feats)]
    x = head.linear_fuse(torch.cat(maps[::-1], dim=1))
    return head.classifier(head.dropout(F.relu(head.bn(x))))


def _segnext_concat_head(head: segnext.LightHamHead, feats: list[Tensor]) -> Tensor:
    size = feats[0].shape[-2:]
    x = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats], dim=1)
    x = head.squeeze(x)
    x = F.relu(x + head.ham_out(head.nmf(F.relu(head.ham_in(x)))))
    return head.classifier(head.dropout(head.align(x)))


def _explicit_attention(attn: segformer.EfficientSelfAttention, x: Tensor) -> Tensor:
    q = attn.q(x).flatten(1, 2).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
    if attn.sr is not None and attn.norm is not None:
        kv_in = attn.norm(attn.sr(x.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2))
    else:
        kv_in = x.flatten(1, 2)
    k, v = attn.kv(kv_in).unflatten(-1, (2, attn.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
    weights = torch.softmax((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5, dim=-1)
    return attn.proj((weights @ v).transpose(1, 2).flatten(2)).view_as(x)


@contextmanager
def _patched(model: nn.Module, concat_head: bool, explicit_attention: bool) -> Iterator[None]:
    """Swap in the reference formulations by instance attributes (removed on exit)."""
    swapped: list[nn.Module] = []

    def bind(module: nn.Module, fn: Callable[..., Tensor]) -> None:
        module.forward = (lambda *a, _m=module: fn(_m, *a))  # type: ignore[method-assign]
        swapped.append(module)

    try:
        for m in model.modules():
            if concat_head and isinstance(m, segformer.AllMLPHead):
                bind(m, _segformer_concat_head)
            elif concat_head and isinstance(m, segnext.LightHamHead):
                bind(m, _segnext_concat_head)
            elif explicit_attention and isinstance(m, segformer.EfficientSelfAttention):
                bind(m, _explicit_attention)
        yield
    finally:
        for m in swapped:
            del m.forward


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], Tensor], device: str, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="+")
    parser.add_argument("--size", nargs=2, type=int, default=[512, 1024], metavar=("H", "W"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    rows = []
    for name in args.nets:
        torch.manual_seed(0)
        model = nets.create(name, num_classes=19).eval().to(args.device, memory_format=fmt)
        x = torch.randn(1, 3, *args.size, device=args.device).to(memory_format=fmt)
        variants = [("ours", False, False), ("concat head", True, False)]
        if name.startswith("segformer"):
            variants += [("explicit attention", False, True), ("reference", True, True)]
        base: Tensor | None = None
        for label, concat, explicit in variants:
            with ExitStack() as stack:
                stack.enter_context(torch.inference_mode())
                stack.enter_context(_patched(model, concat, explicit))
                if args.dtype == "fp16":
                    stack.enter_context(torch.autocast(args.device, dtype=torch.float16))

                def run() -> Tensor:
                    return model(x)  # noqa: B023  (used within this iteration only)

                out = run().float()
                if base is None:
                    base = out
                diff = float((out - base).abs().max())
                with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                    run()
                seconds = _time(run, args.device, args.warmup, args.repeat)
            rows.append((name, label, counter.get_total_flops() / 1e9, seconds * 1e3, 1 / seconds, diff))
    size = f"{args.size[0]}x{args.size[1]}"
    print(f"device={args.device} dtype={args.dtype} channels_last={args.channels_last} size={size} batch=1 "
          f"threads={args.threads} torch={torch.__version__}")
    print(f"{'net':14s} {'variant':20s} {'GFLOPs':>9s} {'ms':>9s} {'FPS':>8s} {'max|Δ| vs ours':>15s}")
    for name, label, gflops, ms, fps, diff in rows:
        print(f"{name:14s} {label:20s} {gflops:9.1f} {ms:9.1f} {fps:8.2f} {diff:15.2e}")


if __name__ == "__main__":
    main()
