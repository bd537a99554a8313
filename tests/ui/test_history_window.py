"""The history window against a real SQLite store: points per range, LOW/HIGH, gaps, stats, live
updates, CSV export, the unit, remembered state, and one window raised on every open."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QCoreApplication, QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton, QWidget
from pytestqt.qtbot import QtBot

from cgmtray.domain.alert_config import AlertKind, AlertSettings, KindConfig
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.stats import band_of, summarize
from cgmtray.domain.units import Unit, format_amount, mgdl_to_mmol
from cgmtray.storage.history import HistoryStore
from cgmtray.ui.chart import (
    CHART_BOTTOM,
    CHART_TOP,
    HIGH_MARK_Y,
    LOW_MARK_Y,
    MAX_JOIN_GAP_S,
    chart_points,
    trace,
)
from cgmtray.ui.history_access import HistoryOpener
from cgmtray.ui.history_window import (
    DEFAULT_RANGE_KEY,
    HISTORY_RANGES,
    HistoryRange,
    HistoryWindow,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
FIVE_MIN = timedelta(minutes=5)


def steady(count: int, end: datetime = NOW, mgdl: int = 120) -> list[Reading]:
    """`count` readings every 5 min up to and including `end`."""
    return [Reading(end - i * FIVE_MIN, mgdl, Trend.FLAT) for i in range(count)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def writer(db_path: Path) -> Iterator[HistoryStore]:
    """The worker's side: a read-write store on the file."""
    with HistoryStore(db_path) as store:
        yield store


@pytest.fixture
def reader(db_path: Path, writer: HistoryStore) -> Iterator[HistoryStore]:
    """The window's side: a read-only store on the same file."""
    del writer  # created first, so the file exists with its schema
    with HistoryStore(db_path, read_only=True) as store:
        yield store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "window-state.ini"), QSettings.Format.IniFormat)


MakeWindow = Callable[..., HistoryWindow]


@pytest.fixture
def make_window(
    qtbot: QtBot, reader: HistoryStore, clock: ManualClock, qsettings: QSettings
) -> MakeWindow:
    def make(**overrides: object) -> HistoryWindow:
        options: dict[str, object] = {
            "clock": clock,
            "unit": Unit.MGDL,
            "alerts": AlertSettings(),
            "settings_store": qsettings,
            "local_tz": BERLIN,
        }
        options.update(overrides)
        window = HistoryWindow(reader, **options)  # type: ignore[arg-type]
        qtbot.addWidget(window)
        return window

    return make


def open_on(window: HistoryWindow, qtbot: QtBot, key: str | None = None) -> HistoryWindow:
    if key is not None:
        window.show_range(key)
    with qtbot.waitActive(window):  # active, so window shortcuts (Ctrl+E) work
        window.present()
    return window


# --- points per range ---------------------------------------------------------------------------


