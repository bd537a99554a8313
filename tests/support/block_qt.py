"""A pytest plugin that makes Qt unimportable: `pytest -p tests.support.block_qt tests/unit`.

It proves the unit tier needs no Qt, as a CI run on a machine without PySide6 would. In this
process a `sys.meta_path` finder refuses PySide6, shiboken6 and pyqtgraph before anything imports
them; child Python processes get the same refusal through stub packages put first on PYTHONPATH.
Tests that need Qt ask `tests.support.qt.qt_importable()` and skip. Load it only as a plugin:
importing it installs the block.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Final

import pytest

#: The top-level packages that bring Qt in.
QT_PACKAGES: Final = ("PySide6", "shiboken6", "pyqtgraph")
#: Why they cannot be imported, in every ImportError the block raises.
REASON: Final = "blocked by tests.support.block_qt: this run proves the unit tier needs no Qt"


class QtBlocker:
    """A meta path finder that answers every Qt package (and its submodules) with ImportError."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname.split(".", 1)[0] in QT_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} ({REASON})", name=fullname)
        return None


def _stub_packages() -> Path:
    """A temporary folder of packages named like Qt's whose import raises ImportError, for
    child interpreters (removed when this process ends)."""
    root = Path(tempfile.mkdtemp(prefix="cgmtray-noqt-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for name in QT_PACKAGES:
        (root / name).mkdir()
        message = f"No module named {name!r} ({REASON})"
        (root / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError({message!r}, name={name!r})\n", encoding="utf-8"
        )
    return root


def _install() -> None:
    if any(isinstance(finder, QtBlocker) for finder in sys.meta_path):
        return
    already = sorted(name for name in sys.modules if name.split(".", 1)[0] in QT_PACKAGES)
    if already:
        raise RuntimeError(f"Qt was imported before the block: {already}")
    sys.meta_path.insert(0, QtBlocker())
    stubs = str(_stub_packages())
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = stubs if not inherited else os.pathsep.join((stubs, inherited))


_install()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Accepts pytest-qt's ini options (the project sets some) while pytest-qt cannot load: run
    this plugin with `-p no:pytest-qt`, since pytest-qt imports Qt as it starts."""
    known = (
        "qt_api",
        "qt_log_level_fail",
        "qt_log_ignore",
        "qt_log_format",
        "qt_no_exception_capture",
        "qt_default_raising",
        "qt_qapp_name",
    )
    for name in known:
        parser.addini(name, f"pytest-qt's {name} (unused: Qt is blocked)", type="linelist")
