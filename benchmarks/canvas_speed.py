"""Canvas speed: brush-stroke latency, time to open and show a big image, memory per open image, panning.

Everything runs through the real window (offscreen Qt): a project with one
4096×4096 image and a label is opened with the controller, and mouse events
go to the canvas viewport.

* stroke latency — one mouse-move event of a brush drag, from the event to the
  mask changed and the dirty region of the overlay repainted (the event is
  sent, then the posted repaint is processed); p50 / p95 / max per event;
* open + show — from ``open_entry`` to the image and overlay painted (decode,
  pyramid, label in the worker, then the first paint);
* memory — what an open document holds (pixels, pyramid, masks, undo) and the
  process's resident-memory growth when it opens;
* pan (``--huge``) — a 12000×9000 image: open time and the time per 64-pixel
  scroll step at fit and at 1:1;
* strokes while training (``--while-training``) — the same stroke latency while
  the Fine-tune panel's continuous run trains the small-data U-Net in its
  process (one thread, as the app runs it) on the image's label.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. python benchmarks/canvas_speed.py [--huge] [--while-training]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
import psutil


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth colour fields plus fine noise (compresses like a real photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 256), max(2, w // 256), 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def synthetic_label(h: int, w: int, classes: int = 11, seed: int = 1) -> np.ndarray:
    """Smooth regions of ``classes`` classes with a band not labelled, as corrections look."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, classes, (max(2, h // 512), max(2, w // 512)), dtype=np.uint8)
    label = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    label[h // 3: h // 3 + h // 20] = 255
    return label


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def make_project(root: Path, h: int, w: int, with_label: bool = True, suffix: str = ".png") -> str:
    """A project with one synthetic image (PNG, or JPEG quality 90 for ".jpg"); returns the image's name."""
    from segstudio.core.classes import ClassTable
    from segstudio.core.project import Project

    root.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if suffix == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 90]
    ok, buf = cv2.imencode(suffix, synthetic_image(h, w)[..., ::-1], params)
    assert ok
    name = f"big{suffix}"
    (root / name).write_bytes(buf.tobytes())
    project = Project.create(root, classes=ClassTable.camvid())
    if with_label:
        project.save_label(name, synthetic_label(h, w))
        project.save()
    return name


def wait(app: Any, until: Callable[[], bool], timeout: float = 300.0) -> None:
    end = time.perf_counter() + timeout
    while not until():
        app.processEvents()
        if time.perf_counter() > end:
            raise TimeoutError("the window did not get there in time")
        time.sleep(0.001)


class PaintCounter:
    """Counts paints of a canvas layer, to check that an event really repainted."""

    def __init__(self, layer: Any) -> None:
        self.count = 0
        self.layer = layer
        original = type(layer).paint

        def paint(*args: Any) -> None:
            self.count += 1
            original(layer, *args)

        layer.paint = paint

    def remove(self) -> None:
        del self.layer.paint


def open_and_show(app: Any, window: Any, folder: Path) -> float:
    """Seconds from opening the project to its first image and overlay painted."""
    window.controller.close_project()
    app.processEvents()
    counter = PaintCounter(window.canvas.image_layer)
    t0 = time.perf_counter()
    window.controller.open_path(folder)
    wait(app, lambda: window.controller.current is not None)
    wait(app, lambda: counter.count > 0)
    seconds = time.perf_counter() - t0
    counter.remove()
    return seconds


