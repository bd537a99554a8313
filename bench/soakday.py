"""The soak's simulated day: what happens when (faults, sleep, clock change, the user acting), the
readings the sensor publishes, and the alert episodes a person must be told about."""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from cgmtray.domain.readings import Trend

#: A sensor reading every 5 minutes.
INTERVAL: Final = timedelta(minutes=5)
#: Readings before the app's first start (what Share holds already).
HISTORY: Final = timedelta(hours=3)
#: Urgent low: at or below this (the app's default threshold); the episode ends at or above
#: URGENT_LOW_CLEAR. High: above HIGH_MGDL for 15 minutes.
URGENT_LOW_MGDL: Final = 55
URGENT_LOW_CLEAR: Final = 60
HIGH_MGDL: Final = 250
#: The usual delay from a reading's time to its being visible on Share (seconds, uniform).
USUAL_LAG_S: Final = (20.0, 60.0)

M = timedelta(minutes=1)


class Act(enum.Enum):
    """Something the driver does at a scripted moment of world time."""

    EXPIRE_SESSIONS = "expire-sessions"
    FAULT = "fault"  # a fault spec on reads, optionally lasting until a time
    OUTAGE = "outage"  # connection refused for `span`
    SLEEP = "sleep"  # the computer sleeps for `span`: world time jumps, the app is stopped
    CLOCK_BACK = "clock-back"  # the computer's clock is set back by `span` (the app's only)
    CLOCK_FORWARD = "clock-forward"  # the computer's clock is set ahead by `span` (the app's)
    LOCK = "lock"  # someone else locks the account; the app's next sign-in meets it
    REJECT = "reject"  # the publisher changes the password; the app's next sign-in is rejected
    USER_RESTARTS = "user-restarts"  # the person quits and starts the app (after a lock: with
    # the lock lifted; after a rejection: with the new password)


@dataclass(frozen=True)
class Step:
    """One scripted action at `at` (world time from the day's start)."""

    at: timedelta
    act: Act
    span: timedelta = timedelta(0)
    fault: str = ""

    @property
    def label(self) -> str:
        text = self.act.value
        if self.fault:
            text += f" {self.fault}"
        if self.span:
            text += f" for {self.span.total_seconds() / 60:.0f} min"
        return text


class Kind(enum.Enum):
    """Alert episodes the script makes and the app must raise (the app's alert kind names)."""

    URGENT_LOW = "urgent_low"
    HIGH = "high"


@dataclass(frozen=True)
class Episode:
    """A scripted stretch of glucose that must raise exactly one new alert of `kind`."""

    kind: Kind
    start: timedelta  # first reading past the threshold
    length: timedelta  # readings stay past it this long
    shape: tuple[int, ...]  # the values, one per reading, from the approach to the recovery
    first_past: int  # index in `shape` of the first value past the threshold


def urgent_low(start: timedelta, *, with_low_readings: bool = False) -> Episode:
    """About 25 min at or below 55 mg/dL (LOW readings, 39, in the middle if asked)."""
    lows = (52, 45, 39, 39, 42, 50) if with_low_readings else (52, 48, 45, 44, 46, 50)
    shape = (100, 88, 76, 66, 58, *lows, 58, 66, 78, 92, 105)
    return Episode(Kind.URGENT_LOW, start, INTERVAL * (len(lows) - 1), shape, 5)


def high(start: timedelta) -> Episode:
    """About 45 min above 250 mg/dL, with HIGH readings (401) at the top."""
    shape = (170, 200, 230, 260, 300, 350, 401, 401, 360, 320, 290, 262, 230, 200, 170)
    return Episode(Kind.HIGH, start, INTERVAL * 8, shape, 3)


@dataclass(frozen=True)
class Day:
    """A whole scripted day: its length (world time, sleep included) and what happens in it."""

    name: str
    length: timedelta
    steps: tuple[Step, ...]
    episodes: tuple[Episode, ...]
    #: Readings published late (available `delay` after their time), in world time from the start.
    late: tuple[tuple[timedelta, timedelta], ...]
    #: No readings at all in [start, start + span): the sensor lost contact.
    sensor_gap: tuple[timedelta, timedelta]
    #: No readings are published after this (so the final catch-up has an end).
    readings_end: timedelta = field(default=timedelta(0))

    @property
    def asleep(self) -> timedelta:
        return sum((s.span for s in self.steps if s.act is Act.SLEEP), timedelta(0))

    @property
    def running(self) -> timedelta:
        """World time that passes while the driver waits (the sleep is a jump)."""
        return self.length - self.asleep


