"""The file panel: the project's images with thumbnails and status, a status filter, next/previous.

Thumbnails are made by one background task per project (decode + shrink in a
worker thread, converted to pixmaps on the UI thread as they arrive); the list
is usable at once and fills in as they come. An image that cannot be read
(found while making its thumbnail, or when opening it) is marked: a warning
icon in place of the thumbnail, a "broken" pill, and the reason in its tooltip.
"""

from __future__ import annotations

from collections.abc import Generator

import cv2
import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.image_io import ImageReadError, read_image
from segstudio.core.project import Project
from segstudio.core.project_file import STATUSES, ImageEntry
from segstudio.core.tasks import CancelToken
from segstudio.gui.workers import Task, WorkerPool

THUMB = 64
STATUS_COLOURS = {
    "unlabelled": QColor(140, 140, 140),
    "predicted": QColor(66, 133, 244),
    "corrected": QColor(245, 166, 35),
    "reviewed": QColor(52, 168, 83),
}
StatusRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
BrokenRole = Qt.ItemDataRole.UserRole + 3  # why the image cannot be read, or None
BROKEN_COLOUR = QColor(200, 40, 40)
_Index = QModelIndex | QPersistentModelIndex


Thumbnail = tuple[str, "np.ndarray | str"]
"""(image path, its RGB thumbnail, or why it cannot be read)."""


def make_thumbnails(project: Project, entries: list[ImageEntry], size: int,
                    cancel: CancelToken) -> Generator[Thumbnail, None, None]:
    """Yield (image path, RGB thumbnail no larger than ``size``², or why it cannot be read) for each entry."""
    for e in entries:
        cancel.raise_if_cancelled()
        try:
            rgb = read_image(project.image_path(e)).display
        except ImageReadError as exc:
            yield e.path, str(exc) or "cannot be read"
            continue
        h, w = rgb.shape[:2]
        s = size / max(h, w)
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        yield e.path, np.ascontiguousarray(small)


class FileListModel(QAbstractListModel):
    """The project's images: display name, status, thumbnail."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.entries: list[ImageEntry] = []
        self.rows: dict[str, int] = {}
        self.thumbs: dict[str, QPixmap] = {}
        self.broken: dict[str, str] = {}
        """Images that cannot be read, and why."""

    def set_project(self, project: Project | None) -> None:
        self.beginResetModel()
        self.project = project
        self.entries = project.images if project is not None else []
        self.rows = {e.path: i for i, e in enumerate(self.entries)}
        self.thumbs = {k: v for k, v in self.thumbs.items() if k in self.rows}
        self.broken = {k: v for k, v in self.broken.items() if k in self.rows}
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        e = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return e.name
        if role == Qt.ItemDataRole.ToolTipRole:
            reason = self.broken.get(e.path)
            return f"{e.path}\n" + (f"Cannot be read: {reason}" if reason is not None else e.status)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(e.path)
        if role == StatusRole:
            return e.status
        if role == BrokenRole:
            return self.broken.get(e.path)
        if role == PathRole:
            return e.path
        return None

    def refresh_path(self, path: str) -> None:
        row = self.rows.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def mark_broken(self, path: str, reason: str) -> None:
        """``path`` cannot be read, for ``reason`` (shown in its tooltip)."""
        self.broken[path] = reason
        self.thumbs.pop(path, None)
        self.refresh_path(path)

    def set_thumbnail(self, path: str, rgb: np.ndarray | str, dpr: float) -> None:
        if isinstance(rgb, str):
            self.mark_broken(path, rgb)
            return
        h, w = rgb.shape[:2]
        img = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
        pix = QPixmap.fromImage(img)
        pix.setDevicePixelRatio(dpr)
        self.thumbs[path] = pix
        self.broken.pop(path, None)
        self.refresh_path(path)


class StatusFilter(QSortFilterProxyModel):
    """Shows all images, or those with one status."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status: str | None = None

    def set_status(self, status: str | None) -> None:
        self.status = status
        self.refilter()

    def refilter(self) -> None:
        """Filter again (after the filter or an image's status changed)."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        if self.status is None:
            return True
        model = self.sourceModel()
        return bool(model.data(model.index(row, 0, parent), StatusRole) == self.status)


class FileDelegate(QStyledItemDelegate):
    """Thumbnail, name, and a status pill in the status colour."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return QSize(200, THUMB + 8)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        painter.save()
        style = option.widget.style() if option.widget is not None else None
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        r = option.rect
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        box = QRect(r.left() + 4, r.top() + 4, THUMB, THUMB)
        broken = index.data(BrokenRole) is not None
        if broken and style is not None:
            painter.fillRect(box, option.palette.alternateBase())
            icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            icon.paint(painter, box.adjusted(12, 12, -12, -12))
        elif isinstance(pix, QPixmap):
            size = pix.deviceIndependentSize().toSize()
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pix)
        else:
            painter.fillRect(box, option.palette.alternateBase())
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_colour = option.palette.highlightedText() if selected else option.palette.text()
        painter.setPen(text_colour.color())
        text_rect = QRect(box.right() + 8, r.top() + 6, r.width() - THUMB - 16, r.height() // 2)
        name = painter.fontMetrics().elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), name)
        status = "broken" if broken else str(index.data(StatusRole))
        fm = painter.fontMetrics()
        pill = QRect(text_rect.left(), r.top() + r.height() // 2 + 4, fm.horizontalAdvance(status) + 12,
                     fm.height() + 2)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BROKEN_COLOUR if broken else STATUS_COLOURS.get(status, QColor(128, 128, 128)))
        painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), status)
        painter.restore()


