"""When the app polls Share: aligned polls, learned lag, budgets, backoff and stops (protocol 7)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgmtray.domain.availability_lag import (
    DEFAULT_LAG,
    MAX_LAG,
    MIN_LAG,
    MISS_STEP,
    SAMPLE_COUNT,
    estimate_lag,
    lag_sample,
    with_sample,
)
from cgmtray.domain.budget import HOUR, Budget, Ledger
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.schedule import (
    PollPlan,
    PollReason,
    ScheduleState,
    budget_report,
    initial_state,
    note_resume,
    plan,
    record_failure,
    record_success,
    record_user_action,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def secs(value: float) -> timedelta:
    return timedelta(seconds=value)


def started(reading_age: float = 60.0, *, seed: int = 0) -> ScheduleState:
    """After the startup poll at T0: signed in, found readings, the newest `reading_age` s old."""
    newest = T0 - secs(reading_age)
    state = initial_state(seed=seed)
    return record_success(state, T0, [newest - 5 * MINUTE, newest], 1, True)


def aligned_due(state: ScheduleState) -> datetime:
    """Where the aligned poll falls without its 0-10 s jitter."""
    assert state.newest_reading is not None
    return state.newest_reading + 5 * MINUTE + state.learned_lag


def planned_at(state: ScheduleState, now: datetime) -> datetime:
    at = plan(state, now).at
    assert at is not None
    return at


# --- startup -------------------------------------------------------------------------------


def test_startup_polls_at_once_for_the_last_24_hours() -> None:
    first = plan(initial_state(), T0)
    assert first == PollPlan(T0, 1440, 288, PollReason.STARTUP, sign_in_allowed=True)


def test_startup_with_stored_history_asks_for_the_gap_and_at_least_3_hours() -> None:
    """What arrived while the app was off is backfilled, late uploads in the last 3 h too."""
    first = plan(initial_state(newest_reading=T0 - timedelta(hours=2)), T0)
    assert (first.at, first.reason) == (T0, PollReason.STARTUP)
    assert (first.minutes, first.max_count) == (180, 37)
    long_off = plan(initial_state(newest_reading=T0 - timedelta(hours=5)), T0)
    assert (long_off.minutes, long_off.max_count) == (305, 62)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        plan(initial_state(), datetime(2026, 3, 1, 8, 0))


@pytest.mark.parametrize(
    ("reading_age", "minutes", "max_count"),
    [
        (timedelta(0), 10, 3),
        (4 * MINUTE, 10, 3),
        (6 * MINUTE, 11, 3),
        (timedelta(hours=1), 65, 14),
        (timedelta(hours=23, minutes=56), 1440, 288),
        (timedelta(days=3), 1440, 288),
        (-5 * MINUTE, 10, 3),
    ],
)
def test_read_window_covers_the_gap_since_the_newest_reading_within_share_limits(
    reading_age: timedelta, minutes: int, max_count: int
) -> None:
    after_a_read = replace(initial_state(newest_reading=T0 - reading_age), last_read_ok_at=T0)
    nxt = plan(after_a_read, T0)
    assert (nxt.minutes, nxt.max_count) == (minutes, max_count)


# --- the reading-aligned schedule ------------------------------------------------------------


def test_next_poll_is_aligned_to_the_next_reading_plus_lag_and_a_little_jitter() -> None:
    state = started(60)
    nxt = plan(state, T0)
    assert nxt.reason is PollReason.ALIGNED
    assert nxt.at is not None
    assert timedelta(0) <= nxt.at - (T0 - MINUTE + 5 * MINUTE + DEFAULT_LAG) < secs(10)
    assert (nxt.minutes, nxt.max_count) == (11, 3)
    assert nxt.sign_in_allowed is False  # the startup sign-in was under 5 minutes before


def test_jitter_is_repeatable_and_differs_between_installs() -> None:
    state = started(60)
    assert plan(state, T0) == plan(state, T0)
    jitters = {planned_at(started(60, seed=seed), T0) for seed in range(8)}
    assert len(jitters) > 1
    assert plan(state, T0, rng_seed=5) == plan(started(60, seed=5), T0)


def test_a_due_moment_already_past_polls_soon_but_keeps_the_floor() -> None:
    # The startup poll found a reading 5 min 50 s old: the next one is overdue already.
    state = started(350)
    nxt = plan(state, T0)
    assert nxt.at == T0 + MINUTE
    assert nxt.reason is PollReason.NO_NEW_READING


def test_without_new_readings_retry_each_minute_four_times_then_every_150_s_then_5_min() -> None:
    state = started(60)
    newest = state.newest_reading
    assert newest is not None
    now = T0
    steps: list[tuple[PollReason, timedelta]] = []
    for _ in range(16):
        nxt = plan(state, now)
        assert nxt.at is not None
        now = nxt.at
        steps.append((nxt.reason, now - aligned_due(state)))
        state = record_success(state, now, [newest], 1, False)
    jitter = steps[0][1]
    assert timedelta(0) <= jitter < secs(10)
    offsets = [int((offset - jitter).total_seconds()) for _, offset in steps]
    expected = [0, 60, 120, 180, 240, 300, 450, 600, 750, 900, 1050, 1200, 1350, 1500, 1800]
    assert offsets == [*expected, 2100]
    reasons = [reason for reason, _ in steps]
    assert reasons == (
        [PollReason.ALIGNED]
        + [PollReason.NO_NEW_READING] * 4
        + [PollReason.WAITING_FOR_DATA] * 8
        + [PollReason.NO_DATA] * 3
    )
    assert aligned_due(state) + jitter + secs(1350) - newest < timedelta(minutes=30)
    assert aligned_due(state) + jitter + secs(1500) - newest >= timedelta(minutes=30)


def test_when_data_resumes_the_schedule_aligns_to_the_new_reading() -> None:
    state = started(60)
    now = planned_at(state, T0)
    state = record_success(state, now, [], 1, False)  # not there yet
    now = planned_at(state, now)
    fresh = T0 - MINUTE + 5 * MINUTE
    state = record_success(state, now, [fresh], 1, False)
    nxt = plan(state, now)
    assert nxt.reason is PollReason.ALIGNED
    assert nxt.at is not None
    assert timedelta(0) <= nxt.at - (fresh + 5 * MINUTE + state.learned_lag) < secs(10)


def test_a_reading_found_only_after_a_miss_teaches_a_longer_lag() -> None:
    state = started(60)
    due = planned_at(state, T0)
    state = record_success(state, due, [], 1, False)
    retry = planned_at(state, due)
    assert retry - due == MINUTE
    state = record_success(state, retry, [T0 + 4 * MINUTE], 1, False)
    assert state.learned_lag == DEFAULT_LAG + MISS_STEP


def test_readings_found_at_first_look_slowly_teach_a_shorter_lag() -> None:
    state = started(60)
    now = T0
    reading = T0 - MINUTE
    for _ in range(10):
        now = planned_at(state, now)
        reading += 5 * MINUTE
        state = record_success(state, now, [reading], 1, False)
    assert MIN_LAG <= state.learned_lag < DEFAULT_LAG


def test_a_reading_seen_long_after_its_time_does_not_count_as_lag() -> None:
    state = started(60)
    late = record_success(state, T0 + timedelta(hours=2), [T0 + timedelta(hours=1)], 1, False)
    assert late.lag_samples == state.lag_samples == ()
    assert late.newest_reading == T0 + timedelta(hours=1)


def test_older_readings_do_not_move_the_newest_back() -> None:
    state = started(60)
    again = record_success(state, T0 + MINUTE, [T0 - timedelta(hours=1)], 1, False)
    assert again.newest_reading == state.newest_reading


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ((), DEFAULT_LAG),
        ((5.0,), MIN_LAG),
        ((500.0,), MAX_LAG),
        ((30.0, 40.0, 50.0), secs(50)),
        ((30.0, 20.0), secs(20)),
    ],
)
def test_lag_estimate_is_the_newest_clamped(
    samples: tuple[float, ...], expected: timedelta
) -> None:
    assert estimate_lag(samples) == expected


@pytest.mark.parametrize(
    ("found_after", "last_empty_after", "expected"),
    [
        (secs(-5), secs(-300), None),  # clock skew: found "before" it existed
        (secs(301), secs(-300), None),  # a backlog, not a live arrival
        (secs(31), secs(-270), 24.0),  # first look: probe a little below the estimate
        (secs(20), secs(-280), 19.0),  # first look, sooner than the estimate
        (secs(0.5), secs(-280), 0.0),
        (secs(90), secs(30), 34.0),  # after a miss: one step up from the estimate
        (secs(31), secs(30), 31.0),  # ...but never past the poll that found it
    ],
)
def test_lag_steps_down_on_a_hit_and_up_on_a_miss(
    found_after: timedelta, last_empty_after: timedelta, expected: float | None
) -> None:
    reading = T0
    got = lag_sample(reading, reading + found_after, reading + last_empty_after, secs(25))
    assert got == expected


def test_lag_keeps_only_the_recent_samples() -> None:
    samples: tuple[float, ...] = ()
    for value in range(10):
        samples = with_sample(samples, float(value))
    assert samples == tuple(float(v) for v in range(10 - SAMPLE_COUNT, 10))


# --- budgets --------------------------------------------------------------------------------


def test_budget_report_counts_the_last_hour() -> None:
    ledger = Ledger().recorded(T0 - timedelta(minutes=70), 5, 1)
    ledger = ledger.recorded(T0 - timedelta(minutes=30), 2, 1)
    ledger = ledger.recorded(T0 - timedelta(minutes=2), 1, 1)
    state = ScheduleState(ledger=ledger, sign_in_failures=1)
    assert budget_report(state, T0) == Budget(3, 1, 2, 1)


def test_ledger_stays_bounded_whatever_the_caller_reports() -> None:
    ledger = Ledger().recorded(T0, 1000, 1000)
    assert len(ledger.reads) == len(ledger.sign_ins) == 120


def test_ledger_entries_from_before_a_clock_change_count_as_now() -> None:
    ledger = Ledger().recorded(T0, 2, 1).normalized(T0 - timedelta(hours=3))
    assert ledger.reads == (T0 - timedelta(hours=3),) * 2
    assert ledger.sign_ins == (T0 - timedelta(hours=3),)


def test_sign_ins_at_most_one_per_5_minutes_and_three_per_hour() -> None:
    ledger = Ledger()
    assert ledger.earliest_sign_in() is None
    assert ledger.sign_in_allowed_at(T0)
    ledger = ledger.recorded(T0, 0, 1)
    assert ledger.earliest_sign_in() == T0 + 5 * MINUTE
    assert not ledger.sign_in_allowed_at(T0 + secs(299))
    assert ledger.sign_in_allowed_at(T0 + 5 * MINUTE)
    ledger = ledger.recorded(T0 + 5 * MINUTE, 0, 1).recorded(T0 + 10 * MINUTE, 0, 1)
    assert ledger.earliest_sign_in() == T0 + HOUR


def test_reads_at_most_60_per_hour_even_with_a_retried_read() -> None:
    ledger = Ledger()
    for minute in range(58):
        ledger = ledger.recorded(T0 + minute * MINUTE, 1, 0)
    assert ledger.earliest_poll() is None
    ledger = ledger.recorded(T0 + 58 * MINUTE, 1, 0)
    assert ledger.earliest_poll() == T0 + HOUR


def test_a_poll_that_must_sign_in_waits_for_the_sign_in_budget() -> None:
    state = started(60)
    # The session failed for good right after the startup sign-in and its one retried read.
    state = record_failure(state, T0 + MINUTE, FailureClass.SESSION, 2, 1)
    assert state.has_session is False
    nxt = plan(state, T0 + MINUTE)
    assert (nxt.at, nxt.reason, nxt.sign_in_allowed) == (
        T0 + MINUTE + 5 * MINUTE,
        PollReason.BUDGET,
        True,
    )


def test_the_hourly_read_budget_delays_even_a_prompt_poll() -> None:
    ledger = Ledger()
    for minute in range(59):
        ledger = ledger.recorded(T0 + minute * MINUTE, 1, 0)
    state = ScheduleState(
        ledger=ledger,
        has_session=True,
        last_request_at=T0 + 58 * MINUTE,
        last_outcome_at=T0 + 58 * MINUTE,
        last_read_ok_at=T0 + 58 * MINUTE,
        newest_reading=T0 + 55 * MINUTE,
    )
    nxt = plan(note_resume(state, T0 + 59 * MINUTE), T0 + 59 * MINUTE)
    assert (nxt.at, nxt.reason) == (T0 + HOUR, PollReason.BUDGET)


# --- failures -------------------------------------------------------------------------------


def test_transient_failures_back_off_30_60_120_240_300_with_jitter() -> None:
    for seed in range(5):
        state = initial_state(seed=seed)
        now = T0
        for step in (30, 60, 120, 240, 300, 300):
            state = record_failure(state, now, FailureClass.TRANSIENT, 0, 0)
            nxt = plan(state, now)
            assert nxt.reason is PollReason.BACKOFF_TRANSIENT
            assert nxt.at is not None
            assert 0.8 * step <= (nxt.at - now).total_seconds() <= 1.2 * step
            now = nxt.at
    delays = {
        planned_at(record_failure(initial_state(seed=s), T0, FailureClass.TRANSIENT, 0, 0), T0)
        for s in range(6)
    }
    assert len(delays) > 1


def test_transient_backoff_keeps_the_60_s_floor_after_a_request() -> None:
    state = record_failure(ScheduleState(has_session=True), T0, FailureClass.TRANSIENT, 1, 0)
    nxt = plan(state, T0)
    assert (nxt.at, nxt.reason) == (T0 + MINUTE, PollReason.BACKOFF_TRANSIENT)


def test_success_resets_the_backoff() -> None:
    state = initial_state()
    for _ in range(4):
        state = record_failure(state, T0, FailureClass.TRANSIENT, 0, 0)
    state = record_success(state, T0, [T0 - MINUTE], 1, True)
    assert (state.transient_streak, state.last_failure) == (0, None)
    assert plan(state, T0).reason is PollReason.ALIGNED


def test_a_failure_while_the_next_reading_is_not_due_keeps_the_aligned_poll() -> None:
    state = record_failure(started(60), T0 + secs(5), FailureClass.TRANSIENT, 1, 0)
    assert plan(state, T0 + secs(5)).reason is PollReason.ALIGNED
    limited = record_failure(started(60), T0 + secs(5), FailureClass.RATE_LIMIT, 1, 0)
    assert plan(limited, T0 + secs(5)).reason is PollReason.ALIGNED


def test_a_session_failure_backs_off_like_a_transient_one_and_drops_the_session() -> None:
    state = record_failure(ScheduleState(has_session=True), T0, FailureClass.SESSION, 1, 0)
    assert state.has_session is False
    nxt = plan(state, T0)
    assert (nxt.at, nxt.reason, nxt.sign_in_allowed) == (
        T0 + MINUTE,
        PollReason.BACKOFF_SESSION,
        True,
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, [60, 120, 240, 480, 600, 600]),
        (90.0, [90, 120, 240, 480, 600, 600]),
        (900.0, [900, 900, 900, 900, 900, 900]),
        (86400.0, [3600] * 6),
        (-5.0, [60, 120, 240, 480, 600, 600]),
        (math.nan, [60, 120, 240, 480, 600, 600]),
    ],
)
def test_rate_limits_wait_for_retry_after_then_double_to_10_minutes(
    retry_after: float | None, expected: list[int]
) -> None:
    state = initial_state()
    now = T0
    waits = []
    for _ in expected:
        state = record_failure(state, now, FailureClass.RATE_LIMIT, 1, 0, retry_after)
        nxt = plan(state, now)
        assert nxt.reason is PollReason.RATE_LIMIT
        assert nxt.at is not None
        waits.append(int((nxt.at - now).total_seconds()))
        now = nxt.at
    assert waits == expected


def test_rejected_credentials_stop_polling_and_sign_ins_until_the_user_acts() -> None:
    state = record_failure(initial_state(), T0, FailureClass.CREDENTIALS, 0, 1)
    stopped = plan(state, T0 + timedelta(hours=5))
    assert stopped == PollPlan(None, 1440, 288, PollReason.STOPPED_CREDENTIALS, False)
    resumed = note_resume(state, T0 + timedelta(hours=6))
    assert plan(resumed, T0 + timedelta(hours=6)).at is None
    acted = record_user_action(state, T0 + timedelta(hours=6), credentials_changed=True)
    again = plan(acted, T0 + timedelta(hours=6))
    assert (again.at, again.reason, again.sign_in_allowed) == (
        T0 + timedelta(hours=6),
        PollReason.USER,
        True,
    )


def test_credentials_zero_attempts_still_count_as_a_sign_in() -> None:
    state = record_failure(initial_state(), T0, FailureClass.CREDENTIALS, 0, 0)
    assert budget_report(state, T0).sign_ins_last_hour == 1


def test_credentials_that_worked_today_are_not_retried_automatically_either() -> None:
    # The 2026 caveat's one retry after 15 min is gone: a rejection waits for new credentials
    # (docs/decisions.md, "No automatic retry of rejected credentials").
    state = started(60)
    rejected_at = T0 + timedelta(hours=3)
    state = record_failure(state, rejected_at, FailureClass.CREDENTIALS, 1, 1)
    for later in (rejected_at, rejected_at + timedelta(minutes=15), rejected_at + 5 * HOUR):
        retry = plan(state, later)
        assert (retry.at, retry.reason, retry.sign_in_allowed) == (
            None,
            PollReason.STOPPED_CREDENTIALS,
            False,
        )


def test_the_credentials_retry_that_fails_otherwise_stops_all_the_same() -> None:
    state = record_failure(started(60), T0 + MINUTE, FailureClass.CREDENTIALS, 1, 1)
    later = T0 + timedelta(minutes=20)
    for failure in (FailureClass.TRANSIENT, FailureClass.LOCKED, FailureClass.RATE_LIMIT):
        after = record_failure(state, later, failure, 0, 1, during_sign_in=True)
        nxt = plan(after, later)
        assert (nxt.at, nxt.reason) == (None, PollReason.STOPPED_CREDENTIALS)


def test_the_credentials_retry_that_works_restores_normal_polling() -> None:
    state = record_failure(started(60), T0 + MINUTE, FailureClass.CREDENTIALS, 1, 1)
    later = T0 + timedelta(minutes=16)
    state = record_success(state, later, [T0 + timedelta(minutes=14)], 1, True)
    assert state.block is None
    assert not state.credentials_rejected


def test_a_read_without_sign_in_after_rejection_still_allows_no_sign_in() -> None:
    state = record_failure(started(60), T0 + MINUTE, FailureClass.CREDENTIALS, 1, 1)
    state = record_failure(state, T0 + 2 * MINUTE, FailureClass.CREDENTIALS, 0, 1)
    # A read that worked on a session the client still held does not vouch for the credentials.
    state = record_success(state, T0 + 3 * MINUTE, [], 1, False)
    assert plan(state, T0 + 3 * MINUTE).sign_in_allowed is False


@pytest.mark.parametrize(
    "last_sign_in",
    [None, T0 - timedelta(hours=25)],
)
def test_credentials_never_or_not_recently_accepted_stop_at_once(
    last_sign_in: datetime | None,
) -> None:
    state = ScheduleState(last_sign_in_ok_at=last_sign_in)
    state = record_failure(state, T0, FailureClass.CREDENTIALS, 0, 1)
    assert plan(state, T0).reason is PollReason.STOPPED_CREDENTIALS


def test_a_locked_account_is_never_tried_again_automatically() -> None:
    # The lock's wait is the sign-in gate's; after it only the person's ask signs in.
    state = started(60)
    now = T0 + MINUTE
    state = record_failure(state, now, FailureClass.LOCKED, 1, 1)
    for later in (now, now + HOUR, now + 3 * HOUR):
        nxt = plan(note_resume(state, later), later)
        assert (nxt.at, nxt.reason, nxt.sign_in_allowed) == (
            None,
            PollReason.STOPPED_LOCKED,
            False,
        )


def test_the_user_lifts_a_lock_stop_and_a_new_lock_stops_again() -> None:
    state = record_failure(started(60), T0 + MINUTE, FailureClass.LOCKED, 1, 1)
    state = record_user_action(state, T0 + 70 * MINUTE)
    nxt = plan(state, T0 + 70 * MINUTE)
    assert (nxt.at, nxt.reason, nxt.sign_in_allowed) == (
        T0 + 70 * MINUTE,
        PollReason.USER,
        True,
    )
    state = record_failure(state, T0 + 70 * MINUTE, FailureClass.LOCKED, 0, 1)
    assert plan(state, T0 + 70 * MINUTE).reason is PollReason.STOPPED_LOCKED
    assert state.lock_count == 2


def test_a_client_bug_stops_polling_until_the_user_acts() -> None:
    state = record_failure(started(60), T0 + MINUTE, FailureClass.CLIENT_BUG, 1, 0)
    assert plan(state, T0 + MINUTE) == PollPlan(None, 10, 3, PollReason.STOPPED_CLIENT_BUG, False)
    acted = record_user_action(state, T0 + 6 * MINUTE)
    assert plan(acted, T0 + 6 * MINUTE).at == T0 + 6 * MINUTE


def test_three_failed_sign_ins_in_a_row_stop_sign_ins() -> None:
    state = initial_state()
    now = T0
    for _ in range(2):
        state = record_failure(state, now, FailureClass.TRANSIENT, 0, 1, during_sign_in=True)
        nxt = plan(state, now)
        assert nxt.at is not None
        assert nxt.sign_in_allowed
        now = nxt.at
    state = record_failure(state, now, FailureClass.TRANSIENT, 0, 1, during_sign_in=True)
    assert plan(state, now).reason is PollReason.STOPPED_SIGN_IN_FAILURES
    assert budget_report(state, now).consecutive_sign_in_failures == 3
    acted = record_user_action(state, now + timedelta(minutes=5))
    assert plan(acted, now + timedelta(minutes=5)).sign_in_allowed


def test_a_sign_in_that_works_resets_the_failure_count() -> None:
    state = initial_state()
    state = record_failure(state, T0, FailureClass.TRANSIENT, 0, 1, during_sign_in=True)
    state = record_failure(
        state, T0 + 6 * MINUTE, FailureClass.TRANSIENT, 0, 1, during_sign_in=True
    )
    # The sign-in works, then the read fails: the session is kept and the count starts over.
    state = record_failure(state, T0 + 12 * MINUTE, FailureClass.TRANSIENT, 1, 1)
    assert (state.sign_in_failures, state.has_session) == (0, True)
    state = record_failure(state, T0 + 18 * MINUTE, FailureClass.TRANSIENT, 1, 0)
    assert state.has_session is True


def test_sign_ins_that_got_no_answer_at_all_never_stop_polling() -> None:
    """Offline at start (no connection, timeouts): Dexcom never saw those sign-ins."""
    state = initial_state()
    now = T0
    for _ in range(6):
        state = record_failure(
            state, now, FailureClass.TRANSIENT, 0, 1, during_sign_in=True, answered=False
        )
        assert (state.sign_in_failures, state.has_session) == (0, False)
        assert state.last_sign_in_ok_at is None
        nxt = plan(state, now)
        assert nxt.at is not None
        assert nxt.sign_in_allowed
        now = nxt.at
    assert state.ledger.normalized(now).earliest_sign_in() is not None  # still on the budget


def test_after_stopped_sign_ins_a_session_loss_stops_polling() -> None:
    state = ScheduleState(sign_in_failures=3, has_session=True)
    state = record_success(state, T0, [T0 - MINUTE], 1, False)
    assert plan(state, T0).sign_in_allowed is False
    state = record_failure(state, T0 + 6 * MINUTE, FailureClass.SESSION, 0, 0)
    assert plan(state, T0 + 6 * MINUTE).reason is PollReason.STOPPED_SIGN_IN_FAILURES


def test_negative_request_counts_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        record_success(initial_state(), T0, [], -1, False)
    with pytest.raises(ValueError, match="negative"):
        record_failure(initial_state(), T0, FailureClass.TRANSIENT, 0, -1)


# --- resume, user action, clock jumps -------------------------------------------------------


def test_resume_polls_at_once_when_the_last_request_was_a_minute_ago() -> None:
    state = started(60)
    woke = T0 + secs(75)
    nxt = plan(note_resume(state, woke), woke)
    assert (nxt.at, nxt.reason) == (woke, PollReason.RESUME)


def test_a_resume_soon_after_a_request_keeps_the_one_request_a_minute_floor() -> None:
    """A false wake-up (or a network flap) must not add a request inside the 60 s floor."""
    state = started(60)
    soon = T0 + secs(22)
    nxt = plan(note_resume(state, soon), soon)
    assert nxt.at == T0 + secs(60)


def test_refresh_now_may_come_20_s_after_the_last_request() -> None:
    """The person asked: the one exception to the 60 s floor, and never below 20 s."""
    state = started(60)
    soon = T0 + secs(5)
    assert planned_at(record_user_action(state, soon), soon) == T0 + secs(20)


def test_resume_skips_a_transient_backoff_but_not_a_rate_limit() -> None:
    state = initial_state()
    for _ in range(4):
        state = record_failure(state, T0, FailureClass.TRANSIENT, 1, 0)
    woke = T0 + MINUTE
    assert plan(note_resume(state, woke), woke).at == woke
    limited = record_failure(started(60), T0 + MINUTE, FailureClass.RATE_LIMIT, 1, 0, 600)
    nxt = plan(note_resume(limited, T0 + 2 * MINUTE), T0 + 2 * MINUTE)
    assert (nxt.at, nxt.reason) == (T0 + 11 * MINUTE, PollReason.RATE_LIMIT)
    later = T0 + 12 * MINUTE
    assert plan(note_resume(limited, later), later).at == later


def test_a_user_request_is_not_downgraded_by_a_resume() -> None:
    state = record_user_action(started(60), T0 + MINUTE)
    state = note_resume(state, T0 + MINUTE)
    assert plan(state, T0 + MINUTE).reason is PollReason.USER


def test_a_user_action_without_new_credentials_keeps_the_session() -> None:
    state = record_user_action(started(60), T0 + MINUTE)
    assert state.has_session
    assert state.last_sign_in_ok_at == T0


def test_a_clock_jump_forward_polls_at_once_and_backfills_the_gap() -> None:
    state = started(60)
    woke = T0 + timedelta(hours=3)
    nxt = plan(state, woke)
    assert (nxt.at, nxt.reason) == (woke, PollReason.BACKFILL)
    assert nxt.minutes == 3 * 60 + 1 + 5


def test_a_clock_jump_backward_makes_no_burst_and_no_long_silence() -> None:
    state = started(60)
    back = T0 - timedelta(hours=2)
    nxt = plan(state, back)
    assert nxt.at is not None
    assert back + MINUTE <= nxt.at <= back + 6 * MINUTE
    after = record_success(state, back, [], 1, False)
    assert all(t <= back for t in after.ledger.reads)
    assert planned_at(after, back) >= back + MINUTE


def test_a_clock_jump_backward_during_a_lock_plans_nothing_automatic() -> None:
    # The lock's own wait (and its clamp on a clock set back) is sign_in_gate.lock_end's.
    state = record_failure(started(60), T0 + MINUTE, FailureClass.LOCKED, 1, 1)
    back = T0 - timedelta(hours=5)
    assert plan(state, back).at is None


def test_a_newest_reading_far_ahead_is_replaced_by_what_a_read_returns() -> None:
    """A far-future newest reading (kept by an older version, or a clock set back) would hold
    the reading-aligned grid ahead of every real reading: the next read's readings stand."""
    state = initial_state(newest_reading=T0 + timedelta(days=365))
    real = T0 - MINUTE
    after = record_success(state, T0, [real - 5 * MINUTE, real], 1, True)
    assert after.newest_reading == real
    assert after.gap_from is None
    assert planned_at(after, T0 + MINUTE) <= real + 6 * MINUTE


