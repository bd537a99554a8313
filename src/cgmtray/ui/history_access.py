"""The one owner of the history window: made on first use (so importing pyqtgraph never delays
the tray icon), fed the readings and the settings, closed with its store at quit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock
from cgmtray.domain.readings import Reading
from cgmtray.domain.units import Unit
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import Settings

if TYPE_CHECKING:
    from cgmtray.ui.history_window import HistoryWindow


class HistoryOpener(QObject):
    """Makes the one history window on first use and raises it on every later ask.

    Connect the tray's open_history_requested (left click and the menu) to `open`, the worker's
    readings_received to `add_readings`, and a SettingsModel's `changed` to `apply_settings`.
    Until the window exists, readings are not kept (it reads the store when it opens) and only
    the latest unit and alert settings are remembered for it.
    """

    def __init__(
        self,
        make_window: Callable[[], HistoryWindow],
        parent: QObject | None = None,
        *,
        release: Callable[[], None] | None = None,
    ) -> None:
        """`release` runs after the window is closed at quit (e.g. closes its store)."""
        super().__init__(parent)
        self._make_window = make_window
        self._release = release
        self._window: HistoryWindow | None = None
        self._view: tuple[Unit, AlertSettings] | None = None

    @property
    def window(self) -> HistoryWindow | None:
        return self._window

    @property
    def view(self) -> tuple[Unit, AlertSettings] | None:
        """The unit and alert settings the window shows (or will show when made)."""
        return self._view

    def prepare(self) -> HistoryWindow:
        """Makes the window (hidden, nothing queried) and warms it up, so the first open is quick.

        Call at idle after the tray icon is up (e.g. a single-shot timer): it costs the import
        of pyqtgraph if not yet done, and some tens of milliseconds.
        """
        if self._window is None:
            self._window = self._make_window()
            if self._view is not None:
                self._window.apply_view(*self._view)
            self._window.warm_up()
        return self._window

    @Slot()
    def open(self) -> HistoryWindow:
        """Shows the window, drawn from the store; raises it if already open."""
        window = self.prepare()
        window.present()
        return window

    @Slot(object)
    def add_readings(self, readings: Sequence[Reading]) -> None:
        if self._window is not None:
            self._window.add_readings(readings)

    def apply_view(self, unit: Unit, alerts: AlertSettings) -> None:
        self._view = (unit, alerts)
        if self._window is not None:
            self._window.apply_view(unit, alerts)

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """New settings (a SettingsModel's `changed`): the window is redrawn only when its unit
        or alert settings differ."""
        view = (settings.unit, settings.first_person.alerts)
        if view != self._view:
            self.apply_view(*view)

    def close(self) -> None:
        """Closes and deletes the window (at quit), then releases what it used."""
        if self._window is not None:
            self._window.close()
            self._window.deleteLater()
            self._window = None
        if self._release is not None:
            self._release()


def history_opener(
    history_path: Path,
    clock: Clock,
    settings: Settings,
    state_file: Path,
    parent: QObject | None = None,
) -> HistoryOpener:
    """The app's history window on the store at `history_path`, read read-only on the GUI thread,
    showing `settings`' unit and alerts until told otherwise; its size and range kept in
    `state_file`. Nothing is imported or opened before the window is first needed."""
    stores: list[HistoryStore] = []

    def make_window() -> HistoryWindow:
        from PySide6.QtCore import QSettings

        from cgmtray.ui.history_window import HistoryWindow

        store = HistoryStore(history_path, read_only=True)
        stores.append(store)
        unit, alerts = opener.view or (settings.unit, settings.first_person.alerts)
        return HistoryWindow(
            store,
            clock=clock,
            unit=unit,
            alerts=alerts,
            settings_store=QSettings(str(state_file), QSettings.Format.IniFormat),
        )

    def release() -> None:
        while stores:
            stores.pop().close()

    opener = HistoryOpener(make_window, parent, release=release)
    opener.apply_view(settings.unit, settings.first_person.alerts)
    return opener