@pytest.mark.parametrize("choice", HISTORY_RANGES, ids=[r.key for r in HISTORY_RANGES])
def test_each_range_shows_every_stored_reading_in_it_and_no_other(
    choice: HistoryRange, writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    span = choice.span
    writer.add(steady(32 * 288))  # 32 days, one every 5 min, the newest exactly now
    window = open_on(make_window(), qtbot, choice.key)
    expected = round(span / FIVE_MIN)  # (now - span, now]: the reading exactly at the start is out
    assert len(window.shown_readings) == expected
    assert sum(window.chart.drawn_counts().values()) == expected
    assert window.shown_readings[-1].time == NOW
    assert window.shown_readings[0].time == NOW - span + FIVE_MIN
    assert window.notice == ""


def test_a_range_longer_than_the_store_says_how_much_history_there_is(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(2 * 288 + 48))  # 2 days and 4 hours (minus one interval)
    window = open_on(make_window(), qtbot, "7d")
    assert len(window.shown_readings) == 2 * 288 + 48
    assert "2 d 3 h" in window.notice
    assert "since Thu 19 Nov 09:05" in window.notice  # local time (Berlin, UTC+1)
    assert window.stats is not None
    assert window.stats.expected_count == 7 * 288


def test_an_empty_store_says_readings_will_appear(make_window: MakeWindow, qtbot: QtBot) -> None:
    window = open_on(make_window(), qtbot)
    assert window.shown_readings == ()
    assert "No readings are stored yet" in window.notice
    texts = window.stats_panel.texts()
    assert texts["mean"] == "–"
    assert texts["coverage"] == "0%"


def test_a_range_with_nothing_in_it_says_so(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(12, end=NOW - timedelta(hours=5)))
    window = open_on(make_window(), qtbot, "3h")
    assert window.shown_readings == ()
    assert window.notice == "No readings in the last 3 hours."


def test_nothing_is_queried_or_drawn_before_the_window_is_shown(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(288))
    window = make_window()
    window.add_readings((Reading(NOW, 120, Trend.FLAT),))
    assert window.shown_span is None
    assert window.chart.paint_count == 0
    open_on(window, qtbot)
    qtbot.waitUntil(lambda: window.chart.paint_count > 0)
    assert len(window.shown_readings) == 288


# --- LOW, HIGH and gaps -------------------------------------------------------------------------


def test_low_and_high_sit_at_the_chart_edges_with_markers_never_at_39_or_401(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(
        [
            Reading(NOW - 20 * FIVE_MIN, 45, Trend.SINGLE_DOWN),
            Reading(NOW - 19 * FIVE_MIN, LOW_MGDL, Trend.SINGLE_DOWN),
            Reading(NOW - 18 * FIVE_MIN, LOW_MGDL, Trend.FLAT),
            Reading(NOW - 5 * FIVE_MIN, 395, Trend.SINGLE_UP),
            Reading(NOW - 4 * FIVE_MIN, HIGH_MGDL, Trend.NONE),
            Reading(NOW, 140, Trend.FLAT),
        ]
    )
    window = open_on(make_window(), qtbot, "3h")
    markers = window.chart.marker_positions()
    low_x = [(NOW - n * FIVE_MIN).timestamp() for n in (19, 18)]
    assert markers["LOW"] == [(x, LOW_MARK_Y) for x in low_x]
    assert markers["HIGH"] == [((NOW - 4 * FIVE_MIN).timestamp(), HIGH_MARK_Y)]
    counts = window.chart.drawn_counts()
    assert (counts["LOW_MARKS"], counts["HIGH_MARKS"]) == (2, 1)
    assert sum(counts.values()) == 6
    # The markers are inside the visible area, in the strips beyond the sensor's range.
    bottom, top = window.chart.y_range()
    assert (bottom, top) == (CHART_BOTTOM, CHART_TOP)
    assert bottom < LOW_MARK_Y < 40 < 400 < HIGH_MARK_Y < top
    # No point of any kind is drawn at the raw codes.
    _, ys = window.chart.trace_data()
    assert not np.isin(ys[np.isfinite(ys)], [LOW_MGDL, HIGH_MGDL]).any()
    labels = window.chart.axis_labels()
    assert labels[0] == "LOW"
    assert labels[-1] == "HIGH"
    assert "39" not in labels
    assert "401" not in labels


def test_the_line_never_bridges_a_gap_longer_than_15_minutes(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    after_gap = steady(6, end=NOW)  # the oldest at now - 25 min
    before_gap = steady(12, end=NOW - timedelta(minutes=65))  # 40 min before; back to -120 min
    close = [Reading(NOW - timedelta(minutes=135), 130, Trend.FLAT)]  # 15 min earlier: joined
    writer.add(before_gap + after_gap + close)
    window = open_on(make_window(), qtbot, "3h")
    xs, _ys = window.chart.trace_data()
    assert np.isnan(xs).sum() == 1
    gap_at = int(np.nonzero(np.isnan(xs))[0][0])
    assert xs[gap_at + 1] - xs[gap_at - 1] == pytest.approx(40 * 60)
    assert len(window.shown_readings) == 19


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.integers(min_value=0, max_value=3 * 24 * 3600), min_size=0, max_size=60, unique=True
    ),
    st.lists(st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL), min_size=60, max_size=60),
)
def test_trace_keeps_every_point_and_joins_only_readings_at_most_15_minutes_apart(
    offsets: list[int], values: list[int]
) -> None:
    readings = [
        Reading(NOW - timedelta(seconds=s), values[i], Trend.FLAT) for i, s in enumerate(offsets)
    ]
    points = chart_points(readings)
    # Every point is coloured by the band the stats beside the chart count it in.
    ordered = sorted(readings, key=lambda r: r.time)
    assert points.ranges.tolist() == [int(band_of(r.mgdl)) for r in ordered]
    xs, ys = trace(points)
    finite = xs[np.isfinite(xs)]
    assert finite.tolist() == sorted(r.time.timestamp() for r in readings)
    breaks = np.isnan(xs)
    assert not (breaks[:-1] & breaks[1:]).any(), "two breaks in a row"
    if len(xs):
        assert not breaks[0]
        assert not breaks[-1]
    for i in range(1, len(xs)):
        if breaks[i]:
            assert xs[i + 1] - xs[i - 1] > MAX_JOIN_GAP_S  # a break only at a real gap
        elif not breaks[i - 1]:
            assert 0 < xs[i] - xs[i - 1] <= MAX_JOIN_GAP_S
    assert not np.isin(ys, [LOW_MGDL, HIGH_MGDL]).any()


