"""The history window: a range of a person's local store charted, its statistics, CSV export."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from PySide6.QtCore import (
    QByteArray,
    QSettings,
    QStandardPaths,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QCloseEvent, QHideEvent, QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cgmtray import APP_NAME
from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock
from cgmtray.domain.readings import Reading
from cgmtray.domain.stats import Stats, summarize
from cgmtray.domain.units import Unit
from cgmtray.storage.history import HistoryError, HistoryStore
from cgmtray.ui.chart import GlucoseChart, chart_points, local_time
from cgmtray.ui.history_people import HistoryPerson, PersonSelector, file_name_part
from cgmtray.ui.stats_panel import StatsPanel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """One choice of the range buttons."""

    key: str
    #: The button's text; "&" marks its Alt+key mnemonic.
    button_text: str
    title: str
    span: timedelta


HISTORY_RANGES: tuple[HistoryRange, ...] = (
    HistoryRange("3h", "&3 h", "Last 3 hours", timedelta(hours=3)),
    HistoryRange("6h", "&6 h", "Last 6 hours", timedelta(hours=6)),
    HistoryRange("12h", "&12 h", "Last 12 hours", timedelta(hours=12)),
    HistoryRange("24h", "&24 h", "Last 24 hours", timedelta(hours=24)),
    HistoryRange("7d", "&7 d", "Last 7 days", timedelta(days=7)),
    HistoryRange("30d", "3&0 d", "Last 30 days", timedelta(days=30)),
)
RANGES_BY_KEY = {r.key: r for r in HISTORY_RANGES}
DEFAULT_RANGE_KEY = "24h"

#: QSettings keys of what the window remembers.
SETTING_RANGE = "history/range"
SETTING_GEOMETRY = "history/geometry"

#: Readings that arrived while the window existed are kept this long in memory, so they show even
#: if the store could not take them.
LIVE_KEEP = timedelta(hours=24)
DEFAULT_SIZE = (1000, 580)
#: While open, the window redraws this often even without new readings (the range slides).
REFRESH_MS = 60_000
STATS_WIDTH = 300

_ONE_MS = timedelta(milliseconds=1)

#: Asks where to save: (parent, suggested path) -> chosen path, or None when cancelled.
SavePathAsker = Callable[[QWidget, str], str | None]
#: A person's history store by their id (opened on the first ask; raises HistoryError,
#: sqlite3.Error or OSError when it cannot be opened).
StoreFor = Callable[[str], HistoryStore]

#: The window's title for one person (or before there are people), as it has always been.
TITLE = f"History — {APP_NAME}"


def title_for(person: HistoryPerson | None) -> str:
    """The window title naming whose history it is ("Sam — History — CGM Tray")."""
    return TITLE if person is None else f"{person.name} — {TITLE}"


def ask_save_path_with_dialog(parent: QWidget, suggested: str) -> str | None:
    """The platform's save dialog (it asks before overwriting a file)."""
    path, _ = QFileDialog.getSaveFileName(
        parent, "Export readings as CSV", suggested, "CSV files (*.csv);;All files (*)"
    )
    return path or None


