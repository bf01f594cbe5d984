"""The held-out split: the rule, append-only assignments, the file, and the folder/project agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segstudio.core.holdout import (
    HOLDOUT_EVERY,
    HeldOutSplit,
    SplitFileError,
    side_of,
    split_file,
    split_names,
    sync_split,
)


def test_the_second_and_then_every_fifth_image_is_held_out() -> None:
    sides = [side_of(k) for k in range(1, 23)]
    held = [k for k, s in enumerate(sides, start=1) if s == "holdout"]
    assert HOLDOUT_EVERY == 5 and held == [2, 7, 12, 17, 22]
    assert side_of(1) == "train"  # the first correction always trains
    with pytest.raises(ValueError):
        side_of(0)


def test_assignments_never_change(tmp_path: Path) -> None:
    split = sync_split(tmp_path, ["a", "b", "c"])
    assert split.holdout_names() == ["b"] and split.train_names() == ["a", "c"]
    # more images, in another order, some gone: the first three keep their sides
    again = sync_split(tmp_path, ["z", "c", "d", "e", "f", "g", "a"])
    assert [again.side(n) for n in ("a", "b", "c")] == ["train", "holdout", "train"]
    assert again.order == ["a", "b", "c", "z", "d", "e", "f", "g"]
    assert again.holdout_names() == ["b", "f"]  # f is the 7th assigned
    # reopened from disk: the same
    assert HeldOutSplit.load(tmp_path).sides == again.sides
    # among the images labelled now (b's label was deleted: it keeps its side, but is not listed)
    assert again.holdout_names(among=["a", "c", "f"]) == ["f"]


def test_a_damaged_split_file_is_never_overwritten(tmp_path: Path) -> None:
    path = split_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SplitFileError, match="damaged"):
        sync_split(tmp_path, ["a"])
    assert path.read_text() == "{not json"
    path.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(SplitFileError):
        HeldOutSplit.load(tmp_path)


def test_a_folder_in_name_order_splits_as_a_project_corrected_in_that_order(tmp_path: Path) -> None:
    names = [f"frame{i:03d}" for i in range(22)]
    train, held = split_names(names)
    split = sync_split(tmp_path, names)
    assert held == split.holdout_names() and train == split.train_names()
    assert len(held) == 5 and len(train) == 17
