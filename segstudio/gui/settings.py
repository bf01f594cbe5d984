"""Settings remembered between runs (QSettings), and where the app keeps its own files.

:class:`AppSettings` gives typed access to every remembered value, so a key is
spelled in one place. Tests point QSettings at a temporary folder (see
tests/gui/conftest.py) and the app's data folder at ``$SEGSTUDIO_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

# The shipped folders are found by segstudio.paths (checkout, installed wheel or frozen app).
from segstudio.paths import models_dir as models_dir
from segstudio.paths import resources_dir as resources_dir

MAX_RECENT = 10


def app_data_dir() -> Path:
    """Where segstudio keeps its own files (the sample project): ``$SEGSTUDIO_HOME`` or the OS's app-data folder."""
    env = os.environ.get("SEGSTUDIO_HOME")
    if env:
        return Path(env)
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))


def _as_bool(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):  # INI files store booleans as text
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _as_float(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


class AppSettings:
    """Typed access to the remembered settings."""

    def __init__(self) -> None:
        self.q = QSettings()

    # --- recent projects ------------------------------------------------------------
    def recent(self) -> list[str]:
        value = self.q.value("files/recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(v) for v in items if v][:MAX_RECENT]

    def add_recent(self, path: Path | str) -> list[str]:
        p = str(Path(path))
        items = [p, *(r for r in self.recent() if r != p)][:MAX_RECENT]
        self.q.setValue("files/recent", items)
        return items

    def remove_recent(self, path: str) -> None:
        self.q.setValue("files/recent", [r for r in self.recent() if r != path])

    def last_dir(self) -> str:
        return str(self.q.value("files/last_dir", "") or "")

    def set_last_dir(self, path: Path | str) -> None:
        self.q.setValue("files/last_dir", str(path))

    # --- view and tools -------------------------------------------------------------
    def brush_radius(self) -> float:
        return _as_float(self.q.value("tools/brush_radius"), 8.0)

    def set_brush_radius(self, r: float) -> None:
        self.q.setValue("tools/brush_radius", float(r))

    def opacity(self) -> float:
        return _as_float(self.q.value("view/opacity"), 0.55)

    def set_opacity(self, value: float) -> None:
        self.q.setValue("view/opacity", float(value))

    def outline(self) -> bool:
        return _as_bool(self.q.value("view/outline"), False)

    def set_outline(self, on: bool) -> None:
        self.q.setValue("view/outline", bool(on))

    def theme(self) -> str:
        value = str(self.q.value("view/theme", "system") or "system")
        return value if value in ("system", "light", "dark") else "system"

    def set_theme(self, value: str) -> None:
        self.q.setValue("view/theme", value)

    # --- window ---------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self.q.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def sync(self) -> None:
        self.q.sync()