def test_a_newest_reading_a_little_ahead_is_kept() -> None:
    state = initial_state(newest_reading=T0 + 2 * MINUTE)
    assert record_success(state, T0, [T0 - MINUTE], 1, True).newest_reading == T0 + 2 * MINUTE


# --- properties: budgets and stops hold whatever happens --------------------------------------

_SIGN_IN_REJECTIONS = (FailureClass.CREDENTIALS, FailureClass.LOCKED)


@dataclass(frozen=True)
class Outcome:
    """What Share answers to a poll: new readings (the newest `age` s old), none, or a failure."""

    kind: str
    age: int = 0
    failure: FailureClass | None = None
    retry_after: float | None = None
    at_sign_in: bool = False


@dataclass(frozen=True)
class Poll:
    outcome: Outcome
    latency: int


@dataclass(frozen=True)
class UserAction:
    credentials_changed: bool
    after: int


@dataclass(frozen=True)
class Resume:
    after: int


Event = Poll | UserAction | Resume

short_or_long = st.one_of(st.integers(0, 60), st.integers(0, 4 * 3600))
outcomes = st.one_of(
    st.builds(Outcome, st.just("new"), age=st.integers(0, 900)),
    st.builds(Outcome, st.sampled_from(["empty", "session-expired"])),
    st.builds(
        Outcome,
        st.just("fail"),
        failure=st.sampled_from(list(FailureClass)),
        retry_after=st.one_of(st.none(), st.floats(-10, 5000)),
        at_sign_in=st.booleans(),
    ),
)
polls = st.builds(Poll, outcomes, st.one_of(st.just(0), st.integers(0, 40)))
events: st.SearchStrategy[Event] = st.one_of(
    polls,
    st.builds(UserAction, st.booleans(), short_or_long),
    st.builds(Resume, short_or_long),
)


