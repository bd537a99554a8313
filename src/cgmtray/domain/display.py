"""What the tray shows: badge text, arrow, severity, tooltip, menu status line, spoken sentence.

A pure model of the glance; the Qt icon painter and tray only draw it. Rules (product.md):

- The newest reading gives the value; the delta comes from the two newest readings.
- Fresh or aging (< 10 min): the value, coloured by its range.
- Stale (10..20 min): the value with ``stale=True`` and severity STALE; the age is in the tooltip
  and status line.
- No data (>= 20 min, or no reading): text "—" and severity NO_DATA; never an old number that looks
  current. If sign-in itself fails (credentials, account locked, our own bug) it is "!" and ERROR.
- A connection problem with a usable reading keeps the number and adds the problem to the tooltip,
  status line and spoken sentence.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cgmtray.domain.failures import FailureClass
from cgmtray.domain.freshness import (
    Freshness,
    age,
    classify_age,
    format_age,
    is_from_future,
    spoken_age,
)
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import (
    MAX_REAL_MGDL,
    MIN_REAL_MGDL,
    Reading,
    Trend,
    delta_mgdl,
    newest_first,
)
from cgmtray.domain.units import (
    Unit,
    format_delta,
    format_value,
    mgdl_to_mmol,
)

#: Badge text when there is no current reading.
NO_DATA_TEXT = "—"
#: Badge text when sign-in fails and there is no current reading.
ERROR_TEXT = "!"
#: The badge holds at most this many characters (a decimal point counts): "HIGH", "22.2".
MAX_BADGE_CHARS = 4
#: Separator between the parts of a tooltip / status line.
SEPARATOR = " · "
#: Shown when a reading is stamped in the future of the (server-corrected) clock.
CLOCK_HINT = "Reading time is ahead of this computer's clock: check its date and time"

#: Failures that need the person to act (sign in again, wait out a lock, report a bug).
_SIGN_IN_FAILURES = frozenset(
    {FailureClass.CREDENTIALS, FailureClass.LOCKED, FailureClass.CLIENT_BUG}
)


class Severity(enum.Enum):
    """The badge's look: a range colour, or one of three distinct not-current looks."""

    URGENT_LOW = "urgent_low"
    LOW = "low"
    IN_RANGE = "in_range"
    HIGH = "high"
    URGENT_HIGH = "urgent_high"
    STALE = "stale"
    NO_DATA = "no_data"
    ERROR = "error"


_SEVERITY_OF_RANGE: dict[GlucoseRange, Severity] = {
    GlucoseRange.URGENT_LOW: Severity.URGENT_LOW,
    GlucoseRange.LOW: Severity.LOW,
    GlucoseRange.IN_RANGE: Severity.IN_RANGE,
    GlucoseRange.HIGH: Severity.HIGH,
    GlucoseRange.URGENT_HIGH: Severity.URGENT_HIGH,
}


@dataclass(frozen=True, slots=True)
class DisplayModel:
    """Everything the tray draws and says about the current glucose."""

    #: The icon badge: "142", "7.9", "LOW", "HIGH", "—" (no data), "!" (sign-in error).
    text: str
    #: The trend arrow, or "" (no data, or a trend without direction).
    arrow: str
    #: The badge's colour / look.
    severity: Severity
    #: The range of the value shown; None when no value is shown.
    range: GlucoseRange | None
    freshness: Freshness
    #: Draw dimmed / struck through: the value (if any) is not current.
    stale: bool
    #: "142 mg/dL → steady · +3 · 2 min ago", plus a line per problem.
    tooltip: str
    #: The menu's first line: value, arrow, delta, age, and a problem if any.
    status_line: str
    #: One sentence for screen readers.
    accessible: str
    unit: Unit
    #: The newest reading, shown or not (None when there is none).
    reading: Reading | None = None
    #: Its age against the corrected clock.
    age: timedelta | None = None


