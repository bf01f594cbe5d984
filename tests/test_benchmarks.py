"""The zoo benchmark scripts: generic over the registry, robust to a failing network, honest counts."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import torch

from benchmarks import nets_speed, nets_table, netstats
from segstudio import nets

torch.set_num_threads(2)


def test_parse_sizes() -> None:
    assert netstats.parse_sizes("1024x2048, 512X512") == [(1024, 2048), (512, 512)]
    for bad in ("1024", "ax2", "0x5", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            netstats.parse_sizes(bad)


def test_select_networks_checks_names() -> None:
    assert netstats.select_networks(None) == nets.available()
    assert netstats.select_networks("linknet,unet") == ["linknet", "unet"]
    assert "unet" not in netstats.select_networks(None, skip="unet")
    with pytest.raises(SystemExit, match="no-such-net"):
        netstats.select_networks("unet,no-such-net")


def test_meta_count_equals_a_real_run() -> None:
    model = netstats.build("linknet")
    meta = netstats.count_macs(model, (64, 96))
    with torch.inference_mode(), torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 64, 96))
    assert meta == counter.get_total_flops() // 2 > 0
    assert next(model.parameters()).device.type == "cpu"  # the caller's model is untouched


def test_table_keeps_going_when_a_network_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = nets.create

    def create(name: str, **kwargs: Any) -> torch.nn.Module:
        if name == "unet":
            raise RuntimeError("broken on purpose")
        return real_create(name, **kwargs)

    monkeypatch.setattr(netstats.nets, "create", create)
    monkeypatch.setattr(nets_table, "FLOP_SIZES", ((64, 64),))
    rows = [nets_table.measure(n, flops=True) for n in ("unet", "linknet")]
    assert rows[0].params is None and "broken on purpose" in rows[0].errors[0]
    assert rows[1].params == 11_535_635 and not rows[1].errors and rows[1].gmacs[(64, 64)] > 0
    text = nets_table.render(rows, flops=True, markdown=True)
    assert "broken on purpose" in text and "| linknet | 11,535,635 |" in text
    assert "-1.10%" in text  # relative difference to the reference count


def test_speed_cpu_part_runs() -> None:
    _, settings = nets_speed.parse_args(["--sizes", "64x64", "--cpu-size", "64x96", "--cpu-repeats", "1",
                                         "--cpu-warmup", "0", "--repeats", "1", "--warmup", "0"])
    result = nets_speed.measure("linknet", settings, log=lambda _msg: None)
    assert result["params"] == 11_535_635 and result["gmacs_1024x2048"] > 80
    cpu = result["cpu"]
    assert cpu["torch_ms"] > 0 and cpu["onnx_ms"] > 0 and cpu["onnx_max_abs_diff"] < 1e-3
    if not torch.cuda.is_available():
        assert result["gpu"] == {"error": nets_speed.NO_CUDA}
        text = nets_speed.render({"linknet": result}, settings, markdown=False)
        assert nets_speed.NO_CUDA in text


def test_speed_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        nets_speed.parse_args(["--precisions", "fp8"])
    with pytest.raises(SystemExit):
        nets_speed.parse_args(["--repeats", "0"])


def test_ship_model_cleans_the_card_and_exports_a_checked_onnx(tmp_path) -> None:
    import json

    from benchmarks import ship_model
    from segstudio.core.classes import ClassTable
    from segstudio.inference.model_file import load_card, save_model
    from segstudio.zoo import ModelCard

    model = nets.create("fastscnn", num_classes=3)
    card = ModelCard(arch="fastscnn", classes=ClassTable.from_names(["a", "b", "c"]),
                     options=dict(model.segstudio_options),
                     metrics=[{"name": "mIoU", "value": 0.5, "data": "validation: 9 images from /root/gpu/val"}],
                     history=[{"event": "trained", "data": "9 images from /root/gpu/train",
                               "validation": "9 images from /root/gpu/val"}],
                     recipe={"output_dir": "/root/runs/x", "init_model": None, "batch_size": 4})
    (tmp_path / "run").mkdir()
    src = save_model(tmp_path / "run" / "m.safetensors", model.eval(), card)
    tta = {"name": "mIoU (TTA)", "value": 0.55, "data": "val with TTA"}
    out = ship_model.main([str(src), "--name", "demo", "--description", "a demo", "--out", str(tmp_path / "models"),
                           "--train-data", "train set", "--val-data", "val set", "--metric", json.dumps(tta)])
    for path in (out, out.with_suffix(".onnx")):
        shipped = load_card(path)
        assert shipped.name == "demo" and shipped.description == "a demo"
        assert shipped.metric("mIoU") == 0.5 and shipped.metric("mIoU (TTA)") == 0.55
        assert shipped.metrics[0]["data"] == "val set" and shipped.history[0]["data"] == "train set"
        assert "/root/" not in shipped.to_json() and "output_dir" not in shipped.recipe


def test_scale_benchmarks_count_what_they_say() -> None:
    from benchmarks import scale_segment, scale_train

    # Training: images/s over the steps after the warm-up, from rank 0's (step, elapsed) reports.
    steps = [(1, 0.0), (2, 5.0), (5, 6.0), (9, 8.0)]
    assert scale_train.measure(steps, batch=8, warmup=5) == (9 - 5) * 8 / (8.0 - 6.0)
    with pytest.raises(ValueError, match="too few steps"):
        scale_train.measure(steps, batch=8, warmup=9)
    # Segmentation: the whole run's rate and the steady rate after the first image.
    timing = scale_segment.Timing(images=101, seconds=12.0, first_s=2.0)
    assert timing.rate == 101 / 12.0 and timing.steady_rate == 100 / 10.0
