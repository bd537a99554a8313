"""Notifier test doubles: sample alert requests, a silent alarm, a tray that records balloons."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from PySide6.QtWidgets import QSystemTrayIcon

from cgmtray.ui.notifier import NotificationRequest
from cgmtray.ui.sound import AlarmSound

#: A sound player that plays nothing: tests never make noise on a developer's desktop.
SILENT_PLAYER: Final = ("true",)

URGENT_LOW = NotificationRequest(
    key="urgent_low#1",
    kind="urgent_low",
    title="Urgent low: 52 mg/dL ↓",
    body="Your glucose is urgently low. Eat or drink something sweet now.",
    urgent=True,
    sound="alarm",
)


@contextmanager
def quiet_alarm() -> Iterator[AlarmSound]:
    """A real AlarmSound (process, looping, stop) whose player is silent; stopped on exit."""
    alarm = AlarmSound(player=SILENT_PLAYER)
    try:
        yield alarm
    finally:
        alarm.stop()
        alarm.deleteLater()


class MessageTray(QSystemTrayIcon):
    """A tray on a desktop that shows balloons; records them instead of drawing."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, str, QSystemTrayIcon.MessageIcon, int]] = []

    @staticmethod
    def isSystemTrayAvailable() -> bool:  # noqa: N802 - Qt's name
        return True

    @staticmethod
    def supportsMessages() -> bool:  # noqa: N802 - Qt's name
        return True

    def isVisible(self) -> bool:  # noqa: N802 - Qt's name
        return True

    def showMessage(self, *args: object) -> None:  # noqa: N802 - Qt's name
        title, body, icon, msecs = args
        assert isinstance(title, str)
        assert isinstance(body, str)
        assert isinstance(icon, QSystemTrayIcon.MessageIcon)
        assert isinstance(msecs, int)
        self.messages.append((title, body, icon, msecs))
