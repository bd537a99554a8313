"""The domain's contracts: readings and trends, ranges, clocks, alert settings, failure classes."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.alert_config import (
    HIGH_CLEAR_MARGIN_MGDL,
    LOW_CLEAR_MARGIN_MGDL,
    LOW_SOON_HORIZON,
    URGENT_LOW_SNOOZE_CAP,
    AlertKind,
    AlertSettings,
    KindConfig,
    place_ranges,
)
from cgmtray.domain.clock import Clock, ManualClock, ScaledClock, SystemClock, require_aware_utc
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import (
    HIGH_MGDL,
    LOW_MGDL,
    MAX_DELTA_GAP,
    MAX_REAL_MGDL,
    MIN_REAL_MGDL,
    Reading,
    Trend,
    delta_mgdl,
    newest_first,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


# --- readings.py -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trend", "wire", "arrow", "description"),
    [
        (Trend.NONE, "None", "", "no trend"),
        (Trend.DOUBLE_UP, "DoubleUp", "⇈", "rising quickly"),
        (Trend.SINGLE_UP, "SingleUp", "↑", "rising"),
        (Trend.FORTY_FIVE_UP, "FortyFiveUp", "↗", "rising slightly"),
        (Trend.FLAT, "Flat", "→", "steady"),
        (Trend.FORTY_FIVE_DOWN, "FortyFiveDown", "↘", "falling slightly"),
        (Trend.SINGLE_DOWN, "SingleDown", "↓", "falling"),
        (Trend.DOUBLE_DOWN, "DoubleDown", "⇊", "falling quickly"),
        (Trend.NOT_COMPUTABLE, "NotComputable", "", "trend not computable"),
        (Trend.RATE_OUT_OF_RANGE, "RateOutOfRange", "", "trend unavailable"),
    ],
)
def test_trend_names_arrows_and_words(
    trend: Trend, wire: str, arrow: str, description: str
) -> None:
    assert trend.wire_name == wire
    assert trend.arrow == arrow
    assert trend.description == description


def test_trend_integers_are_the_receivers() -> None:
    assert [int(t) for t in Trend] == list(range(10))
    assert Trend(4) is Trend.FLAT


def test_reading_keeps_value_and_converts_time_to_utc() -> None:
    reading = Reading(datetime(2025, 3, 1, 13, 0, tzinfo=CET), 120, Trend.FLAT)
    assert reading.time == T0
    assert reading.time.tzinfo is UTC
    assert reading.mgdl == 120
    assert reading.trend is Trend.FLAT
    assert Reading(T0, 120).trend is Trend.NONE


def test_reading_is_frozen() -> None:
    reading = Reading(T0, 120)
    with pytest.raises(FrozenInstanceError):
        reading.mgdl = 130  # type: ignore[misc]


def test_reading_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        Reading(datetime(2025, 3, 1, 12, 0), 120)


@pytest.mark.parametrize("mgdl", [0, 38, 402, -1, 1000])
def test_reading_refuses_impossible_values(mgdl: int) -> None:
    with pytest.raises(ValueError, match=r"outside 39\.\.401"):
        Reading(T0, mgdl)


@pytest.mark.parametrize(
    ("mgdl", "is_low", "is_high", "is_numeric"),
    [
        (LOW_MGDL, True, False, False),
        (MIN_REAL_MGDL, False, False, True),
        (120, False, False, True),
        (MAX_REAL_MGDL, False, False, True),
        (HIGH_MGDL, False, True, False),
    ],
)
def test_low_high_and_numeric(mgdl: int, is_low: bool, is_high: bool, is_numeric: bool) -> None:
    reading = Reading(T0, mgdl)
    assert (reading.is_low, reading.is_high, reading.is_numeric) == (is_low, is_high, is_numeric)


def test_readings_order_by_time() -> None:
    early, late = Reading(T0, 300), Reading(T0 + minutes(5), 100)
    assert early < late
    assert sorted([late, early]) == [early, late]


def test_newest_first_sorts_and_deduplicates() -> None:
    a, b, c = (Reading(T0 + minutes(5 * i), 100 + i) for i in range(3))
    assert newest_first([b, a, c, b]) == (c, b, a)
    assert newest_first((a,)) == (a,)
    assert newest_first([]) == ()


def test_newest_first_keeps_the_last_of_two_readings_at_one_time() -> None:
    first, corrected = Reading(T0, 100), Reading(T0, 104)
    assert newest_first([first, corrected]) == (corrected,)


def test_delta_between_consecutive_readings() -> None:
    older, newer = Reading(T0, 120), Reading(T0 + minutes(5), 112)
    assert delta_mgdl(newer, older) == -8
    assert delta_mgdl(Reading(T0 + MAX_DELTA_GAP, 130), older) == 10


def test_no_delta_across_a_gap_or_out_of_order() -> None:
    older = Reading(T0, 120)
    assert delta_mgdl(Reading(T0 + MAX_DELTA_GAP + timedelta(seconds=1), 130), older) is None
    assert delta_mgdl(older, Reading(T0 + minutes(5), 130)) is None
    assert delta_mgdl(Reading(T0, 125), older) is None


@pytest.mark.parametrize(("newer", "older"), [(LOW_MGDL, 45), (45, LOW_MGDL), (HIGH_MGDL, 390)])
def test_no_delta_to_or_from_low_or_high(newer: int, older: int) -> None:
    assert delta_mgdl(Reading(T0 + minutes(5), newer), Reading(T0, older)) is None


@given(
    st.integers(min_value=MIN_REAL_MGDL, max_value=MAX_REAL_MGDL),
    st.integers(min_value=MIN_REAL_MGDL, max_value=MAX_REAL_MGDL),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=MAX_DELTA_GAP),
)
def test_delta_is_the_difference_within_the_gap(older: int, newer: int, gap: timedelta) -> None:
    assert delta_mgdl(Reading(T0 + gap, newer), Reading(T0, older)) == newer - older


# --- ranges.py ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mgdl", "expected"),
    [
        (LOW_MGDL, GlucoseRange.URGENT_LOW),
        (55, GlucoseRange.URGENT_LOW),
        (56, GlucoseRange.LOW),
        (70, GlucoseRange.LOW),
        (71, GlucoseRange.IN_RANGE),
        (249, GlucoseRange.IN_RANGE),
        (250, GlucoseRange.HIGH),
        (299, GlucoseRange.HIGH),
        (300, GlucoseRange.URGENT_HIGH),
        (HIGH_MGDL, GlucoseRange.URGENT_HIGH),
    ],
)
def test_default_ranges_include_their_thresholds(mgdl: int, expected: GlucoseRange) -> None:
    thresholds = Thresholds()
    assert thresholds.classify_mgdl(mgdl) is expected
    assert thresholds.classify(Reading(T0, mgdl)) is expected


def test_threshold_defaults() -> None:
    assert Thresholds() == Thresholds(urgent_low=55, low=70, high=250, urgent_high=300)


@pytest.mark.parametrize(
    "bounds",
    [
        (39, 70, 250, 300),
        (70, 70, 250, 300),
        (55, 250, 70, 300),
        (55, 70, 300, 300),
        (55, 70, 250, 401),
    ],
)
def test_thresholds_out_of_order_are_refused(bounds: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="urgent low < low < high < urgent high"):
        Thresholds(*bounds)


def test_thresholds_at_the_sensor_limits_are_allowed() -> None:
    thresholds = Thresholds(40, 41, 399, 400)
    assert thresholds.classify_mgdl(LOW_MGDL) is GlucoseRange.URGENT_LOW
    assert thresholds.classify_mgdl(HIGH_MGDL) is GlucoseRange.URGENT_HIGH


@given(st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL - 1))
def test_range_never_drops_as_the_value_rises(mgdl: int) -> None:
    thresholds = Thresholds()
    assert thresholds.classify_mgdl(mgdl) <= thresholds.classify_mgdl(mgdl + 1)


# --- clock.py ----------------------------------------------------------------------------------


def test_system_clock_is_aware_utc_and_current() -> None:
    clock: Clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2025, 3, 1, 13, 0, tzinfo=CET))
    assert clock.now() == T0
    assert clock.now() == T0
    assert clock.advance(minutes(5)) == T0 + minutes(5)
    assert clock.advance(30) == T0 + minutes(5.5)
    assert clock.advance(-30.0) == T0 + minutes(5)
    clock.set(T0 + timedelta(days=1))
    assert clock.now() == T0 + timedelta(days=1)


def test_manual_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        ManualClock(datetime(2025, 3, 1))
    clock = ManualClock(T0)
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2025, 3, 1))
    assert clock.now() == T0


class _NoOffset(tzinfo):
    """A broken tzinfo that does not know its offset."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_require_aware_utc() -> None:
    assert require_aware_utc(datetime(2025, 3, 1, 13, 0, tzinfo=CET)) == T0
    assert require_aware_utc(T0).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        require_aware_utc(datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="naive"):
        require_aware_utc(datetime(2025, 3, 1, tzinfo=_NoOffset()))


