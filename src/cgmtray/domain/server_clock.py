"""Share's clock: ours plus a skew from Date headers that one lying answer cannot move."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Final

from cgmtray.domain.clock import Clock, require_aware_utc

#: Two observed skews closer than this agree (Date has whole seconds and answers take a while).
SKEW_TOLERANCE: Final = timedelta(seconds=2)


class ServerClock:
    """Share's clock, as best known: `base` plus a steadied skew (server Date minus `base`).

    A new skew is adopted only when two consecutive observations agree within SKEW_TOLERANCE;
    observations within the tolerance of the current estimate keep it as it is (no wobble). So
    one answer with a wild Date header never moves the clock, while a real offset (a computer
    clock an hour off, a clock changed mid-run) is adopted from the second answer that shows it.
    Until then the skew is unknown (None) and `now()` is the base clock's.

    Thread-safe: the worker observes, the GUI thread and others read. One instance may be
    shared by everything that plans on Share's clock.
    """

    def __init__(self, base: Clock) -> None:
        self._base = base
        self._lock = threading.Lock()
        self._skew: timedelta | None = None
        self._last_observed: timedelta | None = None

    @property
    def base(self) -> Clock:
        """The local clock this one is an offset of."""
        return self._base

    @property
    def skew(self) -> timedelta | None:
        """Server minus local time as adopted so far; None until two answers agreed."""
        with self._lock:
            return self._skew

    def now(self) -> datetime:
        """Share's now: the base clock plus the adopted skew (none yet: the base clock)."""
        base_now = self._base.now()
        with self._lock:
            skew = self._skew
        return base_now if skew is None else base_now + skew

    def observe(self, server_date: datetime) -> None:
        """Notes one answer's Date (aware); see the class for when it moves the estimate."""
        observed = require_aware_utc(server_date) - self._base.now()
        with self._lock:
            previous = self._last_observed
            self._last_observed = observed
            if self._skew is not None and abs(observed - self._skew) <= SKEW_TOLERANCE:
                return  # agrees with the estimate: keep it steady
            if previous is not None and abs(observed - previous) <= SKEW_TOLERANCE:
                self._skew = observed

    def __repr__(self) -> str:
        return f"ServerClock(skew={self.skew!r})"
