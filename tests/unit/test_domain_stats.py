"""Time in range, mean, SD, CV, GMI and coverage of a window of readings."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.stats import Portion, band_of, summarize

END = datetime(2025, 3, 2, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FIVE = timedelta(minutes=5)


def series(values: list[int], end: datetime = END) -> list[Reading]:
    """Readings every 5 min, the last one at `end`."""
    return [
        Reading(end - (len(values) - 1 - i) * FIVE, value, Trend.FLAT)
        for i, value in enumerate(values)
    ]


def test_empty_window_has_no_ratios_and_divides_by_nothing() -> None:
    stats = summarize([], END - DAY, END, Thresholds())
    assert stats.count == 0
    assert stats.expected_count == 288
    assert stats.coverage == 0.0
    for portion in (stats.in_range, stats.below, stats.very_low, stats.above, stats.very_high):
        assert portion == Portion(count=0, fraction=None, duration=timedelta(0))
        assert portion.percent is None
    assert stats.mean_mgdl is None
    assert stats.sd_mgdl is None
    assert stats.cv_percent is None
    assert stats.gmi_percent is None
    assert stats.by_range is not None
    assert stats.by_range[GlucoseRange.IN_RANGE].fraction is None


def test_zero_length_window() -> None:
    stats = summarize(series([120]), END, END)
    assert stats.expected_count == 0
    assert stats.coverage is None
    assert stats.count == 0


def test_full_day_in_range() -> None:
    stats = summarize(series([120] * 288), END - DAY, END)
    assert stats.count == stats.expected_count == 288
    assert stats.coverage == 1.0
    assert stats.in_range.fraction == 1.0
    assert stats.in_range.percent == 100.0
    assert stats.in_range.duration == DAY
    assert stats.below.count == stats.above.count == 0
    assert stats.mean_mgdl == 120.0
    assert stats.sd_mgdl == 0.0
    assert stats.cv_percent == 0.0
    assert stats.gmi_percent is None  # one day says nothing about an A1c
    assert stats.gmi_needs_more_data
    assert stats.by_range is None


def test_known_figures() -> None:
    values = [50, 60, 70, 100, 180, 181, 250, 251, 300, 120]
    stats = summarize(series(values), END - timedelta(hours=1), END)
    assert stats.count == 10
    assert stats.expected_count == 12
    assert stats.coverage == pytest.approx(10 / 12)
    assert stats.below.count == 2  # 50, 60
    assert stats.very_low.count == 1  # 50 (< 54)
    assert stats.in_range.count == 4  # 70 and 180 are in range
    assert stats.above.count == 4  # 181, 250, 251, 300
    assert stats.very_high.count == 2  # 251, 300 (> 250)
    assert stats.in_range.fraction == pytest.approx(0.4)
    assert stats.below.duration == timedelta(minutes=10)
    mean = statistics.fmean(values)
    sd = statistics.pstdev(values)
    assert stats.mean_mgdl == pytest.approx(mean)
    assert stats.sd_mgdl == pytest.approx(sd)
    assert stats.cv_percent == pytest.approx(sd / mean * 100)
    assert stats.gmi_percent is None
    assert stats.gmi_needs_more_data


def test_gmi_is_given_for_14_days_of_data_and_not_for_less() -> None:
    fortnight = 14 * DAY
    full = summarize(series([120] * 4032), END - fortnight, END)
    assert full.gmi_percent == pytest.approx(3.31 + 0.02392 * 120)
    assert not full.gmi_needs_more_data
    # 70 % of 14 days of readings is enough, one reading fewer is not.
    enough = summarize(series([150] * 2823), END - fortnight, END)
    assert enough.gmi_percent == pytest.approx(3.31 + 0.02392 * 150)
    short = summarize(series([150] * 2822), END - fortnight, END)
    assert short.gmi_percent is None
    assert short.gmi_needs_more_data
    # Three hours of readings never give a GMI, even inside a 30-day window.
    sparse = summarize(series([150] * 36), END - 30 * DAY, END)
    assert sparse.gmi_percent is None
    assert sparse.gmi_needs_more_data
    three_hours = summarize(series([150] * 36), END - timedelta(hours=3), END)
    assert three_hours.gmi_percent is None
    assert three_hours.gmi_needs_more_data


def test_an_empty_window_needs_no_more_data_for_a_gmi_it_cannot_have() -> None:
    stats = summarize([], END - 14 * DAY, END)
    assert stats.gmi_percent is None
    assert not stats.gmi_needs_more_data


@pytest.mark.parametrize(
    ("mgdl", "band"),
    [
        (LOW_MGDL, GlucoseRange.URGENT_LOW),
        (53, GlucoseRange.URGENT_LOW),
        (54, GlucoseRange.LOW),
        (69, GlucoseRange.LOW),
        (70, GlucoseRange.IN_RANGE),
        (180, GlucoseRange.IN_RANGE),
        (181, GlucoseRange.HIGH),
        (250, GlucoseRange.HIGH),
        (251, GlucoseRange.URGENT_HIGH),
        (HIGH_MGDL, GlucoseRange.URGENT_HIGH),
    ],
)
def test_each_value_falls_in_the_band_the_figures_count_it_in(
    mgdl: int, band: GlucoseRange
) -> None:
    assert band_of(mgdl) is band
    stats = summarize(series([mgdl]), END - timedelta(hours=1), END)
    counted = {
        GlucoseRange.URGENT_LOW: stats.very_low,
        GlucoseRange.LOW: stats.below,
        GlucoseRange.IN_RANGE: stats.in_range,
        GlucoseRange.HIGH: stats.above,
        GlucoseRange.URGENT_HIGH: stats.very_high,
    }
    assert counted[band].count == 1


def test_population_sd() -> None:
    stats = summarize(series([100, 200]), END - timedelta(hours=1), END)
    assert stats.sd_mgdl == 50.0  # not the sample SD (70.7)
    assert stats.cv_percent == pytest.approx(50 / 150 * 100)


def test_low_and_high_count_at_the_sensor_limits() -> None:
    stats = summarize(series([LOW_MGDL, HIGH_MGDL]), END - timedelta(hours=1), END)
    assert stats.mean_mgdl == (39 + 401) / 2
    assert stats.below.count == stats.very_low.count == 1
    assert stats.above.count == stats.very_high.count == 1


def test_custom_target_range() -> None:
    stats = summarize(series([65, 75, 140, 150]), END - DAY, END, target_low=63, target_high=140)
    assert stats.in_range.count == 3
    assert stats.above.count == 1


def test_alert_range_breakdown_uses_the_thresholds() -> None:
    thresholds = Thresholds(urgent_low=55, low=70, high=250, urgent_high=300)
    stats = summarize(series([50, 55, 60, 70, 71, 249, 250, 299, 300]), END - DAY, END, thresholds)
    breakdown = stats.by_range
    assert breakdown is not None
    assert breakdown[GlucoseRange.URGENT_LOW].count == 2
    assert breakdown[GlucoseRange.LOW].count == 2
    assert breakdown[GlucoseRange.IN_RANGE].count == 2
    assert breakdown[GlucoseRange.HIGH].count == 2
    assert breakdown[GlucoseRange.URGENT_HIGH].count == 1
    assert breakdown.urgent_low.duration == timedelta(minutes=10)


def test_window_is_start_exclusive_end_inclusive() -> None:
    readings = series([100, 110, 120], end=END)  # at END-10, END-5, END
    stats = summarize(readings, END - timedelta(minutes=10), END)
    assert stats.count == 2
    assert stats.mean_mgdl == 115.0
    assert stats.expected_count == 2
    assert stats.coverage == 1.0


def test_readings_outside_the_window_are_ignored() -> None:
    readings = series([300] * 12, end=END - DAY) + series([120] * 12)
    stats = summarize(readings, END - timedelta(hours=1), END)
    assert stats.count == 12
    assert stats.above.count == 0


def test_duplicates_count_once() -> None:
    readings = series([120] * 6)
    stats = summarize(readings + readings, END - timedelta(minutes=30), END)
    assert stats.count == 6
    assert stats.coverage == 1.0


def test_gap_lowers_coverage() -> None:
    readings = series([120] * 288)
    kept = readings[:100] + readings[112:]  # a one-hour gap
    stats = summarize(kept, END - DAY, END)
    assert stats.count == 276
    assert stats.coverage == pytest.approx(276 / 288)


def test_partial_slot_counts_as_expected() -> None:
    stats = summarize(series([120, 120]), END - timedelta(minutes=7), END)
    assert stats.expected_count == 2
    assert stats.coverage == 1.0


def test_readings_off_the_grid_fill_their_slots() -> None:
    readings = [Reading(END - FIVE * k - timedelta(seconds=17), 120) for k in range(12)]
    stats = summarize(readings, END - timedelta(hours=1), END)
    assert stats.coverage == 1.0


def test_bad_windows_and_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        summarize([], END, END - DAY)
    with pytest.raises(ValueError, match="target"):
        summarize([], END - DAY, END, target_low=180, target_high=70)
    with pytest.raises(ValueError, match="naive"):
        summarize([], datetime(2025, 3, 1), END)


values_strategy = st.lists(st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL), max_size=300)


@given(values_strategy, st.integers(min_value=0, max_value=400))
def test_portions_partition_the_readings(values: list[int], window_slots: int) -> None:
    start = END - window_slots * FIVE
    stats = summarize(series(values), start, END, Thresholds())
    assert stats.below.count + stats.in_range.count + stats.above.count == stats.count
    assert stats.very_low.count <= stats.below.count
    assert stats.very_high.count <= stats.above.count
    assert stats.count <= len(values)
    assert stats.in_range.duration == stats.in_range.count * FIVE
    assert stats.by_range is not None
    parts = [stats.by_range[r].count for r in GlucoseRange]
    assert sum(parts) == stats.count
    if stats.coverage is not None:
        assert 0.0 <= stats.coverage <= 1.0
    if stats.count:
        fractions = [stats.below.fraction, stats.in_range.fraction, stats.above.fraction]
        assert math.fsum(f for f in fractions if f is not None) == pytest.approx(1.0)
        assert stats.mean_mgdl is not None
        assert LOW_MGDL <= stats.mean_mgdl <= HIGH_MGDL
        assert stats.cv_percent is not None
        assert stats.cv_percent >= 0
    else:
        assert stats.mean_mgdl is None
