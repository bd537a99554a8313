"""The clock every rule asks for "now": a protocol, the system clock and a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests, benchmarks and the accelerated fake."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta | float) -> datetime:
        """Moves forward (or back, for a negative step) by a timedelta or seconds."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        self._now = self._now + step
        return self._now

    def set(self, when: datetime) -> None:
        self._now = require_aware_utc(when)


def require_aware_utc(when: datetime) -> datetime:
    """Returns `when` converted to UTC; a naive datetime is a programming error."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("naive datetime: every time in CGM Tray is timezone-aware")
    return when.astimezone(UTC)


class ScaledClock:
    """A clock running `speed` times faster than the real one from a shared origin.

    Two processes built with the same origins and speed agree on "now", which is how the
    accelerated demo and soak runs keep the fake service and the app on one virtual clock.
    """

    def __init__(
        self,
        speed: float,
        *,
        virtual_origin: datetime,
        real_origin: datetime,
        real: Clock | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._virtual_origin = require_aware_utc(virtual_origin)
        self._real_origin = require_aware_utc(real_origin)
        self._real: Clock = real if real is not None else SystemClock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = self._real.now() - self._real_origin
        return self._virtual_origin + elapsed * self._speed


def shared_clock(speed: float, epoch: datetime) -> Clock:
    """A clock that processes started with the same `speed` and `epoch` agree on.

    Virtual time equals real time at `epoch` and runs `speed` times faster after it; speed 1 is
    the system clock.
    """
    if speed == 1.0:
        return SystemClock()
    return ScaledClock(speed, virtual_origin=epoch, real_origin=epoch)
