"""How old a reading is, from its own timestamp and the (server-corrected) clock, and how to say it.

Fresh below 6 min, aging from 6 min, stale from 10 min (value dimmed, age shown), no data from
20 min or with no reading at all (design.md). Ages never come from "when we last polled".
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.readings import Reading

#: Younger than this is fresh.
AGING_AFTER = timedelta(minutes=6)
#: From this age the value is dimmed and its age shown.
STALE_AFTER = timedelta(minutes=10)
#: From this age the value is no longer shown at all.
NO_DATA_AFTER = timedelta(minutes=20)
#: The local clock is trusted while it is within this of the server's clock (design.md).
SKEW_TOLERANCE = timedelta(minutes=1)


class Freshness(enum.Enum):
    """How current the newest reading is."""

    FRESH = "fresh"
    AGING = "aging"
    STALE = "stale"
    NO_DATA = "no_data"


def effective_now(now: datetime, server_skew: timedelta | None = None) -> datetime:
    """`now` corrected to the server's clock when they disagree by more than a minute.

    `server_skew` is server time minus local time (from the HTTP Date header of Share responses).
    """
    local = require_aware_utc(now)
    if server_skew is not None and abs(server_skew) > SKEW_TOLERANCE:
        return local + server_skew
    return local


def age(reading_time: datetime, now: datetime, server_skew: timedelta | None = None) -> timedelta:
    """How long ago the reading was taken; never negative (a reading "from the future" is age 0)."""
    elapsed = effective_now(now, server_skew) - require_aware_utc(reading_time)
    return max(elapsed, timedelta(0))


def is_from_future(
    reading_time: datetime, now: datetime, server_skew: timedelta | None = None
) -> bool:
    """True when the reading is stamped more than a minute ahead of the (corrected) clock.

    Its age then says nothing true: the computer's date or time is probably wrong.
    """
    ahead = require_aware_utc(reading_time) - effective_now(now, server_skew)
    return ahead > SKEW_TOLERANCE


def classify_age(reading_age: timedelta) -> Freshness:
    """The freshness of a reading of this age."""
    if reading_age < AGING_AFTER:
        return Freshness.FRESH
    if reading_age < STALE_AFTER:
        return Freshness.AGING
    if reading_age < NO_DATA_AFTER:
        return Freshness.STALE
    return Freshness.NO_DATA


def classify(
    reading: Reading | None, now: datetime, server_skew: timedelta | None = None
) -> Freshness:
    """The freshness of the newest reading; no reading at all is NO_DATA."""
    if reading is None:
        return Freshness.NO_DATA
    return classify_age(age(reading.time, now, server_skew))


def _parts(reading_age: timedelta) -> tuple[int, int, int]:
    """Whole days, then hours and minutes within the day (rounded down)."""
    minutes = max(reading_age, timedelta(0)) // timedelta(minutes=1)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return days, hours, minutes


def format_age(reading_age: timedelta) -> str:
    """Short age for tooltips and menus: "just now", "2 min ago", "1 h 5 min ago", "3 d ago"."""
    days, hours, minutes = _parts(reading_age)
    if days:
        return f"{days} d ago"
    if hours:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    if minutes:
        return f"{minutes} min ago"
    return "just now"


def _count(amount: int, word: str) -> str:
    return f"{amount} {word}" if amount == 1 else f"{amount} {word}s"


def spoken_age(reading_age: timedelta) -> str:
    """The same age in words for screen readers: "2 minutes ago", "1 hour 5 minutes ago"."""
    days, hours, minutes = _parts(reading_age)
    if days:
        return f"{_count(days, 'day')} ago"
    if hours:
        spoken_hours = _count(hours, "hour")
        return (
            f"{spoken_hours} {_count(minutes, 'minute')} ago" if minutes else f"{spoken_hours} ago"
        )
    if minutes:
        return f"{_count(minutes, 'minute')} ago"
    return "just now"
