"""Injectable faults of the fake Share service: what they look like and the FIFO queue of them."""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cgmtray.share.regions import Region


class Fault(enum.Enum):
    """Something going wrong between the client and Share (protocol 4.2 rows 5, 13, 14, 15)."""

    RATE_LIMIT = "rate-limit"  # 429 with Retry-After (seconds)
    RATE_LIMIT_NO_HEADER = "rate-limit-no-header"  # 429 without Retry-After
    BAD_GATEWAY_HTML = "bad-gateway"  # 502, Cloudflare-like HTML body
    UNAVAILABLE_HTML = "unavailable"  # 503, HTML body
    EMPTY_200 = "empty"  # 200 with an empty body
    TRUNCATED_JSON = "truncated"  # 200, JSON content type, body cut in the middle
    SLOW = "slow"  # answered normally after `delay_s` real seconds
    RESET = "reset"  # connection closed without an answer
    SERVER_ERROR_JSON = "server-error"  # 500 with a Code/Message the client does not know
    FUTURE_READING = "future-reading"  # a read answer gains a reading a year ahead (250 mg/dL)
    LYING_DATE = "lying-date"  # answered normally, but the Date header says 2001
    DRIP = "drip"  # the normal answer, headers included, 1 byte per `delay_s` real seconds
    ENDLESS = "endless"  # 200 with a chunked body that never ends (for `delay_s` real s at most)
    HUGE = "huge"  # 200 with a JSON body of `size_mb` MB, streamed


#: The body of a rate-limited answer (Cloudflare's terse form for non-browser clients).
RATE_LIMIT_TEXT: Final = "error code: 1015"
#: Code and Message of SERVER_ERROR_JSON: an SSO_InternalError without "Cannot Authenticate"
#: (catalogue row 5: identity back-end trouble, transient).
SERVER_ERROR_CODE: Final = "SSO_InternalError"
SERVER_ERROR_MESSAGE: Final = (
    "Synchronization of SSO account during authenticate call failed Time out issue. "
    "Error encountered accessing Keycloak endpoint: UAM_ERROR: HttpStatus='504 GATEWAY_TIMEOUT'"
)
#: When TRUNCATED_JSON hits an answer that has nothing to cut, this half reading is sent.
TRUNCATED_FALLBACK: Final = b'[{"WT":"Date(1745081013817)","ST":"Date(17450'
#: The Date header of a LYING_DATE answer.
LYING_DATE_VALUE: Final = datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
#: How far ahead of the fake's now the FUTURE_READING reading is stamped, and its value.
FUTURE_READING_AHEAD: Final = timedelta(days=365)
FUTURE_READING_MGDL: Final = 250
#: Defaults: DRIP's seconds per byte, ENDLESS's longest run (real seconds), HUGE's size (MB).
DEFAULT_DRIP_DELAY_S: Final = 1.0
DEFAULT_ENDLESS_S: Final = 600.0
DEFAULT_HUGE_MB: Final = 500.0
#: The bytes of one reading object (and its comma) that ENDLESS and HUGE repeat.
_FILLER_READING: Final = b'{"WT":"Date(1745081013817)","ST":"Date(1745081013817)",' + (
    b'"DT":"Date(1745081013817-0400)","Value":120,"Trend":"Flat"},'
)
_PIECE_READINGS: Final = 512


def cloudflare_html(status: int, reason: str) -> bytes:
    """The kind of HTML page Cloudflare answers with when the origin is down."""
    return (
        "<!DOCTYPE html>\n<html>\n<head><title>"
        f"{status} {reason}</title></head>\n<body>\n<center><h1>{status} {reason}</h1></center>\n"
        "<hr><center>cloudflare</center>\n</body>\n</html>\n"
    ).encode()


