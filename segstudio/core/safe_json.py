"""JSON from files a stranger may have written: nesting depth bounded before the parser runs.

Python's JSON parser recurses once per nesting level; a file of a million
``[`` raises ``RecursionError`` (or, on a thread with a small stack, overflows
it). No file segstudio reads (project files, COCO, labelme, model cards,
safetensors headers) nests deeper than a dozen levels, so :func:`loads`
measures the depth first — strings removed, then a running count of brackets,
in vectorised numpy — and refuses anything deeper than :data:`MAX_DEPTH` with
:class:`JsonTooDeepError`. That error is a ``json.JSONDecodeError``, so every
reader that already reports "not valid JSON (…)" reports this too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 100
"""The deepest nesting accepted; real files stay far below it (COCO polygons: 5 levels)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = np.zeros(256, np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class JsonTooDeepError(json.JSONDecodeError):
    """JSON nested deeper than the reader allows (a hostile or broken file)."""

    def __str__(self) -> str:
        return self.msg  # no "line 1 column 1": the depth, not a position, is what is wrong


def nesting_depth(text: str | bytes) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings do not count)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"[" not in data and b"{" not in data:
        return 0
    bare = _STRING.sub(b'""', data) if b'"' in data else data
    steps = _STEP[np.frombuffer(bare, np.uint8)]
    brackets = steps[np.flatnonzero(steps)]  # far fewer than the bytes: the running sum stays cheap
    if brackets.size == 0:
        return 0
    return int(np.cumsum(brackets, dtype=np.int64).max())


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the nesting depth checked first (:class:`JsonTooDeepError` beyond ``max_depth``).

    Raises ``json.JSONDecodeError`` (of which :class:`JsonTooDeepError` is one)
    and ``UnicodeDecodeError`` like ``json.loads``.
    """
    depth = nesting_depth(text)
    if depth > max_depth:
        doc = text if isinstance(text, str) else ""
        raise JsonTooDeepError(f"nested {depth} levels deep, more than the {max_depth} a real file needs", doc, 0)
    return json.loads(text)