# --- hover --------------------------------------------------------------------------------------


def test_hovering_a_dot_shows_its_local_time_value_and_arrow(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    target = Reading(NOW - 6 * FIVE_MIN, 187, Trend.FORTY_FIVE_UP)
    writer.add([*steady(3), target, Reading(NOW - 12 * FIVE_MIN, LOW_MGDL, Trend.SINGLE_DOWN)])
    window = open_on(make_window(), qtbot, "3h")
    viewport = window.chart.plot_viewport
    point = window.chart.viewport_point(target).toPoint()
    QTest.mouseMove(viewport, point)
    qtbot.waitUntil(lambda: window.chart.hovered == target)
    assert window.chart.hover_text == "Sat 21 Nov 12:30 · 187 mg/dL ↗ rising slightly"

    low = window.shown_readings[0]
    QTest.mouseMove(viewport, window.chart.viewport_point(low).toPoint())
    qtbot.waitUntil(lambda: window.chart.hovered == low)
    assert "LOW (below 40 mg/dL) ↓ falling" in window.chart.hover_text

    QTest.mouseMove(viewport, QPoint(viewport.width() // 2, 5))  # far in time from any reading
    qtbot.waitUntil(lambda: window.chart.hovered is None)
    assert window.chart.hover_text == ""


# --- statistics ---------------------------------------------------------------------------------


def test_the_figures_are_domain_stats_of_the_shown_readings(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    values = [LOW_MGDL, 50, 65, 90, 140, 181, 260, HIGH_MGDL]
    readings = [
        Reading(NOW - i * FIVE_MIN, values[i % len(values)], Trend.FLAT) for i in range(280)
    ]
    writer.add(readings)
    window = open_on(make_window(), qtbot, "24h")
    start, end = NOW - timedelta(hours=24), NOW
    expected = summarize(readings, start, end, AlertSettings().thresholds())
    assert window.shown_span == (start, end)
    assert window.stats == expected
    texts = window.stats_panel.texts()
    assert texts["mean"] == f"{format_amount(expected.mean_mgdl or 0, Unit.MGDL)} mg/dL"
    assert texts["sd"] == f"{format_amount(expected.sd_mgdl or 0, Unit.MGDL)} mg/dL"
    assert texts["cv"] == f"{expected.cv_percent:.1f}%"
    assert expected.gmi_percent is None
    assert texts["gmi"] == "– (needs 14 days)"  # a day of readings gives no GMI
    # 280 readings, 8 values in turn: 35 of each value.
    assert texts["in_range"] == "25% · 5.8 h"  # 90, 140
    assert texts["below"] == "38% · 8.8 h"  # LOW, 50, 65
    assert texts["very_low"] == "25% · 5.8 h"  # LOW, 50
    assert texts["above"] == "38% · 8.8 h"  # 181, 260, HIGH
    assert texts["very_high"] == "25% · 5.8 h"  # 260, HIGH
    assert texts["coverage"] == "97%"
    assert texts["readings"] == "280 of 288"


def test_a_rare_low_is_never_rounded_away(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    readings = steady(30 * 288)
    readings[100] = Reading(readings[100].time, 50, Trend.FLAT)
    writer.add(readings)
    window = open_on(make_window(), qtbot, "30d")
    texts = window.stats_panel.texts()
    assert texts["below"].startswith("<1% · 0.1 h")
    assert texts["in_range"].startswith(">99%")


def test_each_dot_is_coloured_by_the_stats_row_that_counts_it(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    # 181-249 is "Above 180" in the stats, so its dots are the high colour, not in-range green,
    # although no alert threshold (high 250) is crossed.
    values = [LOW_MGDL, 50, 65, 120, 200, 240, 260, HIGH_MGDL]
    writer.add([Reading(NOW - i * FIVE_MIN, v, Trend.FLAT) for i, v in enumerate(values)])
    window = open_on(make_window(), qtbot, "3h")
    counts = window.chart.drawn_counts()
    stats = window.stats
    assert stats is not None
    assert counts["HIGH"] == stats.above.count - stats.very_high.count == 2  # 200, 240
    assert counts["IN_RANGE"] == stats.in_range.count == 1
    assert counts["LOW"] == stats.below.count - stats.very_low.count == 1  # 65
    assert counts["URGENT_LOW"] + counts["LOW_MARKS"] == stats.very_low.count == 2
    assert counts["URGENT_HIGH"] + counts["HIGH_MARKS"] == stats.very_high.count == 2


def test_gmi_shows_a_number_for_30_days_and_a_dash_for_3_hours(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(30 * 288))
    window = open_on(make_window(), qtbot, "30d")
    assert window.stats_panel.texts()["gmi"].endswith("%")
    three_hours = window.findChild(QPushButton, "range-3h")
    assert three_hours is not None
    three_hours.click()
    qtbot.waitUntil(lambda: window.range_key == "3h", timeout=30000)
    assert window.stats_panel.texts()["gmi"] == "– (needs 14 days)"


# --- live updates -------------------------------------------------------------------------------


def test_a_reading_added_to_the_store_appears_without_reopening(
    writer: HistoryStore, make_window: MakeWindow, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(36))
    window = open_on(make_window(), qtbot, "3h")
    assert window.shown_readings[-1].time == NOW
    clock.advance(timedelta(minutes=5))
    fresh = Reading(NOW + FIVE_MIN, 64, Trend.SINGLE_DOWN)
    writer.add([fresh])  # the worker writes, then tells the GUI
    with qtbot.waitSignal(window.refreshed, timeout=30_000):
        window.add_readings((fresh,))
    assert window.shown_readings[-1] == fresh
    assert len(window.shown_readings) == 36  # the window slid: the oldest fell out
    counts = window.chart.drawn_counts()
    assert (counts["LOW"], counts["IN_RANGE"], counts["URGENT_LOW"]) == (1, 35, 0)
    assert window.stats is not None
    assert window.stats.below.count == 1


def test_while_open_the_range_follows_the_clock_even_without_new_readings(
    writer: HistoryStore, make_window: MakeWindow, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(36))
    window = open_on(make_window(refresh_ms=20), qtbot, "3h")
    clock.advance(timedelta(minutes=40))  # the sensor went quiet
    with qtbot.waitSignal(window.refreshed, timeout=30_000):
        pass
    assert window.shown_span == (NOW - timedelta(hours=2, minutes=20), NOW + timedelta(minutes=40))
    assert len(window.shown_readings) == 28  # a 40-minute gap at the right, nothing faked
    window.close()  # closing stops the redraws (the conftest fails a test that leaks a timer)


def test_a_reading_the_store_could_not_keep_still_shows(
    writer: HistoryStore, make_window: MakeWindow, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    window = open_on(make_window(), qtbot, "3h")
    clock.advance(timedelta(minutes=5))
    unsaved = Reading(NOW + FIVE_MIN, 150, Trend.FLAT)
    window.add_readings((unsaved,))
    assert window.shown_readings[-1] == unsaved
    assert len(window.shown_readings) == 13


def test_readings_arriving_while_hidden_show_on_the_next_open(
    writer: HistoryStore, make_window: MakeWindow, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    window = open_on(make_window(), qtbot, "3h")
    window.close()
    clock.advance(timedelta(minutes=10))
    later = [Reading(NOW + FIVE_MIN, 121, Trend.FLAT), Reading(NOW + 2 * FIVE_MIN, 122, Trend.FLAT)]
    writer.add(later)
    window.add_readings(tuple(later))
    assert window.shown_readings[-1].time == NOW  # not redrawn while hidden
    open_on(window, qtbot)
    assert window.shown_readings[-2:] == tuple(later)


# --- unit and thresholds ------------------------------------------------------------------------


def test_the_chosen_unit_is_used_throughout(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    target = Reading(NOW, 180, Trend.FLAT)
    writer.add([*steady(11, end=NOW - FIVE_MIN), target])
    window = open_on(make_window(unit=Unit.MGDL), qtbot, "3h")
    assert "250" in window.chart.axis_labels()
    window.apply_view(Unit.MMOL, AlertSettings())
    labels = window.chart.axis_labels()
    assert labels == ["LOW", "4", "6", "8", "10", "12", "14", "16", "18", "20", "HIGH"]
    thresholds = window.chart.threshold_labels()
    assert thresholds[AlertKind.LOW][1] == "Low 3.9"
    assert thresholds[AlertKind.URGENT_LOW][1] == "Urgent low 3.1"
    assert thresholds[AlertKind.URGENT_HIGH][1] == "Urgent high 16.7 (alert off)"
    texts = window.stats_panel.texts()
    assert texts["mean"].endswith(" mmol/L")
    assert window.stats_panel.title.startswith("Last 3 hours")
    QTest.mouseMove(window.chart.plot_viewport, window.chart.viewport_point(target).toPoint())
    qtbot.waitUntil(lambda: window.chart.hovered == target)
    assert f"{mgdl_to_mmol(180)} mmol/L" in window.chart.hover_text


def test_threshold_lines_follow_the_alert_settings(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(12, mgdl=75))
    window = open_on(make_window(), qtbot, "3h")
    assert window.chart.drawn_counts()["IN_RANGE"] == 12
    base = AlertSettings()
    raised_low = base.with_kind(AlertKind.LOW, KindConfig(True, 80, FIVE_MIN, False, FIVE_MIN))
    window.apply_view(Unit.MGDL, raised_low)
    assert window.chart.threshold_labels()[AlertKind.LOW] == (80.0, "Low 80")
    # The dots keep the colour of the stats band that counts them (75 is in the 70-180 target),
    # whatever the alert thresholds; only the line moved.
    assert window.chart.drawn_counts()["IN_RANGE"] == 12
    assert window.stats_panel.texts()["in_range"].startswith("100%")


# --- CSV export ---------------------------------------------------------------------------------


def test_csv_export_of_the_shown_range_round_trips(
    writer: HistoryStore, make_window: MakeWindow, tmp_path: Path, qtbot: QtBot
) -> None:
    readings = [
        Reading(NOW - timedelta(minutes=5 * i, seconds=7), v, t)
        for i, (v, t) in enumerate(
            [(LOW_MGDL, Trend.NONE), (72, Trend.SINGLE_DOWN), (HIGH_MGDL, Trend.DOUBLE_UP)] * 20
        )
    ]
    outside = Reading(NOW - timedelta(hours=3, minutes=1), 100, Trend.FLAT)
    writer.add([*readings, outside])
    asked: list[str] = []
    target = tmp_path / "out" / "export.csv"
    target.parent.mkdir()

    def ask(parent: QWidget, suggested: str) -> str | None:
        asked.append(suggested)
        return str(target)

    window = open_on(make_window(ask_save_path=ask), qtbot, "3h")
    with qtbot.waitSignal(window.export_finished, timeout=30_000) as finished:
        QTest.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert finished.args == [str(target)]
    assert Path(asked[0]).name == "cgm-readings-3h-to-2026-11-21-1300.csv"
    assert "Exported 36 readings" in window.status

    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [datetime.fromisoformat(r["time_utc"]) for r in rows] == [
        r.time for r in window.shown_readings
    ]
    for row, reading in zip(rows, window.shown_readings, strict=True):
        local = datetime.fromisoformat(row["time_local"])
        assert local == reading.time
        assert local.utcoffset() == timedelta(hours=1)  # Berlin in November
        if reading.is_numeric:
            assert int(row["mg_dl"]) == reading.mgdl
            assert row["mmol_l"] == str(mgdl_to_mmol(reading.mgdl))
        else:
            assert row["mg_dl"] == row["mmol_l"] == ("LOW" if reading.is_low else "HIGH")
        assert Trend[_enum_name(row["trend"])] is reading.trend


def _enum_name(wire_name: str) -> str:
    return next(t.name for t in Trend if t.wire_name == wire_name)


def test_a_cancelled_export_writes_nothing(
    writer: HistoryStore, make_window: MakeWindow, tmp_path: Path, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    window = open_on(make_window(ask_save_path=lambda parent, suggested: None), qtbot)
    export_button = window.findChild(QPushButton, "export-csv")
    assert export_button is not None
    QTest.mouseClick(export_button, Qt.MouseButton.LeftButton)
    assert window.status == ""
    assert list(tmp_path.glob("*.csv")) == []


def test_a_failed_export_says_so_and_the_window_carries_on(
    writer: HistoryStore, make_window: MakeWindow, tmp_path: Path, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    window = open_on(make_window(), qtbot)
    assert window.export_csv(tmp_path / "missing-folder" / "x.csv") is None
    assert window.status.startswith("Could not export")
    assert window.isVisible()


# --- remembering, opening, keyboard -------------------------------------------------------------


def test_the_window_remembers_its_range_and_size(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    first = make_window()
    assert first.range_key == DEFAULT_RANGE_KEY
    open_on(first, qtbot, "7d")
    first.resize(700, 430)  # within the offscreen screen (800 x 600): geometry is kept on screen
    first.close()
    second = open_on(make_window(), qtbot)
    assert second.range_key == "7d"
    assert (second.width(), second.height()) == (700, 430)
    seven_days = second.findChild(QPushButton, "range-7d")
    assert seven_days is not None
    assert seven_days.isChecked()


def test_range_buttons_switch_the_range(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    writer.add(steady(8 * 288))
    window = open_on(make_window(), qtbot, "24h")
    button = window.findChild(QPushButton, "range-6h")
    assert button is not None
    assert button.text() == "&6 h"  # Alt+6
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.range_key == "6h"
    assert len(window.shown_readings) == 72
    assert window.stats_panel.title.startswith("Last 6 hours")
    with pytest.raises(ValueError, match="unknown history range"):
        window.show_range("2w")


def test_escape_closes_the_window(
    writer: HistoryStore, make_window: MakeWindow, qtbot: QtBot
) -> None:
    window = open_on(make_window(), qtbot)
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()


def test_opening_again_raises_the_one_window(
    writer: HistoryStore, make_window: MakeWindow, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    made: list[HistoryWindow] = []

    def factory() -> HistoryWindow:
        made.append(make_window())
        return made[-1]

    opener = HistoryOpener(factory)
    opener.add_readings((Reading(NOW, 120, Trend.FLAT),))  # no window yet: nothing to do
    assert opener.window is None
    opener.apply_view(Unit.MMOL, AlertSettings())
    prepared = opener.prepare()  # at idle after start: made and warmed up, nothing queried
    assert not prepared.isVisible()
    assert prepared.shown_span is None
    first = opener.open()
    assert first is prepared
    assert first.isVisible()
    assert first.stats_panel.texts()["mean"].endswith("mmol/L")
    first.showMinimized()
    second = opener.open()
    assert second is first
    assert len(made) == 1
    assert second.isVisible()
    assert not second.isMinimized()
    first.close()
    clock.advance(FIVE_MIN)
    fresh = Reading(NOW + FIVE_MIN, 99, Trend.FLAT)
    writer.add([fresh])
    opener.add_readings((fresh,))
    assert opener.open() is first
    assert first.shown_readings[-1] == fresh
    opener.close()
    QCoreApplication.processEvents()  # late window-system events must not wake it up again
    assert opener.window is None


def test_an_unreadable_store_is_reported_not_raised(
    db_path: Path, writer: HistoryStore, clock: ManualClock, qtbot: QtBot
) -> None:
    writer.add(steady(12))
    broken = HistoryStore(db_path, read_only=True)
    broken.close()  # every query now fails
    window = HistoryWindow(broken, clock=clock, local_tz=BERLIN)
    qtbot.addWidget(window)
    open_on(window, qtbot)
    assert window.notice.startswith("The history could not be read")