def _late_run(start: timedelta) -> tuple[tuple[timedelta, timedelta], ...]:
    """Four readings from `start`: two late in order, then two that arrive after their successor
    (out of order by one reading, as a phone's upload queue does)."""
    return (
        (start, 4 * M),
        (start + INTERVAL, 6 * M),  # after the next one (which is on time)
        (start + 3 * INTERVAL, 7 * M),  # after the next one
        (start + 5 * INTERVAL, 8 * M),  # after the next one
    )


def short_day() -> Day:
    """Every fault of the day at full length, packed into 11.6 h of world time (8.6 h running).

    Sign-ins are spaced so that no hour needs more than three, whoever signs in: the app, or
    the person restarting it (the app cannot count those of the run before)."""
    h = 60 * M
    steps = (
        Step(5 * M, Act.EXPIRE_SESSIONS),
        Step(22 * M, Act.FAULT, fault="rate-limit:150:x2"),
        Step(31 * M, Act.FAULT, fault="rate-limit-no-header:x2"),
        Step(40 * M, Act.FAULT, fault="empty:x2"),
        Step(40 * M, Act.FAULT, fault="truncated:x2"),
        Step(55 * M, Act.FAULT, span=30 * M, fault="unavailable"),
        Step(88 * M, Act.EXPIRE_SESSIONS),
        Step(95 * M, Act.OUTAGE, span=2 * h),
        Step(240 * M, Act.SLEEP, span=3 * h),
        Step(425 * M, Act.CLOCK_BACK, span=10 * M),
        # Time faults around the second urgent low: a reading a year ahead beside it, one answer
        # dated 2001, the computer an hour behind then 50 min ahead, slow answers.
        Step(463 * M, Act.FAULT, fault="future-reading:x3"),
        Step(478 * M, Act.FAULT, fault="lying-date:x1"),
        Step(480 * M, Act.EXPIRE_SESSIONS),
        Step(487 * M, Act.CLOCK_BACK, span=60 * M),
        Step(520 * M, Act.CLOCK_FORWARD, span=120 * M),
        Step(560 * M, Act.FAULT, fault="slow:0.3:x2"),
        Step(600 * M, Act.LOCK),
        Step(665 * M, Act.USER_RESTARTS),  # after the lock's 60 min: a start may sign in
        Step(670 * M, Act.REJECT),
        Step(680 * M, Act.USER_RESTARTS),
    )
    return Day(
        name="short",
        length=695 * M,
        steps=steps,
        episodes=(
            urgent_low(18 * M),
            urgent_low(470 * M, with_low_readings=True),
            high(540 * M),
        ),
        late=_late_run(217 * M),
        sensor_gap=(430 * M, 30 * M),
        readings_end=680 * M,
    )


def full_day() -> Day:
    """The same faults spread over 24 h of world time (21 h running, 3 h asleep)."""
    h = 60 * M
    steps = (
        Step(1 * h, Act.EXPIRE_SESSIONS),
        Step(2 * h, Act.FAULT, fault="rate-limit:150:x2"),
        Step(2 * h + 30 * M, Act.FAULT, fault="rate-limit-no-header:x3"),
        Step(3 * h, Act.FAULT, fault="empty:x2"),
        Step(3 * h, Act.FAULT, fault="truncated:x2"),
        Step(4 * h, Act.FAULT, span=30 * M, fault="unavailable"),
        Step(5 * h + 30 * M, Act.EXPIRE_SESSIONS),
        Step(6 * h, Act.OUTAGE, span=2 * h),
        Step(10 * h, Act.SLEEP, span=3 * h),
        Step(14 * h, Act.CLOCK_BACK, span=10 * M),
        Step(16 * h + 23 * M, Act.FAULT, fault="future-reading:x3"),
        Step(16 * h + 38 * M, Act.FAULT, fault="lying-date:x1"),
        Step(16 * h + 47 * M, Act.CLOCK_BACK, span=60 * M),
        Step(16 * h + 50 * M, Act.EXPIRE_SESSIONS),
        Step(17 * h + 40 * M, Act.CLOCK_FORWARD, span=120 * M),
        Step(19 * h, Act.FAULT, fault="slow:0.3:x2"),
        Step(20 * h, Act.LOCK),
        Step(21 * h + 5 * M, Act.USER_RESTARTS),
        Step(21 * h + 40 * M, Act.REJECT),
        Step(22 * h + 5 * M, Act.USER_RESTARTS),
    )
    return Day(
        name="full",
        length=24 * h,
        steps=steps,
        episodes=(
            urgent_low(90 * M),
            urgent_low(16 * h + 30 * M, with_low_readings=True),
            high(18 * h),
        ),
        late=_late_run(9 * h),
        sensor_gap=(15 * h, 30 * M),
        readings_end=23 * h + 30 * M,
    )


