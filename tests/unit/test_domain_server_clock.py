"""Share's clock from Date headers: real offsets are adopted, one lying header moves nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.server_clock import SKEW_TOLERANCE, ServerClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LIE = datetime(2001, 1, 1, tzinfo=UTC)


def answer(clock: ServerClock, local: ManualClock, skew: timedelta) -> None:
    """One answer from a server whose clock is `skew` ahead of ours, then 5 minutes pass."""
    clock.observe(local.now() + skew)
    local.advance(timedelta(minutes=5))


def test_until_two_answers_agree_share_s_clock_is_ours() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    assert clock.skew is None
    assert clock.now() == T0
    assert clock.base is local
    clock.observe(T0 + HOUR)
    assert clock.skew is None
    assert clock.now() == T0


@pytest.mark.parametrize("offset", [HOUR, -HOUR, timedelta(seconds=30), timedelta(0)])
def test_a_computer_clock_off_by_an_hour_is_adopted_from_the_second_answer(
    offset: timedelta,
) -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, offset)
    answer(clock, local, offset)
    assert clock.skew == offset
    assert clock.now() == local.now() + offset


def test_one_lying_date_header_amid_honest_ones_moves_nothing() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, HOUR)
    answer(clock, local, HOUR)
    clock.observe(LIE)
    assert clock.skew == HOUR
    assert clock.now() == local.now() + HOUR
    answer(clock, local, HOUR)
    assert clock.skew == HOUR


def test_a_lie_on_the_very_first_answer_is_not_adopted() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    clock.observe(LIE)
    answer(clock, local, timedelta(0))
    assert clock.skew is None
    answer(clock, local, timedelta(0))
    assert clock.skew == timedelta(0)


def test_lies_that_alternate_with_the_truth_never_win() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, -HOUR)
    for _ in range(10):
        answer(clock, local, -HOUR)
        clock.observe(LIE)
    assert clock.skew == -HOUR


def test_a_clock_changed_mid_run_is_adopted_after_two_answers() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, timedelta(0))
    answer(clock, local, timedelta(0))
    local.advance(-HOUR)  # the user sets the computer clock back an hour
    answer(clock, local, HOUR)
    assert clock.skew == timedelta(0)
    answer(clock, local, HOUR)
    assert clock.skew == HOUR
    assert clock.now() == local.now() + HOUR


def test_wobble_within_the_tolerance_keeps_the_estimate() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, timedelta(seconds=10))
    answer(clock, local, timedelta(seconds=11))
    assert clock.skew == timedelta(seconds=11)
    for seconds in (9, 12, 13, 10, 9):
        answer(clock, local, timedelta(seconds=seconds))
        assert clock.skew == timedelta(seconds=11)


def test_a_naive_date_is_a_programming_error() -> None:
    clock = ServerClock(ManualClock(T0))
    with pytest.raises(ValueError, match="naive"):
        clock.observe(datetime(2026, 3, 1, 12, 0))


def test_repr_shows_the_skew() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    answer(clock, local, HOUR)
    answer(clock, local, HOUR)
    assert "skew=datetime.timedelta(seconds=3600)" in repr(clock)


def test_readers_on_other_threads_see_a_whole_estimate() -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    seen: list[timedelta | None] = []

    def read() -> None:
        for _ in range(2000):
            seen.append(clock.skew)

    reader = threading.Thread(target=read)
    reader.start()
    for index in range(2000):
        clock.observe(T0 + (HOUR if index % 4 < 2 else -HOUR))
    reader.join()
    assert set(seen) <= {None, HOUR, -HOUR}


offsets = st.integers(min_value=-86_400, max_value=86_400).map(lambda s: timedelta(seconds=s))
lies = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)


@given(
    truth=offsets,
    jitter=st.lists(st.integers(min_value=-1, max_value=1), min_size=6, max_size=6),
    lie=lies,
    where=st.integers(min_value=2, max_value=5),
)
def test_no_single_lie_moves_an_adopted_skew(
    truth: timedelta, jitter: list[int], lie: datetime, where: int
) -> None:
    local = ManualClock(T0)
    clock = ServerClock(local)
    for index, wobble in enumerate(jitter):
        if index == where:
            clock.observe(lie)
        answer(clock, local, truth + timedelta(seconds=wobble))
        if index >= 1:
            skew = clock.skew
            assert skew is not None
            assert abs(skew - truth) <= SKEW_TOLERANCE
