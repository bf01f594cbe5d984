"""``segstudio import`` / ``segstudio export``: help a newcomer can follow, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from segstudio import cli
from segstudio.core.project import Project

REPO = Path(__file__).resolve().parents[2]

# pycocotools passes copy=False to numpy 2 through an old __array__; harmless, and not ours to fix.
PYCOCOTOOLS_NUMPY2 = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
pytestmark = PYCOCOTOOLS_NUMPY2


def _isbi_like(tmp_path: Path, n: int = 3) -> tuple[Path, Path, dict[str, np.ndarray]]:
    images, labels = tmp_path / "image", tmp_path / "label"
    images.mkdir()
    labels.mkdir()
    cells = {}
    for i in range(n):
        picture = np.random.default_rng(i).integers(0, 256, (32, 48), dtype=np.uint8)
        Image.fromarray(picture).save(images / f"{i:02d}.png")
        cell = np.ones((32, 48), np.uint8)
        cell[:, (i + 3)::9] = 0
        cell[(i + 2)::11, :] = 0
        cv2.imwrite(str(labels / f"{i:02d}.png"), cell * 255)
        cells[f"{i:02d}.png"] = cell
    return images, labels, cells


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", ["import", "export"])
def test_help_explains_formats_with_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0
    for fmt in ("index", "voc", "binary", "coco", "labelme", "yolo"):
        assert f"  {fmt} " in out
    assert "examples:" in out and f"segstudio {command} " in out
    code, out, _ = _run(capsys, "--help")
    assert "import" in out and "export" in out


def test_isbi_style_import_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels, cells = _isbi_like(tmp_path)
    code, out, err = _run(capsys, "import", "binary", str(labels), str(images), "--classes", "membrane,cell",
                          "--map", "0=membrane,255=cell")
    assert code == 0, err
    assert "imported 3 labels" in out and "membrane, cell" in out
    project = Project.open(images)
    for rel, cell in cells.items():
        np.testing.assert_array_equal(project.load_label(rel), cell)
        assert project.entry(rel).status == "corrected"
    # Importing again does not overwrite the labels …
    code, out, _ = _run(capsys, "import", "binary", str(labels), str(images), "--map", "0=membrane,255=cell")
    assert code == 0 and "skipped 3" in out
    # … and the labels go out as COCO that pycocotools reads.
    code, out, err = _run(capsys, "export", "coco", str(images), str(tmp_path / "isbi.json"))
    assert code == 0, err
    coco = COCO(str(tmp_path / "isbi.json"))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 6
    code, _, err = _run(capsys, "export", "yolo", str(images), str(tmp_path / "yolo"), "--exclude", "cell")
    assert code == 0, err
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "membrane\n"


def test_usage_errors_are_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels, _ = _isbi_like(tmp_path)
    code, _, err = _run(capsys, "import", "binary", str(labels), str(images))
    assert code == 2 and "value map" in err and "Traceback" not in err
    code, _, err = _run(capsys, "import", "binary", str(labels), str(images), "--map", "0=nucleus")
    assert code == 2 and "no class named 'nucleus'" in err
    code, _, err = _run(capsys, "import", "index", str(tmp_path / "nowhere"), str(images))
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, "import", "tiff", str(labels), str(images))
    assert code == 2 and "invalid choice" in err
    code, _, err = _run(capsys, "export", "coco", str(tmp_path / "label"), str(tmp_path / "o.json"))
    assert code == 2 and "not a project" in err
    code, _, err = _run(capsys, "export", "index", str(images), str(tmp_path / "o"), "--exclude", "cat")
    assert code == 2 and "no class named 'cat'" in err


def test_classes_cannot_be_replaced_once_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels, _ = _isbi_like(tmp_path)
    assert _run(capsys, "import", "binary", str(labels), str(images), "--classes", "membrane,cell",
                "--map", "0=membrane,255=cell")[0] == 0
    code, _, err = _run(capsys, "import", "binary", str(labels), str(images), "--classes", "a,b",
                        "--map", "0=a,255=b")
    assert code == 2 and "already has labels" in err


def test_failures_and_empty_results_give_exit_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels, _ = _isbi_like(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "zz.png"), np.zeros((32, 48), np.uint8))
    code, out, err = _run(capsys, "import", "index", str(other), str(images))
    assert code == 1 and "match no image" in out and "nothing was imported" in err
    (labels / "01.png").write_bytes(b"broken")
    code, out, _ = _run(capsys, "import", "binary", str(labels), str(images), "--map", "0=background,255=foreground")
    assert code == 1 and "imported 2 labels" in out and "1 failed" in out and "01.png" in out
    code, _, err = _run(capsys, "export", "index", str(tmp_path / "image"), str(tmp_path / "out"))
    assert code == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(fresh / "a.png")
    Project.open(fresh)
    code, _, err = _run(capsys, "export", "index", str(fresh), str(tmp_path / "out2"))
    assert code == 1 and "no image has a label" in err


def test_import_as_predictions_with_background(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, _, _ = _isbi_like(tmp_path, n=1)
    coco = {"images": [{"id": 1, "file_name": "00.png", "width": 48, "height": 32}],
            "categories": [{"id": 1, "name": "cell"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "segmentation": [[4.5, 4.5, 20.5, 4.5, 20.5, 12.5, 4.5, 12.5]]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    code, out, err = _run(capsys, "import", "coco", str(tmp_path / "c.json"), str(images), "--add-classes",
                          "--background", "background", "--as-predictions")
    assert code == 0, err
    assert "imported 1 predictions" in out and "added classes: cell" in out
    project = Project.open(images)
    pred = project.load_prediction("00.png")
    assert pred is not None and project.load_label("00.png") is None
    assert project.entry("00.png").status == "predicted"
    assert (pred[4:13, 4:21] == 2).all() and pred[0, 0] == 0 and pred[20, 30] == 0


def test_the_command_runs_as_a_program(tmp_path: Path) -> None:
    images, labels, _ = _isbi_like(tmp_path, n=2)
    res = subprocess.run([sys.executable, "-m", "segstudio", "import", "binary", str(labels), str(images),
                          "--map", "0=background,255=foreground"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "imported 2 labels" in res.stdout


def test_project_in_its_own_folder_with_copied_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels, cells = _isbi_like(tmp_path)
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    code, _, err = _run(capsys, "import", "binary", str(labels), str(tmp_path / "proj"), "--images", str(images),
                          "--map", "0=background,255=foreground")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before  # originals untouched, no project there
    project = Project.open(tmp_path / "proj")
    assert [e.path for e in project.images] == [f"images/{n}" for n in sorted(cells)]
    for name, cell in cells.items():
        np.testing.assert_array_equal(project.load_label(f"images/{name}"), cell)


def test_one_format_catalogue_read_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's choices and help come from core.formats.FORMATS, and every entry names a working module."""
    from segstudio.core.formats import FORMATS

    for command in ("import", "export"):
        code, out, _ = _run(capsys, command, "--help")
        assert code == 0
        for fmt in FORMATS.values():
            assert f"  {fmt.name:<8} {fmt.title}" in out
        code, _, err = _run(capsys, command, "no-such-format", "a", "b")
        assert code == 2 and all(name in err for name in FORMATS)
    for fmt in FORMATS.values():
        assert callable(fmt.import_project) and callable(fmt.export_project), fmt.name


def test_the_format_catalogue_imports_no_third_party_module() -> None:
    code = ("import sys; import segstudio.core.formats as f; f.get_format('coco'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'cv2', 'PIL', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "[]"
