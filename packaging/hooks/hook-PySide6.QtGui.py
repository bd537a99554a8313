"""PyInstaller hook for PySide6.QtGui: PyInstaller's own, minus the Qt plugins the app never uses.

Dropping a plugin here (before PyInstaller follows its library dependencies) also keeps out what
only it needs: the virtual keyboard brings QtQuick and QtQml, the PDF image format QtPdf, and on
Linux the GTK 3 theme would copy the build machine's GTK, cairo and pango into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PyInstaller.utils.hooks.qt import add_qt6_dependencies  # type: ignore[import-untyped]

sys.path.append(str(Path(__file__).resolve().parents[1]))
import freeze_config  # type: ignore[import-not-found]

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
_unused = freeze_config.unused_qt_plugins(freeze_config.platform_of(sys.platform))
binaries = [
    (source, target)
    for source, target in binaries
    if not freeze_config.is_unused_qt_plugin(Path(source), _unused)
]
