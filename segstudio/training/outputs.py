"""What a training run writes: versioned model files, checkpoints, the JSONL log.

- Model files are never overwritten: a fine-tuned model goes *beside* the
  model it started from as the next free version (``cells.safetensors`` →
  ``cells.v2.safetensors`` → ``cells.v3.safetensors``); a model trained from
  scratch goes to the output folder under the next free version of its name.
  Every file is written atomically, so a killed run leaves no torn file and
  the previous model untouched.
- A checkpoint (``checkpoint.pt``) holds everything to continue a run: the
  weights, the optimiser, the EMA and best weights, the step, the time spent,
  the loss history and the config. It is written with ``torch.save`` into a
  temporary file and renamed, and read back with ``weights_only=True`` (plain
  tensors and containers, nothing that runs code).
- ``train_log.jsonl``: one JSON object per logged event, rewritten atomically
  (the run keeps the lines in memory).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from segstudio.core.atomic import atomic_write_bytes, atomic_write_text

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
CURVES_NAME = "curves.png"
CHECKPOINT_FORMAT = 1
_VERSION = re.compile(r"^(?P<base>.+?)\.v(?P<n>\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (unreadable, or from a different run)."""


def version_base(stem: str) -> str:
    """``"cells.v3"`` → ``"cells"``; a stem without a version is its own base."""
    m = _VERSION.match(stem)
    return m.group("base") if m else stem


def version_number(stem: str) -> int:
    """``"cells.v3"`` → 3; a stem without a version is version 1."""
    m = _VERSION.match(stem)
    return int(m.group("n")) if m else 1


def next_version_path(folder: Path, stem: str, suffix: str = ".safetensors", newer_than: int = 0) -> Path:
    """The first free name among ``<base><suffix>``, ``<base>.v2<suffix>``, ``<base>.v3<suffix>``… in ``folder``.

    Versions already present (with any number) are skipped past, so a new file
    is always newer than every existing one; ``newer_than`` (e.g. the version
    of the model fine-tuned, kept in another folder) is skipped past too.
    """
    base = version_base(stem)
    taken = 1 if (folder / f"{base}{suffix}").exists() else 0
    taken = max(taken, newer_than)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.endswith(suffix):
                m = _VERSION.match(p.name[: -len(suffix)])
                if m and m.group("base") == base:
                    taken = max(taken, int(m.group("n")))
    return folder / (f"{base}{suffix}" if taken == 0 else f"{base}.v{taken + 1}{suffix}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError… for a damaged file
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a segstudio training checkpoint")
    return state


class JsonlLog:
    """Events of a run as JSON lines, kept in memory and rewritten atomically on :meth:`flush`."""

    def __init__(self, path: Path, existing: Sequence[dict[str, Any]] = ()) -> None:
        self.path = path
        self.lines: list[str] = [json.dumps(e) for e in existing]

    @classmethod
    def resume(cls, path: Path) -> JsonlLog:
        """Continue an existing log (lines that do not parse are dropped)."""
        entries = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return cls(path, entries)

    def add(self, event: dict[str, Any]) -> None:
        self.lines.append(json.dumps(event))

    def flush(self) -> None:
        atomic_write_text(self.path, "\n".join(self.lines) + ("\n" if self.lines else ""))
