"""The command line finds shipped models by name, `segment` runs the shipped default without --model, its
progress is one real progress bar, and the install lines it prints are the README's."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from segstudio import cli, install_hints
from segstudio.cli.segment import _Reporter
from segstudio.cli.train import resolve_model
from segstudio.inference.batch import BatchEvent
from segstudio.paths import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    find_model,
    models_dir,
    resources_dir,
    shipped_models,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_shipped_models_are_found_by_name(tmp_path: Path) -> None:
    assert find_model(None) == models_dir() / f"{DEFAULT_MODEL}.onnx"
    assert find_model("camvid-linknet") == models_dir() / "camvid-linknet.onnx"
    assert find_model("camvid-linknet", prefer=(".safetensors",)) == models_dir() / "camvid-linknet.safetensors"
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"x")
    assert find_model(str(own)) == own  # a file is a file, whatever its name
    with pytest.raises(ModelNotFoundError, match="camvid-fastscnn, camvid-linknet"):
        find_model("camvid-nothing")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        find_model(str(tmp_path / "gone.onnx"))
    with pytest.raises(ModelNotFoundError, match="default model camvid-fastscnn is not installed"):
        find_model(None, folder=tmp_path / "empty")
    assert [p.stem for p in shipped_models()][:1] == [DEFAULT_MODEL]
    # train takes the same names (its .safetensors twin: the one PyTorch trains)
    assert resolve_model(DEFAULT_MODEL) == (models_dir() / f"{DEFAULT_MODEL}.safetensors", None)


def test_segment_names_an_unknown_model_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    assert cli.main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "camvid-nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shipped models: camvid-fastscnn, camvid-linknet" in err


def test_eval_takes_a_shipped_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from segstudio.core.image_io import write_mask

    sample = sorted((resources_dir() / "samples").glob("*.png"))[0]
    (tmp_path / "img").mkdir()
    shutil.copy(sample, tmp_path / "img" / sample.name)
    (tmp_path / "msk").mkdir()
    write_mask(tmp_path / "msk" / sample.name, np.full((360, 480), 3, np.uint8))  # "Road" everywhere
    code = cli.main(["eval", "camvid-fastscnn", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "msk"),
                     "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert '"Road"' in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_bar_on_a_terminal() -> None:
    stream = _Terminal()
    reporter = _Reporter(stream)
    for ev in (BatchEvent(0, 6, 0, 0, 0, 0.0, None), BatchEvent(0, 6, 0, 0, 0, 0.0, None),
               BatchEvent(3, 6, 2, 1, 0, 12.5, 0.2), BatchEvent(6, 6, 5, 1, 0, 12.5, 0.0, finished=True)):
        reporter.show(ev)
    text = stream.getvalue()
    frames = [f for f in text.replace("\n", "\r").split("\r") if f.strip()]
    assert all("|" in f for f in frames)  # every frame is the bar redrawn in place, never a new line of it
    assert text.count("\n") == 1 and text.endswith("\n")
    assert re.search(r"100%\|[#█]+\| 6/6 images, 12.5 images/s, ETA 0:00, 1 skipped", frames[-1])


def test_progress_in_a_log_file_is_a_line_per_change() -> None:
    stream = io.StringIO()
    reporter = _Reporter(stream)
    for ev in (BatchEvent(0, 6, 0, 0, 0, 0.0, None), BatchEvent(0, 6, 0, 0, 0, 0.0, None),
               BatchEvent(1, 6, 1, 0, 0, 3.0, 2.0), BatchEvent(6, 6, 6, 0, 0, 3.0, 0.0, finished=True)):
        reporter.show(ev)
    lines = stream.getvalue().splitlines()
    assert lines == ["0/6 images, - images/s, ETA ?", "6/6 images, 3.0 images/s, ETA 0:00"]


def test_the_install_lines_are_the_readmes() -> None:
    readme = README.read_text(encoding="utf-8")
    assert install_hints.TORCH_CPU in readme and install_hints.TORCH_CUDA in readme
    assert install_hints.TORCH_CPU in install_hints.torch_hint()
    assert install_hints.TORCH_CUDA in install_hints.torch_hint()