def truncate(body: bytes) -> bytes:
    """A JSON body cut in the middle; never valid JSON."""
    if len(body) < 4:
        return TRUNCATED_FALLBACK
    return body[: len(body) // 2]


def with_future_reading(body: bytes, now: datetime) -> bytes:
    """A read answer (a JSON array) with one more reading, FUTURE_READING_AHEAD after `now`, as
    its first (newest) element; a body that is not a JSON array comes back as it was."""
    try:
        readings = json.loads(body)
    except ValueError:
        return body
    if not isinstance(readings, list):
        return body
    ms = (now + FUTURE_READING_AHEAD - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    future = {
        "WT": f"Date({ms})",
        "ST": f"Date({ms})",
        "DT": f"Date({ms}+0000)",
        "Value": FUTURE_READING_MGDL,
        "Trend": "Flat",
    }
    return json.dumps([future, *readings], separators=(",", ":")).encode("utf-8")


def endless_pieces() -> Iterator[bytes]:
    """An endless JSON array of readings, piece by piece: `[` then readings, never `]`."""
    yield b"["
    piece = _FILLER_READING * _PIECE_READINGS
    while True:
        yield piece


def huge_body(size: int) -> Iterator[bytes]:
    """A JSON array of readings of exactly `size` bytes (at least 3), piece by piece."""
    left = max(size, 3) - 3  # "[", the closing 0 and "]"
    yield b"["
    piece = _FILLER_READING * _PIECE_READINGS
    while left >= len(piece):
        yield piece
        left -= len(piece)
    count, left = divmod(left, len(_FILLER_READING))
    # The readings all end in a comma: a last element 0 (and whitespace) keeps the JSON valid.
    yield _FILLER_READING * count + b"0" + b" " * left + b"]"


@dataclass(frozen=True)
class FaultPlan:
    """One fault to apply to one request."""

    fault: Fault
    retry_after_s: int = 120
    delay_s: float = 0.0
    size_mb: float = DEFAULT_HUGE_MB


@dataclass
class _Pending:
    plan: FaultPlan
    region: Region | None
    endpoint: str | None
    #: None: unlimited (only with `until`).
    remaining: int | None
    #: With a time, the entry serves matching requests until then (fake clock), then lapses.
    until: datetime | None = None

    def matches(self, region: Region, endpoint: str) -> bool:
        return (self.region is None or self.region is region) and (
            self.endpoint is None or self.endpoint == endpoint
        )

    def lapsed(self, now: datetime | None) -> bool:
        return self.until is not None and now is not None and now >= self.until


class FaultQueue:
    """Faults waiting for requests: the first matching entry (FIFO) serves the next request."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock if lock is not None else threading.RLock()
        self._pending: list[_Pending] = []

    def add(
        self,
        plan: FaultPlan,
        *,
        region: Region | None = None,
        endpoint: str | None = None,
        count: int | None = 1,
        until: datetime | None = None,
    ) -> None:
        """Queues `plan` for the next `count` matching requests; with `until`, only for those
        that come before that time (of the clock `take` is given), and count None means all."""
        if count is None and until is None:
            raise ValueError("a fault without a count needs an end time")
        if count is not None and count < 1:
            raise ValueError("a fault needs a count of at least 1")
        if plan.retry_after_s < 0 or plan.delay_s < 0 or plan.size_mb < 0:
            raise ValueError("retry_after_s, delay_s and size_mb must not be negative")
        with self._lock:
            self._pending.append(_Pending(plan, region, endpoint, count, until))

    def take(self, region: Region, endpoint: str, now: datetime | None = None) -> FaultPlan | None:
        """The fault for this request, if one is queued for it (and uses one of its count).

        Entries whose `until` has come by `now` are dropped first."""
        with self._lock:
            self._pending = [entry for entry in self._pending if not entry.lapsed(now)]
            for index, pending in enumerate(self._pending):
                if pending.matches(region, endpoint):
                    if pending.remaining is not None:
                        pending.remaining -= 1
                        if pending.remaining == 0:
                            del self._pending[index]
                    return pending.plan
        return None

    def pending(self, now: datetime | None = None) -> int:
        """How many faulty answers are still queued (not counting lapsed ones at `now`; an
        entry without a count counts as one)."""
        with self._lock:
            return sum(
                1 if entry.remaining is None else entry.remaining
                for entry in self._pending
                if not entry.lapsed(now)
            )

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
