"""Model files: one ``<name>.safetensors`` (weights + card) or an ``.onnx`` export (graph + card).

Reading a card never needs torch and never runs code from the file: a
safetensors file starts with an 8-byte little-endian header length and a JSON
header whose ``__metadata__`` holds the card under :data:`~segstudio.zoo.CARD_KEY`;
an ONNX file carries the same JSON in its ``metadata_props`` (read with the
``onnx`` package, a plain protobuf parser). Only :func:`save_model` and
:func:`load_model` import torch, and only when called.

A model file may come from a stranger, so everything is bounded before it is
allocated: only regular files are read; the header's length, JSON depth and
tensor table (known dtypes, shapes whose bytes are exactly their slice of the
file) are checked first; the card's values are checked
(:meth:`~segstudio.zoo.ModelCard.check`); and the network the card describes
is built on PyTorch's ``meta`` device — shapes without memory — and compared
tensor by tensor with the header before the real network is built
(:func:`check_network_fits`). A card that asks for a network larger than its
file is refused with a clear message instead of allocating gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from segstudio.core import safe_json
from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.classes import ClassTable
from segstudio.core.regular_file import NotRegularFileError, open_regular, regular_file_problem
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

    The GUI catches this to ask for the names (``out_channels``: how many the graph outputs, None when
    dynamic); the CLI's ``--classes`` option gives them.
    """

    def __init__(self, path: Path | str, reason: str, out_channels: int | None = None) -> None:
        super().__init__(path, reason)
        self.out_channels = out_channels


def model_format(path: Path | str) -> ModelFormat:
    """``"safetensors"`` or ``"onnx"``, from the file's first bytes (the suffix only breaks ties)."""
    p = Path(path)
    try:
        with open_regular(p) as fh:
            head = fh.read(9)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise ModelFileError(p, "the file does not exist") from None
    except NotRegularFileError as exc:
        raise ModelFileError(p, f"{exc.strerror}; a model is a .safetensors or .onnx file") from None
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