@dataclass
class World:
    """The schedule driven by a model client that obeys each plan, and what really happened."""

    clock: ManualClock
    state: ScheduleState = field(default_factory=initial_state)
    has_session: bool = False
    request_polls: list[datetime] = field(default_factory=list)
    #: For each request poll: whether a resume or user action came since the previous one.
    prompted: list[bool] = field(default_factory=list)
    prompt_pending: bool = False
    reads: list[datetime] = field(default_factory=list)
    sign_ins: list[datetime] = field(default_factory=list)
    failed_sign_ins_in_a_row: int = 0
    rejected_at: datetime | None = None
    last_good_sign_in: datetime | None = None
    reading: datetime = T0 - MINUTE

    def run(self, event: Event) -> None:
        if isinstance(event, UserAction):
            self.clock.advance(event.after)
            self.state = record_user_action(
                self.state, self.clock.now(), credentials_changed=event.credentials_changed
            )
            self.rejected_at, self.failed_sign_ins_in_a_row = None, 0
            self.prompt_pending = True
            if event.credentials_changed:
                self.has_session, self.last_good_sign_in = False, None
        elif isinstance(event, Resume):
            self.clock.advance(event.after)
            self.state = note_resume(self.state, self.clock.now())
            self.prompt_pending = True
        else:
            self.poll(event)

    def poll(self, event: Poll) -> None:
        now = self.clock.now()
        nxt = plan(self.state, now)
        assert 10 <= nxt.minutes <= 1440
        assert 1 <= nxt.max_count <= 288
        if nxt.at is None:
            assert not nxt.sign_in_allowed
            return
        assert nxt.at >= now
        # After rejected credentials or a lock nothing signs in until the person acts.
        assert not (nxt.sign_in_allowed and self.rejected_at is not None)
        self.clock.set(nxt.at)
        at = nxt.at
        if event.outcome.kind == "new":
            self.reading = max(self.reading, at - secs(event.outcome.age))
        reads, attempts, failure, at_sign_in = self.act(nxt, event.outcome)
        if reads or attempts:
            self.request_polls.append(at)
            self.prompted.append(self.prompt_pending)
            self.prompt_pending = False
        self.reads += [at] * reads
        self.sign_ins += [at] * attempts
        done = self.clock.advance(event.latency)
        if failure is None:
            fresh = [self.reading] if event.outcome.kind == "new" else []
            self.state = record_success(self.state, done, fresh, reads, bool(attempts))
            if attempts:
                self.signed_in_well(at)
            return
        retry_after = event.outcome.retry_after
        self.state = record_failure(
            self.state, done, failure, reads, attempts, retry_after, during_sign_in=at_sign_in
        )
        if at_sign_in:
            self.failed_sign_ins_in_a_row += 1
            assert self.failed_sign_ins_in_a_row <= 3
        elif attempts:
            self.signed_in_well(at)
        if at_sign_in or failure in (FailureClass.SESSION, FailureClass.CLIENT_BUG):
            self.has_session = False
        if failure in _SIGN_IN_REJECTIONS:
            self.rejected_at = at

    def act(self, nxt: PollPlan, outcome: Outcome) -> tuple[int, int, FailureClass | None, bool]:
        """What the client does: (reads, sign-ins, failure, whether the sign-in failed)."""
        failure = outcome.failure if outcome.kind == "fail" else None
        rejected = failure in _SIGN_IN_REJECTIONS
        attempts = 0
        if not self.has_session:
            if not nxt.sign_in_allowed:
                return 0, 0, FailureClass.SESSION, False
            if rejected or (failure is not None and outcome.at_sign_in):
                return 0, 1, failure, True
            attempts = 1
            self.has_session = True
        if outcome.kind == "session-expired" or rejected:
            # The session expired: one sign-in (if allowed and none yet) and one retried read.
            if attempts or not nxt.sign_in_allowed:
                return 1, attempts, FailureClass.SESSION, False
            if failure is None:
                return 2, 1, None, False
            return 1, 1, failure, True
        return 1, attempts, failure, False

    def signed_in_well(self, at: datetime) -> None:
        self.last_good_sign_in, self.rejected_at = at, None
        self.failed_sign_ins_in_a_row = 0

    def check_budgets(self) -> None:
        polls = self.request_polls
        assert all(b - a >= secs(20) for a, b in itertools.pairwise(polls))
        # Polls nobody asked for keep the 60 s floor.
        spans = zip(polls, polls[1:], self.prompted[1:], strict=False)
        assert all(b - a >= MINUTE for a, b, prompted in spans if not prompted)
        reads, sign_ins = self.reads, self.sign_ins
        assert all(reads[i + 60] - reads[i] >= HOUR for i in range(len(reads) - 60))
        assert all(b - a >= 5 * MINUTE for a, b in itertools.pairwise(sign_ins))
        assert all(sign_ins[i + 3] - sign_ins[i] >= HOUR for i in range(len(sign_ins) - 3))


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=80))
def test_no_sequence_of_outcomes_breaks_the_spacing_the_budgets_or_the_credentials_stop(
    sequence: list[Event],
) -> None:
    world = World(ManualClock(T0))
    for event in sequence:
        world.run(event)
        world.check_budgets()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.builds(Resume, st.integers(0, 30)), polls), min_size=80, max_size=150))
