"""The clock every rule asks for "now": a protocol, the system clock and a manual clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

#: How often (real seconds) an OffsetFile looks whether its file changed.
OFFSET_CHECK_INTERVAL_S: Final = 0.05


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
        offset: Callable[[], timedelta] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._virtual_origin = require_aware_utc(virtual_origin)
        self._real_origin = require_aware_utc(real_origin)
        self._real: Clock = real if real is not None else SystemClock()
        self._offset = offset

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = self._real.now() - self._real_origin
        shifted = self._offset() if self._offset is not None else timedelta(0)
        return self._virtual_origin + elapsed * self._speed + shifted


class OffsetFile:
    """A clock offset kept in a JSON file `{"offset_s": N}`, re-read when the file changes.

    How a test moves a running process's accelerated clock (a sleep, a clock set back): it
    replaces the file. The file is looked at no more often than every `check_interval_s` real
    seconds; a missing or unreadable file keeps the last offset (zero at first).
    """

    def __init__(
        self,
        path: Path,
        *,
        check_interval_s: float = OFFSET_CHECK_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._check_interval_s = check_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._signature: tuple[int, int, int] | None = None
        self._checked_at: float | None = None

    @property
    def path(self) -> Path:
        return self._path

    def __call__(self) -> timedelta:
        with self._lock:
            now = self._monotonic()
            if self._checked_at is None or now - self._checked_at >= self._check_interval_s:
                self._checked_at = now
                self._reload()
            return self._offset

    def _reload(self) -> None:
        try:
            stat = self._path.stat()
        except OSError:
            return
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature == self._signature:
            return
        try:
            value = json.loads(self._path.read_text(encoding="utf-8"))["offset_s"]
        except (OSError, ValueError, TypeError, KeyError):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        self._signature = signature
        self._offset = timedelta(seconds=value)


def write_offset_file(path: Path, offset: timedelta) -> None:
    """Replaces `path` at once with `{"offset_s": ...}` (readers never see half a file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"offset_s": offset.total_seconds()}), encoding="utf-8")
    partial.replace(path)


def shared_clock(speed: float, epoch: datetime, offset_file: Path | None = None) -> Clock:
    """A clock that processes started with the same `speed` and `epoch` agree on.

    Virtual time equals real time at `epoch` and runs `speed` times faster after it; speed 1 is
    the system clock. With `offset_file` (see OffsetFile) the time is shifted by the file's
    offset, which may change while the process runs.
    """
    if speed == 1.0 and offset_file is None:
        return SystemClock()
    offset = OffsetFile(offset_file) if offset_file is not None else None
    return ScaledClock(speed, virtual_origin=epoch, real_origin=epoch, offset=offset)
