"""Import a foreign PyTorch checkpoint (a state dict from another project) into a segstudio model.

The checkpoint is read with ``torch.load(weights_only=True)`` (or safetensors),
so a file from a stranger cannot run code. Weights are matched to the chosen
network by name (after stripping a wrapper prefix such as ``module.``) and
shape; the :class:`ImportReport` lists what was loaded, what the network has
that the checkpoint lacks (missing), what the checkpoint has that the network
does not (unexpected), and same-named tensors of another shape (mis-shaped —
typically the classifier when the class count differs).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.core.classes import ClassTable
from segstudio.core.regular_file import open_regular
from segstudio.inference.model_file import ModelFileError, build_from_card, save_model
from segstudio.zoo import ModelCard
from segstudio.zoo.card import now_iso

if TYPE_CHECKING:
    from torch import nn

# Where training scripts commonly nest the weights, and the wrapper prefixes they add.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network", "weights", "params")
_PREFIXES = ("", "module.", "model.", "model.module.", "net.", "network.", "_orig_mod.", "module.model.")


class CheckpointError(ModelFileError):
    """A checkpoint that cannot be imported (unreadable, holds code objects, or matches nothing)."""


@dataclass
class ImportReport:
    """What an import matched. ``ok`` when every tensor of the network was loaded and nothing was left over."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    """(name, shape in the checkpoint, shape in the network)."""
    nested_key: str = ""
    stripped_prefix: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def to_json(self) -> dict[str, Any]:
        return {
            "loaded": len(self.loaded),
            "missing": self.missing,
            "unexpected": self.unexpected,
            "mismatched": [[k, list(a), list(b)] for k, a, b in self.mismatched],
            "nested_key": self.nested_key,
            "stripped_prefix": self.stripped_prefix,
        }

    def describe(self, limit: int = 20) -> str:
        """A readable multi-line report."""
        lines = [f"loaded {len(self.loaded)} tensors"
                 + (f" from checkpoint[{self.nested_key!r}]" if self.nested_key else "")
                 + (f", prefix {self.stripped_prefix!r} stripped" if self.stripped_prefix else "")]

        def block(title: str, items: Sequence[str]) -> None:
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines.extend(f"  {s}" for s in items[:limit])
                if len(items) > limit:
                    lines.append(f"  … and {len(items) - limit} more")

        block("missing from the checkpoint, left at their initial values", self.missing)
        block("unexpected in the checkpoint, ignored", self.unexpected)
        block("mis-shaped (checkpoint vs network), left at their initial values",
              [f"{k}: {list(a)} vs {list(b)}" for k, a, b in self.mismatched])
        return "\n".join(lines)


def _is_tensor_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_checkpoint(path: Path | str) -> tuple[dict[str, Any], str]:
    """(flat name → tensor dict, the key it was nested under or ''), read without executing code."""
    import torch

    p = Path(path)
    try:
        with open_regular(p) as fh:
            head = fh.read(9)
    except FileNotFoundError:
        raise CheckpointError(p, "the file does not exist") from None
    except OSError as exc:
        raise CheckpointError(p, exc.strerror or str(exc)) from None
    if len(head) == 9 and head[8:9] == b"{":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p))), ""
        except Exception as exc:  # safetensors' own error type
            raise CheckpointError(p, f"not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            p, "the checkpoint holds Python objects other than tensors and plain containers; segstudio "
               f"only loads plain weights (weights_only=True) so that a file cannot run code ({exc})") from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/... for files that are not checkpoints
        raise CheckpointError(p, f"not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if _is_tensor_dict(obj):
        return dict(obj), ""
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if _is_tensor_dict(obj.get(key)):
                return dict(obj[key]), key
        # Some checkpoints mix tensors with bookkeeping (epoch numbers): keep the tensors.
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, ""
    top = type(obj).__name__
    if isinstance(obj, Mapping):
        top += " with keys " + ", ".join(map(str, list(obj)[:8]))
    raise CheckpointError(p, f"found no state dict (name → tensor) in the checkpoint (top level is {top})")


def match_state(model: nn.Module, state: Mapping[str, Any]) -> tuple[dict[str, Any], ImportReport]:
    """Tensors of ``state`` that fit ``model`` (by name after the best prefix strip, and by shape), and the report."""
    own = model.state_dict()

    def renamed(prefix: str) -> dict[str, Any]:
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if prefix else dict(state)

    best_prefix = max(_PREFIXES, key=lambda pre: sum(1 for k in renamed(pre) if k in own))
    candidate = renamed(best_prefix)
    report = ImportReport(stripped_prefix=best_prefix)
    usable: dict[str, Any] = {}
    for key, value in candidate.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            usable[key] = value
            report.loaded.append(key)
    if best_prefix:
        report.unexpected.extend(k for k in state if not k.startswith(best_prefix))
    report.missing = [k for k in own if k not in candidate]
    return usable, report


def import_checkpoint(path: Path | str, arch: str, classes: ClassTable | Sequence[str], *,
                      in_channels: int = 3, options: Mapping[str, Any] | None = None,
                      strict: bool = False, name: str = "") -> tuple[nn.Module, ModelCard, ImportReport]:
    """Build ``arch`` for ``classes`` and load the checkpoint's matching weights into it.

    Unmatched tensors keep their initial values and are listed in the report.
    Raises :class:`CheckpointError` when nothing matches, or — with ``strict`` —
    when anything is missing, unexpected or mis-shaped.
    """
    p = Path(path)
    table = classes if isinstance(classes, ClassTable) else ClassTable.from_names(list(classes))
    card = ModelCard(arch=arch, classes=table, in_channels=in_channels, options=dict(options or {}),
                     name=name or p.stem)
    model = build_from_card(card)
    card.options = dict(getattr(model, "segstudio_options", card.options))
    state, nested = read_checkpoint(p)
    usable, report = match_state(model, state)
    report.nested_key = nested
    if not usable:
        raise CheckpointError(p, f"none of its {len(state)} tensors fits {arch} "
                                 f"(checkpoint names look like {', '.join(list(state)[:3])}; "
                                 f"{arch} names look like {', '.join(list(model.state_dict())[:3])})")
    if strict and not report.ok:
        raise CheckpointError(p, "the checkpoint does not match exactly (--strict):\n" + report.describe())
    model.load_state_dict(usable, strict=False)
    model.eval()
    card.history.append({
        "event": "imported", "when": now_iso(), "from": p.name,
        "loaded": len(report.loaded), "missing": len(report.missing),
        "unexpected": len(report.unexpected), "mismatched": len(report.mismatched),
    })
    return model, card, report


def import_checkpoint_file(path: Path | str, out: Path | str, arch: str, classes: ClassTable | Sequence[str],
                           **kwargs: Any) -> ImportReport:
    """:func:`import_checkpoint` and write the result to ``out`` (``.safetensors``) atomically."""
    model, card, report = import_checkpoint(path, arch, classes, **kwargs)
    save_model(out, model, card)
    return report
