"""How the worker and controller wait: real QTimers and time.monotonic, or a test's virtual time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QTimer


class Alarm(Protocol):
    """A timer owned by a QObject: its callback runs on the owner's thread when it fires."""

    def start(self, ms: int) -> None:
        """Arms (or re-arms) the alarm `ms` milliseconds from now; a repeating one every `ms`."""

    def stop(self) -> None:
        """Disarms the alarm; it may be started again."""

    def release(self) -> None:
        """Disarms the alarm for good (its owner is going away)."""


class Timers(Protocol):
    """Where waiting comes from: alarms and the monotonic clock they are measured on."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (the watchdog measures on it)."""

    def alarm(self, owner: QObject, callback: Callable[[], None], *, repeat: bool = False) -> Alarm:
        """A new, disarmed alarm that calls `callback` on `owner`'s thread."""


class _QtAlarm:
    """An Alarm on a QTimer parented to its owner."""

    def __init__(self, owner: QObject, callback: Callable[[], None], *, repeat: bool) -> None:
        self._timer = QTimer(owner)
        self._timer.setSingleShot(not repeat)
        self._timer.timeout.connect(callback)

    def start(self, ms: int) -> None:
        self._timer.start(ms)

    def stop(self) -> None:
        self._timer.stop()

    def release(self) -> None:
        self._timer.stop()
        self._timer.deleteLater()


class QtTimers:
    """The real thing: QTimers on the event loop and time.monotonic."""

    def monotonic(self) -> float:
        return time.monotonic()

    def alarm(self, owner: QObject, callback: Callable[[], None], *, repeat: bool = False) -> Alarm:
        return _QtAlarm(owner, callback, repeat=repeat)


#: The timers used unless a test injects its own.
REAL_TIMERS: Timers = QtTimers()
