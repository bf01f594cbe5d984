"""Where a run starts and with which recipe, the guard's verdicts, and the versions registry (Qt-free)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segstudio import cli
from segstudio.training.config import STROKES_SCALE_RANGE, small_data_recipe
from segstudio.workspace.guard import judge
from segstudio.workspace.model_choice import ModelChoice
from segstudio.workspace.startpoint import RunSettings, run_config, start_point
from segstudio.workspace.versions import ModelVersion, VersionRegistry, versions_dir
from tests.training.test_engine import base_model


def test_start_points(tmp_path: Path) -> None:
    model = base_model(tmp_path / "m" / "cells.safetensors")
    assert start_point(None).blocked is not None
    sp = start_point(ModelChoice.file(model))
    assert sp.kind == "finetune" and sp.init == str(model) and sp.arch == "unet"
    # an ONNX export beside its .safetensors twin trains the twin; alone it cannot train
    onnx = tmp_path / "m" / "cells.onnx"
    assert cli.main(["export-onnx", str(model), "-o", str(onnx)]) == 0
    sp = start_point(ModelChoice.file(onnx))
    assert sp.kind == "finetune" and sp.init == str(model) and "twin of cells.onnx" in sp.text
    alone = tmp_path / "alone" / "cells.onnx"
    alone.parent.mkdir()
    alone.write_bytes(onnx.read_bytes())
    sp = start_point(ModelChoice.file(alone))
    assert sp.kind == "none" and "twin" in (sp.blocked or "")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    assert start_point(ModelChoice.file(junk)).kind == "none"
    # networks from scratch, the small-data preset explicitly
    sp = start_point(ModelChoice.untrained("fastscnn"))
    assert (sp.kind, sp.arch, sp.preset) == ("scratch", "fastscnn", "")
    sp = start_point(ModelChoice.preset_network("small-data"))
    assert (sp.kind, sp.arch, sp.options, sp.preset) == ("scratch", "unet", {"base_width": 8}, "small-data")
    assert start_point(ModelChoice.untrained("no-such-net")).kind == "none"


def test_each_start_point_gets_its_recipe(tmp_path: Path) -> None:
    model = base_model(tmp_path / "m" / "cells.safetensors")
    ft = run_config(start_point(ModelChoice.file(model)), RunSettings(), tmp_path / "run", tmp_path / "versions")
    assert ft.init_model == str(model) and ft.lr == 2e-3 and ft.max_seconds == 180 and ft.frozen_batchnorm()
    assert ft.validates_start() and ft.model_dir == str(tmp_path / "versions") and not ft.augment.rot90
    assert ft.cpu_bf16 and ft.channels_last  # bf16 autocast where the CPU has it natively
    from segstudio.training.config import finetune_lr

    assert finetune_lr("segformer_b0") == 5e-4 and finetune_lr("fastscnn") == 2e-3 and finetune_lr(None) == 2e-3
    small = run_config(start_point(ModelChoice.preset_network("small-data")), RunSettings(), tmp_path)
    assert (small.arch, small.options, small.lr, small.max_seconds) == ("unet", {"base_width": 8}, 5e-3, 600)
    assert not small.frozen_batchnorm() and not small.validates_start()
    # a project's brush strokes are seen zoomed out; dense masks (a folder, the command line) are not
    assert small.augment.scale_range == STROKES_SCALE_RANGE != small_data_recipe().augment.scale_range
    seg = run_config(start_point(ModelChoice.untrained("segformer_b0")), RunSettings(seconds=30), tmp_path)
    assert seg.arch == "segformer_b0" and seg.lr == 5e-4 and seg.max_seconds == 30
    cont = run_config(start_point(ModelChoice.file(model)), RunSettings(mode="continuous", lr=3e-4), tmp_path)
    assert cont.continuous and cont.max_seconds is None and cont.steps is None
    assert cont.lr == pytest.approx(3e-4 * 0.55)  # constant at the cosine schedule's mean (it decays to a tenth)
    cont_small = run_config(start_point(ModelChoice.preset_network("small-data")), RunSettings(mode="continuous"),
                            tmp_path)
    assert cont_small.lr == pytest.approx(2.5e-3)  # 5e-3 decaying to 0: its mean
    assert cont.val_every_s == 15.0 and cont.early_stopping_patience is None
    # continuous runs judge and publish the moving average of the weights; a bounded run its weights as they are
    assert cont.ema_decay == cont_small.ema_decay == 0.998 and ft.ema_decay is None and small.ema_decay is None
    assert cont.keep_start == 5.0 and small.keep_start == 0.0  # a trained start is kept where nothing is labelled
    # from scratch, a continuous run keeps its last published version there instead; a bounded run has none
    assert cont_small.keep_published == 2.0 and cont.keep_published == 0.0 and small.keep_published == 0.0
    with pytest.raises(ValueError):
        run_config(start_point(None), RunSettings(), tmp_path)


def test_the_guard() -> None:
    assert judge(None, 0.4, 0, had_model=False).activate  # nothing active: nothing to be worse than
    v = judge(0.6, 0.7, 0, had_model=True)
    assert not v.activate and "no held-out correction" in v.reason
    v = judge(0.6, 0.6, 1, had_model=True)
    assert v.activate and "rough" in v.reason  # at least as good, on a single held-out image
    v = judge(0.6, 0.55, 4, had_model=True)
    assert not v.activate and "worse" in v.reason and "4 held-out" in v.reason
    assert not judge(None, 0.7, 3, had_model=True).activate  # the active model could not be scored


def test_versions_registry(tmp_path: Path) -> None:
    reg = VersionRegistry.load(tmp_path)
    assert reg.versions == [] and reg.files() == []
    folder = versions_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "cells.v2.safetensors").write_bytes(b"x")
    reg.add(ModelVersion("cells.v2.safetensors", "cells.safetensors", "2026-12-03T10:00:00+00:00", round=1,
                         held_out_before=0.5, held_out_after=0.6, held_out_images=2, status="candidate"))
    reg.save()
    again = VersionRegistry.load(tmp_path)
    v = again.find(folder / "cells.v2.safetensors")
    assert v is not None and "round 1" in v.describe() and "0.500 → 0.600" in v.describe()
    assert "(candidate)" in v.describe()
    assert again.find(tmp_path / "elsewhere" / "cells.v2.safetensors") is None
    again.mark(folder / "cells.v2.safetensors", "accepted", "by the user")
    again.save()
    assert VersionRegistry.load(tmp_path).versions[0].status == "accepted"
    # a damaged file is ignored, never half-read
    again.file.write_text("{broken")
    assert VersionRegistry.load(tmp_path).versions == []
