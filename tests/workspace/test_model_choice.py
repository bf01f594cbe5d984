"""The Qt-free model logic: class fitting by name, runtimes and backends, stored choices, uncertainty scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.classes import ClassTable
from segstudio.core.project import Project
from segstudio.workspace.model_choice import (
    ModelChoice,
    Runtimes,
    adopted,
    fit_classes,
    load_choice,
    with_missing_added,
)
from segstudio.workspace.uncertainty import (
    UncertaintyScores,
    mean_score,
    next_in_ranking,
    save_uncertainty,
    to_uint8,
    uncertainty_path,
)
from tests.gui.conftest import write_image


def table(*names: str) -> ClassTable:
    return ClassTable.from_names(list(names))


def test_classes_fit_by_name_whatever_their_order_and_case() -> None:
    fit = fit_classes(table("sky", "Road", "car"), table("road ", "Car", "Sky", "tree"))
    assert fit.lut is not None and list(fit.lut[:3]) == [2, 0, 1] and fit.lut[3] == 255
    assert fit.missing == [] and fit.unused == ["tree"] and not fit.identical and not fit.leading
    same = fit_classes(table("a", "b"), table("A", "b"))
    assert same.identical and same.leading and "are the project's" in same.describe()
    lead = fit_classes(table("a", "b"), table("a", "b", "c"))
    assert lead.leading and not lead.identical and "never predicts the project's c" in lead.describe()
    miss = fit_classes(table("a", "x", "y"), table("a", "b"))
    assert miss.lut is None and miss.missing == ["x", "y"] and "lacks 2" in miss.describe()


def test_a_fit_crossing_254_classes_maps_into_16_bit_masks() -> None:
    project = ClassTable.from_names([f"c{i}" for i in range(300)])
    fit = fit_classes(table("c299", "c0"), project)
    assert fit.lut is not None and fit.lut.dtype == np.uint16 and fit.lut.size == 256
    assert list(fit.lut[:2]) == [299, 0] and fit.lut[2] == 65535


def test_adding_or_adopting_the_model_classes_loses_no_label() -> None:
    project = ClassTable.from_names(["background", "foreground"], [(0, 0, 0), (1, 2, 3)])
    model = ClassTable.from_names(["Foreground", "red", "background"], [(9, 9, 9), (200, 0, 0), (5, 5, 5)])
    added = with_missing_added(project, model)
    assert added.names == ["background", "foreground", "red"] and added[2].colour == (200, 0, 0)
    new, lut = adopted(project, model)
    assert new.names == ["Foreground", "red", "background"] and new.colours[1] == (200, 0, 0)
    assert list(lut) == [2, 0]  # background → 2, foreground → 0: every old class has a place
    extra, lut2 = adopted(table("a", "mine"), table("a", "b"))
    assert extra.names == ["a", "b", "mine"] and list(lut2) == [0, 2]


def test_backend_problems_say_why() -> None:
    cpu_only = Runtimes("2.3.0", None, "1.17.0")
    assert cpu_only.problem("auto") is None and cpu_only.problem("cpu-onnx") is None
    assert "no CUDA GPU" in cpu_only.problem("cuda")
    assert "ONNX Runtime" in cpu_only.problem("cpu-torch", "onnx")
    assert cpu_only.problem("cpu-torch", "safetensors") is None
    no_torch = Runtimes(None, None, "1.17.0")
    assert "PyTorch is not installed" in no_torch.problem("cpu-torch")
    assert "PyTorch is not installed" in no_torch.problem("cuda")
    assert "checking" in Runtimes("installed", None, "1.17.0", checked_cuda=False).problem("cuda")
    assert "neither" in Runtimes(None, None, None).problem("auto")
    assert Runtimes("2.3.0", "RTX 4090", None).problem("cuda") is None


def test_stored_choices_round_trip_and_junk_is_ignored() -> None:
    for choice in (ModelChoice.file("/m/a.onnx"), ModelChoice.untrained("fastscnn")):
        assert ModelChoice.from_json(json.loads(json.dumps(choice.to_json()))) == choice
    for junk in (None, 3, {"kind": "file"}, {"kind": "network", "network": ""}, {"kind": "other", "path": "x"}):
        assert ModelChoice.from_json(junk) is None


def test_an_untrained_network_cannot_be_loaded_as_a_model() -> None:
    with pytest.raises(ValueError, match="untrained network"):
        load_choice(ModelChoice.untrained("unet"), "auto")


def test_uncertainty_maps_scores_and_ranking(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / f"img{i}.png", 8, 10, seed=i)
    project = Project.open(tmp_path)
    scores = UncertaintyScores(tmp_path)
    for i, value in enumerate([0.2, 0.7, 0.5, 0.9]):
        path = f"img{i}.png"
        values = np.full((8, 10), value, np.float32)
        save_uncertainty(project, path, values)
        scores.set(path, mean_score(values), "m:1")
    project.save_label("img3.png", np.zeros((8, 10), np.uint8))  # labelled: never offered
    assert scores.ranking(project) == ["img1.png", "img2.png", "img0.png"]
    scores.save()
    assert uncertainty_path(project, "img1.png") == tmp_path / "uncertainty" / "img1.png"
    # the scores file is a summary of the maps: a score lost in a crash is recomputed from its map
    doc = json.loads((tmp_path / "uncertainty" / "scores.json").read_text())
    del doc["images"]["img2.png"]
    (tmp_path / "uncertainty" / "scores.json").write_text(json.dumps(doc))
    again = UncertaintyScores.load(project)
    assert again.get("img2.png") == pytest.approx(0.5, abs=1 / 255)
    assert again.model_of("img1.png") == "m:1" and again.model_of("img2.png") == ""
    (tmp_path / "uncertainty" / "scores.json").write_text("{broken")
    assert UncertaintyScores.load(project).ranking(project) == ["img1.png", "img2.png", "img0.png"]


def test_walking_the_ranking() -> None:
    ranking = ["c", "a", "b"]
    assert next_in_ranking(ranking, None, walking=False) == "c"
    assert next_in_ranking(ranking, "a", walking=False) == "c"  # from elsewhere: the top
    assert next_in_ranking(ranking, "c", walking=False) == "a"  # the top is on screen: the next one
    assert next_in_ranking(ranking, "a", walking=True) == "b"
    assert next_in_ranking(ranking, "b", walking=True) is None
    assert next_in_ranking([], "a", walking=True) is None


def test_uncertainty_as_stored() -> None:
    assert list(to_uint8(np.array([0.0, 0.5, 1.0, np.nan], np.float16))) == [0, 128, 255, 255]
    u8 = np.array([0, 255], np.uint8)
    assert to_uint8(u8) is u8 and mean_score(u8) == pytest.approx(0.5)
