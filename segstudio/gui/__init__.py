"""The desktop app: the only sub-package that imports Qt (PySide6)."""