def stroke_latency(app: Any, window: Any, zoom: str, events: int, radius: float) -> tuple[list[float], float]:
    """Milliseconds per mouse-move event of one long brush drag, and of its release (the undo step is
    committed then); the stroke is undone afterwards."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    canvas = window.canvas
    h, w = window.controller.current.shape
    if zoom == "fit":
        canvas.fit_to_window()
    else:
        canvas.set_zoom(1.0)
        canvas.centerOn(w / 2, h / 2)
    app.processEvents()
    window.tools.set_tool("brush")
    window.tools.set_radius(radius)
    window.tools.set_class(3)
    vp = canvas.viewport()
    rect = vp.rect()
    # a zig-zag across the middle of the view, a few screen pixels per event like a real hand
    cx, cy = rect.width() / 2, rect.height() / 2
    span = min(rect.width(), rect.height()) * 0.35
    pts = [QPointF(cx - span + (i * 7.0) % (2 * span), cy - span / 2 + (i * 3.0) % span) for i in range(events + 1)]

    def send(kind: QEvent.Type, p: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        app.sendEvent(vp, QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier))

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    counter = PaintCounter(canvas.label_layer)
    send(QEvent.Type.MouseButtonPress, pts[0], left, left)
    app.processEvents()
    times: list[float] = []
    for p in pts[1:]:
        t0 = time.perf_counter()
        send(QEvent.Type.MouseMove, p, none, left)
        app.processEvents()  # the repaint of the dirty region, as the event loop does next
        times.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    send(QEvent.Type.MouseButtonRelease, pts[-1], left, none)
    app.processEvents()
    release = (time.perf_counter() - t0) * 1000
    counter.remove()
    if counter.count < events // 2:
        raise RuntimeError(f"only {counter.count} repaints for {events} events: the measurement missed the paint")
    window.controller.undo()
    app.processEvents()
    return times, release


def pan_times(app: Any, window: Any, zoom: str, steps: int) -> list[float]:
    """Milliseconds per 64-pixel scroll step, from the scroll to the view repainted."""
    canvas = window.canvas
    if zoom == "fit":
        canvas.fit_to_window()
        canvas.set_zoom(canvas.zoom() * 1.5)  # at fit everything shows; zoom in a little so there is room to pan
    else:
        canvas.set_zoom(1.0)
    app.processEvents()
    bar = canvas.horizontalScrollBar()
    bar.setValue(bar.minimum())
    canvas.viewport().repaint()
    times = []
    step = 64
    for _ in range(steps):
        if not bar.minimum() <= bar.value() + step <= bar.maximum():
            step = -step
        t0 = time.perf_counter()
        bar.setValue(bar.value() + step)
        app.processEvents()  # the view scrolls its pixels and repaints the strip that came in
        times.append((time.perf_counter() - t0) * 1000)
    return times


def zoom_times(app: Any, window: Any, steps: int) -> list[float]:
    """Milliseconds per wheel-notch zoom step around 1.5× fit (the whole view repaints)."""
    canvas = window.canvas
    canvas.fit_to_window()
    base = canvas.zoom() * 1.5
    canvas.set_zoom(base)
    app.processEvents()
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        canvas.zoom_in() if i % 2 == 0 else canvas.zoom_out()
        app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def strokes_while_training(app: Any, window: Any, events: int, radius: float) -> list[tuple[str, str, str, str]]:
    """Stroke latency while the window's continuous training run trains (the small-data U-Net, from scratch)."""
    from segstudio.workspace.model_choice import ModelChoice

    training = window.training
    training.set_target(ModelChoice.preset_network("small-data"))
    wait(app, lambda: training.defaults is not None)
    settings = window.training_panel.settings()
    settings.mode = "continuous"
    if not training.start(settings):
        raise RuntimeError("the continuous run did not start")
    wait(app, lambda: training.last_event is not None and training.last_event.kind == "step")
    rows = []
    for zoom in ("fit", "1:1"):
        t, _ = stroke_latency(app, window, zoom, events, radius)
        rows.append((f"brush stroke, zoom {zoom}, while a continuous training run trains: per mouse event "
                     "p50 / p95 / max", summary(t), "", "ms"))
    steps = training.last_event.step if training.last_event is not None else 0
    training.shutdown()
    rows.append(("training steps the run made meanwhile (it kept training)", str(steps), "", "steps"))
    return rows


