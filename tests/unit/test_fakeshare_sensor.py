"""The simulated sensor: deterministic, 5-minute cadence, a plausible day, gaps and lag honoured."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Trend
from cgmtray.fakeshare.sensor import (
    PublishedReading,
    SimulatedSensor,
    clamp_to_sensor_range,
    trend_for_rate,
)

START = datetime(2025, 6, 15, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def day_of(sensor: SimulatedSensor, begin: datetime = START) -> list[PublishedReading]:
    return sensor.readings_between(begin, begin + DAY)


def local_hour(published: PublishedReading) -> float:
    local = published.reading.time + timedelta(minutes=published.offset_minutes)
    return local.hour + local.minute / 60


def test_the_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    first = day_of(SimulatedSensor(seed=7, start=START))
    again = day_of(SimulatedSensor(seed=7, start=START))
    other = day_of(SimulatedSensor(seed=8, start=START))
    assert first == again
    assert [p.reading.mgdl for p in first] != [p.reading.mgdl for p in other]


def test_one_reading_every_five_minutes_with_small_jitter() -> None:
    readings = day_of(SimulatedSensor(seed=1, start=START, jitter_s=1.5))
    assert len(readings) in (287, 288)
    steps = [
        (later.reading.time - earlier.reading.time).total_seconds()
        for earlier, later in itertools.pairwise(readings)
    ]
    assert all(297.0 <= step <= 303.0 for step in steps)
    assert len(set(steps)) > 10  # jittered, not a metronome


def test_timestamps_are_not_aligned_to_the_clock_minute() -> None:
    readings = day_of(SimulatedSensor(seed=1, start=START))
    assert all(p.reading.time.second != 0 for p in readings)
    assert any(p.reading.time.microsecond != 0 for p in readings)
    assert all(p.reading.time.microsecond % 1000 == 0 for p in readings)  # Share counts in ms


def test_oldest_first_and_half_open_interval() -> None:
    sensor = SimulatedSensor(seed=3, start=START)
    readings = day_of(sensor)
    times = [p.reading.time for p in readings]
    assert times == sorted(times)
    one = readings[10].reading.time
    assert [
        p.reading.time for p in sensor.readings_between(one, one + timedelta(milliseconds=1))
    ] == [one]
    assert sensor.readings_between(one - timedelta(seconds=1), one) == []
    assert sensor.readings_between(one, one) == []


def test_nothing_before_the_sensor_started() -> None:
    sensor = SimulatedSensor(seed=1, start=START)
    assert sensor.readings_between(START - DAY, START) == []
    assert sensor.readings_between(START - DAY, START + timedelta(minutes=10))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    split_minutes=st.floats(min_value=0, max_value=24 * 60, allow_nan=False),
)
def test_lazily_computed_windows_agree(seed: int, split_minutes: float) -> None:
    sensor = SimulatedSensor(seed=seed, start=START)
    middle = START + timedelta(minutes=split_minutes)
    whole = day_of(sensor)
    fresh = SimulatedSensor(seed=seed, start=START)
    assert fresh.readings_between(START, middle) + fresh.readings_between(middle, START + DAY) == (
        whole
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=100_000), offset=st.sampled_from([-420, 0, 60, 540]))
def test_values_are_always_sensor_values(seed: int, offset: int) -> None:
    sensor = SimulatedSensor(seed=seed, start=START, offset_minutes=offset)
    values = [p.reading.mgdl for p in sensor.readings_between(START, START + 2 * DAY)]
    assert all(LOW_MGDL <= value <= HIGH_MGDL for value in values)
    assert all(40 <= value <= 400 for value in values if value not in (LOW_MGDL, HIGH_MGDL))


@pytest.mark.parametrize("seed", [1, 2, 3, 42, 2025])
def test_the_day_has_a_night_low_reported_as_low(seed: int) -> None:
    readings = day_of(SimulatedSensor(seed=seed, start=START))
    lows = [i for i, p in enumerate(readings) if p.reading.mgdl == LOW_MGDL]
    assert len(lows) >= 2
    assert lows == list(range(lows[0], lows[0] + len(lows)))  # one run, inside the one low
    assert all(1.0 <= local_hour(readings[i]) <= 6.0 for i in lows)
    # the low is a dip: well above LOW an hour before and after
    assert readings[lows[0] - 12].reading.mgdl > 70
    assert readings[lows[-1] + 12].reading.mgdl > 70


@pytest.mark.parametrize("seed", [1, 2, 3, 42, 2025])
def test_the_day_has_one_evening_high_and_meals(seed: int) -> None:
    readings = day_of(SimulatedSensor(seed=seed, start=START))
    highs = [p for p in readings if p.reading.mgdl >= 250]
    assert len(highs) >= 3  # above 250 for at least 15 minutes
    assert all(17.0 <= local_hour(p) <= 23.99 for p in highs)
    numeric = [p.reading.mgdl for p in readings if p.reading.is_numeric]
    in_range = sum(1 for v in numeric if 70 <= v <= 180) / len(numeric)
    assert 0.5 < in_range < 0.95  # a plausible, imperfect day


def test_the_trend_follows_the_slope_between_readings() -> None:
    readings = SimulatedSensor(seed=5, start=START).readings_between(START, START + 2 * DAY)
    arrows = set()
    for earlier, later in itertools.pairwise(readings):
        if not (earlier.reading.is_numeric and later.reading.is_numeric):
            continue
        minutes = (later.reading.time - earlier.reading.time).total_seconds() / 60
        expected = trend_for_rate((later.reading.mgdl - earlier.reading.mgdl) / minutes)
        assert later.reading.trend is expected
        arrows.add(later.reading.trend)
    assert {Trend.FLAT, Trend.FORTY_FIVE_UP, Trend.FORTY_FIVE_DOWN, Trend.SINGLE_UP} <= arrows


def test_the_first_reading_of_a_sensor_has_no_computable_trend() -> None:
    first = SimulatedSensor(seed=1, start=START).readings_between(START, START + DAY)[0]
    assert first.reading.trend is Trend.NOT_COMPUTABLE


@pytest.mark.parametrize(
    ("rate", "trend"),
    [
        (0.0, Trend.FLAT),
        (0.99, Trend.FLAT),
        (-0.99, Trend.FLAT),
        (1.0, Trend.FORTY_FIVE_UP),
        (1.99, Trend.FORTY_FIVE_UP),
        (-1.0, Trend.FORTY_FIVE_DOWN),
        (2.0, Trend.SINGLE_UP),
        (-2.5, Trend.SINGLE_DOWN),
        (3.0, Trend.DOUBLE_UP),
        (-3.0, Trend.DOUBLE_DOWN),
        (-9.0, Trend.DOUBLE_DOWN),
    ],
)
def test_trend_rates(rate: float, trend: Trend) -> None:
    assert trend_for_rate(rate) is trend


@pytest.mark.parametrize(
    ("raw", "shown"), [(10, 39), (39, 39), (40, 40), (400, 400), (401, 401), (555, 401)]
)
def test_values_outside_the_sensor_range_become_low_and_high(raw: int, shown: int) -> None:
    assert clamp_to_sensor_range(raw) == shown


def test_gaps_are_honoured() -> None:
    gap = (START + timedelta(hours=2), START + timedelta(hours=2, minutes=47))
    with_gap = day_of(SimulatedSensor(seed=1, start=START, gaps=[gap]))
    without = day_of(SimulatedSensor(seed=1, start=START))
    assert not [p for p in with_gap if gap[0] <= p.reading.time < gap[1]]
    missing = [p for p in without if p not in with_gap]
    assert len(missing) in (9, 10)
    assert all(gap[0] <= p.reading.time < gap[1] for p in missing)


def test_availability_lag_is_honoured() -> None:
    readings = day_of(SimulatedSensor(seed=1, start=START, lag_s=42.5))
    assert all(p.available_at - p.reading.time == timedelta(seconds=42.5) for p in readings)


def test_a_random_lag_is_deterministic_per_reading() -> None:
    def lag(rng: random.Random) -> float:
        return rng.uniform(10, 120)

    first = day_of(SimulatedSensor(seed=1, start=START, lag_s=lag))
    again = day_of(SimulatedSensor(seed=1, start=START, lag_s=lag))
    assert [p.available_at for p in first] == [p.available_at for p in again]
    lags = {(p.available_at - p.reading.time).total_seconds() for p in first}
    assert len(lags) > 100
    assert all(10 <= value <= 120 for value in lags)


def test_the_publisher_offset_is_carried() -> None:
    readings = day_of(SimulatedSensor(seed=1, start=START, offset_minutes=330))
    assert {p.offset_minutes for p in readings} == {330}


def test_a_custom_interval() -> None:
    readings = SimulatedSensor(seed=1, start=START, interval_s=60, jitter_s=0).readings_between(
        START, START + timedelta(hours=1)
    )
    assert len(readings) == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_s": 0},
        {"jitter_s": 100.0},
        {"jitter_s": -1.0},
        {"lag_s": -5.0},
        {"gaps": [(START, START)]},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SimulatedSensor(start=START, **kwargs)  # type: ignore[arg-type]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        SimulatedSensor(start=datetime(2025, 6, 15))


def test_the_curve_is_smooth_and_below_40_in_the_low() -> None:
    sensor = SimulatedSensor(seed=1, start=START)
    readings = day_of(sensor)
    low = next(p for p in readings if p.reading.mgdl == LOW_MGDL)
    assert sensor.curve_mgdl(low.reading.time) < 42
    values = [sensor.curve_mgdl(START + timedelta(minutes=m)) for m in range(24 * 60)]
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 6.0
