"""Editing as data: tools are functions on numpy masks that return undo atoms."""

from segstudio.core.editing.history import Atom, History, Stroke
from segstudio.core.editing.tools import (
    NO_LOCK,
    PaintLock,
    accept_prediction,
    erase_segment,
    fill_polygon,
    flood_fill,
    paint_segment,
    pick_class,
    polygon_region,
)

__all__ = [
    "NO_LOCK",
    "Atom",
    "History",
    "PaintLock",
    "Stroke",
    "accept_prediction",
    "erase_segment",
    "fill_polygon",
    "flood_fill",
    "paint_segment",
    "pick_class",
    "polygon_region",
]
