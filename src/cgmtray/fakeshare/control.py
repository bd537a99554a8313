"""The fake's control channel for tests: JSON under /_fake/ to steer the fake and report on it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.followers import FollowerError
from cgmtray.fakeshare.sensor import PublishedReading
from cgmtray.share.regions import Region

if TYPE_CHECKING:
    from cgmtray.fakeshare.counters import Counters
    from cgmtray.fakeshare.server import FakeShare

#: Every control path starts with this; Share paths never do.
CONTROL_PREFIX: Final = "/_fake/"
#: How far back `GET /_fake/readings` looks by default.
DEFAULT_READINGS_SPAN: Final = timedelta(hours=24)

_FAULTS_BY_NAME: Final = {fault.value: fault for fault in Fault}
_TRENDS_BY_NAME: Final = {trend.wire_name.casefold(): trend for trend in Trend}


# --- fault specs (shared with the --fault option) ----------------------------------------------


class FaultSpecError(ValueError):
    """A fault spec that cannot be understood; the message says why."""


@dataclass(frozen=True)
class FaultSpec:
    """A --fault option: which fault, how many requests, and its number (delay or Retry-After)."""

    fault: Fault
    count: int = 1
    seconds: float | None = None


def parse_fault_spec(text: str) -> FaultSpec:
    """`NAME[:NUMBER][:xN]`, e.g. "unavailable:x3", "slow:35", "rate-limit:60:x2", "huge:500".

    The number is seconds (slow: the wait; drip: per byte; endless: how long at most;
    rate-limit: Retry-After) or, for huge, megabytes."""
    name, *options = text.strip().lower().split(":")
    fault = _FAULTS_BY_NAME.get(name)
    if fault is None:
        known = ", ".join(sorted(_FAULTS_BY_NAME))
        raise FaultSpecError(f"unknown fault {name!r} (known: {known})")
    count = 1
    seconds: float | None = None
    for option in options:
        try:
            if option.startswith("x"):
                count = int(option[1:])
            else:
                seconds = float(option)
        except ValueError:
            raise FaultSpecError(f"bad fault option {option!r} in {text!r}") from None
    if count < 1 or (seconds is not None and seconds < 0):
        raise FaultSpecError(f"bad fault count or seconds in {text!r}")
    return FaultSpec(fault, count, seconds)


def inject(
    fake: FakeShare,
    spec: FaultSpec,
    *,
    region: Region | None = None,
    endpoint: str | None = None,
    until: datetime | None = None,
    every_request: bool = False,
) -> None:
    """Queues the spec's fault on `fake` for its next `count` matching requests; with `until`,
    only before that time, and with `every_request` for all of them until then."""
    count = None if every_request and until is not None else spec.count
    options: dict[str, float] = {}
    if spec.fault is Fault.SLOW:
        options["delay_s"] = spec.seconds if spec.seconds is not None else 35.0
    elif spec.seconds is not None:
        option = _SECONDS_OPTION.get(spec.fault)
        if option == "retry_after_s":
            options[option] = round(spec.seconds)
        elif option is not None:
            options[option] = spec.seconds
    fake.inject_fault(
        spec.fault,
        region=region,
        endpoint=endpoint,
        count=count,
        until=until,
        **options,  # type: ignore[arg-type]
    )


#: What a fault spec's number means, per fault (SLOW has its own default; others ignore it).
_SECONDS_OPTION: dict[Fault, str] = {
    Fault.RATE_LIMIT: "retry_after_s",
    Fault.DRIP: "delay_s",
    Fault.ENDLESS: "delay_s",
    Fault.HUGE: "size_mb",
}


def has_count(text: str) -> bool:
    """Whether a fault spec names its count (`:xN`)."""
    return any(option.strip().lower().startswith("x") for option in text.split(":")[1:])


# --- requests and answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlReply:
    """A JSON answer: its HTTP status and object."""

    status: int
    payload: Mapping[str, object]

    def body(self) -> bytes:
        return json.dumps(self.payload, ensure_ascii=False).encode("utf-8")


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_control_path(path: str) -> bool:
    """True for `/_fake/...` (case-insensitive, like the Share paths)."""
    return (path.lower() + "/").startswith(CONTROL_PREFIX)


def handle(
    fake: FakeShare, method: str, path: str, query: str, body: bytes, *, region: Region
) -> ControlReply:
    """Answers one control request; `region` is the default for requests that name none."""
    if not is_control_path(path):
        return _error(404, f"control paths start with {CONTROL_PREFIX}")
    name = path.lower()[len(CONTROL_PREFIX) :].strip("/")
    route = _ROUTES.get(name)
    if route is None:
        return _error(404, f"no control endpoint {path!r}; GET {CONTROL_PREFIX} lists them")
    wanted_method, action = route
    if method != wanted_method:
        return _error(405, f"{CONTROL_PREFIX}{name} answers {wanted_method} only")
    try:
        params = dict(parse_qsl(query, keep_blank_values=True))
        payload = _json_object(body)
        chosen = _region(params.get("region") or payload.get("region"), region)
        return action(_Call(fake, chosen, params, payload))
    except _ControlError as error:
        return _error(error.status, error.message)


@dataclass(frozen=True)
class _Call:
    fake: FakeShare
    region: Region
    params: Mapping[str, str]
    payload: Mapping[str, Any]


def _index(call: _Call) -> ControlReply:
    endpoints = [f"{method} {CONTROL_PREFIX}{name}" for name, (method, _a) in _ROUTES.items()]
    return ControlReply(200, {"endpoints": endpoints})


def _now(call: _Call) -> ControlReply:
    return ControlReply(200, {"now": call.fake.now().isoformat()})


def _expire_sessions(call: _Call) -> ControlReply:
    named = call.payload.get("region")
    region = _region(named, call.region) if named is not None else None
    call.fake.expire_sessions(region)
    return ControlReply(200, {"expired": True, "region": region.value if region else "all"})


def _fault(call: _Call) -> ControlReply:
    spec_text = call.payload.get("fault")
    if not isinstance(spec_text, str):
        raise _ControlError(400, 'give {"fault": "<spec as in --fault>"}')
    try:
        spec = parse_fault_spec(spec_text)
    except FaultSpecError as error:
        raise _ControlError(400, str(error)) from None
    endpoint = call.payload.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise _ControlError(400, "endpoint must be a string")
    only_region = call.payload.get("region")
    # With "until" (the fake's time) the fault answers every matching request before then,
    # unless the spec names a count: a run of faults lasting a virtual duration.
    until = _optional_time(call.payload.get("until"), "until")
    try:
        inject(
            call.fake,
            spec,
            region=_region(only_region, call.region) if only_region is not None else None,
            endpoint=endpoint,
            until=until,
            every_request=not has_count(spec_text),
        )
    except ValueError as error:
        raise _ControlError(400, str(error)) from None
    return ControlReply(200, {"pending": call.fake.pending_faults()})


def _outage(call: _Call) -> ControlReply:
    down = call.payload.get("down")
    refuse = call.payload.get("refuse", False)
    if not isinstance(down, bool) or not isinstance(refuse, bool):
        raise _ControlError(400, 'give {"down": true|false, "refuse": true|false}')
    # Asked of a Share listener, a refusing outage stops that very listener: the connection
    # carrying this request is spared and still gets its answer.
    try:
        call.fake.set_outage(down, refuse=refuse)
    except OSError as error:  # the old ports could not be listened on again
        raise _ControlError(500, f"the outage could not be changed: {error.strerror}") from None
    return ControlReply(200, {"down": down, "refuse": refuse})


def _lock(call: _Call) -> ControlReply:
    """Locks the account now (as if someone else had failed to sign in too often), or lifts it."""
    username = _username(call.payload.get("username"))
    locked = call.payload.get("locked", True)
    if not isinstance(locked, bool):
        raise _ControlError(400, 'give {"username": ..., "locked": true|false}')
    _require_account(call, username)
    if locked:
        call.fake.lock_account(call.region, username)
    else:
        call.fake.unlock_account(call.region, username)
    return ControlReply(200, {"locked": call.fake.is_locked(call.region, username)})


def _password(call: _Call) -> ControlReply:
    """Changes the account's password on the service (as the publisher would)."""
    username = _username(call.payload.get("username"))
    password = call.payload.get("password")
    if not isinstance(password, str) or not password:
        raise _ControlError(400, 'give {"username": ..., "password": "<the new password>"}')
    _require_account(call, username)
    call.fake.add_account(call.region, username, password)
    return ControlReply(200, {"changed": True})


