"""How long after its timestamp a reading shows up on Share, learned from what the polls saw.

The lag is tracked as a quantile, not averaged. A poll that finds a new reading at the first look
proves only that the lag was at most "found - reading time"; a poll that missed it proves the lag
was longer. So the estimate moves by fixed steps: down PROBE_DOWN after a first-look hit, up
MISS_STEP after a miss. It settles where misses are PROBE_DOWN / (PROBE_DOWN + MISS_STEP) of the
polls (10 %): late enough that nine polls in ten find their reading, early enough for a short wait.
One reading minutes late moves it by one step only (a median of recent bounds was tried first: it
slid down until a third of the polls missed, and a late burst held it high for hours; see
docs/decisions.md and bench/freshness.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: The lag assumed before anything is learned (share-protocol.md section 7.3).
DEFAULT_LAG = timedelta(seconds=25)
#: The learned lag is clamped to this range.
MIN_LAG = timedelta(seconds=15)
MAX_LAG = timedelta(seconds=120)
#: How many recent estimates are kept (the newest is the estimate; the rest are for the logs).
SAMPLE_COUNT = 6
#: A reading found at the first look: the estimate moves down by this much.
PROBE_DOWN = timedelta(seconds=1)
#: A reading found only after a miss: the estimate moves up by this much (never past the bound
#: the poll that found it proves).
MISS_STEP = timedelta(seconds=9)
#: A reading found later than this after its timestamp was not a live arrival (an upload backlog,
#: or nobody polled): it says nothing about the lag.
LIVE_LIMIT = timedelta(minutes=5)


def estimate_lag(samples: tuple[float, ...]) -> timedelta:
    """The lag to plan with: the newest estimate (seconds), clamped; the default if none."""
    if not samples:
        return DEFAULT_LAG
    return min(MAX_LAG, max(MIN_LAG, timedelta(seconds=samples[-1])))


def lag_sample(
    reading_time: datetime,
    found_at: datetime,
    last_empty_poll_at: datetime,
    estimate: timedelta,
) -> float | None:
    """The next estimate (seconds) once a new reading was found, or None when it tells nothing.

    `last_empty_poll_at` is the previous successful poll, which did not return this reading.
    """
    upper = found_at - reading_time
    if upper < timedelta(0) or upper > LIVE_LIMIT:
        return None
    if last_empty_poll_at > reading_time:
        sample = min(upper, estimate + MISS_STEP)
    else:
        sample = max(timedelta(0), min(upper, estimate) - PROBE_DOWN)
    return sample.total_seconds()


def with_sample(samples: tuple[float, ...], sample: float) -> tuple[float, ...]:
    """The most recent SAMPLE_COUNT estimates once `sample` is added."""
    return (*samples, sample)[-SAMPLE_COUNT:]