def test_scaled_clock_runs_faster_from_its_origin() -> None:
    real = ManualClock(T0)
    virtual_origin = datetime(2024, 1, 1, tzinfo=UTC)
    clock = ScaledClock(60, virtual_origin=virtual_origin, real_origin=T0, real=real)
    assert clock.speed == 60
    assert clock.now() == virtual_origin
    real.advance(10)
    assert clock.now() == virtual_origin + minutes(10)


def test_two_scaled_clocks_with_the_same_origins_agree() -> None:
    real = ManualClock(T0 + minutes(1))
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    one = ScaledClock(12.5, virtual_origin=origin, real_origin=T0, real=real)
    two = ScaledClock(12.5, virtual_origin=origin, real_origin=T0, real=real)
    assert one.now() == two.now() == origin + minutes(12.5)


def test_scaled_clock_defaults_to_the_system_clock() -> None:
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    clock = ScaledClock(1, virtual_origin=origin, real_origin=datetime.now(UTC))
    assert timedelta(0) <= clock.now() - origin < timedelta(minutes=1)


@pytest.mark.parametrize("speed", [0, -1, -0.5])
def test_scaled_clock_refuses_a_speed_that_is_not_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(speed, virtual_origin=T0, real_origin=T0)


def test_scaled_clock_refuses_naive_origins() -> None:
    with pytest.raises(ValueError, match="naive"):
        ScaledClock(2, virtual_origin=datetime(2025, 1, 1), real_origin=T0)


