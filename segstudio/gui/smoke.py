"""``segstudio --smoke``: start the app, open the sample images, segment one with a model, quit.

A check that an installation works end to end, above all a frozen app
(packaging/smoke_test.sh runs it): Qt comes up with a platform plugin, the
shipped resources are found, ONNX Runtime runs inside the GUI process (where
Qt's libraries are loaded too), and the prediction reaches the canvas and is
saved with the project. Each step prints one ``smoke: ...`` line on stdout;
the exit status is 0 when every step passed and 1 when one failed or the run
took longer than ``--smoke-timeout``.

The run never touches the user's settings or data: QSettings and
``$SEGSTUDIO_HOME`` (where the sample project is made) point into a temporary
folder that is removed afterwards.

GUI options (``segstudio --smoke [--smoke-model=FILE] [--smoke-screenshot=FILE] [--smoke-timeout=S]``):

- ``--smoke-model=FILE``: the model to segment with; by default the shipped
  ``models/camvid-fastscnn.onnx``. Without a model the segmentation step is
  reported as not run (and the run still passes: there is nothing to run).
- ``--smoke-screenshot=FILE``: save the window, with the prediction shown, as a PNG.
- ``--smoke-timeout=S``: give up (exit status 1) after S seconds; default 180.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSettings, QTimer, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.image_io import list_images
from segstudio.core.tasks import CancelToken
from segstudio.gui.main_window import MainWindow
from segstudio.paths import DEFAULT_MODEL, models_dir, resources_dir

SMOKE_FLAG = "--smoke"
DEFAULT_TIMEOUT_S = 180.0
POLL_MS = 50


class SmokeArgumentError(ValueError):
    """A malformed ``--smoke-*`` option."""


@dataclass
class SmokeOptions:
    """What ``--smoke`` was asked to do."""

    model: Path | None
    screenshot: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


def split_smoke_args(argv: Sequence[str]) -> tuple[SmokeOptions | None, list[str]]:
    """``(options, the other arguments)``; options is None unless ``--smoke`` is among ``argv``.

    Raises :class:`SmokeArgumentError` for a ``--smoke-*`` option without ``=VALUE``
    or with a bad value.
    """
    rest: list[str] = []
    values: dict[str, str] = {}
    smoke = False
    for arg in argv:
        if arg == SMOKE_FLAG:
            smoke = True
        elif arg.startswith(SMOKE_FLAG + "-"):
            key, eq, value = arg.partition("=")
            if key not in ("--smoke-model", "--smoke-screenshot", "--smoke-timeout") or not eq or not value:
                raise SmokeArgumentError(f"{arg!r}: expected --smoke-model=FILE, --smoke-screenshot=FILE "
                                         "or --smoke-timeout=SECONDS")
            values[key] = value
        else:
            rest.append(arg)
    if not smoke:
        if values:
            raise SmokeArgumentError(f"{', '.join(values)} only work together with {SMOKE_FLAG}")
        return None, rest
    default_model = models_dir() / f"{DEFAULT_MODEL}.onnx"
    model = Path(values["--smoke-model"]) if "--smoke-model" in values else (
        default_model if default_model.is_file() else None)
    try:
        timeout = float(values.get("--smoke-timeout", DEFAULT_TIMEOUT_S))
    except ValueError:
        raise SmokeArgumentError(f"--smoke-timeout={values['--smoke-timeout']}: not a number of seconds") from None
    if timeout <= 0:
        raise SmokeArgumentError("--smoke-timeout must be positive")
    shot = values.get("--smoke-screenshot")
    return SmokeOptions(model, Path(shot) if shot else None, timeout), rest


@contextlib.contextmanager
def isolated_user_state() -> Iterator[Path]:
    """For the run: QSettings, ``$SEGSTUDIO_HOME`` and the logs in a temporary folder, removed afterwards."""
    saved = {key: os.environ.get(key) for key in ("SEGSTUDIO_HOME", "SEGSTUDIO_LOG_DIR")}
    old_format = QSettings.defaultFormat()
    with tempfile.TemporaryDirectory(prefix="segstudio-smoke-") as tmp:
        root = Path(tmp)
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(root / "settings"))
        os.environ["SEGSTUDIO_HOME"] = str(root / "home")
        os.environ["SEGSTUDIO_LOG_DIR"] = str(root / "logs")
        try:
            yield root
        finally:
            QSettings.setDefaultFormat(old_format)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _segment(model: Path, image: Any, cancel: CancelToken) -> dict[str, Any]:
    # Runs in a worker thread, as the model panel's inference will.
    from segstudio.inference.predictor import Predictor

    t0 = time.perf_counter()
    predictor = Predictor.from_file(model)
    t1 = time.perf_counter()
    cancel.raise_if_cancelled()
    prediction = predictor.predict(image, cancel=cancel)
    t2 = time.perf_counter()
    return {"labels": prediction.labels, "backend": predictor.backend.name, "card": predictor.card,
            "load_s": t1 - t0, "predict_s": t2 - t1}


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """A step of the run: an exception in it fails the run (Qt would only print it and carry on)."""

    def step(self: SmokeRun, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception as exc:
            traceback.print_exc()
            self._fail(f"{type(exc).__name__} in step {self._step!r}: {exc}")

    return step


class SmokeRun(QObject):
    """Drives one smoke run through the window's own actions; :attr:`exit_code` is its verdict."""

    def __init__(self, window: MainWindow, options: SmokeOptions) -> None:
        super().__init__(window)
        self.window = window
        self.options = options
        self.exit_code = 1
        self.started = time.perf_counter()
        self._step = "start"
        self._finished = False
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._tick)
        self._deadline = QTimer(self)
        self._deadline.setSingleShot(True)
        self._deadline.timeout.connect(lambda: self._fail(f"timed out after {options.timeout_s:g} s "
                                                          f"in step {self._step!r}"))
        window.notifier.errorOccurred.connect(lambda title, text: self._fail(f"{title}: {text}"))

    def start(self) -> None:
        """Begin once the event loop runs (call before ``app.exec()``)."""
        QTimer.singleShot(0, self._begin)
        self._deadline.start(int(self.options.timeout_s * 1000))

    @staticmethod
    def say(text: str) -> None:
        print(f"smoke: {text}", flush=True)

    @_guarded
    def _begin(self) -> None:
        self.say(f"qt: platform {QGuiApplication.platformName()}, Qt {qVersion()}, PySide6 {pyside_version}, "
                 f"Python {sys.version.split()[0]}" + (", frozen" if getattr(sys, "frozen", False) else ""))
        samples = list_images(resources_dir() / "samples") if (resources_dir() / "samples").is_dir() else []
        self.say(f"resources: {resources_dir()} ({len(samples)} sample images)")
        if not samples:
            self._fail("no sample images in the resources folder")
            return
        shipped = sorted(p.name for p in models_dir().glob("*") if p.suffix in (".onnx", ".safetensors"))
        self.say(f"models: {models_dir()}: {', '.join(shipped) if shipped else 'none shipped'}")
        has_torch = importlib.util.find_spec("torch") is not None
        self.say("torch: " + ("installed" if has_torch else "not installed (training and CUDA unavailable)"))
        size = self.window.size()
        title = self.window.windowTitle().replace("[*]", "")
        self.say(f"window: {title!r} shown at {size.width()}×{size.height()}")
        self._step = "open samples"
        self.window.open_samples()
        self._poll.start()

    @_guarded
    def _tick(self) -> None:
        c = self.window.controller
        if self._step == "open samples":
            if c.current is None or self.window.workers.running("load image"):
                return
            project = c.project
            assert project is not None
            doc = c.current
            self.say(f"samples: project {project.root} with {len(project.images)} images; showing "
                     f"{doc.path} ({doc.shape[1]}×{doc.shape[0]})")
            if self.options.model is None:
                self.say(f"segment: not run (no model given and no {DEFAULT_MODEL}.onnx shipped)")
                self._finish()
                return
            self._step = "segment"
            model, image = self.options.model, doc.image
            self.window.workers.start("smoke segment", lambda cancel: _segment(model, image, cancel),
                                      on_finished=self._segmented, on_failed=lambda msg: self._fail(
                                          f"segmenting with {model} failed: {msg}"))
        elif self._step == "save prediction" and not self.window.workers.running("save prediction"):
            self._poll.stop()
            # One more turn of the event loop so that the canvas has painted the prediction.
            QTimer.singleShot(POLL_MS, self._finish)

    @_guarded
    def _segmented(self, result: dict[str, Any]) -> None:
        c = self.window.controller
        doc, project = c.current, c.project
        assert doc is not None and project is not None
        labels: np.ndarray = result["labels"]
        card = result["card"]
        counts = np.bincount(labels.ravel().astype(np.int64), minlength=card.num_classes)
        top = [f"{card.classes.names[i]} {100 * counts[i] / labels.size:.0f}%"
               for i in np.argsort(counts)[::-1][:4] if counts[i]]
        self.say(f"segment: {self.options.model} ({card.arch}, {card.num_classes} classes) on {result['backend']}: "
                 f"{labels.shape[1]}×{labels.shape[0]} in {result['predict_s']:.2f} s "
                 f"(model opened in {result['load_s']:.2f} s); classes: {', '.join(top)}")
        if card.num_classes > len(project.classes):
            self._fail(f"the model has {card.num_classes} classes, the sample project {len(project.classes)}: "
                       "cannot show its prediction")
            return
        if card.classes.names != project.classes.names[:card.num_classes]:
            self.say(f"note: the model's classes ({', '.join(card.classes.names)}) are not the samples' "
                     "CamVid classes; its prediction is shown with the CamVid colours of the same indices")
        self._step = "save prediction"
        c.set_prediction(doc.path, labels)
        self.say("prediction: shown on the canvas; saving it with the project")

    @_guarded
    def _finish(self) -> None:
        if self._finished:
            return
        if self.options.screenshot is not None:
            self._save_screenshot(self.options.screenshot)
        self.exit_code = 0
        self.say(f"passed in {time.perf_counter() - self.started:.1f} s")
        self._close()

    def _save_screenshot(self, path: Path) -> None:
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not self.window.grab().save(buffer, "PNG"):
            self.say("screenshot: Qt could not encode the window as PNG")
            return
        atomic_write_bytes(path, bytes(data.data()))
        self.say(f"screenshot: {path}")

    def _fail(self, reason: str) -> None:
        if self._finished:
            return
        self.say(f"FAILED: {reason}")
        self.exit_code = 1
        self._close()

    def _close(self) -> None:
        self._finished = True
        self._poll.stop()
        self._deadline.stop()
        self.window.close()  # saves, joins the workers
        app = QApplication.instance()
        if app is not None:
            app.exit(self.exit_code)
