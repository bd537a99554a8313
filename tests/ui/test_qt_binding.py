"""The Qt binding itself: a regression guard for PySide6 builds that corrupt Python's refcounts."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage


def test_void_qt_calls_do_not_eat_references_to_none() -> None:
    """PySide6 6.12.0 on Python 3.11 dropped one reference to None per void call; the app then
    aborted with "none_dealloc" after a few thousand icon repaints."""
    owner = QObject()
    timer = QTimer()
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    for _ in range(10):
        owner.setObjectName("warm-up")
    before = sys.getrefcount(None)
    for _ in range(2000):
        owner.setObjectName("probe")
        timer.setInterval(5)
        image.fill(0)
    assert sys.getrefcount(None) - before > -100


class _Emitter(QObject):
    happened = Signal()


def test_signal_emits_do_not_eat_references_to_true() -> None:
    """The same 6.12.0 build dropped one reference to True per Signal.emit() from Python."""
    emitter = _Emitter()
    emitter.happened.connect(lambda: None)
    for _ in range(10):
        emitter.happened.emit()
    before = sys.getrefcount(True)
    for _ in range(2000):
        emitter.happened.emit()
    assert sys.getrefcount(True) - before > -100
