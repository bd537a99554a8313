"""Whether Qt can be imported, asked without importing it (so a unit test can skip honestly)."""

from __future__ import annotations

import importlib.util


def qt_importable() -> bool:
    """Whether PySide6 can be imported here: False under tests.support.block_qt (which refuses
    it) or where it is not installed."""
    try:
        return importlib.util.find_spec("PySide6") is not None
    except ImportError:
        return False
