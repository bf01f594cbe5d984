"""The desktop app (PySide6). The only subpackage that imports Qt.

Importing it loads onnxruntime's native libraries before Qt's (on Windows the
reverse order can pick up conflicting DLLs) and applies the binding
work-arounds of :mod:`segstudio.gui.qt_compat` before any signal is emitted.
"""

import contextlib

with contextlib.suppress(ImportError):  # without onnxruntime the app still opens images and edits labels
    import onnxruntime  # noqa: F401

from segstudio.gui import qt_compat

qt_compat.install()
