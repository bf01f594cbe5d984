"""Model versions trained in a project: where they live, where each came from, and which are candidates.

Every model file a fine-tuning run writes goes into the project, never into
the install's ``models/`` (which may be read-only and is shared by every
project): ``<project>/.segstudio-training/models/<name>.vN.safetensors``.
``versions.json`` beside them says, for each version, what it was trained
from, when, in which round (or continuous run), how it scored on the held-out
corrections before → after, and whether it was *accepted* (it became the
active model) or is a *candidate* (kept, not made active: it scored worse, or
there was nothing to judge it on). The model list shows this, and switching
back to an earlier version is one click there.

Qt-free; the app, the CLI and the benchmarks share it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from segstudio.core.atomic import atomic_write_text
from segstudio.core.project_file import TRAINING_DIR

log = logging.getLogger(__name__)

VERSIONS_DIR = "models"
VERSIONS_FILE = "versions.json"
VERSIONS_KIND = "segstudio model versions"
Status = Literal["accepted", "candidate"]


def versions_dir(project_root: Path | str) -> Path:
    """The folder of a project's model versions."""
    return Path(project_root) / TRAINING_DIR / VERSIONS_DIR


@dataclass
class ModelVersion:
    """One model file trained in the project (``file``: its name in :func:`versions_dir`)."""

    file: str
    trained_from: str
    """The model fine-tuned (its file name), or ``"<network> from scratch"``."""
    created: str
    mode: str = "rounds"
    round: int | None = None
    held_out_before: float | None = None
    """The held-out mIoU of the model that was active when the version was made (None: there was none)."""
    held_out_after: float | None = None
    held_out_images: int = 0
    status: Status = "candidate"
    verdict: str = ""

    def describe(self) -> str:
        """One line for the model list: when, how, and the held-out score."""
        when = self.created[:16].replace("T", " ")
        how = f"round {self.round}" if self.round is not None else "continuous"
        text = f"trained here {when}, {how}"
        if self.held_out_after is not None:
            before = f"{self.held_out_before:.3f} → " if self.held_out_before is not None else ""
            text += f", held-out mIoU {before}{self.held_out_after:.3f}"
        if self.status == "candidate":
            text += " (candidate)"
        return text


@dataclass
class VersionRegistry:
    """The versions of one project, oldest first; :meth:`save` writes ``versions.json`` atomically."""

    root: Path
    versions: list[ModelVersion] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return versions_dir(self.root)

    @property
    def file(self) -> Path:
        return self.folder / VERSIONS_FILE

    @classmethod
    def load(cls, project_root: Path | str) -> VersionRegistry:
        """The project's versions (none when there is no file; an unreadable file is logged and ignored — the
        model files themselves are still listed, without their history)."""
        reg = cls(Path(project_root))
        try:
            doc = json.loads(reg.file.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("kind") != VERSIONS_KIND:
                raise ValueError("not a segstudio versions file")
            known = set(ModelVersion.__dataclass_fields__)
            reg.versions = [ModelVersion(**{k: v for k, v in item.items() if k in known}) for item in doc["versions"]]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            log.warning("cannot read %s: %s", reg.file, exc)
        return reg

    def save(self) -> None:
        """Write ``versions.json`` (raises ``SaveError``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {"kind": VERSIONS_KIND, "schema": 1, "versions": [asdict(v) for v in self.versions]}
        atomic_write_text(self.file, json.dumps(doc, indent=1) + "\n")

    def path(self, version: ModelVersion) -> Path:
        return self.folder / version.file

    def find(self, model: Path | str) -> ModelVersion | None:
        """The version stored as ``model`` (a path), or None when it is not one of this project's."""
        p = Path(model)
        if p.parent.resolve() != self.folder.resolve():
            return None
        return next((v for v in self.versions if v.file == p.name), None)

    def add(self, version: ModelVersion) -> ModelVersion:
        """Record (or replace the record of) a version; call :meth:`save` after."""
        self.versions = [v for v in self.versions if v.file != version.file] + [version]
        return version

    def mark(self, model: Path | str, status: Status, verdict: str | None = None) -> ModelVersion | None:
        v = self.find(model)
        if v is not None:
            v.status = status
            if verdict is not None:
                v.verdict = verdict
        return v

    def files(self) -> list[Path]:
        """The version files that exist, newest first (recorded ones and any others in the folder)."""
        folder = self.folder
        if not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if p.is_file() and p.suffix == ".safetensors"]
        return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)
