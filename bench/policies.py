"""Polling policies for the freshness bench: ours (domain.schedule) and the peers' (protocol 6).

Each policy owns one real ShareClient pointed at its own fake service, says when it wants to poll
next on the shared virtual clock, and remembers when it first had each reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from cgmtray.domain import schedule
from cgmtray.domain.clock import Clock
from cgmtray.domain.readings import Reading
from cgmtray.share.client import ShareClient
from cgmtray.share.errors import (
    ShareError,
)
from cgmtray.share.polling import poll_once

#: Makes a new client signed in to nothing yet (a fresh sign-in with Authenticate + LoginById).
ClientFactory = Callable[[], ShareClient]

READING_INTERVAL = timedelta(minutes=5)


class Policy(Protocol):
    """One way of polling Share, driven by the bench's event loop."""

    name: str
    #: Reading time -> the virtual time the policy first had that reading.
    first_had: dict[datetime, datetime]

    def next_poll_at(self) -> datetime | None:
        """When the policy wants to poll next (None: never again)."""
        ...

    def poll(self) -> None:
        """Polls now (the clock's now) if the policy still wants to."""
        ...

    def close(self) -> None: ...


def note_readings(
    first_had: dict[datetime, datetime], readings: Iterable[Reading], now: datetime
) -> None:
    """Remembers `now` as the time each reading not seen before was first had."""
    for reading in readings:
        first_had.setdefault(reading.time, now)


class ScheduledPolicy:
    """CGM Tray: `domain.schedule` driving one ShareClient, exactly as `ui.worker` does."""

    def __init__(self, client: ShareClient, clock: Clock, *, seed: int = 0) -> None:
        self.name = "cgm-tray"
        self.first_had: dict[datetime, datetime] = {}
        self._client = client
        self._clock = clock
        self._state = schedule.initial_state(seed=seed)
        self._planned: datetime | None = schedule.plan(self._state, clock.now()).at
        #: Polls by the schedule's reason, and whether they brought a new reading.
        self.poll_reasons: dict[str, int] = {}

    def next_poll_at(self) -> datetime | None:
        return self._planned

    def poll(self) -> None:
        # The worker's timer fired: plan again at the firing time and poll only if due.
        now = self._clock.now()
        due = schedule.plan(self._state, now)
        if due.at is not None and due.at <= now + timedelta(seconds=1):
            known = len(self.first_had)
            self._poll(due)
            outcome = "new" if len(self.first_had) > known else "nothing new"
            key = f"{due.reason.value} ({outcome})"
            self.poll_reasons[key] = self.poll_reasons.get(key, 0) + 1
        self._planned = schedule.plan(self._state, self._clock.now()).at

    def _poll(self, plan: schedule.PollPlan) -> None:
        outcome = poll_once(self._client, self._state, plan, self._clock.now)
        self._state = outcome.state
        if outcome.error is None and not outcome.skipped:
            note_readings(self.first_had, outcome.readings, self._clock.now())

    def close(self) -> None:
        self._client.close()


class FixedIntervalPolicy:
    """A poll every `interval` from the start with a fixed window (pydexcom callers, the bridge,
    Home Assistant, GlucoseTray). One client keeps its session and signs in again once on a
    session error, like pydexcom and the bridge; with `sign_in_every_poll` each poll uses a new
    client (Authenticate + LoginById + read), like GlucoseTray."""

    def __init__(
        self,
        name: str,
        client_factory: ClientFactory,
        clock: Clock,
        *,
        interval: timedelta,
        minutes: int,
        max_count: int,
        first_max_count: int | None = None,
        sign_in_every_poll: bool = False,
    ) -> None:
        self.name = name
        self.first_had: dict[datetime, datetime] = {}
        self._factory = client_factory
        self._clock = clock
        self._interval = interval
        self._minutes = minutes
        self._max_count = max_count
        self._first_max_count = first_max_count
        self._sign_in_every_poll = sign_in_every_poll
        self._client: ShareClient | None = None
        self._next: datetime = clock.now()
        self._polls = 0

    def next_poll_at(self) -> datetime | None:
        return self._next

    def poll(self) -> None:
        now = self._clock.now()
        if now < self._next:
            return
        max_count = self._max_count
        if self._polls == 0 and self._first_max_count is not None:
            max_count = self._first_max_count
        if self._client is None or self._sign_in_every_poll:
            if self._client is not None:
                self._client.close()
            self._client = self._factory()
        try:
            readings = self._client.read(minutes=self._minutes, max_count=max_count)
        except ShareError:
            readings = ()
        note_readings(self.first_had, readings, now)
        self._polls += 1
        self._next = self._next + self._interval

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class XDripFollowerPolicy:
    """The xDrip+ Share follower: polls at +5:00 and +5:20 after the newest reading it has, then
    waits a cycle (+10:00, +10:20, ...); window (missed + 1) * 5 min, 36 readings; at least 5 s
    between polls; the session is trusted for 8 h, then it signs in again."""

    SECOND_LOOK = timedelta(seconds=20)
    MIN_SPACING = timedelta(seconds=5)
    SESSION_TRUSTED_FOR = timedelta(hours=8)
    MAX_COUNT = 36

    def __init__(self, client: ShareClient, clock: Clock) -> None:
        self.name = "xdrip-follower"
        self.first_had: dict[datetime, datetime] = {}
        self._client = client
        self._clock = clock
        self._newest: datetime | None = None
        self._session_since: datetime | None = None
        self._next: datetime = clock.now()

    def next_poll_at(self) -> datetime | None:
        return self._next

    def poll(self) -> None:
        now = self._clock.now()
        if now < self._next:
            return
        client = self._client
        if (
            self._session_since is not None
            and now - self._session_since >= self.SESSION_TRUSTED_FOR
        ):
            try:
                client.sign_in()
                self._session_since = now
            except ShareError:
                self._session_since = None
        try:
            readings = client.read(minutes=self._window_minutes(now), max_count=self.MAX_COUNT)
            if client.last_call.sign_ins:
                self._session_since = now
        except ShareError:
            readings = ()
        note_readings(self.first_had, readings, now)
        for reading in readings:
            if self._newest is None or reading.time > self._newest:
                self._newest = reading.time
        self._next = self._following(now)

    def _window_minutes(self, now: datetime) -> int:
        if self._newest is None:
            return 1440
        missed = max(0, (now - self._newest) // READING_INTERVAL)
        return int(min((missed + 1) * 5, 1440))

    def _following(self, now: datetime) -> datetime:
        earliest = now + self.MIN_SPACING
        newest = self._newest
        if newest is None:
            return now + READING_INTERVAL
        cycle = max(1, (earliest - newest) // READING_INTERVAL)
        while True:
            for look in (
                newest + cycle * READING_INTERVAL,
                newest + cycle * READING_INTERVAL + self.SECOND_LOOK,
            ):
                if look >= earliest:
                    return look
            cycle += 1

    def close(self) -> None:
        self._client.close()
