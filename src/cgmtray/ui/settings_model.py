"""The running app's settings as one model whose `changed` signal the parts of the UI follow."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from cgmtray.storage.settings import Settings

log = logging.getLogger(__name__)


class SettingsModel(QObject):
    """Holds the settings the app runs with; `update` is the one way to change them.

    Each part of the UI that depends on the settings (the controller's unit and alerts, the
    history window, retention pruning) connects to `changed` and takes what it needs from the
    new settings, so nobody passes settings along by hand.

    Signals:
        changed(Settings): the settings became these (emitted only when they differ).
    """

    changed = Signal(object)

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The current settings."""
        return self._settings

    def update(self, new: Settings) -> bool:
        """Makes `new` the current settings and emits `changed`, unless nothing changed (then
        nothing is emitted and False returned)."""
        if new == self._settings:
            return False
        self._settings = new
        log.debug("settings changed", extra={"event": "settings.changed"})
        self.changed.emit(new)
        return True
