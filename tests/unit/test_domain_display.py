"""The tray's display model: badge text, severity, staleness, tooltip, status line, spoken text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.display import (
    CLOCK_HINT,
    DisplayModel,
    Severity,
    compact_text,
    model,
)
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.freshness import Freshness
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.units import Unit

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THRESHOLDS = Thresholds()
NO_REACH = "Can't reach Dexcom Share"
SIGN_IN = "Sign-in failed: check username, password and region"


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def pair(mgdl: int, previous: int, trend: Trend = Trend.FLAT, age_min: float = 2) -> list[Reading]:
    """The newest reading `age_min` minutes old and the one 5 minutes before it."""
    newest = NOW - minutes(age_min)
    return [Reading(newest - minutes(5), previous, Trend.FLAT), Reading(newest, mgdl, trend)]


def show(
    readings: list[Reading],
    unit: Unit = Unit.MGDL,
    connection: str | None = None,
    failure: FailureClass | None = None,
    server_skew: timedelta | None = None,
) -> DisplayModel:
    return model(
        readings,
        NOW,
        unit=unit,
        thresholds=THRESHOLDS,
        connection=connection,
        failure=failure,
        server_skew=server_skew,
    )


def test_the_product_example_exactly() -> None:
    shown = show(pair(142, 139))
    assert shown == DisplayModel(
        text="142",
        arrow="→",
        severity=Severity.IN_RANGE,
        range=GlucoseRange.IN_RANGE,
        freshness=Freshness.FRESH,
        stale=False,
        tooltip="142 mg/dL → steady · +3 · 2 min ago",
        status_line="142 mg/dL → steady · +3 · 2 min ago",
        accessible="Glucose 142 milligrams per decilitre, steady, up 3, 2 minutes ago.",
        unit=Unit.MGDL,
        reading=Reading(NOW - minutes(2), 142, Trend.FLAT),
        age=minutes(2),
    )


def test_the_product_example_in_mmol() -> None:
    shown = show(pair(142, 139), unit=Unit.MMOL)
    assert shown.text == "7.9"
    assert shown.tooltip == "7.9 mmol/L → steady · +0.2 · 2 min ago"
    assert shown.accessible == "Glucose 7.9 millimoles per litre, steady, up 0.2, 2 minutes ago."
    assert shown.unit is Unit.MMOL


@pytest.mark.parametrize(
    ("mgdl", "previous", "trend", "unit", "text", "severity", "tooltip", "accessible"),
    [
        (
            50, 58, Trend.SINGLE_DOWN, Unit.MGDL, "50", Severity.URGENT_LOW,
            "50 mg/dL ↓ falling · -8 · 2 min ago",
            "Glucose 50 milligrams per decilitre, falling, down 8, 2 minutes ago.",
        ),
        (
            50, 58, Trend.SINGLE_DOWN, Unit.MMOL, "2.8", Severity.URGENT_LOW,
            "2.8 mmol/L ↓ falling · -0.4 · 2 min ago",
            "Glucose 2.8 millimoles per litre, falling, down 0.4, 2 minutes ago.",
        ),
        (
            65, 68, Trend.FORTY_FIVE_DOWN, Unit.MGDL, "65", Severity.LOW,
            "65 mg/dL ↘ falling slightly · -3 · 2 min ago",
            "Glucose 65 milligrams per decilitre, falling slightly, down 3, 2 minutes ago.",
        ),
        (
            260, 250, Trend.SINGLE_UP, Unit.MGDL, "260", Severity.HIGH,
            "260 mg/dL ↑ rising · +10 · 2 min ago",
            "Glucose 260 milligrams per decilitre, rising, up 10, 2 minutes ago.",
        ),
        (
            320, 300, Trend.DOUBLE_UP, Unit.MMOL, "17.8", Severity.URGENT_HIGH,
            "17.8 mmol/L ⇈ rising quickly · +1.1 · 2 min ago",
            "Glucose 17.8 millimoles per litre, rising quickly, up 1.1, 2 minutes ago.",
        ),
        (
            188, 188, Trend.FLAT, Unit.MMOL, "10.4", Severity.IN_RANGE,
            "10.4 mmol/L → steady · ±0.0 · 2 min ago",
            "Glucose 10.4 millimoles per litre, steady, no change, 2 minutes ago.",
        ),
        (
            LOW_MGDL, 42, Trend.DOUBLE_DOWN, Unit.MGDL, "LOW", Severity.URGENT_LOW,
            "LOW (below 40 mg/dL) ⇊ falling quickly · 2 min ago",
            "Glucose low, below 40 milligrams per decilitre, falling quickly, 2 minutes ago.",
        ),
        (
            LOW_MGDL, 42, Trend.NOT_COMPUTABLE, Unit.MMOL, "LOW", Severity.URGENT_LOW,
            "LOW (below 2.2 mmol/L) · trend not computable · 2 min ago",
            "Glucose low, below 2.2 millimoles per litre, trend not computable, 2 minutes ago.",
        ),
        (
            HIGH_MGDL, 395, Trend.NONE, Unit.MGDL, "HIGH", Severity.URGENT_HIGH,
            "HIGH (above 400 mg/dL) · 2 min ago",
            "Glucose high, above 400 milligrams per decilitre, 2 minutes ago.",
        ),
        (
            HIGH_MGDL, 395, Trend.RATE_OUT_OF_RANGE, Unit.MMOL, "HIGH", Severity.URGENT_HIGH,
            "HIGH (above 22.2 mmol/L) · trend unavailable · 2 min ago",
            "Glucose high, above 22.2 millimoles per litre, trend unavailable, 2 minutes ago.",
        ),
    ],
)  # fmt: skip
def test_fresh_readings_in_every_range_and_unit(
    mgdl: int,
    previous: int,
    trend: Trend,
    unit: Unit,
    text: str,
    severity: Severity,
    tooltip: str,
    accessible: str,
) -> None:
    shown = show(pair(mgdl, previous, trend), unit=unit)
    assert shown.text == text
    assert shown.arrow == trend.arrow
    assert shown.severity is severity
    assert shown.range == THRESHOLDS.classify_mgdl(mgdl)
    assert shown.freshness is Freshness.FRESH
    assert not shown.stale
    assert shown.tooltip == tooltip
    assert shown.status_line == tooltip
    assert shown.accessible == accessible


def test_aging_reading_still_shows_its_colour_and_its_age() -> None:
    shown = show(pair(142, 139, age_min=7))
    assert shown.freshness is Freshness.AGING
    assert shown.severity is Severity.IN_RANGE
    assert not shown.stale
    assert shown.tooltip == "142 mg/dL → steady · +3 · 7 min ago"


@pytest.mark.parametrize("unit", list(Unit))
def test_stale_reading_is_dimmed_with_its_age(unit: Unit) -> None:
    shown = show(pair(60, 62, age_min=12), unit=unit)
    assert shown.freshness is Freshness.STALE
    assert shown.severity is Severity.STALE
    assert shown.stale
    assert shown.range is GlucoseRange.LOW
    assert shown.text == ("60" if unit is Unit.MGDL else "3.3")
    assert "12 min ago" in shown.tooltip
    assert "12 min ago" in shown.status_line
    assert shown.accessible.endswith("12 minutes ago. This reading is out of date.")


@pytest.mark.parametrize("unit", list(Unit))
def test_no_data_never_shows_an_old_number(unit: Unit) -> None:
    shown = show(pair(60, 62, age_min=25), unit=unit)
    assert shown.text == "—"
    assert shown.arrow == ""
    assert shown.severity is Severity.NO_DATA
    assert shown.range is None
    assert shown.freshness is Freshness.NO_DATA
    assert shown.stale
    assert shown.tooltip == "No data · last reading 25 min ago"
    assert shown.status_line == shown.tooltip
    assert shown.accessible == "No current glucose reading; the last one was 25 minutes ago."
    assert "60" not in shown.tooltip
    assert "3.3" not in shown.tooltip
    assert shown.reading == Reading(NOW - minutes(25), 60, Trend.FLAT)


def test_no_readings_at_all() -> None:
    shown = show([])
    assert shown.text == "—"
    assert shown.severity is Severity.NO_DATA
    assert shown.freshness is Freshness.NO_DATA
    assert shown.tooltip == "No readings yet"
    assert shown.accessible == "No glucose readings yet."
    assert shown.reading is None
    assert shown.age is None


def test_connection_problem_with_fresh_reading_keeps_the_number() -> None:
    shown = show(pair(142, 139), connection=NO_REACH, failure=FailureClass.TRANSIENT)
    assert shown.text == "142"
    assert shown.severity is Severity.IN_RANGE
    assert shown.tooltip == "142 mg/dL → steady · +3 · 2 min ago\nCan't reach Dexcom Share"
    assert shown.status_line == "142 mg/dL → steady · +3 · 2 min ago · Can't reach Dexcom Share"
    assert shown.accessible == (
        "Glucose 142 milligrams per decilitre, steady, up 3, 2 minutes ago. "
        "Can't reach Dexcom Share."
    )


def test_sign_in_problem_with_fresh_reading_keeps_the_number() -> None:
    shown = show(pair(142, 139), connection=SIGN_IN, failure=FailureClass.CREDENTIALS)
    assert shown.text == "142"
    assert shown.severity is Severity.IN_RANGE
    assert shown.tooltip.endswith("\n" + SIGN_IN)


def test_sign_in_problem_with_stale_reading_stays_stale() -> None:
    shown = show(pair(142, 139, age_min=15), connection=SIGN_IN, failure=FailureClass.CREDENTIALS)
    assert shown.severity is Severity.STALE
    assert shown.text == "142"
    assert shown.tooltip == f"142 mg/dL → steady · +3 · 15 min ago\n{SIGN_IN}"


@pytest.mark.parametrize(
    ("failure", "text", "severity"),
    [
        (FailureClass.CREDENTIALS, "!", Severity.ERROR),
        (FailureClass.LOCKED, "!", Severity.ERROR),
        (FailureClass.CLIENT_BUG, "!", Severity.ERROR),
        (FailureClass.TRANSIENT, "—", Severity.NO_DATA),
        (FailureClass.SESSION, "—", Severity.NO_DATA),
        (FailureClass.RATE_LIMIT, "—", Severity.NO_DATA),
        (None, "—", Severity.NO_DATA),
    ],
)
@pytest.mark.parametrize("readings", [[], pair(142, 139, age_min=40)], ids=["none", "old"])
def test_problem_without_data(
    readings: list[Reading], failure: FailureClass | None, text: str, severity: Severity
) -> None:
    shown = show(readings, connection=SIGN_IN, failure=failure)
    assert shown.text == text
    assert shown.severity is severity
    assert shown.range is None
    assert shown.tooltip.endswith("\n" + SIGN_IN)
    assert shown.accessible.endswith(f" {SIGN_IN}.")


def test_problem_text_already_ending_a_sentence_is_not_punctuated_twice() -> None:
    shown = show([], connection="Account locked. Wait an hour.", failure=FailureClass.LOCKED)
    assert shown.accessible == "No glucose readings yet. Account locked. Wait an hour."
    assert shown.status_line == "No readings yet · Account locked. Wait an hour."


def test_no_delta_across_a_gap_or_from_a_single_reading() -> None:
    newest = Reading(NOW - minutes(2), 142, Trend.FLAT)
    gap = [Reading(NOW - minutes(30), 100), newest]
    assert show(gap).tooltip == "142 mg/dL → steady · 2 min ago"
    assert show([newest]).tooltip == "142 mg/dL → steady · 2 min ago"
    assert show([newest]).accessible == (
        "Glucose 142 milligrams per decilitre, steady, 2 minutes ago."
    )


def test_order_and_duplicates_of_the_input_do_not_matter() -> None:
    readings = pair(142, 139)
    assert show(readings[::-1] + readings) == show(readings)


def test_just_now() -> None:
    shown = show(pair(142, 139, age_min=0.5))
    assert shown.tooltip == "142 mg/dL → steady · +3 · just now"
    assert shown.accessible.endswith("up 3, just now.")


def test_server_clock_decides_staleness() -> None:
    readings = pair(142, 139, age_min=2)
    shown = show(readings, server_skew=minutes(13))
    assert shown.severity is Severity.STALE
    assert "15 min ago" in shown.tooltip


def test_reading_from_the_future_is_flagged() -> None:
    readings = pair(142, 139, age_min=-30)
    shown = show(readings)
    assert shown.text == "142"
    assert shown.tooltip == f"142 mg/dL → steady · +3 · just now\n{CLOCK_HINT}"
    assert CLOCK_HINT in shown.accessible


@pytest.mark.parametrize(
    ("value", "unit", "max_chars", "text"),
    [
        (400, Unit.MGDL, 4, "400"),
        (40, Unit.MGDL, 3, "40"),
        (400, Unit.MGDL, 3, "400"),
        (LOW_MGDL, Unit.MGDL, 4, "LOW"),
        (LOW_MGDL, Unit.MMOL, 3, "LOW"),
        (HIGH_MGDL, Unit.MGDL, 4, "HIGH"),
        (HIGH_MGDL, Unit.MMOL, 3, "HI"),
        (HIGH_MGDL, Unit.MGDL, 3, "HI"),
        (188, Unit.MMOL, 4, "10.4"),
        (400, Unit.MMOL, 4, "22.2"),
        (188, Unit.MMOL, 3, "10"),
        (190, Unit.MMOL, 3, "11"),  # 10.5 rounds half-up
        (400, Unit.MMOL, 3, "22"),
        (177, Unit.MMOL, 3, "9.8"),
        (Reading(NOW, 142), Unit.MMOL, 4, "7.9"),
    ],
)
def test_compact_text(value: Reading | int, unit: Unit, max_chars: int, text: str) -> None:
    assert compact_text(value, unit, max_chars) == text


def test_compact_text_needs_three_characters() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        compact_text(100, Unit.MGDL, 2)


@given(
    st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL),
    st.sampled_from(Unit),
    st.integers(min_value=3, max_value=4),
)
def test_every_value_fits_the_badge(mgdl: int, unit: Unit, max_chars: int) -> None:
    assert 1 <= len(compact_text(mgdl, unit, max_chars)) <= max_chars


@given(
    st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)),
    st.sampled_from(Unit),
)
def test_badge_never_shows_a_number_once_data_is_20_minutes_old(
    mgdl: int, reading_age: timedelta, unit: Unit
) -> None:
    shown = model(
        [Reading(NOW - reading_age, mgdl, Trend.FLAT)], NOW, unit=unit, thresholds=THRESHOLDS
    )
    assert len(shown.text) <= 4
    if reading_age >= minutes(20):
        assert shown.text == "—"
        assert shown.severity is Severity.NO_DATA
    elif reading_age >= minutes(10):
        assert shown.severity is Severity.STALE
        assert shown.stale
    else:
        assert shown.range is not None
        assert shown.severity.value == shown.range.name.lower()
        assert not shown.stale


def test_severity_values() -> None:
    assert [s.value for s in Severity] == [
        "urgent_low",
        "low",
        "in_range",
        "high",
        "urgent_high",
        "stale",
        "no_data",
        "error",
    ]
