"""The canvas with a document: an image pyramid, an edit session and how to show its masks.

Label pixels are drawn in class colours over the image; the prediction is drawn
hatched, only where nothing is labelled, so the model's suggestion always looks
different from the user's own labels and accepted pixels lose the hatching. The
mask view shows the prediction too, where nothing is labelled, in stripes. Hidden classes, a solo class, the
outline-only style and the black/white mask view are all lookup-table changes:
no mask is copied.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QWidget

from segstudio.core.classes import MAX_CLASSES_8BIT, ClassTable
from segstudio.core.editing.session import EditSession, Rect
from segstudio.gui.canvas.layers import HeatSource, ImageSource, MaskSource
from segstudio.gui.canvas.view import CanvasView


def overlay_lut(classes: ClassTable, hidden: set[int] | frozenset[int] = frozenset(),
                solo: int | None = None) -> np.ndarray:
    """RGBA lookup table: class colours, opaque; unlabelled, hidden or non-solo classes transparent."""
    size = 65536 if len(classes) > MAX_CLASSES_8BIT else 256
    lut = np.zeros((size, 4), np.uint8)
    for c in classes:
        if c.index in hidden or (solo is not None and c.index != solo):
            continue
        lut[c.index, :3] = c.colour
        lut[c.index, 3] = 255
    return lut


class Canvas(CanvasView):
    """A :class:`CanvasView` showing one image, its label session, prediction and uncertainty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: EditSession | None = None
        self.classes = ClassTable()
        self.hidden: set[int] = set()
        self.solo: int | None = None
        self.outline = False
        self.mask_view_class: int | None = None
        self.opacity = 0.55
        self.overlay_visible = True
        self._apply_opacity()

    # --- document ------------------------------------------------------------------
    def show_document(self, pyramid: list[np.ndarray], session: EditSession, classes: ClassTable,
                      uncertainty: np.ndarray | None = None, fit: bool = True) -> None:
        """Show an image (its pyramid, level 0 first) with ``session``'s label and prediction."""
        if self.session is not None:
            self.session.listeners = [f for f in self.session.listeners if f != self._on_session_change]
        self.session = session
        session.listeners.append(self._on_session_change)
        self.classes = classes
        self.image_layer.set_source(ImageSource(pyramid))
        self._rebuild_masks()
        self.set_uncertainty(uncertainty)
        self.content_changed(fit=fit)

    def clear_document(self) -> None:
        if self.session is not None:
            self.session.listeners = [f for f in self.session.listeners if f != self._on_session_change]
        self.session = None
        for layer in (self.image_layer, self.label_layer, self.prediction_layer, self.heat_layer):
            layer.set_source(None)

    def _on_session_change(self, rect: Rect) -> None:
        shown = self.label_layer.source
        if self.session is not None and isinstance(shown, MaskSource) and shown.mask is not self.session.label:
            self._rebuild_masks()  # new arrays (EditSession.remap): draw them, not the old ones
            return
        y0, x0, y1, x1 = rect
        self.label_layer.invalidate(y0, x0, y1, x1)
        if self.session is not None and self.session.prediction is not None:
            src = self.prediction_layer.source
            if not isinstance(src, MaskSource) or src.mask is not self.session.prediction:
                self._rebuild_masks()
            else:
                self.prediction_layer.invalidate(y0, x0, y1, x1)
        elif self.prediction_layer.source is not None:
            self.prediction_layer.set_source(None)

    def _rebuild_masks(self) -> None:
        s = self.session
        if s is None:
            return
        lut = overlay_lut(self.classes, self.hidden, self.solo)
        if self.mask_view_class is not None:
            # the label in black and white; where nothing is labelled, the prediction beneath in white and grey
            # stripes (so the mask view shows what the model found, marked as not the user's)
            k, predicted = self.mask_view_class, s.prediction is not None
            self.label_layer.set_source(MaskSource(s.label, lut, "binary", k, clear_unlabelled=predicted))
            self.prediction_layer.set_source(
                MaskSource(s.prediction, lut, "binary-hatched", k, cover=s.label) if s.prediction is not None
                else None)
        else:
            style = "outline" if self.outline else "fill"
            self.label_layer.set_source(MaskSource(s.label, lut, style))
            if s.prediction is not None:
                pred_style = "outline" if self.outline else "hatched"
                # drawn only where nothing is labelled: accepted or painted pixels lose the hatching
                self.prediction_layer.set_source(MaskSource(s.prediction, lut, pred_style, cover=s.label))
            else:
                self.prediction_layer.set_source(None)
        self._apply_opacity()

    # --- how masks are shown --------------------------------------------------------
    def set_classes(self, classes: ClassTable) -> None:
        self.classes = classes
        self.hidden = {i for i in self.hidden if i < len(classes)}
        if self.solo is not None and self.solo >= len(classes):
            self.solo = None
        self._rebuild_masks()

    def set_hidden(self, hidden: set[int]) -> None:
        self.hidden = set(hidden)
        self._rebuild_masks()

    def set_solo(self, index: int | None) -> None:
        self.solo = index
        self._rebuild_masks()

    def set_outline(self, on: bool) -> None:
        self.outline = on
        self._rebuild_masks()

    def set_mask_view(self, index: int | None) -> None:
        """Show class ``index`` as a black/white mask (None: back to the colour overlay)."""
        self.mask_view_class = index
        self._rebuild_masks()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = max(0.0, min(1.0, opacity))
        self._apply_opacity()

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_visible = visible
        self._apply_opacity()

    def _apply_opacity(self) -> None:
        mask_view = self.mask_view_class is not None
        self.label_layer.setVisible(self.overlay_visible or mask_view)
        self.prediction_layer.setVisible(self.overlay_visible or mask_view)
        self.label_layer.setOpacity(1.0 if mask_view else self.opacity)
        self.prediction_layer.setOpacity(1.0 if mask_view else self.opacity)

    def set_uncertainty(self, values: np.ndarray | None) -> None:
        """A per-pixel uncertainty map in [0, 1] (None removes it); shown by :meth:`show_uncertainty`."""
        self.heat_layer.set_source(HeatSource(values) if values is not None else None)
        if values is None:
            self.heat_layer.setVisible(False)

    def show_uncertainty(self, visible: bool) -> None:
        self.heat_layer.setVisible(visible and self.heat_layer.source is not None)
        self.heat_layer.setOpacity(0.7)

    def refresh_prediction(self) -> None:
        """Call after ``session.set_prediction`` to redraw the suggestion layer."""
        self._rebuild_masks()