# --- alert_config.py ---------------------------------------------------------------------------


def test_default_alerts_follow_the_design() -> None:
    settings = AlertSettings()
    urgent_low = settings[AlertKind.URGENT_LOW]
    assert urgent_low.enabled
    assert urgent_low.threshold == 55
    assert urgent_low.repeat == minutes(5)
    assert urgent_low.sound
    assert urgent_low.snooze_cap == URGENT_LOW_SNOOZE_CAP == minutes(30)
    assert settings[AlertKind.LOW].threshold == 70
    assert settings[AlertKind.LOW].repeat == minutes(15)
    high = settings[AlertKind.HIGH]
    assert (high.enabled, high.threshold, high.repeat, high.persistence) == (
        True,
        250,
        minutes(60),
        minutes(15),
    )
    assert not settings[AlertKind.URGENT_HIGH].enabled
    assert settings[AlertKind.URGENT_HIGH].threshold == 300
    assert settings[AlertKind.FALLING_FAST].enabled
    assert settings[AlertKind.FALLING_FAST].threshold == 3
    assert not settings[AlertKind.RISING_FAST].enabled
    assert settings[AlertKind.NO_DATA].threshold == 20
    assert settings[AlertKind.SIGN_IN_PROBLEM].repeat is None
    assert settings[AlertKind.URGENT_LOW_SOON].threshold == 55
    assert set(settings.kinds) == set(AlertKind)
    assert settings.thresholds() == Thresholds()


def test_alert_constants() -> None:
    assert minutes(20) == LOW_SOON_HORIZON
    assert LOW_CLEAR_MARGIN_MGDL == 5
    assert HIGH_CLEAR_MARGIN_MGDL == 10


def test_alert_kinds_titles_urgency_and_rank() -> None:
    assert [kind.title for kind in AlertKind] == [
        "Urgent low",
        "Urgent low soon",
        "Low",
        "Urgent high",
        "High",
        "Falling fast",
        "Rising fast",
        "No data",
        "Sign-in problem",
    ]
    urgent = {kind for kind in AlertKind if kind.is_urgent}
    assert urgent == {AlertKind.URGENT_LOW, AlertKind.URGENT_LOW_SOON, AlertKind.URGENT_HIGH}
    ranks = [kind.rank for kind in AlertKind]
    assert ranks == sorted(ranks) == list(range(len(AlertKind)))
    assert AlertKind.URGENT_LOW.rank < AlertKind.LOW.rank < AlertKind.HIGH.rank


def test_missing_kinds_get_their_defaults() -> None:
    low = KindConfig(True, 80, minutes(10), True, timedelta(hours=1))
    settings = AlertSettings({AlertKind.LOW: low})
    assert settings[AlertKind.LOW] == low
    assert settings[AlertKind.HIGH] == AlertSettings()[AlertKind.HIGH]
    assert set(settings.kinds) == set(AlertKind)
    assert settings.thresholds().low == 80


def test_urgent_low_cannot_be_turned_off() -> None:
    off = replace(AlertSettings()[AlertKind.URGENT_LOW], enabled=False)
    settings = AlertSettings().with_kind(AlertKind.URGENT_LOW, off)
    assert settings[AlertKind.URGENT_LOW].enabled
    assert settings[AlertKind.URGENT_LOW].snooze_cap == URGENT_LOW_SNOOZE_CAP


