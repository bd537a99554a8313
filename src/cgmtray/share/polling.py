"""One scheduled poll: the client reads as the plan says, and the outcome goes into the schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

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
from cgmtray.share.followers import FollowerSummary
from cgmtray.share.gate import SignInDeferred

_log = logging.getLogger(__name__)

#: How long after the newest reading known an empty read makes the follower list worth asking:
#: nobody following shows as no readings at all, never as one reading coming late.
NO_FOLLOWER_AFTER: Final = schedule.NO_DATA_AFTER


@dataclass(frozen=True)
class PollOutcome:
    """The schedule after the poll, and what the poll brought: readings or the error."""

    state: schedule.ScheduleState
    readings: tuple[Reading, ...] = ()
    error: ShareError | None = None
    #: No request was made: the poll needed a session and no sign-in was allowed.
    skipped: bool = False
    #: The read returned nothing and the follower list has no one who accepted.
    nobody_follows: bool = False


class FollowerCheck:
    """Asks Share's follower list after a read that returned nothing, at most once per sign-in
    (not every poll); the answer is kept for that session. The ask is the NEXT poll's one
    request, made instead of a read: a list right after the read would be two requests within
    60 s (share-protocol.md section 7.1). A failed ask is not retried within the session and
    never becomes an error: it just means "not known" (no recent readings)."""

    def __init__(self) -> None:
        #: The session (sign-in count) whose empty read asks for the list at the next poll.
        self._due_on: int | None = None
        self._asked_on: int | None = None
        self._summary: FollowerSummary | None = None

    def due(self, client: ShareClient) -> bool:
        """True when this poll should ask the list instead of reading: the last read of this
        same, still open session returned nothing and the list was not asked on it yet."""
        session = client.sign_in_count
        return client.has_session and self._due_on == session and self._asked_on != session

    def read_was_empty(self, client: ShareClient) -> bool:
        """A read returned nothing: the list is due at the next poll (once per sign-in). Returns
        whether nobody follows, as far as this session knows."""
        session = client.sign_in_count
        if self._asked_on != session:
            self._due_on = session
            self._summary = None
        return self._says_nobody()

    def ask(self, client: ShareClient) -> tuple[bool, int]:
        """Asks the list now: (whether nobody follows, as far as known; requests made)."""
        self._asked_on = client.sign_in_count
        self._due_on = None
        self._summary = None
        try:
            self._summary = client.list_followers()
        except ShareError as error:
            _log.info(
                "the follower list could not be read: %s",
                type(error).__name__,
                extra={"event": "share.followers", "outcome": type(error).__name__},
            )
        else:
            _log.info(
                "follower list read",
                extra={
                    "event": "share.followers",
                    "outcome": "ok",
                    "accepted": self._summary.accepted,
                    "pending": self._summary.pending,
                },
            )
        return self._says_nobody(), client.last_call.follower_lists

    def _says_nobody(self) -> bool:
        return self._summary is not None and not self._summary.anyone_follows


def poll_once(
    client: ShareClient,
    state: schedule.ScheduleState,
    plan: schedule.PollPlan,
    now: Callable[[], datetime],
    followers: FollowerCheck | None = None,
) -> PollOutcome:
    """Reads the plan's window and records the outcome in `state` at `now()` (asked after the
    request, so it is the moment the answer came). Errors other than ShareError propagate.

    With `followers`, a read that returns nothing makes the next poll ask the follower list
    instead of reading (once per sign-in); that request counts as a read in the budget."""
    if followers is not None and followers.due(client):
        nobody_follows, listed = followers.ask(client)
        after = schedule.record_success(state, now(), [], listed, False)
        return PollOutcome(after, nobody_follows=nobody_follows)
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
    nobody_follows = False
    newest = state.newest_reading
    at = now()
    if (
        not readings
        and followers is not None
        and (newest is None or at - newest > NO_FOLLOWER_AFTER)
    ):
        # Only without recent readings: a reading that is merely late (an empty read too) is
        # not delayed by a list asked in its retry's place.
        nobody_follows = followers.read_was_empty(client)
    times = [reading.time for reading in readings]
    after = schedule.record_success(state, at, times, counts.reads, counts.sign_ins > 0)
    return PollOutcome(after, readings=readings, nobody_follows=nobody_follows)


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