def _publish(call: _Call) -> ControlReply:
    username = _username(call.payload.get("username"))
    items = call.payload.get("readings")
    if not isinstance(items, list):
        raise _ControlError(400, "readings must be a list of {time, mgdl, trend}")
    default_available = _optional_time(call.payload.get("available_at"), "available_at")
    parsed = [_published_reading(item, default_available) for item in items]
    _require_account(call, username)
    for reading, available_at in parsed:
        call.fake.publish(call.region, username, reading, available_at)
    return ControlReply(200, {"published": len(parsed)})


def _readings(call: _Call) -> ControlReply:
    username = _username(call.params.get("username"))
    now = call.fake.now()
    since = _optional_time(call.params.get("since"), "since") or now - DEFAULT_READINGS_SPAN
    until = _optional_time(call.params.get("until"), "until")
    _require_account(call, username)
    found = call.fake.all_readings(call.region, username, since=since, until=until)
    return ControlReply(
        200,
        {
            "now": now.isoformat(),
            "region": call.region.value,
            "readings": [_reading_json(published, now) for published in found],
        },
    )


def _counters(call: _Call) -> ControlReply:
    since = _optional_time(call.params.get("since"), "since")
    counters = call.fake.counters
    log = [record for record in counters.log if since is None or record.time >= since]
    endpoints: dict[str, int] = {}
    for record in log:
        endpoints[record.endpoint] = endpoints.get(record.endpoint, 0) + 1
    return ControlReply(
        200,
        {
            "now": call.fake.now().isoformat(),
            "total": len(log),
            "reads": counters.reads(since=since),
            "sign_ins": counters.sign_ins(since=since),
            "failed_sign_ins": counters.failed_sign_ins(since=since),
            "subscription_lists": counters.subscription_lists(since=since),
            "follower_requests": counters.follower_requests(since=since),
            "endpoints": endpoints,
            "accounts": _per_account(counters, since),
            "log": [
                {
                    "time": record.time.isoformat(),
                    "region": record.region.value,
                    "endpoint": record.endpoint,
                    "status": record.status,
                    "code": record.code,
                    "account": record.account,
                }
                for record in log
            ],
        },
    )


