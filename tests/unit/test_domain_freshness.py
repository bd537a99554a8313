"""Reading age, clock skew, freshness boundaries and how ages are written and spoken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.freshness import (
    Freshness,
    age,
    classify,
    classify_age,
    effective_now,
    format_age,
    is_from_future,
    spoken_age,
)
from cgmtray.domain.readings import Reading, Trend

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def reading_at(when: datetime) -> Reading:
    return Reading(when, 120, Trend.FLAT)


@pytest.mark.parametrize(
    ("reading_age", "freshness"),
    [
        (timedelta(0), Freshness.FRESH),
        (minutes(5) + timedelta(seconds=59), Freshness.FRESH),
        (minutes(6), Freshness.AGING),
        (minutes(9) + timedelta(seconds=59), Freshness.AGING),
        (minutes(10), Freshness.STALE),
        (minutes(19) + timedelta(seconds=59), Freshness.STALE),
        (minutes(20), Freshness.NO_DATA),
        (timedelta(days=3), Freshness.NO_DATA),
    ],
)
def test_freshness_boundaries(reading_age: timedelta, freshness: Freshness) -> None:
    assert classify_age(reading_age) is freshness
    assert classify(reading_at(NOW - reading_age), NOW) is freshness


def test_no_reading_is_no_data() -> None:
    assert classify(None, NOW) is Freshness.NO_DATA


def test_a_reading_goes_stale_as_the_clock_moves_without_new_data() -> None:
    clock = ManualClock(NOW)
    reading = reading_at(NOW - minutes(2))
    seen = []
    for _ in range(5):
        seen.append(classify(reading, clock.now()))
        clock.advance(minutes(5))
    assert seen == [
        Freshness.FRESH,
        Freshness.AGING,
        Freshness.STALE,
        Freshness.STALE,
        Freshness.NO_DATA,
    ]


def test_age_uses_the_readings_own_time_in_any_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert age(datetime(2025, 3, 1, 20, 55, tzinfo=tokyo), NOW) == minutes(5)


def test_age_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        age(datetime(2025, 3, 1, 11, 55), NOW)
    with pytest.raises(ValueError, match="naive"):
        age(NOW, datetime(2025, 3, 1, 11, 55))


def test_small_skew_is_ignored() -> None:
    reading_time = NOW - minutes(5)
    for skew in (timedelta(seconds=60), timedelta(seconds=-60), timedelta(seconds=30)):
        assert effective_now(NOW, skew) == NOW
        assert age(reading_time, NOW, skew) == minutes(5)


def test_local_clock_behind_the_server_ages_readings_by_server_time() -> None:
    # The computer is 15 min slow: by its clock the reading is 2 min old, really 17 min.
    skew = minutes(15)
    reading = reading_at(NOW - minutes(2))
    assert effective_now(NOW, skew) == NOW + skew
    assert age(reading.time, NOW, skew) == minutes(17)
    assert classify(reading, NOW) is Freshness.FRESH
    assert classify(reading, NOW, skew) is Freshness.STALE


def test_local_clock_ahead_of_the_server_does_not_make_readings_look_old() -> None:
    skew = -minutes(30)
    reading = reading_at(NOW - minutes(32))
    assert age(reading.time, NOW, skew) == minutes(2)
    assert classify(reading, NOW, skew) is Freshness.FRESH


def test_just_over_a_minute_of_skew_is_applied() -> None:
    skew = timedelta(seconds=61)
    assert effective_now(NOW, skew) == NOW + skew


def test_reading_from_the_future_has_age_zero() -> None:
    assert age(NOW + timedelta(seconds=30), NOW) == timedelta(0)
    assert age(NOW + minutes(30), NOW) == timedelta(0)
    assert classify(reading_at(NOW + timedelta(seconds=30)), NOW) is Freshness.FRESH


def test_is_from_future_flags_only_more_than_a_minute_ahead() -> None:
    assert not is_from_future(NOW - minutes(5), NOW)
    assert not is_from_future(NOW + timedelta(seconds=60), NOW)
    assert is_from_future(NOW + timedelta(seconds=61), NOW)
    # With the server's clock known, a slow local clock no longer makes readings look ahead.
    assert not is_from_future(NOW + minutes(10), NOW, minutes(12))


@given(
    st.timedeltas(min_value=-timedelta(days=2), max_value=timedelta(days=2)),
    st.one_of(
        st.none(), st.timedeltas(min_value=-timedelta(hours=5), max_value=timedelta(hours=5))
    ),
)
def test_age_is_never_negative(offset: timedelta, skew: timedelta | None) -> None:
    assert age(NOW + offset, NOW, skew) >= timedelta(0)


@given(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=1)),
)
def test_freshness_only_worsens_with_age(younger: timedelta, extra: timedelta) -> None:
    order = list(Freshness)
    assert order.index(classify_age(younger)) <= order.index(classify_age(younger + extra))


@pytest.mark.parametrize(
    ("reading_age", "short", "spoken"),
    [
        (timedelta(0), "just now", "just now"),
        (timedelta(seconds=59), "just now", "just now"),
        (-minutes(3), "just now", "just now"),
        (minutes(1), "1 min ago", "1 minute ago"),
        (minutes(2) + timedelta(seconds=59), "2 min ago", "2 minutes ago"),
        (minutes(59), "59 min ago", "59 minutes ago"),
        (minutes(60), "1 h ago", "1 hour ago"),
        (minutes(61), "1 h 1 min ago", "1 hour 1 minute ago"),
        (minutes(65), "1 h 5 min ago", "1 hour 5 minutes ago"),
        (timedelta(hours=2, minutes=1), "2 h 1 min ago", "2 hours 1 minute ago"),
        (timedelta(hours=23, minutes=59), "23 h 59 min ago", "23 hours 59 minutes ago"),
        (timedelta(days=1), "1 d ago", "1 day ago"),
        (timedelta(days=3, hours=5), "3 d ago", "3 days ago"),
    ],
)
def test_age_texts(reading_age: timedelta, short: str, spoken: str) -> None:
    assert format_age(reading_age) == short
    assert spoken_age(reading_age) == spoken


def test_freshness_values() -> None:
    assert [f.value for f in Freshness] == ["fresh", "aging", "stale", "no_data"]
