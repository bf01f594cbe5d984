"""The packaging files agree with each other and with the code (PyInstaller itself is not run here).

Checked: pyproject's entry points, extras and data-files; the frozen-app manifest and spec name files
that exist and keep torch out; the desktop entry is valid; the icon exists at every size.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree

import pytest
from PIL import Image

from segstudio.paths import DEFAULT_MODEL, ICON_SIZES

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _manifest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("freeze_manifest", PACKAGING / "freeze_manifest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve(entry: str) -> object:
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


# --------------------------------------------------------------------------- pyproject
def test_entry_points_resolve() -> None:
    project = PYPROJECT["project"]
    assert project["gui-scripts"] == {"segstudio": "segstudio.__main__:main"}
    assert project["scripts"] == {"segstudio-cli": "segstudio.cli:main"}
    for entry in (*project["gui-scripts"].values(), *project["scripts"].values()):
        assert callable(_resolve(entry))


def test_base_install_has_no_torch_and_extras_add_it() -> None:
    project = PYPROJECT["project"]
    names = [re.split(r"[<>=!~; \[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]]
    assert "torch" not in names and "onnxruntime" in names
    assert any(n.startswith("pyside6") for n in names) and "opencv-python-headless" in names
    extras = project["optional-dependencies"]
    assert any(d.startswith("torch") for d in extras["torch"])
    assert {"pytest", "pytest-qt"} <= {re.split(r"[<>=]", d)[0] for d in extras["test"]}


def _shipped_files() -> list[Path]:
    found = [p for p in (REPO / "resources").rglob("*") if p.is_file()]
    manifest = _manifest()
    return sorted(found + manifest.model_files(REPO))


def test_data_files_install_every_shipped_file() -> None:
    data_files: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"]["data-files"]
    shipped = _shipped_files()
    assert len(shipped) >= 6 + len(ICON_SIZES) + 1  # the samples, their licence, the icons
    for path in shipped:
        rel = path.relative_to(REPO).as_posix()
        targets = [target for target, patterns in data_files.items()
                   if any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)]
        # Installed at <prefix>/share/segstudio/<same relative folder>, where segstudio.paths looks.
        assert targets == [f"share/segstudio/{Path(rel).parent.as_posix()}"], rel


# --------------------------------------------------------------------------- frozen-app recipe
def test_manifest_names_files_that_exist() -> None:
    manifest = _manifest()
    for rel in manifest.named_files():
        assert (REPO / rel).exists(), rel
    for script in (manifest.INSTALL_SCRIPT, "packaging/build.sh", "packaging/smoke_test.sh"):
        path = REPO / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, f"{script}: {res.stderr}"


def test_manifest_keeps_torch_out_and_the_used_qt_modules_in() -> None:
    manifest = _manifest()
    assert {"torch", "torchvision", "onnxscript"} <= set(manifest.EXCLUDED_MODULES)
    used = set()
    for path in (REPO / "segstudio").rglob("*.py"):
        used |= set(re.findall(r"PySide6\.(Qt\w+)", path.read_text(encoding="utf-8")))
    assert used and used <= set(manifest.QT_MODULES), f"the app uses {sorted(used)}"
    excluded_qt = {m.removeprefix("PySide6.") for m in manifest.EXCLUDED_MODULES if m.startswith("PySide6.")}
    assert not excluded_qt & set(manifest.QT_MODULES)


def _repo_paths_in_spec(tree: ast.AST) -> list[str]:
    """Paths the spec builds as ``REPO / "a" / "b"`` (the spec's only way of naming a file)."""
    found = []
    for node in ast.walk(tree):
        parts: list[str] = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if not isinstance(node.right, ast.Constant) or not isinstance(node.right.value, str):
                break
            parts.insert(0, node.right.value)
            node = node.left
        if parts and isinstance(node, ast.Name) and node.id == "REPO":
            found.append("/".join(parts))
    return found


def test_spec_uses_the_manifest_and_names_files_that_exist() -> None:
    source = (PACKAGING / "segstudio.spec").read_text()
    tree = ast.parse(source, "segstudio.spec")
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "freeze_manifest" in imported
    for name in ("ENTRY_SCRIPT", "DATA_FOLDERS", "EXCLUDED_MODULES", "APP_NAME", "model_files",
                 "TRIMMED_DATA_PREFIXES", "METADATA_OF"):
        assert f"manifest.{name}" in source, name
    named = _repo_paths_in_spec(tree)
    assert named, "the spec names no file"
    for rel in named:
        assert (REPO / rel).exists(), rel


def test_smoke_test_defaults_to_the_shipped_model() -> None:
    script = (PACKAGING / "smoke_test.sh").read_text()
    assert f"models/{DEFAULT_MODEL}.onnx" in script
    assert "--smoke" in script and " segment " in script


# --------------------------------------------------------------------------- desktop entry and icon
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                   "Office", "Science", "Settings", "System", "Utility"}
ADDITIONAL_CATEGORIES = {"2DGraphics": {"Graphics"}, "RasterGraphics": {"Graphics"}, "Viewer": {"Graphics"},
                         "ImageProcessing": {"Graphics", "Science"}, "Photography": {"Graphics"}}