@dataclass(frozen=True)
class PlannedReading:
    """One reading of the day: its time, value, trend and when Share shows it."""

    time: datetime
    mgdl: int
    trend: Trend
    available_at: datetime


def readings(day: Day, start: datetime, seed: int) -> list[PlannedReading]:
    """The day's readings from HISTORY before `start` to its end, oldest first: a seeded
    wander in range, the scripted episodes, late and out-of-order uploads, the sensor gap."""
    rng = random.Random(seed)
    phase = timedelta(seconds=rng.randrange(0, 300), milliseconds=rng.randrange(0, 1000))
    first = start - HISTORY + phase
    count = (HISTORY + day.readings_end - phase) // INTERVAL + 1
    slots = [first + k * INTERVAL for k in range(count)]
    values = _wander(len(slots), rng)
    for episode in day.episodes:
        begin = start + episode.start - episode.first_past * INTERVAL
        for offset, value in enumerate(episode.shape):
            index = _slot_at(slots, begin + offset * INTERVAL)
            if index is not None:
                values[index] = value
    delays = {start + at: delay for at, delay in day.late}
    gap_from, gap_span = day.sensor_gap
    planned: list[PlannedReading] = []
    for index, when in enumerate(slots):
        if start + gap_from <= when < start + gap_from + gap_span:
            continue
        lag = timedelta(seconds=rng.uniform(*USUAL_LAG_S))
        late = _late_delay(delays, when)
        available = when + (late if late is not None else lag)
        trend = _trend(values[index - 1] if index else values[index], values[index])
        planned.append(PlannedReading(when, values[index], trend, available))
    return planned


def _wander(count: int, rng: random.Random) -> list[int]:
    """In-range values that drift slowly (never near an alert threshold)."""
    values: list[int] = []
    value = 120.0
    for _ in range(count):
        value = min(175.0, max(95.0, value + rng.uniform(-6, 6)))
        values.append(round(value))
    return values


def _slot_at(slots: Sequence[datetime], near: datetime) -> int | None:
    """The slot within half an interval of `near`."""
    for index, when in enumerate(slots):
        if abs(when - near) < INTERVAL / 2:
            return index
    return None


def _late_delay(delays: dict[datetime, timedelta], when: datetime) -> timedelta | None:
    for at, delay in delays.items():
        if abs(when - at) < INTERVAL / 2:
            return delay
    return None


def _trend(before: int, now: int) -> Trend:
    """The arrow for a change over 5 minutes (mg/dL per minute, Dexcom's bands)."""
    rate = (now - before) / 5
    bands = (
        (3, Trend.DOUBLE_UP),
        (2, Trend.SINGLE_UP),
        (1, Trend.FORTY_FIVE_UP),
        (-1, Trend.FLAT),
        (-2, Trend.FORTY_FIVE_DOWN),
        (-3, Trend.SINGLE_DOWN),
    )
    for floor, trend in bands:
        if rate >= floor:
            return trend
    return Trend.DOUBLE_DOWN


def episode_window(episode: Episode, start: datetime) -> tuple[datetime, datetime]:
    """World times within which the episode's one new alert must come: from the first reading
    past the threshold (its slot is within half an interval of the scripted start) to 15 min
    after the last one."""
    first = start + episode.start - INTERVAL / 2
    last = start + episode.start + episode.length + INTERVAL / 2
    return first, last + 15 * M
