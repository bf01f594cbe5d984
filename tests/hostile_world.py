"""The world a bad-input case runs in, what a case must give, and helpers to build runs (tests/hostile_cases.py).

A :class:`World` is a temporary folder: a project of three small images, a
valid model file, and a folder *outside* the project that must never change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassTable
from segstudio.core.project import LOCK_FILE, Project
from tests import hostile_files as hf

H, W = 48, 64
CLASSES = ["background", "foreground"]


def valid_model_bytes(folder: Path) -> bytes:
    """A valid, small segstudio model file (UNet, base width 4, the corpus's two classes)."""
    import torch

    from segstudio import nets
    from segstudio.inference.model_file import save_model
    from segstudio.zoo import ModelCard

    torch.manual_seed(0)
    model = nets.create("unet", num_classes=2, base_width=4).eval()
    card = ModelCard(arch="unet", classes=ClassTable.from_names(CLASSES), options={"base_width": 4})
    return save_model(folder / "valid.safetensors", model, card).read_bytes()


@dataclass
class World:
    """A project with images a.png, b.png, c.png (64×48), a model file, and an outside folder that must not change."""

    root: Path
    model_bytes: bytes
    holders: list[subprocess.Popen] = field(default_factory=list)

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @property
    def src(self) -> Path:
        return self.root / "incoming"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def model(self) -> Path:
        return self.root / "models" / "valid.safetensors"

    def build(self) -> None:
        self.project.mkdir(parents=True)
        for i, name in enumerate(("a.png", "b.png", "c.png")):
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(self.project / name)
        Project.create(self.project, classes=ClassTable.from_names(CLASSES)).close()
        self.outside.mkdir()
        (self.outside / "precious.txt").write_text("the user's file, outside the project")
        self.src.mkdir()
        self.model.parent.mkdir()
        self.model.write_bytes(self.model_bytes)

    def file(self, rel: str, data: bytes | str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
        return path

    def open_project(self) -> Project:
        return Project.open(self.project)

    def hold_lock(self) -> None:
        """Another process (not segstudio's code: a plain flock) holds the project's lock, as a window would."""
        script = ("import fcntl, json, os, socket, sys, time\n"
                  "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
                  "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                  "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), "
                  "'program': 'segstudio app', 'since': 'now'}).encode())\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(120)\n")
        proc = subprocess.Popen([sys.executable, "-c", script, str(self.project / LOCK_FILE)],
                                stdout=subprocess.PIPE, text=True)
        self.holders.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the world (links as their target text), except lock files and logs."""
        found: dict[str, bytes] = {}
        for dirpath, dirnames, names in os.walk(self.root):
            for name in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = Path(dirpath) / name
                rel = path.relative_to(self.root).as_posix()
                if name == LOCK_FILE:
                    continue
                if path.is_symlink():
                    found[rel] = b"-> " + os.readlink(path).encode()
                elif path.is_file():
                    found[rel] = path.read_bytes()
                else:
                    found[rel] = b"(special file)"
        return found


@dataclass
class Run:
    """What a case runs and what it must give.

    ``api`` raises ``error`` (message containing ``expect``), or — with
    ``error=None`` — returns a report whose errors contain ``expect``; with
    ``ok`` it must succeed. ``cli`` must exit with one of ``codes`` (0 with
    ``ok``) and print ``expect``. ``fault`` sets up an environmental fault
    (a full disk) around both. ``changes``: files allowed to change (only for
    ``ok`` cases, which import something).
    """

    cli: list[str]
    api: Callable[[], Any]
    error: type[BaseException] | None
    expect: str
    ok: bool = False
    codes: tuple[int, ...] = (1, 2)
    fault: Callable[[pytest.MonkeyPatch], None] | None = None
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    make: Callable[[World], Run]


CASES: list[Case] = []


def case(kind: str, name: str) -> Callable[[Callable[[World], Run]], Callable[[World], Run]]:
    def register(make: Callable[[World], Run]) -> Callable[[World], Run]:
        CASES.append(Case(name, kind, make))
        return make
    return register


# ------------------------------------------------------------------------------------------------ helpers


def import_run(w: World, fmt: str, source: Path, error: type[BaseException] | None, expect: str,
               options: dict[str, Any] | None = None, extra: tuple[str, ...] = (), **kw: Any) -> Run:
    from segstudio.core.formats import ImportOptions, get_format

    def api() -> Any:
        with w.open_project() as project:
            return get_format(fmt).import_project(project, source, ImportOptions(**(options or {})))

    return Run(["import", fmt, str(source), str(w.project), *extra], api, error, expect, **kw)


def export_run(w: World, error: type[BaseException] | None, expect: str, **kw: Any) -> Run:
    from segstudio.core.formats import ExportOptions, get_format

    def api() -> Any:
        project = Project.open(w.project, read_only=True)
        return get_format("index").export_project(project, w.out, ExportOptions())

    return Run(["export", "index", str(w.project), str(w.out)], api, error, expect, **kw)


def segment_run(w: World, inputs: list[Path], model: Path, error: type[BaseException] | None, expect: str,
                **kw: Any) -> Run:
    from segstudio.inference.batch import segment_folder
    from segstudio.inference.predictor import Predictor

    def api() -> Any:
        predictor = Predictor.from_file(model, backend="torch", device="cpu")
        return list(segment_folder(inputs, w.out, predictor))[-1]

    return Run(["segment", *map(str, inputs), "-o", str(w.out), "--model", str(model), "--backend", "torch",
                "--device", "cpu"], api, error, expect, **kw)


def model_run(w: World, data: bytes, expect: str, name: str = "hostile.safetensors") -> Run:
    """A hostile model file: refused by load_model (the API) and by `segment` (the CLI)."""
    from segstudio.inference.model_file import ModelFileError, load_model

    path = w.file(f"models/{name}", data)
    run = segment_run(w, [w.project / "a.png"], path, ModelFileError, expect, codes=(2,))
    run.api = lambda: load_model(path)
    return run


def coco_file(w: World, segmentation: Any, category_id: Any = 1, name: str = "a.png") -> Path:
    import json

    return w.file("incoming/coco.json", json.dumps(hf.coco_document(name, W, H, segmentation, category_id)))


def labelme_file(w: World, shapes: list[dict[str, Any]]) -> Path:
    import json

    w.file("incoming/labelme/a.json", json.dumps(hf.labelme_document("a.png", W, H, shapes)))
    return w.src / "labelme"


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def no_space(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
