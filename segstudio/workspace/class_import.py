"""Class tables to import into a project: from a model file, another project, a batch legend, or a list of names.

:func:`read_class_table` reads one of

- a model file (``.onnx``, ``.safetensors``): the classes of its model card;
- a JSON file: a project's ``segstudio.json``, a batch run's ``classes.json``
  legend (``{"classes": [...]}``), or a bare list; each class is a name, or an
  object with ``name`` and optionally ``colour`` (``[r, g, b]``) and ``index``
  (the order; else the order of the list);
- a text file (``.txt``, ``.csv``): one class name a line (a CSV's first column;
  blank lines and ``#`` comments skipped).

The project takes the imported table as :func:`~segstudio.workspace.model_choice.adopted`
says: the imported classes in their order and colours, the project's other classes
after them, every mask renumbered by name. Qt-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from segstudio.core.classes import RGB, ClassTable, default_colour
from segstudio.inference.model_file import ModelFileError, load_card
from segstudio.zoo import CardError

CLASS_FILE_PATTERNS = "*.json *.onnx *.safetensors *.txt *.csv"
"""For a file dialog: the files :func:`read_class_table` reads."""
MODEL_SUFFIXES = (".onnx", ".safetensors")


class ClassFileError(ValueError):
    """The file holds no usable class table; the message says why, for people."""


def read_class_table(path: Path | str) -> ClassTable:
    """The class table in ``path`` (see the module docstring). Raises :class:`ClassFileError`."""
    p = Path(path)
    try:
        if p.suffix.lower() in MODEL_SUFFIXES:
            table = _from_model(p)
        elif p.suffix.lower() == ".json":
            table = _from_json(json.loads(p.read_text(encoding="utf-8")))
        else:
            table = _from_names(p.read_text(encoding="utf-8"))
    except ClassFileError as exc:
        raise ClassFileError(f"{p.name}: {exc}") from None
    except OSError as exc:
        raise ClassFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ClassFileError(f"{p.name} is not a text file") from None
    except json.JSONDecodeError as exc:
        raise ClassFileError(f"{p.name} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not len(table):
        raise ClassFileError(f"{p.name} holds no classes")
    return table


def _from_model(p: Path) -> ClassTable:
    try:
        return load_card(p).classes
    except (ModelFileError, CardError) as exc:
        raise ClassFileError(str(exc)) from None


def _from_json(doc: Any) -> ClassTable:
    items = doc.get("classes") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ClassFileError('no list of classes (a "classes" list, or a bare list)')
    names: list[str] = []
    colours: list[RGB] = []
    order: list[float] = []
    for n, item in enumerate(items):
        if isinstance(item, str):
            name, colour, index = item, None, n
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, colour, index = item["name"], item.get("colour", item.get("color")), item.get("index", n)
        else:
            raise ClassFileError(f"class {n + 1} is neither a name nor an object with a name")
        if not isinstance(index, int):
            raise ClassFileError(f"class {name!r} has the index {index!r}, not a number")
        names.append(name.strip())
        colours.append(_colour(name, colour, n))
        order.append(index)
    ranked = sorted(range(len(names)), key=lambda k: order[k])
    return _table([names[k] for k in ranked], [colours[k] for k in ranked])


def _colour(name: str, colour: Any, n: int) -> RGB:
    if colour is None:
        return default_colour(n)
    if (not isinstance(colour, list) or len(colour) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in colour)):
        raise ClassFileError(f"class {name!r} has the colour {colour!r}, not [r, g, b] with values 0-255")
    return (colour[0], colour[1], colour[2])


def _from_names(text: str) -> ClassTable:
    names = [line.split(",")[0].strip() for line in text.splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    return _table(names, [default_colour(i) for i in range(len(names))])


def _table(names: list[str], colours: list[RGB]) -> ClassTable:
    if any(not n for n in names):
        raise ClassFileError("a class has an empty name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ClassFileError(f"class names appear twice: {', '.join(dup)}")
    return ClassTable.from_names(names, colours)
