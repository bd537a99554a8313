"""When to poll Share next: reading-aligned polls, learned lag, budgets, backoff per failure class.

Pure: the worker asks `plan(state, now)` for the next poll, makes it, and feeds the outcome back
with `record_success` / `record_failure` (or `record_user_action`, `note_resume`).
The policy is share-protocol.md section 7.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cgmtray.domain import sign_in_gate
from cgmtray.domain.availability_lag import estimate_lag, lag_sample, with_sample
from cgmtray.domain.budget import Budget, Ledger
from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.failures import FailureClass

#: Readings arrive this often.
READING_INTERVAL = timedelta(minutes=5)
#: Routine polls are at least this far apart (one request per 60 s).
REQUEST_FLOOR = timedelta(seconds=60)
#: A poll the person asked for (Refresh now) may come this soon after the last request; a resume
#: or a network change keeps the routine floor (a false wake-up must not add a request).
PROMPT_FLOOR = timedelta(seconds=20)
#: The aligned poll is delayed by up to this much, so many installs do not poll in step.
ALIGN_JITTER = timedelta(seconds=10)
#: No new reading yet: retry this often, this many times after the aligned poll...
RETRY_STEP = timedelta(seconds=60)
RETRIES = 4
#: ...then this often (on a grid that also hits each later reading's due time)...
LATE_STEP = timedelta(seconds=150)
#: ...and once the newest reading is this old, once per reading interval.
NO_DATA_AFTER = timedelta(minutes=30)
#: A planned moment this far in the past means the computer slept or the clock jumped forward.
OVERSLEPT = timedelta(seconds=60)
#: A grid point closer than this to the previous poll is skipped (the poll's own latency).
GRID_TOLERANCE = timedelta(seconds=30)
#: Transient failures: backoff steps, the last one repeating, and the +-fraction of jitter.
TRANSIENT_STEPS = tuple(timedelta(seconds=s) for s in (30, 60, 120, 240, 300))
TRANSIENT_JITTER = 0.2
#: Rate limited: backoff steps (each at least the server's Retry-After), the last one repeating.
RATE_LIMIT_STEPS = tuple(timedelta(seconds=s) for s in (60, 120, 240, 480, 600))
#: A Retry-After longer than this is not believed in full.
MAX_RETRY_AFTER = timedelta(hours=1)
#: Account locked: no sign-in before this wait (a repeat lock: the longer one), and then only
#: when the person asks (see domain/sign_in_gate.py, which owns the rule).
FIRST_LOCK_WAIT = sign_in_gate.FIRST_LOCK_WAIT
REPEAT_LOCK_WAIT = sign_in_gate.REPEAT_LOCK_WAIT
#: This many consecutive sign-in failures of any kind stop automatic sign-ins.
MAX_SIGN_IN_FAILURES = 3
#: The read window: Share's limits, the smallest window asked for, and the margin added.
MAX_WINDOW_MINUTES = 1440
MAX_WINDOW_COUNT = 288
MIN_WINDOW_MINUTES = 10
WINDOW_MARGIN_MINUTES = 5
#: Readings further apart than this leave a gap a phone may still backfill (a missed slot).
GAP_AFTER = timedelta(minutes=7, seconds=30)
#: Gaps this recent are read again on every poll until they fill (Dexcom backfills up to 3 h).
BACKFILL_SPAN = timedelta(hours=3)
#: The first read after start looks back at least this far (protocol 7.3.1: 3 h), whatever the
#: store holds: it backfills what arrived while the app was not running, late uploads included.
STARTUP_WINDOW_MINUTES = 180
#: A known newest reading further ahead of "now" than this is not believed after a read (a clock
#: that was set back, or a far-future reading an older version kept): the read's own readings
#: stand instead, so polls align on real readings again.
FUTURE_TOLERANCE = timedelta(minutes=5)


class PollReason(enum.StrEnum):
    """Why a poll is planned when it is (or why none is)."""

    STARTUP = "startup"
    ALIGNED = "aligned"
    NO_NEW_READING = "no-new-reading"
    WAITING_FOR_DATA = "waiting-for-data"
    NO_DATA = "no-data"
    BACKFILL = "backfill"
    RESUME = "resume"
    USER = "user"
    BUDGET = "budget"
    BACKOFF_TRANSIENT = "backoff:transient"
    BACKOFF_SESSION = "backoff:session"
    RATE_LIMIT = "rate-limit"
    STOPPED_CREDENTIALS = "stopped:credentials"
    STOPPED_LOCKED = "stopped:locked"
    STOPPED_SIGN_IN_FAILURES = "stopped:sign-in-failures"
    STOPPED_CLIENT_BUG = "stopped:client-bug"


class BlockKind(enum.StrEnum):
    """What keeps automatic polling or sign-ins from going on as usual."""

    CREDENTIALS = "credentials"
    LOCKED = "locked"
    SIGN_IN_FAILURES = "sign-in-failures"
    CLIENT_BUG = "client-bug"


class Prompt(enum.StrEnum):
    """An event that asks for a poll at once."""

    RESUME = "resume"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Block:
    """A stop since `since`, until the person acts: no stop has an automatic attempt (when asking
    may help after a lock is the sign-in gate's to say)."""

    kind: BlockKind
    since: datetime


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """Everything the scheduler remembers between polls. Build with `initial_state`."""

    #: Seeds the jitter, so that two installs do not poll in step but one install is repeatable.
    seed: int = 0
    #: How many outcomes and events were recorded; varies the jitter from one poll to the next.
    events: int = 0
    #: The newest reading time known (from polls, or from the history store at start).
    newest_reading: datetime | None = None
    #: Recent availability-lag samples in seconds, oldest first (see availability_lag).
    lag_samples: tuple[float, ...] = ()
    #: Whether the client is believed to hold a working session (else the next poll signs in).
    has_session: bool = False
    #: When the last request (read or sign-in) was made, the last poll ended, the last read worked.
    last_request_at: datetime | None = None
    last_outcome_at: datetime | None = None
    last_read_ok_at: datetime | None = None
    #: The class of the last poll's failure, None after a success.
    last_failure: FailureClass | None = None
    #: Consecutive transient (and session) failures, consecutive rate limits; 0 after a success.
    transient_streak: int = 0
    rate_limit_streak: int = 0
    #: The Retry-After of the last rate limit, in seconds.
    retry_after_s: float | None = None
    #: Reads and sign-ins of the last hour.
    ledger: Ledger = field(default_factory=Ledger)
    #: Consecutive failed sign-ins of any kind; when credentials last worked; whether they were
    #: rejected since (no sign-in then until the user acts); how many locks in a row.
    sign_in_failures: int = 0
    last_sign_in_ok_at: datetime | None = None
    credentials_rejected: bool = False
    lock_count: int = 0
    #: What stops polling or sign-ins, if anything.
    block: Block | None = None
    #: A pending request for a prompt poll.
    prompt: Prompt | None = None
    #: The reading just before the oldest gap of the last BACKFILL_SPAN (None: no gap): read
    #: windows reach back to it, so readings a phone uploads late into the gap are not missed.
    gap_from: datetime | None = None

    @property
    def learned_lag(self) -> timedelta:
        """The availability lag the next aligned poll allows for."""
        return estimate_lag(self.lag_samples)


@dataclass(frozen=True, slots=True)
class PollPlan:
    """The next poll: when (None: not automatically), the read window, and what it may do."""

    at: datetime | None
    minutes: int
    max_count: int
    reason: PollReason
    #: Whether the poll may sign in (it must when it holds no session, or the session expired).
    sign_in_allowed: bool


def initial_state(*, newest_reading: datetime | None = None, seed: int = 0) -> ScheduleState:
    """The state at start; `newest_reading` is the newest stored reading, if the app has history."""
    newest = None if newest_reading is None else require_aware_utc(newest_reading)
    return ScheduleState(seed=seed, newest_reading=newest)


def plan(state: ScheduleState, now: datetime, rng_seed: int | None = None) -> PollPlan:
    """The next poll. Always at or after `now`; `rng_seed` overrides the state's jitter seed."""
    now = require_aware_utc(now)
    seed = state.seed if rng_seed is None else rng_seed
    newest = _not_after(state.newest_reading, now)
    block = state.block
    floor = REQUEST_FLOOR
    if block is not None:
        # Every stop waits for the person (a lock too: sign_in_gate says when asking may help).
        since = _window_start(state, newest, now)
        minutes, max_count = _window(since, now, first_read=state.last_read_ok_at is None)
        return PollPlan(None, minutes, max_count, _STOPPED[block.kind], sign_in_allowed=False)
    if state.prompt is not None:
        target, reason = _prompt_target(state, now)
        if state.prompt is Prompt.USER:
            floor = PROMPT_FLOOR
    else:
        target, reason = _routine_target(state, newest, now, seed)
    at = max(target, now)
    last_request = _not_after(state.last_request_at, now)
    if last_request is not None:
        at = max(at, last_request + floor)
    ledger = state.ledger.normalized(now)
    limits = [ledger.earliest_poll()]
    if not state.has_session:
        limits.append(ledger.earliest_sign_in())
    for limit in limits:
        if limit is not None and limit > at:
            at, reason = limit, PollReason.BUDGET
    since = _window_start(state, newest, at)
    minutes, max_count = _window(since, at, first_read=state.last_read_ok_at is None)
    may_sign_in = (
        not state.credentials_rejected
        and state.sign_in_failures < MAX_SIGN_IN_FAILURES
        and ledger.sign_in_allowed_at(at)
    )
    return PollPlan(at, minutes, max_count, reason, may_sign_in)


def record_success(
    state: ScheduleState,
    now: datetime,
    readings_times: Sequence[datetime],
    reads_made: int,
    signed_in: bool,
) -> ScheduleState:
    """The state after a poll that returned `readings_times` (possibly none).

    `reads_made` counts read requests (2 when a session error was followed by a sign-in and one
    retried read); `signed_in` says whether the poll signed in (successfully, since it succeeded).
    """
    now = require_aware_utc(now)
    _check_counts(reads_made, 0)
    times = [require_aware_utc(t) for t in readings_times]
    previous = state.newest_reading
    if previous is not None and previous > now + FUTURE_TOLERANCE:
        previous = None
    fresh = [t for t in times if previous is None or t > previous]
    newest = max(fresh) if fresh else previous
    samples = state.lag_samples
    if fresh and previous is not None and state.last_read_ok_at is not None:
        sample = lag_sample(max(fresh), now, state.last_read_ok_at, state.learned_lag)
        if sample is not None:
            samples = with_sample(samples, sample)
    signed = _after_sign_in(state, now) if signed_in else state
    return replace(
        signed,
        events=state.events + 1,
        newest_reading=newest,
        gap_from=_oldest_gap(previous, times, newest, now),
        lag_samples=samples,
        has_session=True,
        last_request_at=now if reads_made or signed_in else state.last_request_at,
        last_outcome_at=now,
        last_read_ok_at=now,
        last_failure=None,
        transient_streak=0,
        rate_limit_streak=0,
        retry_after_s=None,
        ledger=state.ledger.recorded(now, reads_made, int(signed_in)),
        block=None,
        prompt=None,
    )


def record_failure(
    state: ScheduleState,
    now: datetime,
    failure: FailureClass,
    reads_made: int,
    signed_in_attempts: int,
    retry_after_s: float | None = None,
    *,
    during_sign_in: bool = False,
    answered: bool = True,
) -> ScheduleState:
    """The state after a poll that failed with `failure`.

    `reads_made` and `signed_in_attempts` count the requests the poll made. `during_sign_in` says
    the failing request was the sign-in (implied for CREDENTIALS and LOCKED); otherwise any sign-in
    attempt of the poll worked. `answered` is False when no answer came at all (no connection, a
    timeout): such a sign-in never reached Dexcom's sign-in service, so it does not count towards
    the stop after MAX_SIGN_IN_FAILURES (an offline start must not stop polling). A poll that
    needed a session but was not allowed to sign in makes no request and is recorded as a SESSION
    failure with zero counts.
    """
    now = require_aware_utc(now)
    _check_counts(reads_made, signed_in_attempts)
    sign_in_failed = during_sign_in or failure in (FailureClass.CREDENTIALS, FailureClass.LOCKED)
    attempts = max(signed_in_attempts, 1) if sign_in_failed else signed_in_attempts
    base = state
    if attempts and not sign_in_failed:
        base = _after_sign_in(state, now)
    counted = sign_in_failed and answered
    failures = base.sign_in_failures + 1 if counted else base.sign_in_failures
    loses_session = sign_in_failed or failure in (FailureClass.SESSION, FailureClass.CLIENT_BUG)
    backs_off = failure in (FailureClass.TRANSIENT, FailureClass.SESSION)
    rate_limited = failure is FailureClass.RATE_LIMIT
    lock_count = base.lock_count + 1 if failure is FailureClass.LOCKED else base.lock_count
    block = _block_after(base, now, failure, failures)
    return replace(
        base,
        events=state.events + 1,
        has_session=False if loses_session else base.has_session or attempts > 0,
        last_request_at=now if reads_made or attempts else state.last_request_at,
        last_outcome_at=now,
        last_failure=failure,
        transient_streak=state.transient_streak + 1 if backs_off else state.transient_streak,
        rate_limit_streak=state.rate_limit_streak + 1 if rate_limited else state.rate_limit_streak,
        retry_after_s=retry_after_s if rate_limited else None,
        ledger=state.ledger.recorded(now, reads_made, attempts),
        sign_in_failures=failures,
        credentials_rejected=base.credentials_rejected or failure is FailureClass.CREDENTIALS,
        lock_count=lock_count,
        block=block,
        prompt=None,
    )


def record_user_action(
    state: ScheduleState, now: datetime, *, credentials_changed: bool = False
) -> ScheduleState:
    """The user changed settings or pressed "try again": lift every stop and poll soon.

    The budgets still hold. With `credentials_changed` the session is dropped and the new
    credentials are not trusted until they work.
    """
    require_aware_utc(now)
    lifted = replace(
        state,
        events=state.events + 1,
        transient_streak=0,
        sign_in_failures=0,
        credentials_rejected=False,
        block=None,
        prompt=Prompt.USER,
    )
    if not credentials_changed:
        return lifted
    return replace(lifted, has_session=False, last_sign_in_ok_at=None)


def note_resume(state: ScheduleState, now: datetime) -> ScheduleState:
    """The computer woke up or the network changed: poll at once (20 s after the last request).

    Stops and rate-limit waits stay in force.
    """
    require_aware_utc(now)
    prompt = state.prompt or Prompt.RESUME
    return replace(state, events=state.events + 1, prompt=prompt)


def budget_report(state: ScheduleState, now: datetime) -> Budget:
    """Reads in the last hour, sign-ins in the last 5 minutes and hour, failed sign-ins in a row."""
    return state.ledger.report(require_aware_utc(now), state.sign_in_failures)


_STOPPED = {
    BlockKind.CREDENTIALS: PollReason.STOPPED_CREDENTIALS,
    BlockKind.LOCKED: PollReason.STOPPED_LOCKED,
    BlockKind.SIGN_IN_FAILURES: PollReason.STOPPED_SIGN_IN_FAILURES,
    BlockKind.CLIENT_BUG: PollReason.STOPPED_CLIENT_BUG,
}


def _routine_target(
    state: ScheduleState, newest: datetime | None, now: datetime, seed: int
) -> tuple[datetime, PollReason]:
    last = _not_after(state.last_outcome_at, now)
    if last is None:
        return now, PollReason.STARTUP
    target, reason = _grid_target(state, newest, last, seed)
    failure = state.last_failure
    if failure in (FailureClass.TRANSIENT, FailureClass.SESSION):
        unit = _unit_random(seed, "transient", state.events)
        backoff = last + _transient_delay(state.transient_streak, unit)
        if backoff > target:
            target = backoff
            reason = (
                PollReason.BACKOFF_SESSION
                if failure is FailureClass.SESSION
                else PollReason.BACKOFF_TRANSIENT
            )
    elif failure is FailureClass.RATE_LIMIT:
        backoff = last + _rate_limit_delay(state.rate_limit_streak, state.retry_after_s)
        if backoff > target:
            target, reason = backoff, PollReason.RATE_LIMIT
    if target < now - OVERSLEPT:
        return now, PollReason.BACKFILL
    return target, reason


def _grid_target(
    state: ScheduleState, newest: datetime | None, last: datetime, seed: int
) -> tuple[datetime, PollReason]:
    """The next moment on the reading-aligned grid at least GRID_TOLERANCE after `last`."""
    if newest is None:
        if state.last_read_ok_at is None:
            return last, PollReason.STARTUP
        return last + READING_INTERVAL, PollReason.NO_DATA
    jitter = ALIGN_JITTER * _unit_random(seed, "aligned", newest.isoformat())
    due = newest + READING_INTERVAL + state.learned_lag + jitter
    earliest = last + GRID_TOLERANCE
    if earliest <= due:
        return due, PollReason.ALIGNED
    offset = earliest - due
    if offset <= RETRIES * RETRY_STEP:
        return due + _ceil_steps(offset, RETRY_STEP) * RETRY_STEP, PollReason.NO_NEW_READING
    late = due + _ceil_steps(offset, LATE_STEP) * LATE_STEP
    if late - newest < NO_DATA_AFTER:
        return late, PollReason.WAITING_FOR_DATA
    start = max(earliest, newest + NO_DATA_AFTER)
    return due + _ceil_steps(start - due, READING_INTERVAL) * READING_INTERVAL, PollReason.NO_DATA


def _prompt_target(state: ScheduleState, now: datetime) -> tuple[datetime, PollReason]:
    reason = PollReason.RESUME if state.prompt is Prompt.RESUME else PollReason.USER
    last = _not_after(state.last_outcome_at, now)
    if state.last_failure is FailureClass.RATE_LIMIT and last is not None:
        wait_until = last + _rate_limit_delay(state.rate_limit_streak, state.retry_after_s)
        if wait_until > now:
            return wait_until, PollReason.RATE_LIMIT
    return now, reason


def _block_after(
    state: ScheduleState, now: datetime, failure: FailureClass, failures: int
) -> Block | None:
    """The stop a failure leads to. None of them has an automatic retry any more."""
    if failure is FailureClass.CLIENT_BUG:
        return Block(BlockKind.CLIENT_BUG, now)
    # Rejected credentials and a lock never lead to an automatic attempt: the person changes
    # the credentials, or asks once the lock period is over (docs/decisions.md, sign-in gate).
    if failure is FailureClass.CREDENTIALS or state.credentials_rejected:
        return Block(BlockKind.CREDENTIALS, now)
    if failure is FailureClass.LOCKED:
        return Block(BlockKind.LOCKED, now)
    if failures >= MAX_SIGN_IN_FAILURES:
        return Block(BlockKind.SIGN_IN_FAILURES, now)
    return None


def _after_sign_in(state: ScheduleState, now: datetime) -> ScheduleState:
    """A sign-in worked: the credentials are good again."""
    return replace(
        state,
        sign_in_failures=0,
        last_sign_in_ok_at=now,
        credentials_rejected=False,
        lock_count=0,
    )


def _transient_delay(streak: int, unit: float) -> timedelta:
    step = TRANSIENT_STEPS[_step_index(streak, len(TRANSIENT_STEPS))]
    return step * (1 + TRANSIENT_JITTER * (2 * unit - 1))


def _rate_limit_delay(streak: int, retry_after_s: float | None) -> timedelta:
    step = RATE_LIMIT_STEPS[_step_index(streak, len(RATE_LIMIT_STEPS))]
    if retry_after_s is None or not retry_after_s > 0:
        return step
    asked = min(MAX_RETRY_AFTER.total_seconds(), retry_after_s)
    return max(step, timedelta(seconds=asked))


def _step_index(streak: int, steps: int) -> int:
    """Failure number `streak` (1 for the first) uses this step; the last step repeats."""
    return min(max(streak, 1), steps) - 1


def _window_start(state: ScheduleState, newest: datetime | None, at: datetime) -> datetime | None:
    """What a read at `at` must reach back to: the newest reading, or a recent gap's start."""
    gap = state.gap_from
    if gap is not None and newest is not None and at - BACKFILL_SPAN <= gap < newest:
        return gap
    return newest


def _oldest_gap(
    previous: datetime | None, times: Sequence[datetime], newest: datetime | None, now: datetime
) -> datetime | None:
    """Where the oldest recent gap starts, after a read that returned `times`.

    The read covered everything from a little before the previous gap (or the previous newest
    reading) up to now, so the gaps among what it returned, and between the previous newest and
    what it returned, are all the gaps there are in that span."""
    if newest is None:
        return None
    horizon = now - BACKFILL_SPAN
    known = sorted({*times, *(t for t in (previous,) if t is not None)})
    for older, newer in itertools.pairwise(known):
        if older >= horizon and newer - older > GAP_AFTER:
            return older
    return None


def _window(newest: datetime | None, at: datetime, *, first_read: bool) -> tuple[int, int]:
    """The read window for a poll at `at`: from a little before the newest known reading (and
    at least 3 h back on the first read since start)."""
    if newest is None:
        return MAX_WINDOW_MINUTES, MAX_WINDOW_COUNT
    since = _ceil_steps(at - newest, timedelta(minutes=1))
    least = STARTUP_WINDOW_MINUTES if first_read else MIN_WINDOW_MINUTES
    minutes = min(MAX_WINDOW_MINUTES, max(least, since + WINDOW_MARGIN_MINUTES))
    return minutes, min(MAX_WINDOW_COUNT, minutes // 5 + 1)


def _ceil_steps(span: timedelta, step: timedelta) -> int:
    return -(-span // step)


def _not_after(when: datetime | None, now: datetime) -> datetime | None:
    """`when`, or `now` if `when` is later (the clock was set back)."""
    if when is None:
        return None
    return min(when, now)


def _unit_random(seed: int, *parts: object) -> float:
    """A number in [0, 1) that depends only on its arguments."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check_counts(reads_made: int, signed_in_attempts: int) -> None:
    if reads_made < 0 or signed_in_attempts < 0:
        raise ValueError("request counts cannot be negative")
