"""Model files: one ``<name>.safetensors`` (weights + card) or an ``.onnx`` export (graph + card).

Reading a card never needs torch and never runs code from the file: a
safetensors file starts with an 8-byte little-endian header length and a JSON
header whose ``__metadata__`` holds the card under :data:`~segstudio.zoo.CARD_KEY`;
an ONNX file carries the same JSON in its ``metadata_props`` (read with the
``onnx`` package, a plain protobuf parser). Only :func:`save_model` and
:func:`load_model` import torch, and only when called.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.classes import ClassTable
from segstudio.zoo import CARD_KEY, CardError, ModelCard
from segstudio.zoo.card import now_iso

if TYPE_CHECKING:
    from torch import nn

ModelFormat = Literal["safetensors", "onnx"]
MODEL_SUFFIXES = (".safetensors", ".onnx")
_MAX_HEADER = 100 * 1024 * 1024  # a safetensors header larger than this is not a real one
FOREIGN_ONNX_ARCH = "onnx"
"""``card.arch`` of an ONNX file that came without a segstudio card (its class names given by the user)."""


class ModelFileError(ValueError):
    """A model file that cannot be used: missing, not a model, corrupt, or not matching its card."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot use model file {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class MissingCardError(ModelFileError):
    """An ONNX file without a segstudio card: the caller must supply the class names.

    The GUI catches this to ask for the names; the CLI's ``--classes`` option gives them.
    """


def model_format(path: Path | str) -> ModelFormat:
    """``"safetensors"`` or ``"onnx"``, from the file's first bytes (the suffix only breaks ties)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(9)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise ModelFileError(p, "the file does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(p, "it is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(p, exc.strerror or str(exc)) from None
    if len(head) == 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < n <= min(_MAX_HEADER, size - 8):
            return "safetensors"
    if p.suffix.lower() == ".onnx" and size > 0:
        return "onnx"
    if size == 0:
        raise ModelFileError(p, "the file is empty (0 bytes)")
    raise ModelFileError(p, "not a model file: expected a .safetensors file written by segstudio or an .onnx file")


def read_safetensors_header(path: Path | str) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets, ``__metadata__``)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
            if len(raw) < 8:
                raise ModelFileError(p, "the file is too short to be a safetensors file")
            (n,) = struct.unpack("<Q", raw)
            if n == 0 or n > _MAX_HEADER or n > size - 8:
                raise ModelFileError(p, f"not a safetensors file (header length {n} in a {size}-byte file)")
            text = fh.read(n)
    except OSError as exc:
        raise ModelFileError(p, exc.strerror or str(exc)) from None
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(p, f"the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(p, "the safetensors header is not a JSON object")
    return header


def safetensors_metadata(path: Path | str) -> dict[str, str]:
    meta = read_safetensors_header(path).get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ModelFileError(path, "the safetensors metadata is not a JSON object")
    return {str(k): str(v) for k, v in meta.items()}


def _onnx_proto(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError... for a file that is not ONNX
        raise ModelFileError(path, f"not a readable ONNX file ({type(exc).__name__}: {exc})") from None


def onnx_metadata(path: Path | str) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    proto = _onnx_proto(Path(path))
    return {e.key: e.value for e in proto.metadata_props}


def onnx_io_channels(path: Path | str) -> tuple[int | None, int | None]:
    """(input channels, output channels) from the ONNX graph, None where the dimension is dynamic."""
    proto = _onnx_proto(Path(path))
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]

    def dim1(values: Sequence[Any]) -> int | None:
        if not values:
            return None
        dims = values[0].type.tensor_type.shape.dim
        if len(dims) != 4:
            return None
        return int(dims[1].dim_value) if dims[1].HasField("dim_value") else None

    return dim1(inputs), dim1(list(proto.graph.output))


def foreign_onnx_card(path: Path | str, class_names: Sequence[str]) -> ModelCard:
    """A card for an ONNX file made elsewhere: the given class names, ImageNet normalisation, 8-bit input.

    Raises :class:`ModelFileError` when the graph's static output channels do not match the names.
    """
    p = Path(path)
    names = [n.strip() for n in class_names if n.strip()]
    if not names:
        raise ModelFileError(p, "no class names given")
    in_ch, out_ch = onnx_io_channels(p)
    if out_ch is not None and out_ch != len(names):
        raise ModelFileError(p, f"the network outputs {out_ch} classes but {len(names)} class names were given")
    if in_ch is not None and in_ch not in (1, 3):
        raise ModelFileError(p, f"the network takes {in_ch}-channel input; segstudio feeds 1 or 3 channels")
    try:
        classes = ClassTable.from_names(names)
    except ValueError as exc:
        raise ModelFileError(p, str(exc)) from None
    return ModelCard(
        arch=FOREIGN_ONNX_ARCH,
        classes=classes,
        in_channels=in_ch or 3,
        name=p.stem,
        description="ONNX model without a segstudio card; class names given by the user, "
        "ImageNet mean/std assumed.",
        history=[{"event": "imported", "when": now_iso(), "from": p.name}],
    )


def load_card(path: Path | str, class_names: Sequence[str] | None = None) -> ModelCard:
    """The card of a ``.safetensors`` or ``.onnx`` model file, without torch.

    An ONNX file without a card needs ``class_names`` (else :class:`MissingCardError`);
    when it has a card, ``class_names`` is ignored. Raises :class:`ModelFileError`
    (or :class:`~segstudio.zoo.CardError`) with a readable reason.
    """
    p = Path(path)
    fmt = model_format(p)
    meta = safetensors_metadata(p) if fmt == "safetensors" else onnx_metadata(p)
    text = meta.get(CARD_KEY)
    if text is None:
        if fmt == "onnx":
            if class_names:
                return foreign_onnx_card(p, class_names)
            raise MissingCardError(p, "this ONNX file has no segstudio model card; give its class names "
                                      "(e.g. --classes background,cell)")
        raise ModelFileError(p, "this safetensors file has no segstudio model card (a bare state dict? "
                                "use `segstudio import-checkpoint` to make a model file from it)")
    try:
        return ModelCard.from_json(text)
    except CardError as exc:
        raise ModelFileError(p, str(exc)) from None


def _same_model(a: ModelCard, b: ModelCard) -> bool:
    return (a.arch, a.options, a.classes.names, a.in_channels, a.normalization, a.name) == \
        (b.arch, b.options, b.classes.names, b.in_channels, b.normalization, b.name)


def trainable_file(path: Path | str) -> Path | None:
    """The ``.safetensors`` file that trains as ``path``: the file itself, or — for an ONNX export — the
    ``.safetensors`` twin beside it (same stem) whose card describes the same model; None when there is none.
    Raises :class:`ModelFileError` when ``path`` itself cannot be read."""
    p = Path(path)
    if model_format(p) == "safetensors":
        return p
    twin = p.with_suffix(".safetensors")
    if not twin.is_file():
        return None
    try:
        mine = load_card(p)
        theirs = load_card(twin)
    except (ModelFileError, CardError):
        return None
    return twin if _same_model(mine, theirs) else None


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of the whole file (weights and card): the key of cached ONNX exports."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def find_model_files(folder: Path | str) -> list[Path]:
    """Model files (``*.safetensors``, ``*.onnx``) directly in ``folder``, sorted; hidden files skipped."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith("."))


