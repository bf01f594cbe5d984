"""The class panel: every class with its colour, pixel share and eye toggle; add, rename, recolour, merge.

The selected row is the class the tools paint. Unticking the eye hides a class
in the overlay; solo and mask view (actions of the window, shown as buttons
here) act on the selected class. Changes to the table go to the controller,
which saves them with the project.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.classes import RGB, ClassTable, default_colour

COL_EYE, COL_NAME, COL_SHARE = 0, 1, 2


def swatch(colour: RGB, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(*colour))
    return QIcon(pix)


class ClassPanel(QWidget):
    """Lists the classes; see the module docstring."""

    classSelected = Signal(int)
    hiddenChanged = Signal(object)  # set[int]
    addRequested = Signal(str, object)  # name, RGB
    renameRequested = Signal(int, str)
    recolourRequested = Signal(int, object)  # index, RGB
    mergeRequested = Signal(int, int)  # source, target

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = ClassTable()
        self.hidden: set[int] = set()
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["", "Class", "Share"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_EYE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_SHARE, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.unlabelled = QLabel()
        self.add_button = QPushButton("Add…")
        self.colour_button = QPushButton("Colour…")
        self.merge_button = QPushButton("Merge…")
        self.add_button.clicked.connect(self.ask_add)
        self.colour_button.clicked.connect(self.ask_recolour)
        self.merge_button.clicked.connect(self.ask_merge)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.colour_button, self.merge_button):
            buttons.addWidget(b)
        self.toggles = QHBoxLayout()
        self.toggles.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.unlabelled)
        layout.addLayout(buttons)
        layout.addLayout(self.toggles)

    def add_toggle(self, action: QAction) -> None:
        """Show a window action (solo, mask view) as a button under the list."""
        b = QToolButton()
        b.setDefaultAction(action)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toggles.insertWidget(self.toggles.count() - 1, b)

    # --- contents ------------------------------------------------------------------
    def set_classes(self, classes: ClassTable) -> None:
        current = self.current_class()
        self.classes = classes
        self.hidden = {i for i in self.hidden if i < len(classes)}
        with QSignalBlocker(self.tree):
            # rows are updated in place: a rename arrives while the row's own editor is closing
            while self.tree.topLevelItemCount() > len(classes):
                self.tree.takeTopLevelItem(self.tree.topLevelItemCount() - 1)
            for c in classes:
                item = self.tree.topLevelItem(c.index)
                if item is None:
                    item = QTreeWidgetItem(["", "", ""])
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setToolTip(COL_EYE, "Show or hide this class")
                    item.setTextAlignment(COL_SHARE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.tree.addTopLevelItem(item)
                item.setCheckState(COL_EYE, Qt.CheckState.Unchecked if c.index in self.hidden
                                   else Qt.CheckState.Checked)
                item.setText(COL_NAME, c.name)
                item.setIcon(COL_NAME, swatch(c.colour))
                item.setToolTip(COL_NAME, f"Class {c.index}: {c.name} — double-click the name to rename")
        if len(classes):
            self.set_current(min(current if current is not None else 0, len(classes) - 1))
        self.merge_button.setEnabled(len(classes) > 1)

    def set_counts(self, counts: np.ndarray | None, total: int) -> None:
        """Pixel counts per class of the current label (None: no image)."""
        with QSignalBlocker(self.tree):
            for i in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(i)
                if counts is None or total == 0 or i >= len(counts):
                    item.setText(COL_SHARE, "")
                else:
                    item.setText(COL_SHARE, _share(int(counts[i]), total))
        if counts is None or total == 0:
            self.unlabelled.setText("")
        else:
            labelled = int(np.sum(counts))
            self.unlabelled.setText(f"Not labelled: {_share(total - labelled, total)}")

    def current_class(self) -> int | None:
        item = self.tree.currentItem()
        return self.tree.indexOfTopLevelItem(item) if item is not None else None

    def set_current(self, index: int) -> None:
        item = self.tree.topLevelItem(index)
        if item is not None and item is not self.tree.currentItem():
            with QSignalBlocker(self.tree):
                self.tree.setCurrentItem(item)

    # --- reactions -----------------------------------------------------------------
    def _current_changed(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.classSelected.emit(self.tree.indexOfTopLevelItem(item))

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        index = self.tree.indexOfTopLevelItem(item)
        if column == COL_EYE:
            if item.checkState(COL_EYE) == Qt.CheckState.Checked:
                self.hidden.discard(index)
            else:
                self.hidden.add(index)
            self.hiddenChanged.emit(set(self.hidden))
        elif column == COL_NAME:
            name = item.text(COL_NAME).strip()
            old = self.classes[index].name
            if name and name != old and name not in self.classes.names:
                # after the editor has closed: the rename rebuilds what the editor still refers to
                QTimer.singleShot(0, lambda: self.renameRequested.emit(index, name))
            else:
                with QSignalBlocker(self.tree):
                    item.setText(COL_NAME, old)

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        if column == COL_NAME:
            self.tree.editItem(item, COL_NAME)

    def ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        name = name.strip()
        if not ok or not name:
            return
        if name in self.classes.names:
            QMessageBox.warning(self, "Add class", f"There is already a class called {name!r}.")
            return
        self.addRequested.emit(name, default_colour(len(self.classes)))

    def ask_recolour(self) -> None:
        index = self.current_class()
        if index is None:
            return
        old = QColor(*self.classes[index].colour)
        colour = QColorDialog.getColor(old, self, f"Colour of {self.classes[index].name}")
        if colour.isValid() and colour != old:
            self.recolourRequested.emit(index, (colour.red(), colour.green(), colour.blue()))

    def ask_merge(self) -> None:
        source = self.current_class()
        if source is None or len(self.classes) < 2:
            return
        others = [c.name for c in self.classes if c.index != source]
        name = self.classes[source].name
        target, ok = QInputDialog.getItem(self, "Merge classes", f"Merge {name!r} into:", others, 0, False)
        if not ok:
            return
        answer = QMessageBox.question(
            self, "Merge classes",
            f"Every {name!r} pixel in every label and prediction becomes {target!r}, and {name!r} is removed. "
            "This rewrites the project's masks and clears the undo history of the open images. Merge?")
        if answer == QMessageBox.StandardButton.Yes:
            self.mergeRequested.emit(source, self.classes.index_of(target))


def _share(count: int, total: int) -> str:
    pct = 100.0 * count / total
    if count and pct < 0.1:
        return "<0.1%"
    return f"{pct:.1f}%"