def test_a_storm_of_resumes_keeps_the_hourly_budgets(pairs: list[tuple[Resume, Poll]]) -> None:
    world = World(ManualClock(T0))
    for resume, poll in pairs:
        world.run(resume)
        world.run(poll)
    world.check_budgets()


failing_sign_ins = st.builds(
    Poll,
    st.builds(
        Outcome, st.just("fail"), failure=st.sampled_from(FailureClass), at_sign_in=st.just(True)
    ),
    st.integers(0, 40),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(failing_sign_ins, st.builds(Resume, short_or_long)), max_size=40))
def test_the_third_failed_sign_in_in_a_row_stops_sign_ins_whatever_the_failures(
    sequence: list[Event],
) -> None:
    world = World(ManualClock(T0))
    for event in sequence:
        world.run(event)  # asserts at most 3 failed sign-ins in a row
    world.check_budgets()


# --- backfill: readings a phone uploads late into a gap (protocol trap 12) ----------------------


def test_a_missed_slot_is_read_again_until_its_reading_arrives() -> None:
    # The newest reading came, but the one 5 minutes before it had not been uploaded yet.
    newest = T0 - MINUTE
    state = record_success(initial_state(), T0, [newest - 10 * MINUTE, newest], 1, True)
    assert state.gap_from == newest - 10 * MINUTE
    later = T0 + 5 * MINUTE
    nxt = plan(state, later)
    assert nxt.minutes >= 16 + 5  # back to the reading before the gap, and a margin
    # The late one arrives with the next read: the gap is gone, the window normal again.
    filled = record_success(
        state,
        later,
        [newest - 10 * MINUTE, newest - 5 * MINUTE, newest, newest + 5 * MINUTE],
        1,
        False,
    )
    assert filled.gap_from is None
    assert plan(filled, later + 5 * MINUTE).minutes == 11