def describe_model_file(path: Path | str) -> dict[str, Any]:
    """Key facts of a model file for listings.

    ``{"file", "error"}`` when it cannot be read; ``needs_classes: True`` for an
    ONNX file without a card (it opens once its class names are given).
    """
    p = Path(path)
    facts: dict[str, Any] = {"file": str(p)}
    try:
        facts["size_mb"] = round(p.stat().st_size / 1e6, 2)
        card = load_card(p)
    except MissingCardError:
        facts.update(format="onnx", needs_classes=True)
        return facts
    except (ModelFileError, CardError, OSError) as exc:
        facts["error"] = str(exc)
        return facts
    miou = next((m for m in reversed(card.metrics) if m.get("name") == "mIoU"), None)
    last = card.history[-1] if card.history else {}
    facts.update({
        "format": model_format(p),
        "name": card.name or p.stem,
        "arch": card.arch,
        "options": card.options,
        "classes": card.classes.names,
        "in_channels": card.in_channels,
        "train_resolution": list(card.train_resolution) if card.train_resolution else None,
        "mIoU": {"value": miou.get("value"), "data": miou.get("data", "")} if miou else None,
        "last_event": {k: last.get(k) for k in ("event", "when", "data") if k in last} or None,
        "created": card.created,
    })
    return facts


def _plain_state_dict(model: nn.Module) -> dict[str, Any]:
    """CPU, contiguous, non-aliasing copies of the state dict (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def save_model(path: Path | str, model: nn.Module, card: ModelCard) -> Path:
    """Write ``model``'s weights and ``card`` to ``path`` (``.safetensors``) atomically.

    The card's ``arch``/``options`` must describe the module (checked against what
    :func:`segstudio.nets.create` recorded on it, when available).
    """
    from safetensors.torch import save

    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        raise ValueError(f"a model file is named <name>.safetensors, got {p.name!r}")
    built_as = getattr(model, "segstudio_arch", None)
    if built_as is not None and built_as != card.arch:
        raise ValueError(f"the card says arch {card.arch!r} but the module was built as {built_as!r}")
    built_opts = getattr(model, "segstudio_options", None)
    if built_opts is not None and card.options and dict(built_opts) != {**built_opts, **card.options}:
        raise ValueError(f"the card's options {card.options} differ from the module's {built_opts}")
    data = save(_plain_state_dict(model), metadata={CARD_KEY: card.to_json(), "format": "pt"})
    atomic_write_bytes(p, data)
    return p


def build_from_card(card: ModelCard) -> nn.Module:
    """A freshly initialised module of the card's architecture (weights not loaded)."""
    from segstudio import nets

    return nets.create(card.arch, num_classes=card.num_classes, in_channels=card.in_channels, **card.options)


def load_model(path: Path | str, device: str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Build the card's network and load the file's weights into it; returns (module in eval mode, card).

    Never unpickles: the weights are read by safetensors. Raises :class:`ModelFileError`
    if the file is not a segstudio safetensors model or its weights do not fit the network.
    """
    from safetensors.torch import load_file

    from segstudio.zoo import UnknownNetworkError

    p = Path(path)
    if model_format(p) != "safetensors":
        raise ModelFileError(p, "an ONNX file has no PyTorch weights; open the .safetensors model instead")
    card = load_card(p)
    try:
        model = build_from_card(card)
    except (UnknownNetworkError, ValueError) as exc:
        raise ModelFileError(p, f"its card describes a network this segstudio cannot build: {exc}") from None
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError for corrupt data
        raise ModelFileError(p, f"the weights are corrupt ({exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} mis-shaped (e.g. {', '.join(wrong[:3])})")
        raise ModelFileError(p, f"the weights do not fit {card.arch}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(device), card
