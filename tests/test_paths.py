"""segstudio.paths finds resources/ and models/ in a checkout, an installed wheel and a frozen app."""

from __future__ import annotations

from pathlib import Path

import segstudio
from segstudio import paths

REPO = Path(__file__).resolve().parents[1]


def _data(root: Path) -> Path:
    (root / "resources" / "samples").mkdir(parents=True)
    return root


def test_this_checkout_is_found() -> None:
    assert paths.data_root() == REPO
    assert paths.resources_dir() == REPO / "resources"
    assert paths.models_dir() == REPO / "models"
    assert paths.icon_path().is_file() and paths.icon_path(48).is_file()


def test_frozen_app_wins(tmp_path: Path) -> None:
    meipass = _data(tmp_path / "app" / "_internal")
    package = meipass / "segstudio"  # PyInstaller puts the package's modules under _MEIPASS too
    assert paths.find_data_root(package, [], meipass) == meipass
    # Even when a checkout with data exists elsewhere (the build machine's), the bundle's copy is used.
    checkout = _data(tmp_path / "repo")
    (checkout / "pyproject.toml").write_text("")
    assert paths.find_data_root(checkout / "segstudio", [], meipass) == meipass


def test_installed_wheel_uses_the_prefix_share_folder(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    package = venv / "lib" / "python3.11" / "site-packages" / "segstudio"
    package.mkdir(parents=True)
    share = _data(venv / "share" / "segstudio")
    assert paths.find_data_root(package, [venv, "/usr"], None) == share
    # A stray site-packages/resources/ of another distribution is not taken for ours.
    (package.parent / "resources").mkdir()
    assert paths.find_data_root(package, [venv], None) == share
    # A user install (pip install --user) puts them under the user base.
    user = _data(tmp_path / "user" / "share" / "segstudio")
    assert paths.find_data_root(package, [tmp_path / "missing", tmp_path / "user"], None) == user


def test_checkout_beats_an_installed_copy(tmp_path: Path) -> None:
    checkout = _data(tmp_path / "repo")
    (checkout / "pyproject.toml").write_text("")
    share = _data(tmp_path / "venv" / "share" / "segstudio")
    assert paths.find_data_root(checkout / "segstudio", [tmp_path / "venv"], None) == checkout
    assert share.is_dir()


def test_nothing_found_names_the_first_candidate(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "segstudio"
    assert paths.find_data_root(package, [tmp_path / "venv"], None) == package.parent
    assert paths.candidate_roots(package, [tmp_path / "venv", tmp_path / "venv"], None) == [
        package.parent, tmp_path / "venv" / "share" / "segstudio"]


def test_the_package_dir_is_this_package() -> None:
    assert Path(segstudio.__file__).resolve().parent == paths.PACKAGE_DIR
