"""Model files: the card round trip, reading cards without torch, clear errors, foreign checkpoints."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segstudio import nets
from segstudio.cli import main as cli_main
from segstudio.core.classes import ClassTable
from segstudio.inference.checkpoint import CheckpointError, import_checkpoint, read_checkpoint
from segstudio.inference.model_file import (
    ModelFileError,
    describe_model_file,
    load_card,
    load_model,
    model_format,
    save_model,
)
from segstudio.zoo import CARD_KEY, ModelCard, Normalization
from tests.inference.conftest import card_for

REPO = Path(__file__).resolve().parents[2]


def _small(num_classes: int = 3, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return nets.create("unet", num_classes=num_classes, base_width=4, **options).eval()


def test_card_and_weights_round_trip(tmp_path: Path) -> None:
    model = _small()
    card = card_for(model, name="cells", description="test", train_resolution=(256, 320), input_max=4095.0,
                    normalization=Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
                    metrics=[{"name": "mIoU", "value": 0.71, "data": "val (12 images)", "per_class": {"a": 0.5}}],
                    history=[{"event": "trained", "when": "2025-01-01T00:00:00+00:00", "data": "x"}])
    path = save_model(tmp_path / "m.safetensors", model, card)
    assert model_format(path) == "safetensors"
    again = load_card(path)
    assert again.to_json() == card.to_json()
    loaded, loaded_card = load_model(path)
    assert loaded_card.to_json() == card.to_json()
    assert not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    facts = describe_model_file(path)
    assert facts["arch"] == "unet" and facts["classes"] == ["background", "red", "blue"]
    assert facts["mIoU"] == {"value": 0.71, "data": "val (12 images)"}


def test_save_refuses_a_card_that_does_not_describe_the_module(tmp_path: Path) -> None:
    model = _small()
    with pytest.raises(ValueError, match="arch"):
        save_model(tmp_path / "m.safetensors", model, ModelCard(arch="other", classes=ClassTable.from_names("ab")))
    with pytest.raises(ValueError, match="options"):
        save_model(tmp_path / "m.safetensors", model,
                   ModelCard(arch="unet", classes=ClassTable.from_names("abc"), options={"base_width": 64}))
    with pytest.raises(ValueError, match="safetensors"):
        save_model(tmp_path / "m.pt", model, card_for(model))
    assert not list(tmp_path.iterdir())


def test_card_is_read_without_torch(random_model_file: Path) -> None:
    code = ("import sys\n"
            "sys.modules['torch'] = None\n"
            "from segstudio.inference.model_file import load_card, describe_model_file\n"
            f"card = load_card({str(random_model_file)!r})\n"
            "print(card.arch, card.num_classes, describe_model_file("
            f"{str(random_model_file)!r})['in_channels'])\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["unet", "3", "3"]


def test_bad_files_give_clear_errors(tmp_path: Path, random_model_file: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_card(empty)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a model at all")
    with pytest.raises(ModelFileError, match="not a model file"):
        load_card(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_card(tmp_path / "missing.safetensors")
    # A bare state dict in safetensors (no card) points to import-checkpoint.
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(ModelFileError, match="import-checkpoint"):
        load_card(bare)
    # Truncated weights: the header is intact, the data is not.
    data = random_model_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    assert load_card(cut).arch == "unet"
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(cut)
    # A card whose JSON is broken.
    header = json.dumps({"__metadata__": {CARD_KEY: "{not json"}}).encode()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_card(broken)


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path: Path) -> None:
    model = _small(num_classes=3)
    path = save_model(tmp_path / "m.safetensors", model, card_for(model))
    # Same file, but a card claiming 4 classes: the head is mis-shaped.
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    lying = card_for(model, classes=["a", "b", "c", "d"])
    save_file(state, str(tmp_path / "lying.safetensors"), metadata={CARD_KEY: lying.to_json()})
    with pytest.raises(ModelFileError, match="mis-shaped"):
        load_model(tmp_path / "lying.safetensors")


def _foreign_checkpoint(tmp_path: Path) -> Path:
    """Another project's checkpoint: wrapped in DataParallel ('module.'), nested under 'state_dict',
    with 5 classes instead of 3 and an extra tensor."""
    other = _small(num_classes=5)
    state = {f"module.{k}": v for k, v in other.state_dict().items()}
    state["module.extra_head.weight"] = torch.zeros(4, 4)
    path = tmp_path / "foreign.pth"
    torch.save({"epoch": 12, "state_dict": state, "best_miou": 0.5}, path)
    return path


def test_foreign_checkpoint_report(tmp_path: Path) -> None:
    ckpt = _foreign_checkpoint(tmp_path)
    model, card, report = import_checkpoint(ckpt, "unet", ["a", "b", "c"], options={"base_width": 4})
    assert report.nested_key == "state_dict" and report.stripped_prefix == "module."
    assert report.unexpected == ["extra_head.weight"]
    assert {k for k, _, _ in report.mismatched} == {"head.weight", "head.bias"}
    assert ("head.weight", (5, 4, 1, 1), (3, 4, 1, 1)) in report.mismatched
    assert report.missing == [] and not report.ok
    assert len(report.loaded) == len(model.state_dict()) - 2
    other = _small(num_classes=5)
    assert torch.equal(model.state_dict()["inc.0.0.weight"], other.state_dict()["inc.0.0.weight"])
    assert card.history[-1]["event"] == "imported" and card.history[-1]["mismatched"] == 2
    text = report.describe()
    assert "extra_head.weight" in text and "head.weight: [5, 4, 1, 1] vs [3, 4, 1, 1]" in text
    with pytest.raises(CheckpointError, match="--strict"):
        import_checkpoint(ckpt, "unet", ["a", "b", "c"], options={"base_width": 4}, strict=True)


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "config": Path("/x")}, path)  # a Path is pickled as a class, not a tensor
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(path)


def test_checkpoint_matching_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unrelated.pth"
    torch.save({"encoder.layer1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError, match="none of its 1 tensors fits unet"):
        import_checkpoint(path, "unet", ["a", "b"], options={"base_width": 4})


def test_import_checkpoint_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _foreign_checkpoint(tmp_path)
    out = tmp_path / "imported.safetensors"
    rc = cli_main(["import-checkpoint", str(ckpt), "--arch", "unet", "--classes", "a,b,c",
                   "--option", "base_width=4", "-o", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "mis-shaped" in err and "extra_head.weight" in err
    card = load_card(out)
    assert card.classes.names == ["a", "b", "c"] and card.options["base_width"] == 4
    assert load_model(out)[1].history[-1]["event"] == "imported"
    assert cli_main(["import-checkpoint", str(ckpt), "--arch", "nosuchnet", "--classes", "a",
                     "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "available networks" in capsys.readouterr().err


def test_models_command_lists_model_files(tmp_path: Path, random_model_file: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.safetensors").write_bytes(random_model_file.read_bytes())
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert cli_main(["models", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "m.safetensors" in out and "unet, 3 classes (background, red, blue)" in out
    assert "junk.onnx: unreadable" in out
    assert cli_main(["models", "--files", "--json", "--dir", str(tmp_path)]) == 0
    files = json.loads(capsys.readouterr().out)
    mine = [f for f in files if Path(f["file"]).parent == tmp_path]
    assert [Path(f["file"]).name for f in mine] == ["junk.onnx", "m.safetensors"]
    assert mine[1]["classes"] == ["background", "red", "blue"]
