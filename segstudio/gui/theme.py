"""Light and dark themes that follow the system's colour scheme (or the user's choice).

The Fusion style is used everywhere so that the app looks the same on every
platform; its palette is light or dark to match ``QStyleHints.colorScheme()``
(Qt 6.5+, updated live when the system switches) unless the user chose one.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from segstudio.paths import ICON_SIZES, icon_path

THEMES = ("system", "light", "dark")


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return bool(hints.colorScheme() == Qt.ColorScheme.Dark)


def _palette(window: QColor, base: QColor, text: QColor, disabled: QColor, button: QColor,
             shades: tuple[QColor, QColor, QColor, QColor], alternate: QColor) -> QPalette:
    p = QPalette()
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, alternate)
    p.setColor(QPalette.ColorRole.ToolTipBase, button)
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, disabled)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, button)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor(255, 90, 90))
    light, midlight, mid, dark = shades
    p.setColor(QPalette.ColorRole.Light, light)
    p.setColor(QPalette.ColorRole.Midlight, midlight)
    p.setColor(QPalette.ColorRole.Mid, mid)
    p.setColor(QPalette.ColorRole.Dark, dark)
    p.setColor(QPalette.ColorRole.Shadow, QColor(0, 0, 0))
    p.setColor(QPalette.ColorRole.Link, QColor(42, 130, 218))
    p.setColor(QPalette.ColorRole.Highlight, QColor(42, 130, 218))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def dark_palette() -> QPalette:
    return _palette(QColor(45, 45, 48), QColor(30, 30, 32), QColor(225, 225, 225), QColor(125, 125, 125),
                    QColor(55, 55, 58), (QColor(75, 75, 78), QColor(62, 62, 65), QColor(40, 40, 42),
                                         QColor(25, 25, 27)), QColor(40, 40, 43))


def light_palette() -> QPalette:
    return _palette(QColor(239, 239, 239), QColor(255, 255, 255), QColor(20, 20, 20), QColor(150, 150, 150),
                    QColor(232, 232, 232), (QColor(255, 255, 255), QColor(227, 227, 227), QColor(160, 160, 160),
                                            QColor(120, 120, 120)), QColor(245, 245, 245))


def is_dark(theme: str) -> bool:
    return theme == "dark" or (theme == "system" and system_is_dark())


def apply_theme(app: QApplication, theme: str) -> bool:
    """Use Fusion with a light or dark palette for ``theme`` ("system", "light", "dark"); True if dark."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}; one of {', '.join(THEMES)}")
    app.setStyle("Fusion")
    dark = is_dark(theme)
    app.setPalette(dark_palette() if dark else light_palette())
    return dark


def app_icon() -> QIcon:
    """segstudio's icon at every rendered size (resources/icons/segstudio-<size>.png).

    PNGs rather than the SVG, so that no SVG icon-engine plugin is needed (a frozen app may lack it).
    The icon is empty, and Qt shows its default, when the files are missing.
    """
    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon
