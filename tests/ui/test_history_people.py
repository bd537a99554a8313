"""The history window with several people: a selector switching whose store, stats and thresholds
are shown, a title naming them, opening on a person, live readings per person, CSV naming them;
with one person, today's window."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from cgmtray.domain.alert_config import AlertKind, AlertSettings, KindConfig
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.history import CSV_HEADER, HistoryStore
from cgmtray.storage.people import ShareSource, add_person, new_person, remove_person
from cgmtray.storage.settings import Settings, one_person_settings
from cgmtray.ui.history_access import HistoryOpener, history_opener
from cgmtray.ui.history_people import file_name_part
from cgmtray.ui.history_window import HistoryWindow

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)
WAIT_MS = 30_000  # bounds a hang only


def steady(count: int, mgdl: int, end: datetime = NOW) -> list[Reading]:
    return [Reading(end - i * FIVE_MIN, mgdl, Trend.FLAT) for i in range(count)]


def family(*names: str, unit: Unit = Unit.MGDL) -> Settings:
    settings = Settings(unit=unit)
    for name in names:
        source = ShareSource(username=f"{file_name_part(name)}@example.com")
        settings = add_person(settings, new_person(settings.people, source, name=name))
    return settings


def raised_low(mgdl: int) -> AlertSettings:
    return AlertSettings().with_kind(
        AlertKind.LOW, KindConfig(True, mgdl, FIVE_MIN, False, FIVE_MIN)
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Sam (steady 120, the default alerts) and Mia (steady 62, her low alert at 80); their
    stores in `tmp_path` hold those readings, 3 hours of them."""
    settings = family("Sam", "Mia")
    sam, mia = settings.people
    settings = dataclasses.replace(
        settings, people=(sam, dataclasses.replace(mia, alerts=raised_low(80)))
    )
    for person, mgdl in zip(settings.people, (120, 62), strict=True):
        with HistoryStore(tmp_path / person.history_file) as store:
            store.add(steady(36, mgdl))
    return settings


@pytest.fixture
def opener(
    tmp_path: Path, settings: Settings, clock: ManualClock, qtbot: QtBot
) -> Iterator[HistoryOpener]:
    del qtbot  # (a QApplication)
    made = history_opener(
        tmp_path / settings.people[0].history_file, clock, settings, tmp_path / "window-state.ini"
    )
    yield made
    made.close()


def open_window(opener: HistoryOpener, qtbot: QtBot, person_id: str | None = None) -> HistoryWindow:
    window = opener.open(person_id)
    window.show_range("3h")
    qtbot.waitUntil(lambda: window.isVisible() and window.shown_span is not None, timeout=WAIT_MS)
    return window


def combo_of(window: HistoryWindow) -> QComboBox:
    combo = window.findChild(QComboBox, "history-person")
    assert combo is not None
    return combo


def shown_values(window: HistoryWindow) -> set[int]:
    return {r.mgdl for r in window.shown_readings}


def test_the_selector_switches_the_chart_the_figures_and_the_thresholds(
    opener: HistoryOpener, settings: Settings, qtbot: QtBot
) -> None:
    sam, mia = settings.people
    window = open_window(opener, qtbot)
    combo = combo_of(window)
    assert combo.isVisible()
    assert [combo.itemText(i) for i in range(combo.count())] == ["Sam", "Mia"]
    assert all(not combo.itemIcon(i).isNull() for i in range(combo.count()))  # their chips
    assert window.windowTitle() == "Sam — History — CGM Tray"
    assert shown_values(window) == {120}
    assert window.stats_panel.texts()["mean"] == "120 mg/dL"
    assert window.chart.threshold_labels()[AlertKind.LOW] == (70.0, "Low 70")

    # The person picks Mia with the keyboard: Alt+P to the selector, then Down.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    QTest.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(combo.hasFocus, timeout=WAIT_MS)
    with qtbot.waitSignal(window.refreshed, timeout=WAIT_MS):
        QTest.keyClick(combo, Qt.Key.Key_Down)
    assert window.person_id == mia.id
    assert window.windowTitle() == "Mia — History — CGM Tray"
    assert shown_values(window) == {62}
    assert len(window.shown_readings) == 36
    texts = window.stats_panel.texts()
    assert texts["mean"] == "62 mg/dL"
    assert texts["below"].startswith("100%")
    assert window.chart.threshold_labels()[AlertKind.LOW] == (80.0, "Low 80")  # her own
    assert window.chart.drawn_counts()["LOW"] == 36
    assert window.stats_panel.title.startswith("Mia · Last 3 hours")  # (in a screenshot too)

    with qtbot.waitSignal(window.refreshed, timeout=WAIT_MS):
        QTest.keyClick(combo, Qt.Key.Key_Up)
    assert window.person_id == sam.id
    assert shown_values(window) == {120}
    assert window.chart.threshold_labels()[AlertKind.LOW] == (70.0, "Low 70")


def test_the_unit_is_everyones(opener: HistoryOpener, settings: Settings, qtbot: QtBot) -> None:
    mia = settings.people[1]
    window = open_window(opener, qtbot, mia.id)
    opener.apply_settings(dataclasses.replace(settings, unit=Unit.MMOL))
    assert window.stats_panel.texts()["mean"] == "3.4 mmol/L"
    assert window.chart.threshold_labels()[AlertKind.LOW] == (80.0, "Low 4.4")  # still hers
    window.show_person(settings.people[0].id)
    assert window.stats_panel.texts()["mean"] == "6.7 mmol/L"


def test_opening_from_a_persons_icon_shows_that_person(
    opener: HistoryOpener, settings: Settings, qtbot: QtBot
) -> None:
    sam, mia = settings.people
    assert opener.window is None  # nothing made before the first open
    window = open_window(opener, qtbot, mia.id)
    assert window.person_id == mia.id
    assert combo_of(window).currentText() == "Mia"
    assert window.windowTitle() == "Mia — History — CGM Tray"
    assert shown_values(window) == {62}
    # The plain "Open history" (one icon for everyone's left click) keeps whoever is shown.
    assert opener.open() is window
    assert window.person_id == mia.id
    # A person's controller holds their own door to it.
    assert opener.for_person(sam.id).open() is window
    assert window.person_id == sam.id
    assert shown_values(window) == {120}
    # An id no longer listed (a person just removed) opens the window as it is.
    assert opener.open("0123456789ab") is window
    assert window.person_id == sam.id


def test_readings_for_the_person_not_shown_do_not_redraw(
    opener: HistoryOpener, settings: Settings, clock: ManualClock, qtbot: QtBot
) -> None:
    sam, mia = settings.people
    window = open_window(opener, qtbot, sam.id)
    qtbot.waitUntil(lambda: window.chart.paint_count > 0, timeout=WAIT_MS)
    clock.advance(FIVE_MIN)
    fresh_mia = Reading(NOW + FIVE_MIN, 58, Trend.SINGLE_DOWN)
    before = window.shown_readings
    with qtbot.assertNotEmitted(window.refreshed, wait=100):
        opener.for_person(mia.id).add_readings((fresh_mia,))
    assert window.shown_readings == before
    assert window.windowTitle() == "Sam — History — CGM Tray"

    fresh_sam = Reading(NOW + FIVE_MIN, 125, Trend.FLAT)
    with qtbot.waitSignal(window.refreshed, timeout=WAIT_MS):
        opener.add_readings((fresh_sam,), sam.id)
    assert window.shown_readings[-1] == fresh_sam

    # Mia's reading (not in her store: the window keeps what arrived) shows when she is picked.
    window.show_person(mia.id)
    assert window.shown_readings[-1] == fresh_mia
    assert fresh_sam not in window.shown_readings


def test_settings_changes_follow_the_people(
    opener: HistoryOpener, settings: Settings, tmp_path: Path, qtbot: QtBot
) -> None:
    sam, mia = settings.people
    window = open_window(opener, qtbot, mia.id)
    renamed = dataclasses.replace(mia, name="Mia Rose", label="MR", alerts=raised_low(90))
    opener.apply_settings(dataclasses.replace(settings, people=(sam, renamed)))
    assert window.person_id == mia.id
    assert combo_of(window).currentText() == "Mia Rose"
    assert window.windowTitle() == "Mia Rose — History — CGM Tray"
    assert window.chart.threshold_labels()[AlertKind.LOW] == (90.0, "Low 90")
    # A name is shown as written, never read as markup.
    tagged = dataclasses.replace(mia, name="<b>Mia</b> & co")
    opener.apply_settings(dataclasses.replace(settings, people=(sam, tagged)))
    title = window.findChild(QLabel, "stats-title")
    assert title is not None
    assert title.text().startswith("<b>Mia</b> & co · Last 3 hours")
    assert title.textFormat() == Qt.TextFormat.PlainText
    assert combo_of(window).currentText() == "<b>Mia</b> & co"
    # Mia is removed (her history deleted): the window shows Sam, alone, as the one-person window.
    alone = remove_person(
        settings, mia.id, MemoryCredentialStore(), keep_history=False, data_dir=tmp_path
    )
    opener.apply_settings(alone)
    assert window.person_id == sam.id
    assert not combo_of(window).isVisible()
    assert window.windowTitle() == "History — CGM Tray"
    assert shown_values(window) == {120}


def test_with_one_person_the_window_is_todays(
    tmp_path: Path, clock: ManualClock, qtbot: QtBot
) -> None:
    settings = one_person_settings(username="sam@example.com", name="Sam")
    path = tmp_path / settings.people[0].history_file
    with HistoryStore(path) as store:
        store.add(steady(36, 120))
    opener = history_opener(path, clock, settings, tmp_path / "window-state.ini")
    try:
        window = open_window(opener, qtbot, settings.people[0].id)
        assert window.windowTitle() == "History — CGM Tray"
        assert window.stats_panel.title.startswith("Last 3 hours")
        assert not combo_of(window).isVisible()
        assert not any(
            label.isVisible() and "Person" in label.text() for label in window.findChildren(QLabel)
        )
        # The bar starts with the range buttons, at the window's margin, as it always did.
        first_button = window.findChild(QPushButton, "range-3h")
        assert first_button is not None
        layout = window.layout()
        assert layout is not None
        assert first_button.geometry().x() == layout.contentsMargins().left()
        asked: list[str] = []
        target = tmp_path / "export.csv"

        def ask(parent: QWidget, suggested: str) -> str:
            asked.append(suggested)
            return str(target)

        window._ask_save_path = ask
        assert window.export_csv() == target
        assert Path(asked[0]).name.startswith("cgm-readings-3h-to-")
        with target.open(newline="", encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(CSV_HEADER)
        assert "Exported 36 readings to" in window.status
    finally:
        opener.close()


def test_the_csv_export_names_the_person(tmp_path: Path, clock: ManualClock, qtbot: QtBot) -> None:
    settings = family("Sam", "Zoë O'Neil / 2")
    for person, mgdl in zip(settings.people, (120, 95), strict=True):
        with HistoryStore(tmp_path / person.history_file) as store:
            store.add(steady(36, mgdl))
    opener = history_opener(
        tmp_path / settings.people[0].history_file, clock, settings, tmp_path / "state.ini"
    )
    try:
        window = open_window(opener, qtbot, settings.people[1].id)
        asked: list[str] = []
        target = tmp_path / "zoe.csv"

        def ask(parent: QWidget, suggested: str) -> str:
            asked.append(suggested)
            return str(target)

        window._ask_save_path = ask
        export_button = window.findChild(QPushButton, "export-csv")
        assert export_button is not None
        with qtbot.waitSignal(window.export_finished, timeout=WAIT_MS):
            QTest.mouseClick(export_button, Qt.MouseButton.LeftButton)
        name = Path(asked[0]).name
        assert name.startswith("cgm-readings-zoë-o-neil-2-3h-to-")
        assert "/" not in name
        assert "Exported 36 readings of Zoë O'Neil / 2 to" in window.status
        with target.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        # The columns a reader of today's files knows come first, unchanged; the name is last.
        assert rows[0] == [*CSV_HEADER, "person"]
        assert len(rows) == 37
        assert all(row[2] == "95" and row[-1] == "Zoë O'Neil / 2" for row in rows[1:])
    finally:
        opener.close()


def test_a_persons_store_that_cannot_be_opened_is_said_not_shown_as_another_s(
    opener: HistoryOpener, settings: Settings, tmp_path: Path, qtbot: QtBot
) -> None:
    sam = settings.people[0]
    broken = dataclasses.replace(settings.people[1], history_file="history-0123456789ab.sqlite3")
    (tmp_path / broken.history_file).mkdir()  # not a file at all
    window = open_window(opener, qtbot, sam.id)
    opener.apply_settings(dataclasses.replace(settings, people=(sam, broken)))
    window.show_person(broken.id)
    assert window.windowTitle() == "Mia — History — CGM Tray"
    assert window.notice.startswith("The history of Mia could not be opened")
    assert window.shown_readings == ()
    assert window.stats_panel.texts()["mean"] == "–"
    assert window.export_csv(tmp_path / "mia.csv") is None
    assert not (tmp_path / "mia.csv").exists()
    window.show_person(sam.id)
    assert shown_values(window) == {120}
    assert window.notice == ""


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("Sam", "sam"),
        ("Zoë O'Neil", "zoë-o-neil"),
        ("../../etc/passwd", "etc-passwd"),
        ('a\\b:c*d?e"f<g>h|i', "a-b-c-d-e-f-g-h-i"),
        ("  ", "person"),
        ("🙂🙂", "person"),
        ("x" * 60, "x" * 40),
        ("明美", "明美"),
    ],
)
def test_a_name_in_a_file_name_keeps_only_safe_characters(name: str, part: str) -> None:
    assert file_name_part(name) == part


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_name_gives_a_short_file_name_part_that_cannot_leave_the_folder(name: str) -> None:
    part = file_name_part(name)
    assert 1 <= len(part) <= 40
    assert not set(part) & set('/\\:*?"<>|.\0 \t\n')
    assert not part.startswith("-")
    assert not part.endswith("-")
    assert part == part.lower()
