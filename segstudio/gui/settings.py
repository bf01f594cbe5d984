"""Settings remembered between runs (QSettings), and where the app keeps its own files.

:class:`AppSettings` gives typed access to every remembered value, so a key is
spelled in one place. Tests point QSettings at a temporary folder (see
tests/gui/conftest.py) and the app's data folder at ``$SEGSTUDIO_HOME``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

# The shipped folders are found by segstudio.paths (checkout, installed wheel or frozen app).
from segstudio.paths import models_dir as models_dir
from segstudio.paths import resources_dir as resources_dir

MAX_RECENT = 10
BACKEND_KEYS = ("auto", "cuda", "cpu-onnx", "cpu-torch")


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

    def average_views(self) -> bool:
        """Segment with the 8 turned and mirrored views a model was trained with (``inference/tta.card_tta``)."""
        return _as_bool(self.q.value("model/average_views"), True)

    def set_average_views(self, on: bool) -> None:
        self.q.setValue("model/average_views", bool(on))

    def theme(self) -> str:
        value = str(self.q.value("view/theme", "system") or "system")
        return value if value in ("system", "light", "dark") else "system"

    def set_theme(self, value: str) -> None:
        self.q.setValue("view/theme", value)

    # --- models ---------------------------------------------------------------------
    # The model chosen for a project is kept here, keyed by the project folder, not in segstudio.json:
    # a model file's path belongs to this machine, and the project folder stays portable.
    @staticmethod
    def _path_key(path: Path | str) -> str:
        return hashlib.sha1(os.path.abspath(path).encode("utf-8")).hexdigest()[:20]

    def model_choice(self, project_root: Path | str) -> dict[str, Any] | None:
        """The model chosen for the project in ``project_root`` (as stored by the model panel), or None."""
        text = self.q.value(f"models/project-{self._path_key(project_root)}")
        try:
            value = json.loads(str(text)) if text else None
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def set_model_choice(self, project_root: Path | str, choice: dict[str, Any] | None) -> None:
        key = f"models/project-{self._path_key(project_root)}"
        if choice is None:
            self.q.remove(key)
        else:
            self.q.setValue(key, json.dumps(choice))

    def backend(self) -> str:
        """Where models run: one of :data:`BACKEND_KEYS` (a property of this machine, for every project)."""
        value = str(self.q.value("models/backend", "auto") or "auto")
        return value if value in BACKEND_KEYS else "auto"

    def set_backend(self, value: str) -> None:
        self.q.setValue("models/backend", value)

    def recent_models(self) -> list[str]:
        value = self.q.value("models/recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(v) for v in items if v][:MAX_RECENT]

    def add_recent_model(self, path: Path | str) -> None:
        p = str(Path(path))
        self.q.setValue("models/recent", [p, *(r for r in self.recent_models() if r != p)][:MAX_RECENT])

    def onnx_class_names(self, model_path: Path | str) -> list[str] | None:
        """The class names the user gave for an ONNX file without a card."""
        text = self.q.value(f"models/names-{self._path_key(model_path)}")
        try:
            names = json.loads(str(text)) if text else None
        except json.JSONDecodeError:
            return None
        return [str(n) for n in names] if isinstance(names, list) and names else None

    def set_onnx_class_names(self, model_path: Path | str, names: list[str]) -> None:
        self.q.setValue(f"models/names-{self._path_key(model_path)}", json.dumps(list(names)))

    def batch_options(self) -> dict[str, Any]:
        """The batch dialog's last folders and options."""
        text = self.q.value("batch/options")
        try:
            value = json.loads(str(text)) if text else {}
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def set_batch_options(self, options: dict[str, Any]) -> None:
        self.q.setValue("batch/options", json.dumps(options))

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
