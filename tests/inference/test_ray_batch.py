"""``segment --ray``: a local Ray with 2 CPUs gives the local command's outputs, errors and resume; a killed
worker loses nothing; a worker that cannot open the model stops the run with one clear message.

The Ray tests skip when Ray is not installed, except in CI (``CI=true``), where the cluster extra is installed
and a missing Ray is a failure. They run on 20 CamVid val images with the shipped Fast-SCNN (its ONNX file, so
nothing is written beside the model).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from segstudio.cli import main as cli_main
from segstudio.core.image_io import list_images
from segstudio.inference.batch import BatchEvent, BatchOptions, segment_folder
from segstudio.inference.predictor import Predictor
from segstudio.inference.ray_batch import ModelSource, RayOptions, RayRunError, connect, segment_on_ray
from tests.conftest import REPO

MODEL = REPO / "models" / "camvid-fastscnn.onnx"
IMAGES = 20


def _need_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        msg = "Ray is not installed (pip install -e '.[cluster]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + ": CI installs the cluster extra")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray with 2 CPUs for the module (starting one costs seconds)."""
    _need_ray()
    import ray

    started = connect(RayOptions(num_cpus=2))
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def images(camvid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 CamVid val images and a corrupt PNG."""
    folder = tmp_path_factory.mktemp("ray-src")
    for path in list_images(camvid_dir / "val")[:IMAGES]:
        shutil.copy(path, folder / path.name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return folder


OPTIONS = BatchOptions(overlay=True, masks_per_class=True)


@pytest.fixture(scope="module")
def local_run(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BatchEvent]:
    """The local command's outputs and last event, to compare the Ray runs with."""
    out = tmp_path_factory.mktemp("local-out")
    last = list(segment_folder([images], out, Predictor.from_file(MODEL, threads=2), OPTIONS))[-1]
    assert last.written == IMAGES and last.failed == 1
    return out, last


def _same_files(a: Path, b: Path) -> None:
    """The outputs in ``a`` and ``b`` are the same files, byte for byte (hidden files aside)."""
    def listed(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    names = listed(a)
    assert names == listed(b)
    assert len(names) == IMAGES * (2 + 11) + 1  # index map, overlay, 11 class masks; the legend
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.data
def test_ray_gives_the_local_outputs_errors_and_resume(ray_cluster: None, images: Path, tmp_path: Path,
                                                       local_run: tuple[Path, BatchEvent]) -> None:
    local_out, local_last = local_run
    out = tmp_path / "ray-out"
    notes: list[str] = []
    events = list(segment_on_ray([images], out, ModelSource(str(MODEL)), OPTIONS, RayOptions(actors=2),
                                 note=notes.append))
    last = events[-1]
    assert notes == ["2 CPU actors on a Ray cluster of 2 CPUs and 0 GPUs"]
    assert last.finished and (last.total, last.written, last.failed, last.skipped) == (IMAGES + 1, IMAGES, 1, 0)
    assert [str(e) for e in last.errors] == [str(e) for e in local_last.errors]  # the corrupt file, same words
    assert [e.done for e in events] == sorted(e.done for e in events) and last.images_per_s > 0
    _same_files(out, local_out)
    # The resume rule: everything done is skipped, the corrupt file is tried (and reported) again.
    again = list(segment_on_ray([images], out, ModelSource(str(MODEL)), OPTIONS, RayOptions(actors=2)))[-1]
    assert (again.written, again.skipped, again.failed) == (0, IMAGES, 1)


@pytest.mark.data
def test_segment_cli_on_ray_reports_like_the_local_command(ray_cluster: None, images: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    def failed_lines(err: str) -> list[str]:
        return err[err.index("failed:"):].splitlines()

    few = tmp_path / "few"
    few.mkdir()
    for path in [*sorted(images.glob("0*.png"))[:3], images / "corrupt.png"]:
        shutil.copy(path, few / path.name)
    base = ["segment", str(few), "--model", str(MODEL)]
    assert cli_main([*base, "-o", str(tmp_path / "here")]) == 1
    here = capsys.readouterr().err
    assert cli_main([*base, "-o", str(tmp_path / "there"), "--ray", "--actors", "1"]) == 1
    there = capsys.readouterr().err
    assert "running on a local Ray" in there and "1 CPU actor on a Ray cluster" in there
    assert "written 3, skipped 0 (already done), failed 1" in there
    assert failed_lines(there) == failed_lines(here) and "corrupt.png" in failed_lines(there)[1]
    for mask in (tmp_path / "here" / "masks").iterdir():
        assert mask.read_bytes() == (tmp_path / "there" / "masks" / mask.name).read_bytes()


def _actor_processes() -> list[psutil.Process]:
    """This test's Ray actors that segment (children of this process's Ray)."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "SegmentActor" in " ".join(proc.info["cmdline"] or []) and me in (p.pid for p in proc.parents()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _index_maps(folder: Path) -> list[Path]:
    return list((folder / "masks").glob("*.png"))


@pytest.mark.data
def test_a_killed_worker_loses_no_result(ray_cluster: None, images: Path, tmp_path: Path,
                                         local_run: tuple[Path, BatchEvent]) -> None:
    out = tmp_path / "ray-out"
    seen_at_kill: list[int] = []

    def kill_one_worker() -> None:  # as soon as the first image is written, while both workers are busy
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _index_maps(out):
            time.sleep(0.01)
        actors = _actor_processes()
        seen_at_kill.append(len(_index_maps(out)))
        if actors:
            os.kill(actors[0].pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    try:
        last = list(segment_on_ray([images], out, ModelSource(str(MODEL)), OPTIONS, RayOptions(actors=2)))[-1]
    finally:
        killer.join()
    assert seen_at_kill and seen_at_kill[0] < IMAGES, "the worker was not killed while the run was going on"
    assert (last.written, last.failed) == (IMAGES, 1)
    _same_files(out, local_run[0])
    # A write cut short by the kill may leave its hidden temporary file, never a torn output.
    assert all(p.name.endswith(".tmp") for p in out.rglob(".*"))


@pytest.mark.data
def test_a_model_the_workers_cannot_open_is_one_clear_error(ray_cluster: None, images: Path,
                                                            tmp_path: Path) -> None:
    model = ModelSource(str(MODEL), device="cuda")  # an ONNX file runs on the CPU: every worker refuses it
    with pytest.raises(RayRunError, match=r"cannot open the model on this Ray worker: .*ONNX files run on the CPU"):
        list(segment_on_ray([images], tmp_path / "out", model, BatchOptions(), RayOptions(actors=1)))
    assert not any((tmp_path / "out").rglob("*.png"))


def test_ray_options_and_cli_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for good in ("auto", "local", "ray://head:10001", "10.0.0.5:6379", "head-node:6379"):
        RayOptions(address=good)
    for bad in ("images", "./out", "", "auto auto"):
        with pytest.raises(ValueError, match="not a Ray address"):
            RayOptions(address=bad)
    with pytest.raises(ValueError):
        RayOptions(actors=0)
    src = tmp_path / "src"
    src.mkdir()
    base = ["segment", str(src), str(tmp_path / "other"), "-o", str(tmp_path / "out"), "--model", str(MODEL)]
    assert cli_main([*base, "--actors", "2"]) == 2
    assert "--actors applies to a run on Ray" in capsys.readouterr().err
    assert cli_main(["segment", "--ray", str(src), str(tmp_path / "other"), "-o", str(tmp_path / "out"),
                     "--model", str(MODEL)]) == 2
    assert "put --ray after the inputs" in capsys.readouterr().err


def test_the_base_install_segments_without_torch_or_ray(tmp_path: Path) -> None:
    import subprocess

    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 50, 3), 90, np.uint8))
    code = ("import sys; sys.modules['torch'] = None; sys.modules['ray'] = None; "
            "from segstudio.cli import main; sys.exit(main(sys.argv[1:]))")
    base = [sys.executable, "-c", code, "segment", str(tmp_path / "a.png"), "--model", str(MODEL)]
    here = subprocess.run([*base, "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert here.returncode == 0, here.stderr
    assert (tmp_path / "out" / "masks" / "a.png").is_file()
    there = subprocess.run([*base, "-o", str(tmp_path / "out2"), "--ray"], capture_output=True, text=True,
                           timeout=120)
    assert there.returncode == 2 and "pip install 'segstudio[cluster]'" in there.stderr
    assert "Traceback" not in there.stderr
