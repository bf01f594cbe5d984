"""``segstudio models``: list the networks in the zoo."""

from __future__ import annotations

import argparse
import json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the networks in the zoo",
        description="List the networks that can be built and trained.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from segstudio import zoo

    specs = [zoo.get_spec(n) for n in zoo.net_names()]
    if args.json:
        print(json.dumps([s.summary() for s in specs], indent=2))
        return 0
    print(f"{'network':<16} {'family':<10} {'stride':>6}  description")
    for s in specs:
        print(f"{s.name:<16} {s.family:<10} {s.output_stride:>6}  {s.title}")
    return 0
