"""What the frozen app holds: read by packaging/segstudio.spec and checked by tests/test_packaging.py.

Kept apart from the spec so that the test can check it without PyInstaller:
every path named here is relative to the repository root. Standard library only.
"""

from __future__ import annotations

from pathlib import Path

APP_NAME = "segstudio"
"""The frozen folder's name and its executable's."""

ENTRY_SCRIPT = "packaging/launcher.py"

DATA_FOLDERS = ("resources",)
"""Copied whole into the bundle, at the same relative path (segstudio.paths looks for them there)."""

MODELS_FOLDER = "models"
MODEL_SUFFIXES = (".onnx",)
"""The frozen app has no torch: it runs ONNX files only, so the PyTorch weights stay out (about 51 MB).
Hidden files and the ONNX export cache are not bundled either."""

DESKTOP_FILE = "packaging/segstudio.desktop"
INSTALL_SCRIPT = "packaging/install-desktop-entry.sh"
"""Copied beside the executable by build.sh: installs the desktop entry and icons for the current user."""

QT_MODULES = ("QtCore", "QtGui", "QtWidgets")
"""The Qt modules the app imports; PyInstaller's hooks collect these and what they link to."""

METADATA_OF = ("onnx", "onnxruntime", "numpy", "pillow", "tifffile", "safetensors", "opencv-python-headless")
"""Distributions whose metadata is bundled, so that ``importlib.metadata.version()`` answers in the app."""

EXCLUDED_MODULES = (
    # The frozen app is the CPU/ONNX build: no torch and nothing that exists to serve it.
    "torch", "torchvision", "torchaudio", "triton", "functorch", "onnxscript", "onnx_ir", "tensorboard",
    # Nor Ray: `segment --ray` is for a Python install with the cluster extra (docs/SCALE.md).
    "ray",
    # Optional imports of the bundled libraries that the app never reaches.
    "onnx.backend", "onnx.reference", "tkinter", "_tkinter", "matplotlib", "scipy", "pandas", "IPython",
    "sympy", "networkx", "jinja2", "pytest", "setuptools", "pkg_resources", "PIL.ImageTk", "PIL.ImageQt",
    # Qt modules the app does not use (some libraries probe for them).
    "PySide6.QtNetwork", "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtQml", "PySide6.QtQuick",
    "PySide6.QtSql", "PySide6.QtDBus", "PySide6.QtDesigner", "PySide6.QtTest", "PySide6.QtXml",
    "PySide6.QtConcurrent", "PySide6.QtPrintSupport", "PySide6.QtUiTools", "PySide6.QtHelp",
)

TRIMMED_DATA_PREFIXES = (
    # Qt's own translations (some 10 MB): the app's text is English, so Qt's dialogs stay English too.
    "PySide6/Qt/translations/",
)
"""Bundle paths dropped from PyInstaller's collected data after analysis."""

TRIMMED_QT_PLUGINS = (
    # The GTK 3 platform theme: it pulls in some 8 MB of GTK-stack libraries (cairo, pango, glib's gio…)
    # without GTK itself, so it could only work with the system's GTK, mixing two copies of glib. The app
    # draws its own Fusion style and palette (gui/theme.py), so the theme plugin changes nothing but the
    # file dialogs, which stay Qt's own (or the desktop portal's, through the kept xdgdesktopportal theme).
    "platformthemes/libqgtk3.so",
    # Platforms for embedded devices without a window system, and a VNC server (which needs QtNetwork and
    # Kerberos): a desktop app runs on xcb or wayland, and offscreen/minimal for tests and smoke runs.
    "platforms/libqeglfs.so", "platforms/libqlinuxfb.so", "platforms/libqminimalegl.so",
    "platforms/libqvkkhrdisplay.so", "platforms/libqvnc.so", "egldeviceintegrations",
    # TUIO touch input arrives over the network (QtNetwork too).
    "generic/libqtuiotouchplugin.so",
)
"""Qt plugins (relative to Qt's plugins folder) left out by packaging/pyinstaller_hooks/hook-PySide6.QtGui.py."""


def model_files(repo: Path) -> list[Path]:
    """The model files the bundle gets: ``models/*.onnx``, sorted."""
    folder = repo / MODELS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith("."))


def named_files() -> list[str]:
    """Every file or folder this manifest names (for the consistency test)."""
    return [ENTRY_SCRIPT, *DATA_FOLDERS, DESKTOP_FILE, INSTALL_SCRIPT]
