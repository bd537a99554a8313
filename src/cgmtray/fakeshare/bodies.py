"""What the fake Share service writes on the wire: dates, readings, error bodies (protocol 4, 5)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from cgmtray.fakeshare.sensor import PublishedReading

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"
JSON_TYPE: Final = "application/json"
TEXT_TYPE: Final = "text/plain"
HTML_TYPE: Final = "text/html"

#: The plain-text body of a 400 (catalogue row 12).
BAD_REQUEST_TEXT: Final = (
    "The server encountered an error processing the request. See server logs for more details."
)

SubCodeStyle = Literal["xml", "json"]


@dataclass(frozen=True)
class _Diagnostics:
    """The Type / Category / Severity triple of an OnlineException (protocol 4.1)."""

    type_id: int
    category_id: int
    severity_id: int
    type_name: str
    category_name: str
    severity_name: str
    error_code_blank: bool = False


_DIAGNOSTICS: dict[str, _Diagnostics] = {
    "AccountPasswordInvalid": _Diagnostics(13, 4, 1, "InvalidPassword", "Validation", "Minor"),
    "SessionIdNotFound": _Diagnostics(5, 2, 2, "ObjectNotFound", "Database", "Severe"),
    "SessionNotValid": _Diagnostics(6, 5, 1, "SessionNotValid", "Logical", "Minor", True),
    "SSO_InternalError": _Diagnostics(15, 1, 2, "SingleSignOn", "System", "Severe"),
    "InvalidArgument": _Diagnostics(10, 4, 2, "InvalidArgument", "Validation", "Severe"),
    # No recording exists for the lockout: this triple is synthetic.
    "SSO_AuthenticateMaxAttemptsExceeded": _Diagnostics(
        15, 4, 1, "SingleSignOn", "Validation", "Minor"
    ),
}
_UNKNOWN_DIAGNOSTICS = _Diagnostics(1, 1, 2, "Unknown", "System", "Severe")


def epoch_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch (truncated), as Share counts time."""
    return (when - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC instant of an epoch-milliseconds count, exactly."""
    return EPOCH + timedelta(milliseconds=ms)


def format_offset(offset_minutes: int) -> str:
    """A UTC offset as Share writes it in DT: -240 -> "-0400", 330 -> "+0530"."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}{minutes:02d}"


def share_date(ms: int, offset_minutes: int | None = None, *, legacy: bool = False) -> str:
    """`Date(ms)` / `Date(ms-0400)`, or the pre-2021 `/Date(...)/` form when `legacy`."""
    offset = "" if offset_minutes is None else format_offset(offset_minutes)
    inner = f"Date({ms}{offset})"
    return f"/{inner}/" if legacy else inner


def reading_object(published: PublishedReading, *, legacy: bool) -> dict[str, object]:
    """One element of a read answer: WT = ST = DT (same ms), DT with the publisher's offset."""
    ms = epoch_ms(published.reading.time)
    trend = published.reading.trend
    return {
        "WT": share_date(ms, legacy=legacy),
        "ST": share_date(ms, legacy=legacy),
        "DT": share_date(ms, published.offset_minutes, legacy=legacy),
        "Value": published.reading.mgdl,
        "Trend": int(trend) if legacy else trend.wire_name,
    }


def json_bytes(value: Any, *, escape_slashes: bool = False) -> bytes:
    """Compact JSON as the service writes it; old WCF answers escaped "/" as "\\/"."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if escape_slashes:
        text = text.replace("/", "\\/")
    return text.encode("utf-8")


def error_body(
    code: str, message: str, now: datetime, *, subcode_style: SubCodeStyle = "xml"
) -> bytes:
    """The JSON body of a Share fault: Code, Message, SubCode and TypeName "FaultException"."""
    return json_bytes(
        {
            "Code": code,
            "Message": message,
            "SubCode": _subcode(code, message, now, subcode_style),
            "TypeName": "FaultException",
        }
    )


def _subcode(code: str, message: str, now: datetime, style: SubCodeStyle) -> str:
    """The SubCode as recorded (protocol 2.6): UTC ISO times, `DateThrownLocal` the same without
    the `Z` (the service's zone is UTC). The XML-ish form (to 2025-06) has every value a string, the
    Id in braces and quotes left unescaped; the JSON form (since 2025-11) has typed numbers, the Id
    without braces, pretty-printed."""
    diagnostics = _DIAGNOSTICS.get(code, _UNKNOWN_DIAGNOSTICS)
    thrown = now.astimezone(UTC)
    local = f"{thrown:%Y-%m-%dT%H:%M:%S}.{thrown.microsecond // 1000:03d}"
    fields: dict[str, str | int] = {
        "DateThrownLocal": local,
        "DateThrown": local + "Z",
        "ErrorCode": "" if diagnostics.error_code_blank else code,
        "Type": diagnostics.type_id,
        "Category": diagnostics.category_id,
        "Severity": diagnostics.severity_id,
        "TypeString": diagnostics.type_name,
        "CategoryString": diagnostics.category_name,
        "SeverityString": diagnostics.severity_name,
        "HostName": "",
        "HostIP": "",
        "Id": str(uuid.uuid4()),
        "Message": message,
        "FullText": f"com.dexcom.udp.common.data.exception.OnlineException: {message}",
    }
    if style == "json":
        return json.dumps({"OnlineException": fields}, indent=2)
    fields["Id"] = "{" + str(fields["Id"]) + "}"
    attributes = " ".join(f'{name}="{value}"' for name, value in fields.items())
    return f"<OnlineException {attributes} />"
