"""Reading a class table to import: names, legends, projects; refusals say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segstudio.core.classes import ClassTable
from segstudio.core.project import Project
from segstudio.workspace.class_import import ClassFileError, read_class_table


def test_a_list_of_names_one_a_line(tmp_path: Path) -> None:
    f = tmp_path / "names.csv"
    f.write_text("# CamVid subset\nroad,1\n\nsky\n")
    assert read_class_table(f).names == ["road", "sky"]


def test_a_legend_in_index_order_with_colours(tmp_path: Path) -> None:
    f = tmp_path / "classes.json"
    f.write_text(json.dumps({"classes": [{"index": 1, "name": "b", "colour": [9, 9, 9]}, {"index": 0, "name": "a"}]}))
    table = read_class_table(f)
    assert table.names == ["a", "b"] and table[1].colour == (9, 9, 9)


def test_a_project_file(tmp_path: Path) -> None:
    Project.create(tmp_path / "p", images=[], classes=ClassTable.from_names(["x", "y"])).close()
    assert read_class_table(tmp_path / "p" / "segstudio.json").names == ["x", "y"]


@pytest.mark.parametrize("content, reason", [
    ('[{"name": "a", "colour": [300, 0, 0]}]', "values 0-255"),
    ("[]", "holds no classes"),
    ("{", "not valid JSON"),
    ('[{"label": "a"}]', "neither a name"),
])
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, content: str, reason: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(ClassFileError, match=reason):
        read_class_table(f)


def test_a_model_file_that_is_none(tmp_path: Path) -> None:
    f = tmp_path / "fake.onnx"
    f.write_bytes(b"not a model")
    with pytest.raises(ClassFileError):
        read_class_table(f)