def span_text(span: timedelta) -> str:
    """A stretch of time in words: "2 d 4 h", "5 h 20 min", "35 min"."""
    minutes = int(span.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


class HistoryWindow(QWidget):
    """The chart and figures of one range of the local history, kept up to date while open.

    It reads only the local store (on the GUI thread: quick indexed queries), never the network.
    Closing hides it; `present()` shows and raises it again. Nothing is queried or drawn before
    it is shown; while hidden, new readings only mark it for a redraw on the next show.

    With two people or more (`set_people`), a selector above the chart picks whose history is
    shown (their store, their alert thresholds; the unit is everyone's), the title names them
    and a CSV export carries their name. With one person it is the window it always was.

    Signals:
        refreshed(): the chart and figures were drawn anew from the store.
        export_finished(str path): a CSV export was written.
    """

    refreshed = Signal()
    export_finished = Signal(str)

    def __init__(
        self,
        store: HistoryStore,
        *,
        clock: Clock,
        unit: Unit = Unit.MGDL,
        alerts: AlertSettings | None = None,
        settings_store: QSettings | None = None,
        local_tz: tzinfo | None = None,
        ask_save_path: SavePathAsker | None = None,
        refresh_ms: int = REFRESH_MS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("history-window")
        self.setWindowTitle(TITLE)
        self._store: HistoryStore | None = store
        #: The store given at construction: shown while there are no people.
        self._own_store = store
        self._store_problem = ""
        self._store_for: StoreFor | None = None
        self._people: tuple[HistoryPerson, ...] = ()
        self._person: HistoryPerson | None = None
        self._clock = clock
        self._unit = unit
        self._alerts = alerts if alerts is not None else AlertSettings()
        self._settings = settings_store
        self._local_tz = local_tz
        self._ask_save_path = ask_save_path or ask_save_path_with_dialog
        #: Readings that arrived while the window existed, by person id ("" before people).
        self._live_by_person: dict[str, dict[datetime, Reading]] = {}
        self._dirty = True
        self._start: datetime | None = None
        self._end: datetime | None = None
        self._readings: tuple[Reading, ...] = ()
        self._stats: Stats | None = None
        self._range = RANGES_BY_KEY[self._remembered_range()]

        self._buttons = QButtonGroup(self)
        self._buttons.setExclusive(True)
        bar = QHBoxLayout()
        bar.setSpacing(4)
        self._selector = PersonSelector(self)
        self._selector.person_chosen.connect(self._on_selector_person_chosen)
        bar.addWidget(self._selector)  # (hidden for one person: the bar is as it always was)
        for choice in HISTORY_RANGES:
            button = QPushButton(choice.button_text, self)
            button.setObjectName(f"range-{choice.key}")
            button.setCheckable(True)
            button.setChecked(choice is self._range)
            button.setToolTip(choice.title)
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            button.clicked.connect(self._on_range_button_clicked)
            self._buttons.addButton(button)
            bar.addWidget(button)
        bar.addSpacing(12)
        self._notice = QLabel(self)
        self._notice.setObjectName("history-notice")
        self._notice.setTextFormat(Qt.TextFormat.PlainText)  # (names and paths, as written)
        self._notice.setWordWrap(True)
        bar.addWidget(self._notice, 1)
        self._export_button = QPushButton("&Export CSV…", self)
        self._export_button.setObjectName("export-csv")
        self._export_button.setToolTip("Save the shown range as a CSV file (Ctrl+E)")
        self._export_button.clicked.connect(self._on_export_button_clicked)
        bar.addWidget(self._export_button)

        self._chart = GlucoseChart(local_tz=local_tz, parent=self)
        self._chart.set_view(self._unit, self._alerts)
        self._stats_panel = StatsPanel(self)
        self._stats_panel.setFixedWidth(STATS_WIDTH)
        middle = QHBoxLayout()
        middle.addWidget(self._chart, 1)
        middle.addWidget(self._stats_panel)

        self._status = QLabel(self)
        self._status.setObjectName("history-status")
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        self._status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(middle, 1)
        layout.addWidget(self._status)

        # While open, the range's end follows the clock even when no reading comes: a sensor
        # that stopped shows as a growing gap at the right, never as a chart that looks current.
        self._tick = QTimer(self)
        self._tick.setInterval(refresh_ms)
        self._tick.timeout.connect(self._on_tick_timeout)

        QShortcut(QKeySequence("Ctrl+E"), self, self._on_export_shortcut_activated)
        self.setMinimumSize(640, 380)
        self._restore_geometry()

    # --- slots the app calls ------------------------------------------------------------------

    @Slot(object)
    def add_readings(self, readings: Sequence[Reading], person_id: str | None = None) -> None:
        """New readings (a worker's readings_received) of `person_id` (None: the first person,
        or the only one): shown at once if the window is open on that person; another person's
        are kept for when they are shown and redraw nothing."""
        key = self._key(person_id)
        live = self._live_by_person.setdefault(key, {})
        for reading in readings:
            live[reading.time] = reading
        if live:
            cutoff = max(live) - LIVE_KEEP
            self._live_by_person[key] = {t: r for t, r in live.items() if t > cutoff}
        if key == self._key(self.person_id):
            self._redraw_or_mark()

    def apply_view(self, unit: Unit, alerts: AlertSettings) -> None:
        """A new unit, and new alert thresholds for the person shown (for one person: theirs)."""
        self._unit = unit
        self._alerts = alerts
        self._chart.set_view(unit, alerts)
        self._redraw_or_mark()

    def apply_unit(self, unit: Unit) -> None:
        """A new unit (everyone's); each person keeps their own thresholds."""
        if unit != self._unit:
            self.apply_view(unit, self._alerts)

    def set_people(self, people: Sequence[HistoryPerson], store_for: StoreFor) -> None:
        """Whose histories the window can show, in list order, and each one's store
        (`store_for(person_id)`, asked when that person is shown). The person shown stays if
        still listed (with their new name, chip and thresholds), else the first is shown."""
        self._people = tuple(people)
        self._store_for = store_for
        shown = self._person.id if self._person is not None else None
        if shown not in {p.id for p in self._people}:
            shown = self._people[0].id if self._people else None
        unnamed = self._live_by_person.pop("", {})
        if self._people and unnamed:  # (readings that came before the people: the first's)
            self._live_by_person.setdefault(self._people[0].id, {}).update(unnamed)
        elif unnamed:
            self._live_by_person[""] = unnamed
        live_keys = {p.id for p in self._people} | {""}
        self._live_by_person = {k: v for k, v in self._live_by_person.items() if k in live_keys}
        self._selector.set_people(self._people, shown)
        self._switch_to(shown, force=True)

    def show_person(self, person_id: str) -> None:
        """Shows `person_id`'s history (as picking them in the selector does)."""
        if person_id not in {p.id for p in self._people}:
            raise ValueError("no such person in the history window")
        self._selector.select(person_id)
        self._switch_to(person_id)

    def show_range(self, key: str) -> None:
        """Shows one of HISTORY_RANGES by key ("3h" .. "30d") and remembers it."""
        if key not in RANGES_BY_KEY:
            raise ValueError(f"unknown history range {key!r}")
        self._range = RANGES_BY_KEY[key]
        for button in self._buttons.buttons():
            button.setChecked(button.objectName() == f"range-{key}")
        if self._settings is not None:
            self._settings.setValue(SETTING_RANGE, key)
        self._redraw_or_mark()

    def present(self) -> None:
        """Shows the window (drawn from the store), or raises it if it is already open."""
        if self.isMinimized():
            self.showNormal()
        else:
            self.show()
        self.raise_()
        self.activateWindow()

    def warm_up(self) -> None:
        """Pays the first paint's one-time costs (fonts, symbol pixmaps) ahead of the first open,
        e.g. at idle after start. Queries nothing and shows nothing."""
        self._chart.grab()

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        """Writes the shown range to CSV (asking where unless `path` is given); None if not."""
        if self._dirty or self._start is None:
            self.refresh()
        if self._start is None or self._end is None:
            return None
        if path is None:
            chosen = self._ask_save_path(self, str(self._suggested_export_path()))
            if not chosen:
                return None
            path = chosen
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".csv")
        named = self._named_person()
        try:
            if self._store is None:
                raise HistoryError(self._store_problem or "the history store is not open")
            with target.open("w", newline="", encoding="utf-8") as out:
                count = self._store.export_csv(
                    self._start + _ONE_MS,
                    self._end + _ONE_MS,
                    out,
                    local_tz=self._local_tz,
                    person=named.name if named is not None else None,
                )
        except (OSError, sqlite3.Error, HistoryError) as error:
            log.warning("CSV export failed: %s", error)
            self._status.setText(f"Could not export to {target}: {error}")
            return None
        whose = f" of {named.name}" if named is not None else ""
        self._status.setText(f"Exported {count} readings{whose} to {target}")
        self.export_finished.emit(str(target))
        return target

    # --- what is shown (tests, the benchmark) -------------------------------------------------

    @property
    def range_key(self) -> str:
        return self._range.key

    @property
    def person_id(self) -> str | None:
        """The id of the person shown; None before there are people."""
        return self._person.id if self._person is not None else None

    @property
    def people(self) -> tuple[HistoryPerson, ...]:
        return self._people

    @property
    def selector(self) -> PersonSelector:
        return self._selector

    @property
    def shown_span(self) -> tuple[datetime, datetime] | None:
        """The shown window, start (exclusive) to end (inclusive), once drawn."""
        if self._start is None or self._end is None:
            return None
        return self._start, self._end

    @property
    def shown_readings(self) -> tuple[Reading, ...]:
        """The readings drawn, oldest first."""
        return self._readings

    @property
    def stats(self) -> Stats | None:
        return self._stats

    @property
    def notice(self) -> str:
        return self._notice.text()

    @property
    def status(self) -> str:
        return self._status.text()

    @property
    def chart(self) -> GlucoseChart:
        return self._chart

    @property
    def stats_panel(self) -> StatsPanel:
        return self._stats_panel

    # --- drawing ------------------------------------------------------------------------------

    def _redraw_or_mark(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._dirty = True

    def refresh(self) -> None:
        """Queries the store for the chosen range ending now and draws it."""
        now = self._clock.now()
        live = self._live
        if self._store is None:
            self._notice.setText(self._store_problem)
            self._show_nothing(now)  # not the previous person's chart under this title
            return
        try:
            newest = self._store.newest_time()
            oldest = self._store.oldest_time()
            if live:
                newest = max(newest or now, max(live))
            end = newest if newest is not None and newest > now else now
            start = end - self._range.span
            stored = self._store.range(start + _ONE_MS, end + _ONE_MS)
        except (sqlite3.Error, HistoryError) as error:
            log.warning("the history could not be read: %s", error)
            self._notice.setText(f"The history could not be read: {error}")
            return
        readings = self._with_live(stored, start, end)
        thresholds = self._alerts.thresholds()
        self._start, self._end, self._readings = start, end, readings
        self._stats = summarize(readings, start, end, thresholds)
        self._chart.show_points(chart_points(readings), start, end)
        self._stats_panel.show_stats(self._stats, self._unit, self._title(start, end))
        self._notice.setText(self._availability(readings, oldest, start, end))
        self._dirty = False
        self.refreshed.emit()

    def _with_live(
        self, stored: list[Reading], start: datetime, end: datetime
    ) -> tuple[Reading, ...]:
        """The stored readings, plus live ones newer than the newest stored (if any)."""
        after = stored[-1].time if stored else start
        extra = sorted(r for t, r in self._live.items() if after < t <= end and t > start)
        return (*stored, *extra)

    def _show_nothing(self, now: datetime) -> None:
        """An empty chart and figures for the person shown (their store could not be read)."""
        start = now - self._range.span
        self._start, self._end, self._readings = start, now, ()
        self._stats = summarize((), start, now, self._alerts.thresholds())
        self._chart.show_points(chart_points(()), start, now)
        self._stats_panel.show_stats(self._stats, self._unit, self._title(start, now))
        self._dirty = False

    @property
    def _live(self) -> dict[datetime, Reading]:
        """The live readings of the person shown."""
        return self._live_by_person.get(self._key(self.person_id), {})

    def _key(self, person_id: str | None) -> str:
        """The live-readings key of `person_id` (None: the first person, or nobody yet)."""
        if person_id is not None:
            return person_id
        return self._people[0].id if self._people else ""

    def _named_person(self) -> HistoryPerson | None:
        """The person shown when the window shows one of several (who a title or file names)."""
        return self._person if len(self._people) > 1 else None

    def _switch_to(self, person_id: str | None, *, force: bool = False) -> None:
        """Shows `person_id` (their store, thresholds, title); redrawn now if open."""
        person = next((p for p in self._people if p.id == person_id), None)
        if person == self._person and not force:
            return
        changed = person is None or self._person is None or person.id != self._person.id
        self._person = person
        if person is not None and self._store_for is not None and (changed or self._store is None):
            try:
                self._store = self._store_for(person.id)
                self._store_problem = ""
            except (OSError, sqlite3.Error, HistoryError) as error:
                log.warning("a person's history could not be opened: %s", error)
                self._store = None
                self._store_problem = f"The history of {person.name} could not be opened: {error}"
        if person is None and changed:
            self._store, self._store_problem = self._own_store, ""
        if person is not None:
            self._alerts = person.alerts
            self._chart.set_view(self._unit, person.alerts)
        self.setWindowTitle(title_for(self._named_person()))
        if changed:
            self._chart.clear_hover()
        self._redraw_or_mark()

    def _title(self, start: datetime, end: datetime) -> str:
        first = local_time(start, self._local_tz)
        last = local_time(end, self._local_tz)
        if self._range.span <= timedelta(hours=24) and first.date() == last.date():
            when = f"{first:%a %d %b %H:%M} – {last:%H:%M}"
        elif self._range.span <= timedelta(hours=24):
            when = f"{first:%a %d %b %H:%M} – {last:%a %d %b %H:%M}"
        else:
            when = f"{first:%d %b} – {last:%d %b %Y}"
        named = self._named_person()
        whose = f"{named.name} · " if named is not None else ""
        return f"{whose}{self._range.title}\n{when}"

    def _availability(
        self,
        readings: tuple[Reading, ...],
        oldest: datetime | None,
        start: datetime,
        end: datetime,
    ) -> str:
        """Says when the range shows less than it asks for: an empty store, or a short one."""
        if oldest is None and not readings:
            return "No readings are stored yet. They appear here as they arrive."
        if not readings:
            return f"No readings in the {self._range.title.lower()}."
        first = min(oldest or readings[0].time, readings[0].time)
        # A store a reading or two short of the range is the range, not "less data".
        if first > start + SHORT_HISTORY_TOLERANCE:
            since = local_time(first, self._local_tz)
            return (
                f"The history holds {span_text(end - first)} of readings so far "
                f"(since {since:%a %d %b %H:%M}): all of it is shown."
            )
        return ""

    def _suggested_export_path(self) -> Path:
        end = local_time(self._end, self._local_tz) if self._end else None
        stamp = f"{end:%Y-%m-%d-%H%M}" if end else "now"
        named = self._named_person()
        whose = ""
        if named is not None:
            position = self._people.index(named) + 1
            whose = file_name_part(named.name, fallback=f"person-{position}") + "-"
        name = f"cgm-readings-{whose}{self._range.key}-to-{stamp}.csv"
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(folder) / name if folder else Path(name)

    # --- remembering --------------------------------------------------------------------------

    def _remembered_range(self) -> str:
        if self._settings is None:
            return DEFAULT_RANGE_KEY
        value = self._settings.value(SETTING_RANGE, DEFAULT_RANGE_KEY)
        return value if isinstance(value, str) and value in RANGES_BY_KEY else DEFAULT_RANGE_KEY

    def _restore_geometry(self) -> None:
        geometry = self._settings.value(SETTING_GEOMETRY) if self._settings else None
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            self.resize(*DEFAULT_SIZE)

    def _remember_geometry(self) -> None:
        if self._settings is not None:
            self._settings.setValue(SETTING_GEOMETRY, self.saveGeometry())

    # --- events -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        # The window system's own show events can come late (after a hide) or on restore from
        # minimised: act only when really visible, and redraw, since time has passed.
        if self.isVisible():
            self.refresh()
            self._tick.start()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt's name
        self._tick.stop()
        self._remember_geometry()
        self._chart.clear_hover()
        super().hideEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self._remember_geometry()
        super().closeEvent(event)

    @Slot(bool)
    def _on_range_button_clicked(self, checked: bool) -> None:
        del checked
        button = self._buttons.checkedButton()
        if button is not None:
            self.show_range(button.objectName().removeprefix("range-"))

    @Slot()
    def _on_tick_timeout(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._tick.stop()

    @Slot(str)
    def _on_selector_person_chosen(self, person_id: str) -> None:
        self._switch_to(person_id)

    @Slot()
    def _on_export_button_clicked(self) -> None:
        self.export_csv()

    @Slot()
    def _on_export_shortcut_activated(self) -> None:
        self.export_csv()


#: How much later than the range's start the history may begin before the window says it is short.
SHORT_HISTORY_TOLERANCE = timedelta(minutes=15)
