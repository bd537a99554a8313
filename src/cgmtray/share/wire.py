"""The only code that knows Share JSON: dates, trends, values, ids -> domain values."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend, newest_first
from cgmtray.share.errors import InvalidResponse

_log = logging.getLogger(__name__)

#: The id Share answers instead of an error ("no"): never a usable account or session id.
ZERO_ID: Final = "00000000-0000-0000-0000-000000000000"

_DATE_PATTERN = re.compile(r"Date\((\d{1,15})([+-]\d{4})?\)", re.ASCII)
_HEX = "[0-9a-fA-F]"
_UUID_SYNTAX = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Readings dated outside [EARLIEST, LATEST) are refused as absurd.
EARLIEST_DATE: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_DATE: Final = datetime(2100, 1, 1, tzinfo=UTC)
_TIME_FIELDS: Final = ("WT", "DT", "ST")
#: A reading stamped more than this after Share's now is refused: no sensor reads the future.
FUTURE_TOLERANCE: Final = timedelta(minutes=5)

_TRENDS_BY_NAME: dict[str, Trend] = {trend.wire_name.lower(): trend for trend in Trend}
_TRENDS_BY_NAME.update({trend.name.replace("_", "").lower(): trend for trend in Trend})
_TRENDS_BY_NAME["noncomputable"] = Trend.NOT_COMPUTABLE  # a spelling one client expects


class WireFormatError(InvalidResponse):
    """Share sent JSON of a shape or content we cannot turn into readings or ids."""

    default_detail = "malformed Share data"


def parse_share_date(text: object) -> datetime:
    """The UTC instant of a Share date string (`Date(ms)`, `Date(ms-0400)`, `/Date(ms)/` ...).

    The digits are UTC epoch milliseconds; a `±hhmm` offset is the publisher's zone and never
    moves the instant.
    """
    if not isinstance(text, str):
        raise WireFormatError(f"date is a {type(text).__name__}, not a string")
    found = _DATE_PATTERN.search(text)
    if found is None:
        raise WireFormatError("date string has no Date(ms) in it")
    millis = int(found.group(1))
    earliest_ms = (EARLIEST_DATE - _EPOCH) // timedelta(milliseconds=1)
    latest_ms = (LATEST_DATE - _EPOCH) // timedelta(milliseconds=1)
    if not earliest_ms <= millis < latest_ms:
        raise WireFormatError("date is before 2000 or after 2100")
    return _EPOCH + timedelta(milliseconds=millis)


def parse_trend(value: object) -> Trend:
    """The trend of an int 0..9 or a name (any case, spaces ignored); anything else is NONE."""
    if isinstance(value, bool):
        return Trend.NONE
    if isinstance(value, int):
        return Trend(value) if 0 <= value <= 9 else Trend.NONE
    if isinstance(value, str):
        key = "".join(value.split()).replace("_", "").lower()
        if key.isascii() and key.isdigit() and len(key) <= 2:
            return parse_trend(int(key))
        return _TRENDS_BY_NAME.get(key, Trend.NONE)
    return Trend.NONE


def parse_value(value: object) -> int:
    """The mg/dL of a Share `Value`: an int (or integral float) 39..401; 39 LOW, 401 HIGH."""
    if isinstance(value, bool):
        raise WireFormatError("Value is a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise WireFormatError("Value is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise WireFormatError(f"Value is a {type(value).__name__}, not a number")
    if not LOW_MGDL <= value <= HIGH_MGDL:
        raise WireFormatError(f"Value is outside {LOW_MGDL}..{HIGH_MGDL}")
    return value


def _reading_time(obj: Mapping[object, object]) -> datetime:
    problems: list[str] = []
    for field in _TIME_FIELDS:
        if field not in obj:
            continue
        text = obj[field]
        if not isinstance(text, str):
            problems.append(f"{field} is not a string")
            continue
        try:
            return parse_share_date(text)
        except WireFormatError as exc:
            problems.append(f"{field}: {exc.detail}")
    if not problems:
        raise WireFormatError("reading has no WT, DT or ST")
    raise WireFormatError("reading has no usable time (" + "; ".join(problems) + ")")


def parse_reading(obj: object) -> Reading:
    """One element of a read answer: time from WT (else DT, else ST), Value, Trend."""
    if not isinstance(obj, Mapping):
        raise WireFormatError(f"reading is a {type(obj).__name__}, not an object")
    time = _reading_time(obj)
    if "Value" not in obj:
        raise WireFormatError("reading has no Value")
    mgdl = parse_value(obj["Value"])
    trend = parse_trend(obj.get("Trend"))
    return Reading(time=time, mgdl=mgdl, trend=trend)


def parse_readings(payload: object, *, now: datetime | None = None) -> tuple[Reading, ...]:
    """A read answer (a JSON array) as readings, newest first, one per timestamp.

    `[]` is a normal answer (no readings in the window). An element that cannot be read (say
    a sensor error code as Value) is skipped and logged; if no element can be read at all, or
    the payload is not an array, WireFormatError. With `now` (Share's), readings stamped more
    than FUTURE_TOLERANCE after it are dropped with one warning; the others are kept.
    """
    if not isinstance(payload, list):
        raise WireFormatError(f"read answer is a {type(payload).__name__}, not an array")
    readings: list[Reading] = []
    first_problem: WireFormatError | None = None
    for element in payload:
        try:
            readings.append(parse_reading(element))
        except WireFormatError as exc:
            first_problem = first_problem or exc
    if first_problem is not None:
        if not readings:
            raise WireFormatError(f"no readable reading in the answer ({first_problem.detail})")
        _log.warning(
            "skipped %d unreadable reading(s) of %d: %s",
            len(payload) - len(readings),
            len(payload),
            first_problem.detail,
            extra={"event": "share.bad_reading"},
        )
    if now is not None:
        readings = drop_future(readings, now)
    return newest_first(readings)


def drop_future(readings: list[Reading], now: datetime) -> list[Reading]:
    """`readings` without those stamped more than FUTURE_TOLERANCE after `now`; one warning
    (how many, how far ahead; never a glucose value) when any are dropped."""
    limit = now + FUTURE_TOLERANCE
    kept = [reading for reading in readings if reading.time <= limit]
    if len(kept) < len(readings):
        ahead = max(reading.time for reading in readings) - now
        _log.warning(
            "refused %d reading(s) stamped up to %.0f s after Share's now",
            len(readings) - len(kept),
            ahead.total_seconds(),
            extra={
                "event": "share.future_reading",
                "count": len(readings) - len(kept),
                "ahead_s": round(ahead.total_seconds()),
            },
        )
    return kept


def is_zero_id(body: object) -> bool:
    """True for the all-zero UUID, Share's way of saying "no" with a 200."""
    return isinstance(body, str) and body.strip().lower() == ZERO_ID


def parse_id(body: object) -> str:
    """An account or session id from a sign-in answer: a UUID string, not all zeros."""
    if not isinstance(body, str):
        raise WireFormatError(f"id is a {type(body).__name__}, not a string")
    text = body.strip()
    if not _UUID_SYNTAX.fullmatch(text):
        raise WireFormatError("id is not a UUID")
    if is_zero_id(text):
        raise WireFormatError("id is the all-zero UUID")
    return str(uuid.UUID(text))
