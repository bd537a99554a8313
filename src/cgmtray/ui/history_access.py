"""The history window made lazily, so importing pyqtgraph never delays the tray icon."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock
from cgmtray.domain.readings import Reading
from cgmtray.domain.units import Unit
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import Settings

if TYPE_CHECKING:
    from cgmtray.ui.history_window import HistoryOpener


class LazyHistory:
    """The history window, made on first open, so that importing pyqtgraph (and its ~48 MB)
    never delays the tray icon or weighs on a session that never opens it. Reads the store
    read-only on the GUI thread."""

    def __init__(self, history_path: Path, clock: Clock, settings: Settings, state_file: Path):
        self._path = history_path
        self._clock = clock
        self._view = (settings.unit, settings.first_person.alerts)
        self._state_file = state_file
        self._store: HistoryStore | None = None
        self._opener: HistoryOpener | None = None

    def _get(self) -> HistoryOpener:
        if self._opener is None:
            from PySide6.QtCore import QSettings

            from cgmtray.ui.history_window import HistoryOpener, HistoryWindow

            def make_window() -> HistoryWindow:
                self._store = HistoryStore(self._path, read_only=True)
                return HistoryWindow(
                    self._store,
                    clock=self._clock,
                    unit=self._view[0],
                    alerts=self._view[1],
                    settings_store=QSettings(str(self._state_file), QSettings.Format.IniFormat),
                )

            self._opener = HistoryOpener(make_window)
        return self._opener

    def open(self) -> None:
        self._get().open()

    def add_readings(self, readings: tuple[Reading, ...]) -> None:
        if self._opener is not None:
            self._opener.add_readings(readings)

    def apply_view(self, unit: Unit, alerts: AlertSettings) -> None:
        self._view = (unit, alerts)
        if self._opener is not None:
            self._opener.apply_view(unit, alerts)

    def close(self) -> None:
        if self._opener is not None:
            self._opener.close()
        if self._store is not None:
            self._store.close()
            self._store = None