def test_a_gap_older_than_three_hours_is_no_longer_read_again() -> None:
    old = T0 - timedelta(hours=4)
    times = [old, old + 40 * MINUTE, *(T0 - k * 5 * MINUTE for k in range(30, 0, -1))]
    state = record_success(initial_state(), T0, times, 1, True)
    assert state.gap_from is None
    recent = [T0 - 170 * MINUTE, *(T0 - k * 5 * MINUTE for k in range(20, 0, -1))]
    state = record_success(initial_state(), T0, recent, 1, True)
    assert state.gap_from == T0 - 170 * MINUTE
    assert plan(state, T0 + 5 * MINUTE).minutes >= 175
    # Once the gap is over three hours old, windows shrink back to normal.
    assert plan(state, T0 + timedelta(minutes=20)).minutes < 60


def test_no_readings_at_all_leave_no_gap() -> None:
    state = record_success(initial_state(), T0, [], 1, True)
    assert state.gap_from is None
    assert plan(state, T0 + MINUTE).minutes == 1440


def test_a_stopped_schedule_still_names_a_window_back_to_the_gap() -> None:
    newest = T0 - MINUTE
    state = record_success(initial_state(), T0, [newest - 10 * MINUTE, newest], 1, True)
    stopped = record_failure(state, T0 + MINUTE, FailureClass.CLIENT_BUG, 1, 0)
    nxt = plan(stopped, T0 + MINUTE)
    assert nxt.at is None
    assert nxt.minutes >= 12 + 5