def _per_account(
    counters: Counters, since: datetime | None
) -> dict[str, dict[str, dict[str, int]]]:
    """Region -> username key -> that account's reads, sign-ins, failed sign-ins and requests
    (requests whose account is unknown are in the totals only)."""
    found: dict[str, dict[str, dict[str, int]]] = {}
    for region, account in counters.accounts(since=since):
        found.setdefault(region.value, {})[account] = {
            "reads": counters.reads(region, since=since, account=account),
            "sign_ins": counters.sign_ins(region, since=since, account=account),
            "failed_sign_ins": counters.failed_sign_ins(region, since=since, account=account),
            "total": counters.total(region, since=since, account=account),
        }
    return found


def _followers(call: _Call) -> ControlReply:
    """The account's follower list: each contact's name and state (accepted, pending, contact)."""
    username = _username(call.params.get("username"))
    _require_account(call, username)
    found = call.fake.followers(call.region, username)
    return ControlReply(
        200,
        {
            "followers": [
                {"name": f.name, "contact_id": f.contact_id, "state": f.state_name} for f in found
            ],
            "following": any(f.accepted and f.enabled for f in found),
        },
    )


def _add_follower(call: _Call) -> ControlReply:
    """Adds a follower with an invitation: {"username", "name", "accepted": true|false}."""
    username = _username(call.payload.get("username"))
    name = call.payload.get("name")
    accepted = call.payload.get("accepted", True)
    email = call.payload.get("email")
    if not isinstance(name, str) or not name.strip() or not isinstance(accepted, bool):
        raise _ControlError(400, 'give {"username": ..., "name": ..., "accepted": true|false}')
    if email is not None and not isinstance(email, str):
        raise _ControlError(400, "email must be a string")
    _require_account(call, username)
    try:
        contact_id = call.fake.add_follower(
            call.region, username, name.strip(), accepted=accepted, email=email
        )
    except FollowerError as error:
        raise _ControlError(409, error.message) from None
    return ControlReply(200, {"contact_id": contact_id})


