"""The cache of ONNX exports made on the fly, for ``.safetensors`` models run by ONNX Runtime.

A ``.safetensors`` model run by ONNX Runtime is exported once (checked against
PyTorch, see :func:`~segstudio.inference.export.export_verified`) into the
user's cache, ``$XDG_CACHE_HOME/segstudio/onnx/<stem>-<sha256[:16]>.onnx`` —
never beside the model, whose folder may be the install's ``models/``
(read-only, or shared by every user). An export already in ``<model
folder>/.onnx-cache/`` (where older versions wrote it) is still used. The key
is the model file's hash, so a changed model is exported again and an
unchanged one never is; with the export cached, torch is not needed at all.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from segstudio.core.atomic import SaveError, atomic_write_bytes
from segstudio.inference.backends import found_runtimes
from segstudio.inference.model_file import ModelFile, ModelFileError, load_model
from segstudio.zoo import CARD_KEY

CACHE_FOLDER = ".onnx-cache"
SOURCE_HASH_KEY = "segstudio.source_sha256"


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or str(Path.home() / ".cache")
    return Path(base) / "segstudio" / "onnx"


def cache_dirs(model_path: Path, cache_dir: Path | str | None = None) -> list[Path]:
    """Where an export of ``model_path`` is looked for; the last one is where a new export is written."""
    if cache_dir is not None:
        return [Path(cache_dir)]
    return [model_path.parent / CACHE_FOLDER, user_cache_dir()]


def cached_onnx(model: ModelFile | Path | str, cache_dir: Path | str | None = None) -> Path:
    """The ONNX export of a ``.safetensors`` model, made (and verified) now unless cached.

    Raises :class:`ModelFileError` when no export is cached and torch (needed to
    make one) is missing, and :class:`~segstudio.inference.parity.ExportMismatchError`
    when the export does not match PyTorch.
    """
    mf = model if isinstance(model, ModelFile) else ModelFile.read(model)
    p = mf.path
    name = f"{p.stem}-{mf.sha256[:16]}.onnx"
    dirs = cache_dirs(p, cache_dir)
    for d in dirs:
        if (d / name).is_file():
            return d / name
    if found_runtimes().torch is None:
        raise ModelFileError(p, "ONNX Runtime needs an ONNX export of this model and none is cached; making one "
                                "needs PyTorch, which is not installed (install torch, or run "
                                "`segstudio export-onnx` on a machine that has it)")
    from segstudio.inference.export import export_verified  # torch

    network, card = load_model(mf, device="cpu")
    data, _ = export_verified(network, card.in_channels, card.size_multiple,
                              metadata={CARD_KEY: card.to_json(), SOURCE_HASH_KEY: mf.sha256})
    errors = []
    for d in dirs[-1:]:
        try:
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(d / name, data)
        except (OSError, SaveError) as exc:
            errors.append(f"{d}: {exc}")
            continue
        for stale in d.glob(f"{p.stem}-*.onnx"):
            tail = stale.stem[len(p.stem) + 1:]
            if stale.name != name and len(tail) == 16 and all(c in "0123456789abcdef" for c in tail):
                with contextlib.suppress(OSError):
                    stale.unlink()
        return d / name
    raise ModelFileError(p, "could not write the ONNX export to any cache folder: " + "; ".join(errors))