class FilePanel(QWidget):
    """The image list. ``imageActivated(path)`` asks to show an image."""

    imageActivated = Signal(str)

    def __init__(self, workers: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.model = FileListModel(self)
        self.proxy = StatusFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QComboBox()
        self.filter.addItem("All images", None)
        for s in STATUSES:
            self.filter.addItem(s.capitalize(), s)
        self.filter.currentIndexChanged.connect(lambda _: self.proxy.set_status(self.filter.currentData()))
        self.list = QListView()
        self.list.setModel(self.proxy)
        self.list.setItemDelegate(FileDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.list.clicked.connect(self._clicked)
        self.list.activated.connect(self._clicked)
        self.count = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.count)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self._thumb_task: Task | None = None

    # --- project -------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        if self._thumb_task is not None:
            self._thumb_task.cancel()
            self._thumb_task = None
        self.model.set_project(project)
        self._update_count()
        if project is None:
            return
        missing = [e for e in self.model.entries if e.path not in self.model.thumbs]
        if missing:
            dpr = self.devicePixelRatioF()
            size = round(THUMB * dpr)
            self._thumb_task = self.workers.start(
                "thumbnails", lambda c: make_thumbnails(project, missing, size, c),
                on_progress=lambda item: self.model.set_thumbnail(item[0], item[1], dpr))

    def mark_broken(self, path: str, reason: str) -> None:
        """Mark ``path`` as unreadable (opening it failed), with the reason in its tooltip."""
        self.model.mark_broken(path, reason)

    def refresh_status(self, path: str) -> None:
        self.model.refresh_path(path)
        self.proxy.refilter()
        self._update_count()

    def _update_count(self, *_: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        done = sum(e.status in ("corrected", "reviewed") for e in self.model.entries)
        self.count.setText(f"{shown} of {total} shown · {done} labelled" if total else "No images")

    # --- selection -----------------------------------------------------------------
    def _clicked(self, index: QModelIndex) -> None:
        self.imageActivated.emit(str(index.data(PathRole)))

    def select(self, path: str) -> None:
        """Highlight ``path`` (without emitting imageActivated)."""
        row = self.model.rows.get(path)
        if row is None:
            return
        idx = self.proxy.mapFromSource(self.model.index(row))
        if idx.isValid():
            self.list.setCurrentIndex(idx)
            self.list.scrollTo(idx)
        else:
            self.list.clearSelection()

    def _visible_paths(self) -> list[str]:
        return [str(self.proxy.index(r, 0).data(PathRole)) for r in range(self.proxy.rowCount())]

    def neighbour(self, current: str | None, step: int) -> str | None:
        """The image ``step`` places after ``current`` in the filtered list (None at the ends)."""
        paths = self._visible_paths()
        if not paths:
            return None
        if current is None or current not in paths:
            # the current image is filtered out: go to the nearest listed one in project order
            if current is None or current not in self.model.rows:
                return paths[0] if step > 0 else paths[-1]
            here = self.model.rows[current]
            after = [p for p in paths if (self.model.rows[p] > here) == (step > 0)]
            if not after:
                return None
            return after[0] if step > 0 else after[-1]
        i = paths.index(current) + step
        return paths[i] if 0 <= i < len(paths) else None

    def next_with_status(self, current: str | None, status: str) -> str | None:
        """The next image (in project order, wrapping) whose status is ``status``."""
        entries = self.model.entries
        if not entries:
            return None
        start = self.model.rows.get(current, -1) if current is not None else -1
        for k in range(1, len(entries) + 1):
            e = entries[(start + k) % len(entries)]
            if e.status == status and e.path != current:
                return e.path
        return None