def compact_text(value: Reading | int, unit: Unit, max_chars: int = MAX_BADGE_CHARS) -> str:
    """The value in at most `max_chars` characters (at least 3) for a small badge.

    At 4 characters every value fits as it is shown elsewhere ("400", "22.2", "LOW", "HIGH").
    At 3: HIGH becomes "HI" and mmol/L values from 10 lose their decimal ("10.4" -> "10",
    rounded half-up); at 3 nothing else changes. LOW and HIGH are never numbers.
    """
    if max_chars < 3:
        raise ValueError("a glucose badge needs room for at least 3 characters")
    text = format_value(value, unit)
    if len(text) <= max_chars:
        return text
    mgdl = value.mgdl if isinstance(value, Reading) else value
    if not MIN_REAL_MGDL <= mgdl <= MAX_REAL_MGDL:
        return "HI"
    return str(mgdl_to_mmol(mgdl).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _value_phrase(reading: Reading, unit: Unit) -> str:
    """The value with its unit: "142 mg/dL", "LOW (below 40 mg/dL)", "HIGH (above 22.2 mmol/L)"."""
    if reading.is_low:
        return f"LOW (below {format_value(MIN_REAL_MGDL, unit)} {unit.label})"
    if reading.is_high:
        return f"HIGH (above {format_value(MAX_REAL_MGDL, unit)} {unit.label})"
    return f"{format_value(reading, unit)} {unit.label}"


def _spoken_value(reading: Reading, unit: Unit) -> str:
    if reading.is_low:
        return f"low, below {format_value(MIN_REAL_MGDL, unit)} {unit.spoken}"
    if reading.is_high:
        return f"high, above {format_value(MAX_REAL_MGDL, unit)} {unit.spoken}"
    return f"{format_value(reading, unit)} {unit.spoken}"


def _spoken_delta(delta: int, unit: Unit) -> str:
    if delta == 0:
        return "no change"
    magnitude = format_delta(abs(delta), unit).removeprefix("+")
    return f"up {magnitude}" if delta > 0 else f"down {magnitude}"


def _reading_line(reading: Reading, delta: int | None, reading_age: timedelta, unit: Unit) -> str:
    """ "142 mg/dL → steady · +3 · 2 min ago"."""
    head = _value_phrase(reading, unit)
    parts: list[str] = []
    if reading.trend.arrow:
        head = f"{head} {reading.trend.arrow} {reading.trend.description}"
    elif reading.trend is not Trend.NONE:
        parts.append(reading.trend.description)
    parts.append(format_delta(delta, unit))
    parts.append(format_age(reading_age))
    return SEPARATOR.join([head, *(part for part in parts if part)])


def _reading_sentence(
    reading: Reading, delta: int | None, reading_age: timedelta, unit: Unit
) -> str:
    """ "Glucose 142 milligrams per decilitre, steady, up 3, 2 minutes ago."."""
    parts = [f"Glucose {_spoken_value(reading, unit)}"]
    if reading.trend is not Trend.NONE:
        parts.append(reading.trend.description)
    if delta is not None:
        parts.append(_spoken_delta(delta, unit))
    parts.append(spoken_age(reading_age))
    return ", ".join(parts) + "."


def _no_data_line(reading_age: timedelta | None) -> str:
    if reading_age is None:
        return "No readings yet"
    return f"No data{SEPARATOR}last reading {format_age(reading_age)}"


def _no_data_sentence(reading_age: timedelta | None) -> str:
    if reading_age is None:
        return "No glucose readings yet."
    return f"No current glucose reading; the last one was {spoken_age(reading_age)}."


def _as_sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def model(
    readings: Sequence[Reading],
    now: datetime,
    *,
    unit: Unit,
    thresholds: Thresholds,
    connection: str | None = None,
    failure: FailureClass | None = None,
    server_skew: timedelta | None = None,
) -> DisplayModel:
    """The tray's model for these readings at `now`.

    `connection` is None when Share is reachable, else a short plain problem ("Can't reach Dexcom
    Share", "Sign-in failed: check username, password and region"). `failure` is the class of that
    problem: CREDENTIALS, LOCKED and CLIENT_BUG make a data-less icon ERROR instead of NO_DATA;
    without it a problem counts as transient. `server_skew` is server minus local time.
    """
    ordered = newest_first(tuple(readings))
    latest = ordered[0] if ordered else None
    problems = [connection] if connection else []
    reading_age = None if latest is None else age(latest.time, now, server_skew)
    if latest is not None and is_from_future(latest.time, now, server_skew):
        problems.append(CLOCK_HINT)
    freshness = Freshness.NO_DATA if reading_age is None else classify_age(reading_age)

    if latest is None or reading_age is None or freshness is Freshness.NO_DATA:
        sign_in_failed = failure in _SIGN_IN_FAILURES
        line = _no_data_line(reading_age)
        sentence = _no_data_sentence(reading_age)
        return DisplayModel(
            text=ERROR_TEXT if sign_in_failed else NO_DATA_TEXT,
            arrow="",
            severity=Severity.ERROR if sign_in_failed else Severity.NO_DATA,
            range=None,
            freshness=freshness,
            stale=True,
            tooltip="\n".join([line, *problems]),
            status_line=SEPARATOR.join([line, *problems]),
            accessible=" ".join([sentence, *(_as_sentence(p) for p in problems)]),
            unit=unit,
            reading=latest,
            age=reading_age,
        )

    delta = delta_mgdl(ordered[0], ordered[1]) if len(ordered) > 1 else None
    glucose_range = thresholds.classify(latest)
    stale = freshness is Freshness.STALE
    line = _reading_line(latest, delta, reading_age, unit)
    sentence = _reading_sentence(latest, delta, reading_age, unit)
    if stale:
        sentence = f"{sentence} This reading is out of date."
    return DisplayModel(
        text=compact_text(latest, unit),
        arrow=latest.trend.arrow,
        severity=Severity.STALE if stale else _SEVERITY_OF_RANGE[glucose_range],
        range=glucose_range,
        freshness=freshness,
        stale=stale,
        tooltip="\n".join([line, *problems]),
        status_line=SEPARATOR.join([line, *problems]),
        accessible=" ".join([sentence, *(_as_sentence(p) for p in problems)]),
        unit=unit,
        reading=latest,
        age=reading_age,
    )
