"""The desktop app (PySide6). The only subpackage that imports Qt.

Importing it loads onnxruntime's native libraries before Qt's (on Windows the
reverse order can pick up conflicting DLLs).
"""

import contextlib

with contextlib.suppress(ImportError):  # without onnxruntime the app still opens images and edits labels
    import onnxruntime  # noqa: F401