def test_urgent_low_snooze_is_capped_at_30_minutes() -> None:
    long = replace(AlertSettings()[AlertKind.URGENT_LOW], snooze_cap=timedelta(hours=4))
    settings = AlertSettings().with_kind(AlertKind.URGENT_LOW, long)
    assert settings[AlertKind.URGENT_LOW].snooze_cap == minutes(30)
    short = replace(long, snooze_cap=minutes(10))
    assert AlertSettings().with_kind(AlertKind.URGENT_LOW, short)[
        AlertKind.URGENT_LOW
    ].snooze_cap == minutes(10)


def test_with_kind_returns_new_settings_and_leaves_the_old_ones() -> None:
    before = AlertSettings()
    rising = replace(before[AlertKind.RISING_FAST], enabled=True)
    after = before.with_kind(AlertKind.RISING_FAST, rising)
    assert after[AlertKind.RISING_FAST].enabled
    assert not before[AlertKind.RISING_FAST].enabled


def test_thresholds_in_the_wrong_order_are_refused() -> None:
    base = AlertSettings()
    low_above_high = replace(base[AlertKind.LOW], threshold=260)
    with pytest.raises(ValueError, match="urgent low < low < high < urgent high"):
        base.with_kind(AlertKind.LOW, low_above_high)


def test_kind_config_is_frozen() -> None:
    config = AlertSettings()[AlertKind.LOW]
    with pytest.raises(FrozenInstanceError):
        config.threshold = 80  # type: ignore[misc]


# --- failures.py -------------------------------------------------------------------------------


def test_failure_classes_of_the_policy() -> None:
    assert [f.value for f in FailureClass] == [
        "session",
        "credentials",
        "locked",
        "rate_limit",
        "transient",
        "client_bug",
    ]
    assert FailureClass("locked") is FailureClass.LOCKED


# --- issue 13: Low chimes by default; only enabled thresholds must be in order ------------------


def test_low_chimes_by_default_like_the_urgent_kinds() -> None:
    sounding = {kind for kind, config in AlertSettings().kinds.items() if config.sound}
    assert sounding == {
        AlertKind.URGENT_LOW,
        AlertKind.URGENT_LOW_SOON,
        AlertKind.LOW,
        AlertKind.URGENT_HIGH,
    }


def _with(base: AlertSettings, kind: AlertKind, *, enabled: bool, threshold: int) -> AlertSettings:
    return base.with_kind(kind, replace(base[kind], enabled=enabled, threshold=threshold))


def test_high_above_a_turned_off_urgent_high_is_accepted() -> None:
    settings = _with(AlertSettings(), AlertKind.HIGH, enabled=True, threshold=320)
    assert not settings[AlertKind.URGENT_HIGH].enabled
    assert settings[AlertKind.HIGH].threshold == 320
    assert settings.thresholds() == Thresholds(55, 70, 320, 321)


def test_high_above_an_enabled_urgent_high_is_refused() -> None:
    on = _with(AlertSettings(), AlertKind.URGENT_HIGH, enabled=True, threshold=300)
    with pytest.raises(ValueError, match="urgent low < low < high < urgent high"):
        _with(on, AlertKind.HIGH, enabled=True, threshold=320)


def test_urgent_low_above_a_turned_off_low_is_accepted() -> None:
    off = _with(AlertSettings(), AlertKind.LOW, enabled=False, threshold=70)
    settings = _with(off, AlertKind.URGENT_LOW, enabled=True, threshold=75)
    assert settings.thresholds() == Thresholds(75, 76, 250, 300)


def test_a_turned_off_high_below_low_and_one_above_urgent_high_are_moved_beside_them() -> None:
    urgent_high_on = _with(AlertSettings(), AlertKind.URGENT_HIGH, enabled=True, threshold=300)
    below = _with(urgent_high_on, AlertKind.HIGH, enabled=False, threshold=60)
    assert below.thresholds() == Thresholds(55, 70, 71, 300)
    above = _with(urgent_high_on, AlertKind.HIGH, enabled=False, threshold=350)
    assert above.thresholds() == Thresholds(55, 70, 299, 300)


def test_thresholds_in_order_are_kept_whether_on_or_off() -> None:
    assert place_ranges([55, 70, 250, 300], [True, False, False, False]) == (55, 70, 250, 300)


@pytest.mark.parametrize(
    ("values", "enabled"),
    [
        ([55, 70, 400, 300], [True, True, True, False]),  # no whole mg/dL above 400
        ([55, 70, 56, 300], [True, False, True, True]),  # no room for low between 55 and 56
        ([55, 70, 60, 300], [True, True, True, True]),  # high below low
    ],
)
def test_settings_without_room_for_every_boundary_are_refused(
    values: list[int], enabled: list[bool]
) -> None:
    assert place_ranges(values, enabled) is None
