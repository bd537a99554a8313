"""One scheduled poll: the client reads as the plan says, and the outcome goes into the schedule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cgmtray.domain import schedule
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading
from cgmtray.share.client import ShareClient
from cgmtray.share.errors import (
    RateLimited,
    ShareError,
    SignInBlocked,
    ZeroIdReturned,
)
from cgmtray.share.gate import SignInDeferred


@dataclass(frozen=True)
class PollOutcome:
    """The schedule after the poll, and what the poll brought: readings or the error."""

    state: schedule.ScheduleState
    readings: tuple[Reading, ...] = ()
    error: ShareError | None = None
    #: No request was made: the poll needed a session and no sign-in was allowed.
    skipped: bool = False


def poll_once(
    client: ShareClient,
    state: schedule.ScheduleState,
    plan: schedule.PollPlan,
    now: Callable[[], datetime],
) -> PollOutcome:
    """Reads the plan's window and records the outcome in `state` at `now()` (asked after the
    request, so it is the moment the answer came). Errors other than ShareError propagate."""
    if not client.has_session and not plan.sign_in_allowed:
        skipped = schedule.record_failure(state, now(), FailureClass.SESSION, 0, 0)
        return PollOutcome(skipped, skipped=True)
    try:
        readings = client.read(minutes=plan.minutes, max_count=plan.max_count)
    except SignInDeferred as deferred:
        # No request: the shared sign-in budget (another process signed in) sets the wait.
        at = now()
        wait = None if deferred.not_before is None else (deferred.not_before - at).total_seconds()
        after = schedule.record_failure(state, at, FailureClass.RATE_LIMIT, 0, 0, wait)
        return PollOutcome(after, error=deferred)
    except SignInBlocked as blocked:
        return PollOutcome(record_error(state, now(), blocked, 0, 0), error=blocked)
    except ShareError as error:
        counts = client.last_call
        after = record_error(state, now(), error, counts.reads, counts.sign_ins)
        return PollOutcome(after, error=error)
    counts = client.last_call
    times = [reading.time for reading in readings]
    after = schedule.record_success(state, now(), times, counts.reads, counts.sign_ins > 0)
    return PollOutcome(after, readings=readings)


def record_error(
    state: schedule.ScheduleState, now: datetime, error: ShareError, reads: int, sign_ins: int
) -> schedule.ScheduleState:
    """The schedule after a poll that failed with `error`, having made these requests."""
    return schedule.record_failure(
        state,
        now,
        error.failure_class,
        reads,
        sign_ins,
        error.retry_after_s if isinstance(error, RateLimited) else None,
        during_sign_in=error.during_sign_in,
        answered=answered_by_share(error),
    )


def answered_by_share(error: ShareError) -> bool:
    """Whether Dexcom's service itself answered (protocol 7.1): an answer carrying a Share error
    Code, or a zero id. No answer, a timeout, a 5xx/HTML page from a proxy (Cloudflare) or a
    refusal by our own gate never reached the sign-in service, so it does not count towards the
    stop after MAX_SIGN_IN_FAILURES (see schedule.record_failure)."""
    if isinstance(error, SignInBlocked):
        return False
    return error.code is not None or isinstance(error, ZeroIdReturned)