def summary(t: list[float]) -> str:
    return f"{percentile(t, 50):.1f} / {percentile(t, 95):.1f} / {max(t):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--events", type=int, default=300, help="mouse-move events per stroke")
    parser.add_argument("--radius", type=float, default=40.0)
    parser.add_argument("--repeats", type=int, default=3, help="opens of the image")
    parser.add_argument("--huge", action="store_true", help="also open and pan a 12000×9000 image")
    parser.add_argument("--while-training", action="store_true",
                        help="also measure strokes while a continuous fine-tuning run trains")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    from segstudio.gui.main_window import MainWindow

    QCoreApplication.setOrganizationName("segstudio-bench")
    QCoreApplication.setApplicationName("segstudio-bench")
    tmp = Path(tempfile.mkdtemp(prefix="canvas_speed_"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "ini"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.controller.saver.autosave.setInterval(3_600_000)  # saving is not part of these timings
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    proc = psutil.Process()
    n = args.size
    make_project(tmp / "p", n, n)
    open_and_show(app, window, tmp / "p")  # warm-up: imports, first allocations
    vp = window.canvas.viewport()
    print(f"# canvas_speed: {n}×{n} image, viewport {vp.width()}×{vp.height()}, brush radius {args.radius:g}, "
          f"{args.events} events per stroke")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, numpy {np.__version__}")

    rows: list[tuple[str, str, str, str]] = []
    opens, growth = [], []
    for _ in range(args.repeats):
        window.controller.close_project()
        app.processEvents()
        before = proc.memory_info().rss
        opens.append(open_and_show(app, window, tmp / "p"))
        growth.append(proc.memory_info().rss - before)
    rows.append((f"open the project and show its {n}² image with label (decode, pyramid, first paint)",
                 f"{statistics.median(opens) * 1000:.0f}", f"{min(opens) * 1000:.0f}", "ms"))
    releases: list[float] = []
    for with_prediction in (False, True):
        if with_prediction:
            window.controller.set_prediction("big.png", synthetic_label(n, n, seed=5))
            window.workers.join("save prediction")
            app.processEvents()
        for zoom in ("fit", "1:1"):
            t, release = stroke_latency(app, window, zoom, args.events, args.radius)
            extra = ", prediction layer shown" if with_prediction else ""
            rows.append((f"brush stroke, zoom {zoom}{extra}: per mouse event p50 / p95 / max", summary(t), "", "ms"))
            releases.append(release)
    rows.append((f"end of a {args.events}-event stroke (one undo step committed, compressed)",
                 f"{statistics.median(releases):.1f}", f"{min(releases):.1f}", "ms"))
    doc = window.controller.current
    rows.append(("memory held by the open document (pixels + pyramid, label, prediction, undo)",
                 f"{doc.memory_bytes() / 2**20:.0f}", "", "MiB"))
    rows.append(("process memory growth when it opens (RSS, median)", f"{statistics.median(growth) / 2**20:.0f}",
                 "", "MiB"))

    if args.while_training:
        rows.extend(strokes_while_training(app, window, args.events, args.radius))

    if args.huge:
        # a photo that size is a JPEG (a PNG of this synthetic, noisy image is 176 MB and its decode alone
        # takes 5 s; decoding is image_io's, not the canvas's)
        make_project(tmp / "huge", 9000, 12000, with_label=False, suffix=".jpg")
        t_open = open_and_show(app, window, tmp / "huge")
        rows.append(("open and show a 12000×9000 JPEG (no label: an empty one is made)", f"{t_open * 1000:.0f}", "",
                     "ms"))
        for zoom in ("fit", "1:1"):
            t = pan_times(app, window, zoom, 120)
            label = "1.5× fit" if zoom == "fit" else "1:1"
            rows.append((f"pan 12000×9000 by 64 px, zoom {label}: per step p50 / p95 / max", summary(t), "", "ms"))
        t = zoom_times(app, window, 60)
        rows.append(("zoom 12000×9000 by one wheel notch near 1.5× fit (full repaint): p50 / p95 / max", summary(t),
                     "", "ms"))
        t, _ = stroke_latency(app, window, "fit", args.events, args.radius)
        rows.append(("brush stroke on 12000×9000, zoom fit: per event p50 / p95 / max", summary(t), "", "ms"))
        mib = window.controller.current.memory_bytes() / 2**20
        rows.append(("memory held by the 12000×9000 document", f"{mib:.0f}", "", "MiB"))

    window.close()
    print()
    print("| measurement | median, or p50 / p95 / max | best | unit |")
    print("| --- | ---: | ---: | --- |")
    for what, a, b, unit in rows:
        print(f"| {what} | {a} | {b} | {unit} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