def _accept_follower(call: _Call) -> ControlReply:
    """The named follower accepts the invitation: {"username", "name"}."""
    username = _username(call.payload.get("username"))
    name = call.payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _ControlError(400, 'give {"username": ..., "name": ...}')
    _require_account(call, username)
    try:
        call.fake.accept_follower(call.region, username, name)
    except FollowerError as error:
        raise _ControlError(404, error.message) from None
    return ControlReply(200, {"accepted": True})


def _remove_followers(call: _Call) -> ControlReply:
    """Removes the named follower, or all of them ({"username"} alone: nobody follows)."""
    username = _username(call.payload.get("username"))
    name = call.payload.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise _ControlError(400, "name must be a follower's name (or left out for all)")
    _require_account(call, username)
    try:
        removed = call.fake.remove_followers(call.region, username, name)
    except FollowerError as error:
        raise _ControlError(404, error.message) from None
    return ControlReply(200, {"removed": removed})


def _issued(call: _Call) -> ControlReply:
    # Test plumbing on loopback: the ids a client must never write down, so a test can search
    # for them. Only this endpoint tells them; the counters and request log never do.
    account_ids, session_ids = call.fake.issued_ids()
    return ControlReply(200, {"account_ids": account_ids, "session_ids": session_ids})


_ROUTES: Final[dict[str, tuple[str, Callable[[_Call], ControlReply]]]] = {
    "": ("GET", _index),
    "now": ("GET", _now),
    "counters": ("GET", _counters),
    "readings": ("GET", _readings),
    "issued": ("GET", _issued),
    "expire-sessions": ("POST", _expire_sessions),
    "fault": ("POST", _fault),
    "outage": ("POST", _outage),
    "lock": ("POST", _lock),
    "password": ("POST", _password),
    "publish": ("POST", _publish),
    "followers": ("GET", _followers),
    "add-follower": ("POST", _add_follower),
    "accept-follower": ("POST", _accept_follower),
    "remove-followers": ("POST", _remove_followers),
}


# --- parsing -------------------------------------------------------------------------------------


def _error(status: int, message: str) -> ControlReply:
    return ControlReply(status, {"error": message})


def _json_object(body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _ControlError(400, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise _ControlError(400, "the body must be a JSON object")
    return value


def _region(value: object, default: Region) -> Region:
    if value is None:
        return default
    try:
        return Region(str(value).lower())
    except ValueError:
        raise _ControlError(400, f"unknown region {value!r}") from None


def _username(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _ControlError(400, "username is required")
    return value


def _require_account(call: _Call, username: str) -> None:
    try:
        call.fake.account_id(call.region, username)
    except KeyError:
        raise _ControlError(404, f"no such account in region {call.region.value}") from None


def _optional_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ControlError(400, f"{name} must be an ISO 8601 time with its UTC offset")
    try:
        return require_aware_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise _ControlError(
            400, f"{name} must be an ISO 8601 time with its UTC offset, not {value!r}"
        ) from None


def _trend(value: object) -> Trend:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return Trend(value)
    if isinstance(value, str):
        found = _TRENDS_BY_NAME.get(value.replace(" ", "").casefold())
        if found is not None:
            return found
    raise _ControlError(400, f"unknown trend {value!r} (a wire name like 'Flat', or 0..9)")


def _published_reading(
    item: object, default_available: datetime | None
) -> tuple[Reading, datetime | None]:
    if not isinstance(item, dict):
        raise _ControlError(400, "each reading is an object {time, mgdl, trend}")
    when = _optional_time(item.get("time"), "time")
    mgdl = item.get("mgdl")
    if when is None or isinstance(mgdl, bool) or not isinstance(mgdl, int):
        raise _ControlError(400, "each reading needs a time and an integer mgdl")
    available = (
        _optional_time(item["available_at"], "available_at")
        if "available_at" in item
        else default_available
    )
    try:
        return Reading(when, mgdl, _trend(item.get("trend", "Flat"))), available
    except ValueError as error:
        raise _ControlError(400, str(error)) from None


def _reading_json(published: PublishedReading, now: datetime) -> dict[str, object]:
    reading = published.reading
    return {
        "time": reading.time.isoformat(),
        "mgdl": reading.mgdl,
        "trend": reading.trend.wire_name,
        "available_at": published.available_at.isoformat(),
        "available": published.available_at <= now,
    }
