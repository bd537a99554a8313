"""How long after its timestamp a reading shows up on Share, learned from what the polls saw.

A poll that finds a new reading only proves the lag was at most "found - reading time"; a poll that
missed it proves the lag was longer than "missed - reading time". Taking the first bound alone as
the sample (the naive median) ratchets the estimate upward, because every sample is at least the
estimate that scheduled the poll. So each sample is built from both bounds: a reading found at
first look nudges the estimate down a little (probing for a shorter lag), a reading found after a
miss sets it just past the lower bound. The estimate is the median of the recent samples, clamped.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

#: The lag assumed before anything is learned (share-protocol.md section 7.3).
DEFAULT_LAG = timedelta(seconds=25)
#: The learned lag is clamped to this range.
MIN_LAG = timedelta(seconds=15)
MAX_LAG = timedelta(seconds=120)
#: How many recent samples the median is taken over.
SAMPLE_COUNT = 6
#: A reading found at the first look: the sample is this much below the estimate.
PROBE_DOWN = timedelta(seconds=1)
#: A reading found after a miss: the sample is this much above the missed poll's bound.
MISS_MARGIN = timedelta(seconds=15)
#: A reading found later than this after its timestamp was not a live arrival (an upload backlog,
#: or nobody polled): it says nothing about the lag.
LIVE_LIMIT = timedelta(minutes=5)


def estimate_lag(samples: tuple[float, ...]) -> timedelta:
    """The lag to plan with: the median of the samples (seconds), clamped; the default if none."""
    if not samples:
        return DEFAULT_LAG
    median = timedelta(seconds=statistics.median(samples))
    return min(MAX_LAG, max(MIN_LAG, median))


def lag_sample(
    reading_time: datetime,
    found_at: datetime,
    last_empty_poll_at: datetime,
    estimate: timedelta,
) -> float | None:
    """The sample (seconds) a newly found reading gives, or None when it tells nothing.

    `last_empty_poll_at` is the previous successful poll, which did not return this reading.
    """
    upper = found_at - reading_time
    if upper < timedelta(0) or upper > LIVE_LIMIT:
        return None
    if last_empty_poll_at > reading_time:
        lower = last_empty_poll_at - reading_time
        sample = min(upper, lower + MISS_MARGIN)
    else:
        sample = max(timedelta(0), min(upper, estimate) - PROBE_DOWN)
    return sample.total_seconds()


def with_sample(samples: tuple[float, ...], sample: float) -> tuple[float, ...]:
    """The most recent SAMPLE_COUNT samples once `sample` is added."""
    return (*samples, sample)[-SAMPLE_COUNT:]