KNOWN_KEYS = {"Type", "Version", "Name", "GenericName", "NoDisplay", "Comment", "Icon", "Hidden", "OnlyShowIn",
              "NotShowIn", "DBusActivatable", "TryExec", "Exec", "Path", "Terminal", "Actions", "MimeType",
              "Categories", "Implements", "Keywords", "StartupNotify", "StartupWMClass", "URL",
              "PrefersNonDefaultGPU", "SingleMainWindow"}
BOOLEAN_KEYS = {"NoDisplay", "Hidden", "DBusActivatable", "Terminal", "StartupNotify", "PrefersNonDefaultGPU",
                "SingleMainWindow"}


def parse_desktop_entry(text: str) -> dict[str, dict[str, str]]:
    """Groups of key=value pairs; raises ValueError on what the Desktop Entry spec forbids."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            if name in groups:
                raise ValueError(f"line {n}: group {name} twice")
            current = groups[name] = {}
            continue
        if current is None:
            raise ValueError(f"line {n}: a key before the first group")
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z0-9-]+(\[[^\]]+\])?", key):
            raise ValueError(f"line {n}: not a key=value line: {line!r}")
        if key in current:
            raise ValueError(f"line {n}: key {key} twice")
        current[key] = value.strip()
    return groups


def test_desktop_entry_is_valid() -> None:
    groups = parse_desktop_entry((PACKAGING / "segstudio.desktop").read_text(encoding="utf-8"))
    assert next(iter(groups)) == "Desktop Entry"
    entry = groups["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] and entry["Exec"]
    for key in entry:
        assert key.split("[")[0] in KNOWN_KEYS or key.startswith("X-"), f"unknown key {key}"
    for key in BOOLEAN_KEYS & set(entry):
        assert entry[key] in ("true", "false"), key
    program, *args = entry["Exec"].split()
    assert program == "segstudio" == entry["TryExec"]
    assert program in PYPROJECT["project"]["gui-scripts"]
    codes = [a for a in args if a.startswith("%")]
    assert all(c in ("%f", "%F", "%u", "%U", "%i", "%c", "%k") for c in codes)
    assert sum(c in ("%f", "%F", "%u", "%U") for c in codes) <= 1
    assert entry["Icon"] == "segstudio"
    assert entry["StartupWMClass"] == "segstudio"  # QCoreApplication.applicationName() in gui/app.py
    for key in ("Categories", "MimeType", "Keywords"):
        assert entry[key].endswith(";"), f"{key} must end with ';'"
    categories = entry["Categories"].rstrip(";").split(";")
    assert MAIN_CATEGORIES & set(categories)
    for c in categories:
        assert c in MAIN_CATEGORIES or set(categories) & ADDITIONAL_CATEGORIES[c], c
    for mime in entry["MimeType"].rstrip(";").split(";"):
        assert re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", mime), mime


def test_desktop_entry_parser_rejects_broken_files() -> None:
    for broken in ("Name=x\n[Desktop Entry]\n", "[Desktop Entry]\nName=a\nName=b\n", "[Desktop Entry]\nno equals\n"):
        with pytest.raises(ValueError):
            parse_desktop_entry(broken)


def test_desktop_file_validate_accepts_it_where_installed() -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate (desktop-file-utils) is not installed")
    res = subprocess.run([tool, str(PACKAGING / "segstudio.desktop")], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_exists_at_its_size(size: int) -> None:
    path = REPO / "resources" / "icons" / f"segstudio-{size}.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (size, size) and image.mode == "RGBA"
        alpha = image.getchannel("A")
        # Transparent corners (the frame is rounded), opaque middle.
        assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((size // 2, size // 2)) == 255


def _render_icons_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_icons", PACKAGING / "render_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_icon_pngs_are_rendered_from_the_svg(qapp) -> None:
    """The PNGs match a fresh rendering of the SVG: whoever edits the SVG re-runs packaging/render_icons.py."""
    import io

    import numpy as np
    from PySide6.QtSvg import QSvgRenderer

    svg = REPO / "resources" / "icons" / "segstudio.svg"
    root = ElementTree.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 256 256"
    renderer = QSvgRenderer(str(svg))
    assert renderer.isValid()
    render_png = _render_icons_module().render_png
    for size in ICON_SIZES:
        fresh = np.asarray(Image.open(io.BytesIO(render_png(renderer, size))).convert("RGBA"), np.int16)
        with Image.open(REPO / "resources" / "icons" / f"segstudio-{size}.png") as stored:
            saved = np.asarray(stored.convert("RGBA"), np.int16)
        # A little slack for anti-aliasing differences between Qt versions.
        assert np.abs(fresh - saved).mean() < 2.0, f"segstudio-{size}.png is out of date"
