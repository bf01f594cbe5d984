# Replaces PyInstaller's own hook for PySide6.QtGui (hooks given in hookspath take precedence):
# the same collection, less the Qt plugins named in freeze_manifest.TRIMMED_QT_PLUGINS. Dropping them
# here, before PyInstaller resolves the plugins' shared-library dependencies, keeps out the libraries
# that only those plugins need (the GTK stack of the gtk3 theme, QtNetwork and Kerberos of the VNC
# platform, the embedded-display EGLFS libraries).

import os

import freeze_manifest as manifest  # importable: segstudio.spec puts packaging/ on sys.path
from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)


def _trimmed(src: str, dest: str) -> bool:
    # dest is e.g. PySide6/Qt/plugins/platformthemes; compare "platformthemes/libqgtk3.so" with the manifest
    rel = f"{dest}/{os.path.basename(src)}".replace(os.sep, "/")
    if "/plugins/" not in f"/{rel}":
        return False
    plugin = f"/{rel}".split("/plugins/", 1)[1]
    return any(plugin == entry or plugin.startswith(entry + "/") for entry in manifest.TRIMMED_QT_PLUGINS)


binaries = [(src, dest) for src, dest in binaries if not _trimmed(src, dest)]
