"""Render resources/icons/segstudio.svg to the PNG sizes the app and the desktop entry use.

Run after editing the SVG: ``QT_QPA_PLATFORM=offscreen python packaging/render_icons.py``.
Writes resources/icons/segstudio-<size>.png for every size in segstudio.paths.ICON_SIZES.
Qt's own SVG renderer draws it (the same one the app would use), so no extra package is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

from segstudio.core.atomic import atomic_write_bytes  # noqa: E402
from segstudio.paths import ICON_SIZES  # noqa: E402


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    """The SVG drawn into a transparent ``size``×``size`` image, encoded as PNG."""
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"Qt could not encode the {size}px icon as PNG")
    return bytes(data.data())


def main() -> int:
    icons = REPO / "resources" / "icons"
    svg = icons / "segstudio.svg"
    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        print(f"render_icons: {svg} is not a valid SVG", file=sys.stderr)
        return 1
    for size in ICON_SIZES:
        out = icons / f"segstudio-{size}.png"
        atomic_write_bytes(out, render_png(renderer, size))
        print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
