"""The one owner of the history window: made on first use (so importing pyqtgraph never delays
the tray icon), fed each person's readings and the settings, closed with its stores at quit."""

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
from cgmtray.storage.people import Person
from cgmtray.storage.settings import Settings
from cgmtray.ui.history_people import HistoryPerson

if TYPE_CHECKING:
    from cgmtray.ui.history_window import HistoryWindow


class PersonStores:
    """The people's history stores in one data folder, opened read-only when first asked for
    and kept open; `keep_only` closes those of people no longer listed."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._stores: dict[str, HistoryStore] = {}

    def open(self, history_file: str) -> HistoryStore:
        """The store of `history_file` (a person's file name), opened if not yet."""
        if history_file not in self._stores:
            self._stores[history_file] = HistoryStore(self._data_dir / history_file, read_only=True)
        return self._stores[history_file]

    def keep_only(self, history_files: set[str]) -> None:
        for name in [n for n in self._stores if n not in history_files]:
            self._stores.pop(name).close()

    def close_all(self) -> None:
        self.keep_only(set())


class PersonHistory:
    """One person's door to the history window, as their controller sees it (`open`,
    `add_readings`): `HistoryOpener.for_person(person_id)`."""

    def __init__(self, opener: HistoryOpener, person_id: str) -> None:
        self._opener = opener
        self.person_id = person_id

    def open(self) -> HistoryWindow:
        """Shows the history window on this person."""
        return self._opener.open(self.person_id)

    def add_readings(self, readings: Sequence[Reading]) -> None:
        """This person's new readings (their worker's readings_received)."""
        self._opener.add_readings(readings, self.person_id)


class HistoryOpener(QObject):
    """Makes the one history window on first use and raises it on every later ask.

    Connect the tray's open_history_requested (left click and the menu) to `open` (or, for a
    person's icon or menu, `open(person_id)`), each worker's readings_received to
    `add_readings(readings, person_id)` (or hand each person's controller `for_person(id)`),
    and a SettingsModel's `changed` to `apply_settings` (the unit, the people, their alerts).
    Until the window exists, readings are not kept (it reads the stores when it opens) and only
    the latest unit, alert settings and people are remembered for it.
    """

    def __init__(
        self,
        make_window: Callable[[], HistoryWindow],
        parent: QObject | None = None,
        *,
        release: Callable[[], None] | None = None,
        stores: PersonStores | None = None,
        keep_file: str | None = None,
    ) -> None:
        """`release` runs after the window is closed at quit (e.g. closes its stores);
        `stores` opens each person's store (without, people are not shown: the window keeps
        the store it was made with, whose file name is `keep_file`)."""
        super().__init__(parent)
        self._make_window = make_window
        self._release = release
        self._stores = stores
        self._keep_file = keep_file
        self._window: HistoryWindow | None = None
        self._view: tuple[Unit, AlertSettings] | None = None
        self._people: tuple[Person, ...] = ()

    @property
    def window(self) -> HistoryWindow | None:
        return self._window

    @property
    def view(self) -> tuple[Unit, AlertSettings] | None:
        """The unit and alert settings the window shows (or will show when made)."""
        return self._view

    @property
    def people(self) -> tuple[Person, ...]:
        """The people whose histories the window offers (empty: the one store it was made with)."""
        return self._people

    def prepare(self) -> HistoryWindow:
        """Makes the window (hidden, nothing queried) and warms it up, so the first open is quick.

        Call at idle after the tray icon is up (e.g. a single-shot timer): it costs the import
        of pyqtgraph if not yet done, and some tens of milliseconds.
        """
        if self._window is None:
            self._window = self._make_window()
            if self._view is not None:
                self._window.apply_view(*self._view)
            self._give_people(self._window)
            self._window.warm_up()
        return self._window

    @Slot()
    def open(self, person_id: str | None = None) -> HistoryWindow:
        """Shows the window, drawn from the store; raises it if already open. With `person_id`
        it shows that person's history (an id no longer listed is ignored); without, the
        person shown last (at first, the first person)."""
        window = self.prepare()
        if person_id is not None and person_id in {p.id for p in window.people}:
            window.show_person(person_id)
        window.present()
        return window

    @Slot(object)
    def add_readings(self, readings: Sequence[Reading], person_id: str | None = None) -> None:
        """`person_id`'s new readings (None: the first person's, as before there were people);
        they redraw the window only when it is open on that person."""
        if self._window is not None:
            self._window.add_readings(readings, person_id)

    def for_person(self, person_id: str) -> PersonHistory:
        """The history as one person's controller uses it: `open()` opens it on them,
        `add_readings(readings)` adds theirs."""
        return PersonHistory(self, person_id)

    def apply_view(self, unit: Unit, alerts: AlertSettings) -> None:
        self._view = (unit, alerts)
        if self._window is not None:
            if self._people and self._stores is not None:
                self._window.apply_unit(unit)  # each person keeps their own thresholds
            else:
                self._window.apply_view(unit, alerts)

    def set_people(self, people: Sequence[Person]) -> None:
        """The people whose histories the window offers, in list order (each their own store,
        `history_file` in the data folder, and their own alert thresholds)."""
        people = tuple(people)
        if people == self._people:
            return
        self._people = people
        if self._window is not None:
            self._give_people(self._window)

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """New settings (a SettingsModel's `changed`): the unit, the people and their alerts;
        the window is redrawn only when what it shows differs."""
        self.set_people(settings.people)
        view = (settings.unit, settings.first_person.alerts)
        if view != self._view:
            self.apply_view(*view)

    def _give_people(self, window: HistoryWindow) -> None:
        stores = self._stores
        if stores is None:
            return
        files = {person.id: person.history_file for person in self._people}

        def store_for(person_id: str) -> HistoryStore:
            return stores.open(files[person_id])

        window.set_people([HistoryPerson.of(p) for p in self._people], store_for)
        # (after the window moved off a person who left: their store is closed)
        keep = set(files.values())
        if self._keep_file is not None:
            keep.add(self._keep_file)
        stores.keep_only(keep)

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
    """The app's history window on the store at `history_path` (the first person's), read
    read-only on the GUI thread, showing `settings`' unit, people and alerts until told
    otherwise; its size and range kept in `state_file`. Each person's store is
    `history_path`'s folder / their `history_file`, opened when they are first shown. Nothing
    is imported or opened before the window is first needed."""
    stores = PersonStores(history_path.parent)

    def make_window() -> HistoryWindow:
        from PySide6.QtCore import QSettings

        from cgmtray.ui.history_window import HistoryWindow

        store = stores.open(history_path.name)
        unit, alerts = opener.view or (settings.unit, settings.first_person.alerts)
        return HistoryWindow(
            store,
            clock=clock,
            unit=unit,
            alerts=alerts,
            settings_store=QSettings(str(state_file), QSettings.Format.IniFormat),
        )

    opener = HistoryOpener(
        make_window, parent, release=stores.close_all, stores=stores, keep_file=history_path.name
    )
    opener.apply_view(settings.unit, settings.first_person.alerts)
    opener.set_people(settings.people)
    return opener
