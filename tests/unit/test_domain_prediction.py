"""The recent rate (least squares) and the forecast behind "urgent low soon" and fast alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.prediction import SLOPE_WINDOW, predicted_mgdl, recent_slope
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def series(*values: int, step_minutes: float = 5) -> tuple[Reading, ...]:
    """Readings oldest first, the last one at T0."""
    count = len(values)
    return tuple(
        Reading(T0 - timedelta(minutes=step_minutes * (count - 1 - i)), value)
        for i, value in enumerate(values)
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((130, 115, 100), -3.0),
        ((100, 100, 100, 100), 0.0),
        ((100, 110, 120), 2.0),
        ((100, 104, 112, 124), 1.6),  # least squares, not the end points: (124 - 100) / 15 = 1.6
        ((200, 100, 104, 112, 124), 1.6),  # the reading 20 min back is outside the window
        ((120, 110), None),  # two readings are not enough
        ((100,), None),
        ((80, LOW_MGDL, 70), None),  # LOW has no number to fit
        ((380, HIGH_MGDL, 390), None),
    ],
)
def test_slope_of_recent_readings(values: tuple[int, ...], expected: float | None) -> None:
    assert recent_slope(series(*values)) == expected


def test_no_readings_have_no_slope_or_forecast() -> None:
    assert recent_slope(()) is None
    assert predicted_mgdl((), timedelta(minutes=20)) is None


def test_order_and_duplicates_do_not_matter() -> None:
    readings = series(130, 120, 110, 100)
    shuffled = (readings[2], readings[0], readings[3], readings[1], readings[0])
    assert recent_slope(shuffled) == recent_slope(readings) == -2.0


def test_a_wider_window_sees_older_readings() -> None:
    readings = series(200, 100, 100, 100, 100)
    assert recent_slope(readings) == 0.0
    assert recent_slope(readings, window=timedelta(minutes=20)) == -4.0


@pytest.mark.parametrize(
    ("values", "horizon_minutes", "expected"),
    [
        ((80, 76, 72, 68), 20, 52.0),  # anchored on the newest value, 68 - 0.8 x 20
        ((100, 100, 100), 20, 100.0),
        ((90, 95, 100), 10, 110.0),
        ((80, LOW_MGDL, 70), 20, None),
    ],
)
def test_forecast_from_the_newest_value(
    values: tuple[int, ...], horizon_minutes: int, expected: float | None
) -> None:
    assert predicted_mgdl(series(*values), timedelta(minutes=horizon_minutes)) == expected


@given(
    start=st.integers(min_value=150, max_value=250),
    rate=st.integers(min_value=-40, max_value=40).map(lambda tenths: tenths / 10),
    count=st.integers(min_value=3, max_value=4),
)
def test_a_straight_line_gives_back_its_rate(start: int, rate: float, count: int) -> None:
    """Whole-number points on a line: the fit recovers the rate to the rounding of the values."""
    readings = tuple(
        Reading(T0 + timedelta(minutes=5 * i), round(start + rate * 5 * i)) for i in range(count)
    )
    slope = recent_slope(readings)
    assert slope is not None
    assert abs(slope - rate) <= 0.1 + 1e-9
    assert readings[-1].time - readings[0].time <= SLOPE_WINDOW
