"""The bad-input corpus: hostile files of every class, each through the core API and through the CLI.

The cases are in :mod:`tests.hostile_cases`. Through the API each must raise
the module's own error (or report the file with its reason); through the CLI
it must end with a non-zero status, say why in one line, and never show a
traceback. Either way nothing may be written or lost: every file of the world
(the project, the model, the folder outside) is compared before and after.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segstudio import cli
from tests.hostile_cases import CASES, Case, Run, World, valid_model_bytes

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and flock are POSIX"),
              pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return valid_model_bytes(tmp_path_factory.mktemp("model"))


@pytest.fixture
def world(tmp_path: Path, model_bytes: bytes) -> Iterator[World]:
    w = World(tmp_path, model_bytes)
    w.build()
    yield w
    for proc in w.holders:
        proc.kill()
        proc.wait(timeout=30)


def _errors_text(result: Any) -> str:
    errors = getattr(result, "errors", None)
    assert errors is not None, f"expected a report with errors, got {result!r}"
    return "\n".join(str(e) if not isinstance(e, tuple) else f"{e[0]}: {e[1]}" for e in errors)


def _prepare(world: World, hostile: Case, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, dict[str, bytes]]:
    run = hostile.make(world)
    before = world.snapshot()
    if run.fault is not None:
        run.fault(monkeypatch)
    return run, before


def _unchanged(world: World, before: dict[str, bytes], run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # faults off before looking
    after = world.snapshot()
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    changed -= {k for k in changed if k.startswith("out/") and not run.ok and k not in before}
    assert changed <= set(run.changes), f"changed: {sorted(changed)}"
    assert (world.outside / "precious.txt").read_text() == "the user's file, outside the project"
    assert sorted(p.name for p in world.outside.iterdir()) == ["precious.txt"]


def test_the_corpus_covers_every_class_with_at_least_40_cases() -> None:
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 40
    assert kinds >= {"rle", "coco", "json-depth", "labelme", "mask-size", "label-range", "regular-files", "paths",
                     "model", "writers"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("hostile", CASES, ids=[c.name for c in CASES])
def test_through_the_api(world: World, hostile: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    run, before = _prepare(world, hostile, monkeypatch)
    if run.ok:
        result = run.api()
        assert not getattr(result, "errors", None), _errors_text(result)
    elif run.error is not None:
        with pytest.raises(run.error) as caught:
            run.api()
        assert run.expect.lower() in str(caught.value).lower()
    else:
        assert run.expect.lower() in _errors_text(run.api()).lower()
    _unchanged(world, before, run, monkeypatch)


@pytest.mark.parametrize("hostile", CASES, ids=[c.name for c in CASES])
def test_through_the_cli(world: World, hostile: Case, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    run, before = _prepare(world, hostile, monkeypatch)
    code = cli.main(run.cli)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in ((0,) if run.ok else run.codes), out + err
    assert run.expect.lower() in (out + err).lower(), out + err
    if code == 2:  # the command could not run: one line says why, and it is the last
        last = err.strip().splitlines()[-1]
        assert last.startswith("segstudio: error: ") and run.expect.lower() in last.lower(), err
    _unchanged(world, before, run, monkeypatch)