def read_safetensors_header(path: Path | str, check_tensors: bool = False) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets, ``__metadata__``).

    ``check_tensors``: also check the tensor table (:func:`check_tensor_table`),
    as loading the weights needs; the card alone is readable from a cut-short file.
    """
    header, data_bytes = _read_header(Path(path))
    if check_tensors:
        check_tensor_table(Path(path), header, data_bytes)
    return header


def _read_header(p: Path) -> tuple[dict[str, Any], int]:
    """(the JSON header, the bytes of tensor data after it) of a safetensors file."""
    try:
        with open_regular(p) as fh:
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
        header = safe_json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(p, f"the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(p, "the safetensors header is not a JSON object")
    return header, size - 8 - n


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
                "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def tensor_shapes(header: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape, from a header checked by :func:`read_safetensors_header`."""
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def check_tensor_table(path: Path, header: dict[str, Any], data_bytes: int) -> None:
    """Every tensor has a known dtype, a shape of non-negative integers, and exactly the bytes of its shape
    inside the file's data (``ModelFileError`` naming the first that does not)."""
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelFileError(path, f"tensor {name!r} in the header is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPE_BYTES:
            raise ModelFileError(path, f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise ModelFileError(path, f"tensor {name!r} has no valid shape ({shape!r})")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise ModelFileError(path, f"the weights are corrupt or cut short: tensor {name!r} lies outside the "
                                       f"file's data (offsets {offsets!r})")
        need = math.prod(shape) * _DTYPE_BYTES[dtype]
        if need != offsets[1] - offsets[0]:
            raise ModelFileError(path, f"tensor {name!r} of shape {shape} needs {need} bytes; the file gives it "
                                       f"{offsets[1] - offsets[0]}")


def safetensors_metadata(path: Path | str) -> dict[str, str]:
    return _metadata(Path(path), read_safetensors_header(path))


def _metadata(path: Path, header: dict[str, Any]) -> dict[str, str]:
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ModelFileError(path, "the safetensors metadata is not a JSON object")
    return {str(k): str(v) for k, v in meta.items()}


def _onnx_proto(path: Path) -> Any:
    import onnx

    problem = regular_file_problem(path)
    if problem is not None:
        raise ModelFileError(path, problem)
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
    return _io_channels(_onnx_proto(Path(path)))


def _io_channels(proto: Any) -> tuple[int | None, int | None]:
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


def foreign_onnx_card(path: Path | str, class_names: Sequence[str],
                      io_channels: tuple[int | None, int | None] | None = None) -> ModelCard:
    """A card for an ONNX file made elsewhere: the given class names, ImageNet normalisation, 8-bit input.

    ``io_channels``: the graph's (input, output) channels when already read (:func:`onnx_io_channels`).
    Raises :class:`ModelFileError` when the graph's static output channels do not match the names.
    """
    p = Path(path)
    names = [n.strip() for n in class_names if n.strip()]
    if not names:
        raise ModelFileError(p, "no class names given")
    in_ch, out_ch = io_channels if io_channels is not None else onnx_io_channels(p)
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


@dataclass(frozen=True)
class ModelFile:
    """One model file, read once: its format, card and (safetensors) header, without torch.

    Made by :meth:`read` when a model is chosen and passed on from there — to the backend
    registry, the ONNX export cache and :func:`load_model` — so that the header is parsed and
    the file hashed once per choice, however many steps look at it.
    """

    path: Path
    format: ModelFormat
    card: ModelCard
    header: dict[str, Any] = field(default_factory=dict, repr=False)
    """The safetensors JSON header (tensor table and ``__metadata__``); empty for ONNX."""
    data_bytes: int = 0
    """Bytes of tensor data after the safetensors header."""

    @classmethod
    def read(cls, path: Path | str, class_names: Sequence[str] | None = None) -> ModelFile:
        """Read a ``.safetensors`` or ``.onnx`` model file (the errors: see :func:`load_card`)."""
        p = Path(path)
        fmt = model_format(p)
        if fmt == "safetensors":
            header, data_bytes = _read_header(p)
            return cls(p, fmt, _card(p, _metadata(p, header)), header, data_bytes)
        proto = _onnx_proto(p)
        meta = {e.key: e.value for e in proto.metadata_props}
        if CARD_KEY in meta:
            return cls(p, fmt, _card(p, meta))
        io = _io_channels(proto)
        if class_names:
            return cls(p, fmt, foreign_onnx_card(p, class_names, io))
        raise MissingCardError(p, "this ONNX file has no segstudio model card; give its class names "
                                  "(e.g. --classes background,cell)", io[1])

    @cached_property
    def sha256(self) -> str:
        """The file's SHA-256 (hex), computed on first use: the key of its ONNX export, its identity."""
        return file_sha256(self.path)

    @property
    def model_id(self) -> str:
        """``<file name>:<first 16 hex digits of its SHA-256>``: which model made a prediction."""
        return f"{self.path.name}:{self.sha256[:16]}"


def _card(p: Path, meta: dict[str, str]) -> ModelCard:
    text = meta.get(CARD_KEY)
    if text is None:
        raise ModelFileError(p, "this safetensors file has no segstudio model card (a bare state dict? "
                                "use `segstudio import-checkpoint` to make a model file from it)")
    try:
        return ModelCard.from_json(text)
    except CardError as exc:
        raise ModelFileError(p, str(exc)) from None


def load_card(path: Path | str, class_names: Sequence[str] | None = None) -> ModelCard:
    """The card of a ``.safetensors`` or ``.onnx`` model file, without torch.

    An ONNX file without a card needs ``class_names`` (else :class:`MissingCardError`);
    when it has a card, ``class_names`` is ignored. Raises :class:`ModelFileError`
    (or :class:`~segstudio.zoo.CardError`) with a readable reason.
    """
    return ModelFile.read(path, class_names).card


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
    with open_regular(path) as fh:
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
        model = ModelFile.read(p)
    except MissingCardError:
        facts.update(format="onnx", needs_classes=True)
        return facts
    except (ModelFileError, CardError, OSError) as exc:
        facts["error"] = str(exc)
        return facts
    card = model.card
    miou = next((m for m in reversed(card.metrics) if m.get("name") == "mIoU"), None)
    last = card.history[-1] if card.history else {}
    facts.update({
        "format": model.format,
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


def check_network_fits(path: Path | str, card: ModelCard, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse (``ModelFileError``) a card whose network does not have exactly the file's tensors.

    The network is built on the ``meta`` device — every shape, no memory — so a
    card asking for a huge network (``base_width=200000``) costs nothing to
    refuse. Raises before the real network is built.
    """
    import torch

    from segstudio.zoo import UnknownNetworkError

    p = Path(path)
    try:
        with torch.device("meta"):
            own = {k: tuple(v.shape) for k, v in build_from_card(card).state_dict().items()}
    except Exception as exc:  # a stranger's options may break a constructor in any way; nothing was allocated
        reason = str(exc) if isinstance(exc, (UnknownNetworkError, ValueError)) else f"{type(exc).__name__}: {exc}"
        raise ModelFileError(p, f"its card describes a network this segstudio cannot build: {reason}") from None
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    wrong = [f"{k} {shapes[k]} vs {own[k]}" for k in own if k in shapes and shapes[k] != own[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} mis-shaped (e.g. {', '.join(wrong[:3])})")
        raise ModelFileError(p, f"the weights do not fit the card's {card.arch} "
                                f"(options {card.options or 'default'}): " + "; ".join(parts))


def load_model(path: Path | str | ModelFile, device: str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Build the card's network and load the file's weights into it; returns (module in eval mode, card).

    ``path`` may be a :class:`ModelFile` already read (its header is not read again). Never unpickles:
    the weights are read by safetensors. Raises :class:`ModelFileError` if the file is not a segstudio
    safetensors model or its weights do not fit the network.
    """
    from safetensors.torch import load_file

    from segstudio.zoo import UnknownNetworkError

    if not isinstance(path, ModelFile) and model_format(path) == "safetensors":
        path = ModelFile.read(path)
    if not isinstance(path, ModelFile) or path.format != "safetensors":
        where = path.path if isinstance(path, ModelFile) else path
        raise ModelFileError(where, "an ONNX file has no PyTorch weights; open the .safetensors model instead")
    model_file = path
    p, card = model_file.path, model_file.card
    check_tensor_table(p, model_file.header, model_file.data_bytes)
    check_network_fits(p, card, tensor_shapes(model_file.header))  # before anything the size of the network
    try:
        model = build_from_card(card)
    except (UnknownNetworkError, ValueError) as exc:
        raise ModelFileError(p, f"its card describes a network this segstudio cannot build: {exc}") from None
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError for corrupt data
        raise ModelFileError(p, f"the weights are corrupt ({exc})") from None
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(device), card
