"""The class panel: every class with its colour, pixel share and eye toggle; add, rename, recolour, delete (its
pixels merged into another class or made "not labelled", undoable), reorder, import a class table.

The selected row is the class the tools paint. Unticking the eye hides a class
in the overlay; solo and mask view (actions of the window, shown as buttons
here) act on the selected class. Changes to the table go to the controller,
which saves them with the project. An empty table (a new project) shows how to
get classes: add them, import a table, or choose a model.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QFileDialog,
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
from segstudio.workspace.class_import import CLASS_FILE_PATTERNS, ClassFileError, read_class_table

COL_EYE, COL_NAME, COL_SHARE = 0, 1, 2
NOT_LABELLED = "(not labelled)"


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
    deleteRequested = Signal(int, object)  # index, the class its pixels go to (None: "not labelled")
    moveRequested = Signal(int, int)  # index, new place
    importRequested = Signal(object)  # ClassTable read from a file

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
        self.empty_hint = QLabel("No classes yet. Add classes (Add…), import a class table from a model or a "
                                 "file (Import…), or choose a model in the Model panel to start with its classes.")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setVisible(False)
        self.add_button = QPushButton("Add…")
        self.colour_button = QPushButton("Colour…")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected class: its pixels go to another class or become "
                                      "not labelled (Edit › Undo brings it back)")
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Take the class table of a model file, a project, a classes.json legend "
                                      "or a list of names")
        self.up_button = QToolButton()
        self.up_button.setArrowType(Qt.ArrowType.UpArrow)
        self.up_button.setToolTip("Move the selected class up (its number changes in every mask; undoable)")
        self.down_button = QToolButton()
        self.down_button.setArrowType(Qt.ArrowType.DownArrow)
        self.down_button.setToolTip("Move the selected class down (its number changes in every mask; undoable)")
        self.add_button.clicked.connect(self.ask_add)
        self.colour_button.clicked.connect(self.ask_recolour)
        self.delete_button.clicked.connect(self.ask_delete)
        self.import_button.clicked.connect(self.ask_import)
        self.up_button.clicked.connect(lambda: self.move_current(-1))
        self.down_button.clicked.connect(lambda: self.move_current(1))
        buttons = QHBoxLayout()
        for b in (self.add_button, self.colour_button, self.delete_button):
            buttons.addWidget(b)
        more = QHBoxLayout()  # a second row: the panel is no wider than with three buttons
        more.addWidget(self.import_button)
        more.addStretch(1)
        more.addWidget(self.up_button)
        more.addWidget(self.down_button)
        self.toggles = QHBoxLayout()
        self.toggles.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.unlabelled)
        layout.addLayout(buttons)
        layout.addLayout(more)
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
        self.empty_hint.setVisible(not len(classes))
        self._update_buttons()

    def _update_buttons(self) -> None:
        n, current = len(self.classes), self.current_class()
        self.colour_button.setEnabled(current is not None)
        self.delete_button.setEnabled(current is not None)
        self.up_button.setEnabled(current is not None and current > 0)
        self.down_button.setEnabled(current is not None and current < n - 1)

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
        self._update_buttons()

    # --- reactions -----------------------------------------------------------------
    def _current_changed(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.classSelected.emit(self.tree.indexOfTopLevelItem(item))
        self._update_buttons()

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

    def ask_delete(self) -> None:
        """Delete the selected class, asking where its pixels go: another class (a merge) or "not labelled"."""
        index = self.current_class()
        if index is None:
            return
        name = self.classes[index].name
        others = [c.name for c in self.classes if c.index != index]
        target, ok = QInputDialog.getItem(self, "Delete class", f"Delete {name!r}; its pixels become:",
                                          [NOT_LABELLED, *others], 0, False)
        if not ok:
            return
        into = None if target == NOT_LABELLED else self.classes.index_of(target)
        becomes = "not labelled" if into is None else f"{target!r}"
        answer = QMessageBox.question(
            self, "Delete class",
            f"{name!r} is removed, and every {name!r} pixel in every label and prediction becomes {becomes}. "
            "The project's masks are rewritten; Edit › Undo brings it all back. Delete?")
        if answer == QMessageBox.StandardButton.Yes:
            self.deleteRequested.emit(index, into)

    def move_current(self, step: int) -> None:
        index = self.current_class()
        if index is not None and 0 <= index + step < len(self.classes):
            self.moveRequested.emit(index, index + step)

    def ask_import(self) -> None:
        """Read a class table from a file the user picks and hand it on (after a confirmation when the project
        already has classes: its masks are renumbered)."""
        file, _ = QFileDialog.getOpenFileName(self, "Import a class table", "",
                                              f"Class tables ({CLASS_FILE_PATTERNS});;All files (*)")
        if not file:
            return
        try:
            table = read_class_table(file)
        except ClassFileError as exc:
            QMessageBox.warning(self, "Import classes", f"Cannot import classes: {exc}")
            return
        if len(self.classes):
            answer = QMessageBox.question(
                self, "Import classes",
                f"The classes become {', '.join(table.names)} (in this order and these colours), the project's "
                "other classes after them. Labels and predictions are renumbered by class name. Import?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.importRequested.emit(table)


def _share(count: int, total: int) -> str:
    pct = 100.0 * count / total
    if count and pct < 0.1:
        return "<0.1%"
    return f"{pct:.1f}%"
