"""The zoo's table: parameters against the reference count, and GMACs, for every network.

Usage (from the repository root)::

    python -m benchmarks.nets_table                     # plain table, every network
    python -m benchmarks.nets_table --markdown          # the table of docs/MODEL_ZOO.md
    python -m benchmarks.nets_table --only unet,linknet --skip-flops

For each network of ``segstudio.nets.available()``: our parameter count at 19
classes under the spec's ``reference_options``, the reference count
(``NetSpec.reference_params``, from docs/MODEL_NOTES.md) and the relative
difference, and GMACs (multiply-accumulates, 10⁹; one MAC = two FLOPs) of one
eval-mode forward pass at batch 1, 360×480 (CamVid) and 1024×2048
(Cityscapes), counted by ``torch.utils.flop_counter.FlopCounterMode``
(convolutions, matrix products, attention; see benchmarks/netstats.py). A
network that fails to build or run gets its error in its row; the others go on.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.netstats import (
    NUM_CLASSES,
    build,
    count_macs,
    count_params,
    markdown_table,
    select_networks,
    size_label,
    text_table,
)
from segstudio import zoo

FLOP_SIZES: tuple[tuple[int, int], ...] = ((360, 480), (1024, 2048))


@dataclass
class Row:
    name: str
    params: int | None = None
    reference: int | None = None
    gmacs: dict[tuple[int, int], float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def rel_diff(self) -> float | None:
        if self.params is None or not self.reference:
            return None
        return (self.params - self.reference) / self.reference


def measure(name: str, flops: bool) -> Row:
    """One network's row; errors are recorded, never raised."""
    row = Row(name, reference=zoo.get_spec(name).reference_params)
    try:
        model = build(name)
        row.params = count_params(model)
    except Exception as exc:
        row.errors.append(f"build: {type(exc).__name__}: {exc}")
        return row
    if flops:
        for hw in FLOP_SIZES:
            try:
                row.gmacs[hw] = count_macs(model, hw) / 1e9
            except Exception as exc:
                row.errors.append(f"{size_label(hw)}: {type(exc).__name__}: {exc}")
    return row


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _cells(row: Row, flops: bool) -> list[str]:
    diff = row.rel_diff
    spec = zoo.get_spec(row.name)
    cells = [
        row.name,
        _count(row.params),
        _count(row.reference),
        "—" if diff is None else f"{diff:+.2%}",
    ]
    if flops:
        cells += [f"{row.gmacs[hw]:,.1f}" if hw in row.gmacs else "—" for hw in FLOP_SIZES]
    options = ", ".join(f"{k}={v}" for k, v in spec.reference_options.items())
    note = "; ".join(row.errors) if row.errors else options
    cells.append(note.replace("|", "/"))
    return cells


def render(rows: list[Row], flops: bool, markdown: bool) -> str:
    headers = ["network", f"params ({NUM_CLASSES} cls)", "reference", "Δ"]
    if flops:
        headers += [f"GMACs {size_label(hw)}" for hw in FLOP_SIZES]
    headers.append("options / error")
    right = [False, True, True, True] + [True] * (len(FLOP_SIZES) if flops else 0) + [False]
    body = [_cells(r, flops) for r in rows]
    return (markdown_table if markdown else text_table)(headers, body, right)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (docs/MODEL_ZOO.md)")
    parser.add_argument("--only", help="comma-separated network names (default: every network)")
    parser.add_argument("--skip-flops", action="store_true", help="parameters only")
    args = parser.parse_args(argv)
    flops = not args.skip_flops
    rows = []
    for name in select_networks(args.only):
        t0 = time.perf_counter()
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, flops))
        print(f"  {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    print(render(rows, flops, args.markdown))
    if flops:
        print("\nGMACs: 10⁹ multiply-accumulates of one forward pass at batch 1 (1 MAC = 2 FLOPs; papers' "
              "\"GFLOPs\" are usually MACs), convolutions, matrix products and attention only.")
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
