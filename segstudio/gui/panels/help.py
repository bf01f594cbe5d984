"""Help → Keyboard shortcuts: a table built from the action containers, plus the mouse controls."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

MOUSE_CONTROLS = [
    ("View", "Zoom around the cursor", "Wheel"),
    ("View", "Pan", "Middle drag, or Space + drag"),
    ("Tools", "Brush radius", "Ctrl + wheel"),
    ("Tools", "Close a polygon", "Double-click, Enter, or click the first corner"),
    ("Tools", "Cancel a polygon or lasso", "Esc"),
]


class ShortcutsDialog(QDialog):
    """Lists (group, action, keys) rows."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        all_rows = rows + MOUSE_CONTROLS
        self.table = QTableWidget(len(all_rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        for r, row in enumerate(all_rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 640)
