"""The rules of the fake Share service behind its HTTP front: accounts, sessions, lockout, reads."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from cgmtray.domain.clock import Clock, require_aware_utc
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.fakeshare.bodies import (
    BAD_REQUEST_TEXT,
    JSON_TYPE,
    TEXT_TYPE,
    ZERO_UUID,
    SubCodeStyle,
    epoch_ms,
    error_body,
    from_epoch_ms,
    json_bytes,
    reading_object,
)
from cgmtray.fakeshare.counters import ZERO_UUID_CODE
from cgmtray.fakeshare.followers import (
    DEFAULT_FOLLOWER_NAME,
    DEFAULT_PERMISSIONS,
    Follower,
    FollowerError,
    FollowerList,
)
from cgmtray.fakeshare.sensor import PublishedReading, SimulatedSensor
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_CONTACT_EXISTS,
    ENDPOINT_CREATE_CONTACT,
    ENDPOINT_CREATE_INVITATION,
    ENDPOINT_DELETE_CONTACT,
    ENDPOINT_IS_MONITORING,
    ENDPOINT_LIST_SUBSCRIPTIONS,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_LOGIN_BY_NAME,
    ENDPOINT_POST_EGVS,
    ENDPOINT_READ,
    ENDPOINT_START_MONITORING,
    ENDPOINT_STOP_MONITORING,
    ENDPOINT_SYSTEM_UTC_TIME,
    Region,
)

logger = logging.getLogger(__name__)

CredentialErrorStyle = Literal["2025", "2024"]

#: Endpoint -> the HTTP method it answers.
ENDPOINT_METHODS: Final[Mapping[str, str]] = {
    ENDPOINT_AUTHENTICATE: "POST",
    ENDPOINT_LOGIN_BY_ID: "POST",
    ENDPOINT_LOGIN_BY_NAME: "POST",
    ENDPOINT_READ: "POST",
    ENDPOINT_SYSTEM_UTC_TIME: "GET",
    ENDPOINT_POST_EGVS: "POST",
    ENDPOINT_START_MONITORING: "POST",
    ENDPOINT_STOP_MONITORING: "POST",
    ENDPOINT_IS_MONITORING: "POST",
    ENDPOINT_CONTACT_EXISTS: "POST",
    ENDPOINT_CREATE_CONTACT: "POST",
    ENDPOINT_CREATE_INVITATION: "POST",
    ENDPOINT_LIST_SUBSCRIPTIONS: "POST",
    ENDPOINT_DELETE_CONTACT: "POST",
}

MAX_MINUTES: Final = 1440
MAX_COUNT: Final = 288

PASSWORD_INVALID_MESSAGE: Final = "Publisher account password failed"
LOCKED_MESSAGE: Final = (
    "Maximum authentication attempts exceeded. The publisher account is temporarily locked."
)
MISSING_FIELDS_PREFIX: Final = "Missing required field(s): "
BAD_JSON_MESSAGE: Final = (
    MISSING_FIELDS_PREFIX + "JSON parse error: Unexpected character in the request body"
)

_UUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DATE_PATTERN = re.compile(r"Date\((-?\d+)([+-]\d{4})?\)")


@dataclass(frozen=True)
class Request:
    """One HTTP request, reduced to what the rules need. Query keys are lower-cased."""

    region: Region
    endpoint: str
    query: Mapping[str, str] = field(repr=False)  # carries session ids
    body: bytes = field(repr=False)  # carries passwords


@dataclass(frozen=True)
class Reply:
    """An HTTP answer. `error` adds the no-cache headers; `code` is what the counters record."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    error: bool = False
    code: str = ""
    chunked: bool = False
    headers: tuple[tuple[str, str], ...] = ()


class _AbortError(Exception):
    """Stops handling a request with this reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.code)
        self.reply = reply


@dataclass
class _Account:
    username: str
    password: str
    account_id: str
    published: dict[datetime, PublishedReading] = field(default_factory=dict)
    removed: set[datetime] = field(default_factory=set)
    sensors: list[SimulatedSensor] = field(default_factory=list)
    monitoring_serial: str | None = None
    followers: FollowerList = field(default_factory=FollowerList)

    def __repr__(self) -> str:  # never show the password or the id
        return "_Account(<redacted>)"


@dataclass
class _Session:
    region: Region
    account_key: str
    created_at: datetime
    forced_expired: bool = False

    def __repr__(self) -> str:
        return f"_Session(region={self.region.value}, created_at={self.created_at.isoformat()})"


@dataclass
class _Attempts:
    failures: int = 0
    locked_until: datetime | None = None


def account_key(username: str) -> str:
    """Usernames (emails, names, phone numbers) are matched without regard to case."""
    return username.strip().casefold()


def is_uuid(text: str) -> bool:
    return _UUID_PATTERN.fullmatch(text) is not None


class ShareService:
    """All the state of the fake service, behind one lock shared with the HTTP front."""

    def __init__(
        self,
        clock: Clock,
        *,
        regions: Iterable[Region],
        session_ttl: timedelta,
        lockout_after: int,
        lockout_period: timedelta,
        credential_error_style: CredentialErrorStyle,
        subcode_style: SubCodeStyle,
        lock: threading.RLock,
    ) -> None:
        self.lock = lock
        self.clock = clock
        self.regions = tuple(regions)
        self.session_ttl = session_ttl
        self.lockout_after = lockout_after
        self.lockout_period = lockout_period
        self.credential_error_style: CredentialErrorStyle = credential_error_style
        self.subcode_style: SubCodeStyle = subcode_style
        self.legacy_format = False
        self._accounts: dict[Region, dict[str, _Account]] = {r: {} for r in Region}
        self._sessions: dict[Region, dict[str, _Session]] = {r: {} for r in Region}
        self._attempts: dict[tuple[Region, str], _Attempts] = {}
        #: Every account id and session id ever handed out, in order (for secrets checks).
        self._issued_account_ids: list[str] = []
        self._issued_session_ids: list[str] = []

    def now(self) -> datetime:
        return require_aware_utc(self.clock.now())

    # -- administration (called by FakeShare under the lock) ----------------------------------

    def add_account(
        self, region: Region, username: str, password: str, account_id: str | None
    ) -> str:
        if account_id is not None and (not is_uuid(account_id) or account_id == ZERO_UUID):
            raise ValueError("account_id must be a non-zero UUID")
        key = account_key(username)
        if not key:
            raise ValueError("username must not be empty")
        with self.lock:
            now = self.now()
            existing = self._accounts[region].get(key)
            if existing is not None:
                existing.password = password
                if account_id is not None:
                    existing.account_id = account_id.lower()
                return existing.account_id
            new_id = (account_id or str(uuid.uuid4())).lower()
            account = _Account(username, password, new_id)
            # Every new account has one follower who accepted, so reads flow as they always
            # have here; tests take it away for "Share on, nobody follows".
            default = account.followers.create(DEFAULT_FOLLOWER_NAME, "follower@example.com", now)
            account.followers.invite(default.contact_id, now, display_name=username)
            account.followers.accept(default.contact_id, now)
            self._accounts[region][key] = account
            return new_id

    def account(self, region: Region, username: str) -> _Account:
        found = self._accounts[region].get(account_key(username))
        if found is None:
            raise KeyError(f"no account with that username in region {region.value}")
        return found

    def attach_sensor(self, region: Region, username: str, sensor: SimulatedSensor) -> None:
        with self.lock:
            self.account(region, username).sensors.append(sensor)

    def publish(self, region: Region, username: str, published: PublishedReading) -> None:
        with self.lock:
            account = self.account(region, username)
            account.published[published.reading.time] = published
            account.removed.discard(published.reading.time)

    def remove_reading(self, region: Region, username: str, when: datetime) -> None:
        when = require_aware_utc(when)
        with self.lock:
            account = self.account(region, username)
            account.published.pop(when, None)
            account.removed.add(when)

    def add_follower(
        self, region: Region, username: str, name: str, *, accepted: bool, email: str
    ) -> Follower:
        """A contact with an invitation, accepted or still pending."""
        with self.lock:
            account = self.account(region, username)
            now = self.now()
            follower = account.followers.create(name, email, now)
            account.followers.invite(follower.contact_id, now, display_name=account.username)
            if accepted:
                account.followers.accept(follower.contact_id, now)
            return follower

    def accept_follower(self, region: Region, username: str, name: str) -> Follower:
        with self.lock:
            followers = self.account(region, username).followers
            return followers.accept(followers.by_name(name).contact_id, self.now())

    def remove_followers(self, region: Region, username: str, name: str | None) -> int:
        """Removes the follower named `name`, or every one (None); how many went."""
        with self.lock:
            followers = self.account(region, username).followers
            if name is None:
                return followers.clear()
            followers.delete(followers.by_name(name).contact_id)
            return 1

    def followers(self, region: Region, username: str) -> list[Follower]:
        with self.lock:
            return self.account(region, username).followers.all()

    def expire_sessions(self, region: Region | None) -> None:
        with self.lock:
            for session_region, sessions in self._sessions.items():
                if region is None or region is session_region:
                    for session in sessions.values():
                        session.forced_expired = True

    def lock_account(self, region: Region, username: str) -> None:
        with self.lock:
            attempts = self._attempts.setdefault((region, account_key(username)), _Attempts())
            attempts.locked_until = self.now() + self.lockout_period

    def unlock_account(self, region: Region, username: str) -> None:
        with self.lock:
            self._attempts.pop((region, account_key(username)), None)

    def is_locked(self, region: Region, username: str) -> bool:
        with self.lock:
            attempts = self._attempts.get((region, account_key(username)))
            return (
                attempts is not None
                and attempts.locked_until is not None
                and self.now() < attempts.locked_until
            )

    def session_count(self, region: Region | None = None) -> int:
        with self.lock:
            return sum(
                len(sessions)
                for session_region, sessions in self._sessions.items()
                if region is None or region is session_region
            )

    def issued_ids(self) -> tuple[list[str], list[str]]:
        """(account ids, session ids): every id handed out in any region, and every account's
        own id even if never asked for; each once, in the order first seen."""
        with self.lock:
            held = [a.account_id for accounts in self._accounts.values() for a in accounts.values()]
            accounts = list(dict.fromkeys([*self._issued_account_ids, *held]))
            return accounts, list(dict.fromkeys(self._issued_session_ids))

    def readings_for(
        self, region: Region, username: str, minutes: int, max_count: int
    ) -> list[PublishedReading]:
        """What a read of `minutes` / `max_count` would return now, newest first."""
        with self.lock:
            return self._window(self.account(region, username), minutes, max_count)

    def all_readings(
        self, region: Region, username: str, since: datetime, until: datetime | None
    ) -> list[PublishedReading]:
        """Every reading the account holds from `since` on, visible yet or not, newest first:
        the sensors' up to `until` (default: now), published ones up to `until` (default: all)."""
        since = require_aware_utc(since)
        with self.lock:
            account = self.account(region, username)
            sensor_end = require_aware_utc(until) if until is not None else self.now()
            merged: dict[datetime, PublishedReading] = {}
            for sensor in account.sensors:
                for published in sensor.readings_between(
                    since, sensor_end + timedelta(microseconds=1)
                ):
                    merged[published.reading.time] = published
            for when, published in account.published.items():
                if since <= when and (until is None or when <= until):
                    merged[when] = published
            found = [p for when, p in merged.items() if when not in account.removed]
        found.sort(key=lambda p: p.reading.time, reverse=True)
        return found

    # -- requests -----------------------------------------------------------------------------

    def account_of(self, request: Request) -> str | None:
        """Whose request this is, for the counters: the username key a sign-in names (by name,
        or the owner of the account id it gives), else the account of the session it carries;
        None when unknown (no such account id, no or an unknown session, a body not JSON)."""
        try:
            payload = self._json_object(request.body, required=False)
        except _AbortError:
            payload = {}
        with self.lock:
            if request.endpoint in (ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_NAME):
                name = _lookup(payload, "accountName")
                key = account_key(name) if isinstance(name, str) else ""
                return key or None
            if request.endpoint == ENDPOINT_LOGIN_BY_ID:
                account_id = _lookup(payload, "accountId")
                if not isinstance(account_id, str) or not is_uuid(account_id):
                    return None
                return self._owner_of(request.region, account_id)
            session_id = self._param("sessionId", request.query, payload)
            if not isinstance(session_id, str):
                return None
            session = self._sessions[request.region].get(session_id.strip().lower())
            return session.account_key if session is not None else None

    def handle(self, request: Request) -> Reply:
        """Answers one request to a known endpoint (the method is already checked)."""
        handlers = {
            ENDPOINT_AUTHENTICATE: self._authenticate,
            ENDPOINT_LOGIN_BY_ID: self._login_by_id,
            ENDPOINT_LOGIN_BY_NAME: self._login_by_name,
            ENDPOINT_READ: self._read,
            ENDPOINT_SYSTEM_UTC_TIME: self._system_utc_time,
            ENDPOINT_POST_EGVS: self._post_egvs,
            ENDPOINT_START_MONITORING: self._start_monitoring,
            ENDPOINT_STOP_MONITORING: self._stop_monitoring,
            ENDPOINT_IS_MONITORING: self._is_monitoring,
            ENDPOINT_CONTACT_EXISTS: self._contact_exists,
            ENDPOINT_CREATE_CONTACT: self._create_contact,
            ENDPOINT_CREATE_INVITATION: self._create_invitation,
            ENDPOINT_LIST_SUBSCRIPTIONS: self._list_subscriptions,
            ENDPOINT_DELETE_CONTACT: self._delete_contact,
        }
        with self.lock:
            try:
                return handlers[request.endpoint](request)
            except _AbortError as abort:
                return abort.reply
            except FollowerError as refused:
                return self._fault_reply(refused.code, refused.message)
            except Exception as error:  # a bug here must not hang or crash the client's request
                logger.debug("fake share: %s failed: %s", request.endpoint, type(error).__name__)
                return self._fault_reply("InternalError", "An unexpected error occurred.")

    # sign-in

    def _authenticate(self, request: Request) -> Reply:
        fields = self._sign_in_fields(request, "accountName")
        name, password, application_id = fields
        key = account_key(name)
        self._refuse_if_locked(request.region, key)
        account = self._accounts[request.region].get(key)
        if (
            account is None
            or account.password != password
            or not self._accepts_application(request.region, application_id)
        ):
            self._count_failure(request.region, key)
            return self._credentials_rejected("AccountName", name)
        self._count_success(request.region, key)
        self._issued_account_ids.append(account.account_id)
        return Reply(200, json_bytes(account.account_id))

    def _login_by_id(self, request: Request) -> Reply:
        account_id, password, application_id = self._sign_in_fields(request, "accountId")
        if account_id == "" or account_id == ZERO_UUID:
            return Reply(200, json_bytes(ZERO_UUID), code=ZERO_UUID_CODE)
        if not is_uuid(account_id):
            raise _AbortError(self._invalid_argument(_uuid_parse_message(account_id)))
        owner_key = self._owner_of(request.region, account_id)
        if owner_key is not None:
            self._refuse_if_locked(request.region, owner_key)
        account = self._accounts[request.region].get(owner_key) if owner_key else None
        if (
            account is None
            or owner_key is None
            or account.password != password
            or not self._accepts_application(request.region, application_id)
        ):
            if owner_key is not None:
                self._count_failure(request.region, owner_key)
            return self._credentials_rejected("AccountId", account_id)
        self._count_success(request.region, owner_key)
        session_id = str(uuid.uuid4())
        self._sessions[request.region][session_id] = _Session(request.region, owner_key, self.now())
        self._issued_session_ids.append(session_id)
        return Reply(200, json_bytes(session_id))

    def _login_by_name(self, request: Request) -> Reply:
        """The real service still answers the pre-2021 sign-in by name with 200 and the all-zero
        UUID as a JSON string, whatever the credentials (2020-21 logs, protocol 2.6 and 3): "no"
        without an error. It opens no session; the counters count it as a sign-in request."""
        del request
        return Reply(200, json_bytes(ZERO_UUID), code=ZERO_UUID_CODE)

    def _sign_in_fields(self, request: Request, id_field: str) -> tuple[str, str, str]:
        payload = self._json_object(request.body, required=True)
        names = (id_field, "password", "applicationId")
        missing = [name for name in names if payload.get(name) is None]
        if missing:
            raise _AbortError(self._invalid_argument(MISSING_FIELDS_PREFIX + ", ".join(missing)))
        values: list[str] = []
        for name in names:
            value = payload[name]
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                if name == id_field == "accountId" or name == "applicationId":
                    raise _AbortError(self._invalid_argument(_uuid_parse_message(value)))
                raise _AbortError(
                    self._invalid_argument(
                        f"{MISSING_FIELDS_PREFIX}JSON parse error: Cannot deserialize value of "
                        f"type `java.lang.String` from {type(value).__name__} ({name})"
                    )
                )
            values.append(str(value))
        return values[0], values[1], values[2]

    def _owner_of(self, region: Region, account_id: str) -> str | None:
        wanted = account_id.lower()
        for key, account in self._accounts[region].items():
            if account.account_id == wanted:
                return key
        return None

    def _accepts_application(self, region: Region, application_id: str) -> bool:
        return application_id.lower() in region.accepted_application_ids

    def _refuse_if_locked(self, region: Region, key: str) -> None:
        attempts = self._attempts.get((region, key))
        if attempts is None or attempts.locked_until is None:
            return
        now = self.now()
        if now < attempts.locked_until:
            attempts.locked_until = now + self.lockout_period
            locked = self._fault_reply("SSO_AuthenticateMaxAttemptsExceeded", LOCKED_MESSAGE)
            raise _AbortError(locked)
        attempts.locked_until = None
        attempts.failures = 0

    def _count_failure(self, region: Region, key: str) -> None:
        attempts = self._attempts.setdefault((region, key), _Attempts())
        attempts.failures += 1
        if 0 < self.lockout_after <= attempts.failures:
            attempts.failures = 0
            attempts.locked_until = self.now() + self.lockout_period

    def _count_success(self, region: Region, key: str) -> None:
        self._attempts.pop((region, key), None)

    def _credentials_rejected(self, kind: Literal["AccountName", "AccountId"], who: str) -> Reply:
        if self.credential_error_style == "2024":
            message = (
                "Synchronization of SSO account during authenticate call failed Time out issue.  "
                f"{kind}={who} Error encountered accessing Keycloak endpoint: UAM_ERROR: "
                f"HttpStatus='401 UNAUTHORIZED(401)' Msg=Cannot Authenticate by {kind}='{who}'"
            )
            return self._fault_reply("SSO_InternalError", message)
        return self._fault_reply("AccountPasswordInvalid", PASSWORD_INVALID_MESSAGE)

    # reads

    def _read(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        minutes = self._int_param("minutes", request.query, payload)
        max_count = self._int_param("maxCount", request.query, payload)
        window = self._window(account, min(minutes, MAX_MINUTES), min(max_count, MAX_COUNT))
        legacy = self.legacy_format
        objects = [reading_object(p, legacy=legacy) for p in window]
        return Reply(200, json_bytes(objects, escape_slashes=legacy), chunked=True)

    def _window(self, account: _Account, minutes: int, max_count: int) -> list[PublishedReading]:
        # Readings only flow once someone follows (protocol 2.5): an account with Share on and
        # no accepted follower reads `[]` (section 4, row 11).
        if minutes <= 0 or max_count <= 0 or not account.followers.following():
            return []
        now = self.now()
        begin = now - timedelta(minutes=minutes)
        merged: dict[datetime, PublishedReading] = {}
        for sensor in account.sensors:
            for published in sensor.readings_between(begin, now + timedelta(microseconds=1)):
                merged[published.reading.time] = published
        for when, published in account.published.items():
            if begin <= when <= now:
                merged[when] = published
        visible = [
            p for when, p in merged.items() if when not in account.removed and p.available_at <= now
        ]
        visible.sort(key=lambda p: p.reading.time, reverse=True)
        return visible[:max_count]

    def _session_account(self, request: Request, payload: Mapping[str, object]) -> _Account:
        raw = self._param("sessionId", request.query, payload)
        session_id = "" if raw is None else str(raw).strip()
        if not session_id:
            raise _AbortError(Reply(403, b"Forbidden", TEXT_TYPE, error=True, code="Forbidden"))
        if not is_uuid(session_id):
            raise _AbortError(
                Reply(400, BAD_REQUEST_TEXT.encode(), TEXT_TYPE, error=True, code="BadRequest")
            )
        if session_id == ZERO_UUID:
            raise _AbortError(Reply(200, b"", JSON_TYPE, code=ZERO_UUID_CODE))
        session = self._sessions[request.region].get(session_id.lower())
        if session is None:
            raise _AbortError(
                self._fault_reply(
                    "SessionIdNotFound",
                    f"Failed to find session object. [SessionId = {session_id}]",
                )
            )
        expired = session.forced_expired or self.now() - session.created_at >= self.session_ttl
        if expired:
            raise _AbortError(
                self._fault_reply(
                    "SessionNotValid",
                    f"Session not active or timed out. [SessionId = {session_id}]",
                )
            )
        account = self._accounts[session.region].get(session.account_key)
        if account is None:  # the account was removed after sign-in
            raise _AbortError(
                self._fault_reply(
                    "SessionIdNotFound",
                    f"Failed to find session object. [SessionId = {session_id}]",
                )
            )
        return account

    def _int_param(self, name: str, query: Mapping[str, str], payload: Mapping[str, object]) -> int:
        """An int from the query (400 if malformed) or the body (InvalidArgument); 0 if absent."""
        in_query = query.get(name.lower())
        if in_query is not None:
            try:
                return int(in_query.strip())
            except ValueError:
                raise _AbortError(
                    Reply(400, BAD_REQUEST_TEXT.encode(), TEXT_TYPE, error=True, code="BadRequest")
                ) from None
        value = _lookup(payload, name)
        if value is None:
            return 0
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise _AbortError(
            self._invalid_argument(
                f"{MISSING_FIELDS_PREFIX}JSON parse error: Cannot deserialize value of type "
                f"`int` ({name})"
            )
        )

    def _param(
        self, name: str, query: Mapping[str, str], payload: Mapping[str, object]
    ) -> object | None:
        in_query = query.get(name.lower())
        if in_query is not None:
            return in_query
        return _lookup(payload, name)

    # general and uploader endpoints

    def _system_utc_time(self, request: Request) -> Reply:
        body = {"DateTime": f"/Date({epoch_ms(self.now())})/", "OffsetMinutes": 0}
        return Reply(200, json_bytes(body, escape_slashes=True))

    def _post_egvs(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=True)
        account = self._session_account(request, payload)
        egvs = payload.get("Egvs")
        if not isinstance(egvs, list):
            raise _AbortError(self._invalid_argument(MISSING_FIELDS_PREFIX + "Egvs"))
        now = self.now()
        parsed = [_egv_reading(egv, now) for egv in egvs]
        if any(item is None for item in parsed):
            raise _AbortError(
                self._invalid_argument(
                    f"{MISSING_FIELDS_PREFIX}JSON parse error: invalid EGV record (Egvs)"
                )
            )
        for published in parsed:
            if published is not None:
                account.published[published.reading.time] = published
                account.removed.discard(published.reading.time)
        return Reply(200, b"", None)

    def _start_monitoring(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        serial = self._param("serialNumber", request.query, payload)
        if serial is None or not str(serial).strip():
            raise _AbortError(self._invalid_argument(MISSING_FIELDS_PREFIX + "serialNumber"))
        account.monitoring_serial = str(serial).strip()
        return Reply(200, b"", None)

    def _stop_monitoring(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        self._session_account(request, payload).monitoring_serial = None
        return Reply(200, b"", None)

    def _is_monitoring(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        active = self._session_account(request, payload).monitoring_serial is not None
        return Reply(200, json_bytes(active))

    # the publisher's follower list (protocol 2.5): POST, sessionId and the other arguments in the
    # query. As the read does, each argument is also taken from a JSON body (the doc is silent).

    def _contact_exists(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        name = self._text_param("contactName", request, payload)
        return Reply(200, json_bytes(account.followers.exists(name)))

    def _create_contact(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        name = self._text_param("contactName", request, payload)
        email = self._text_param("emailAddress", request, payload)
        if "@" not in email.strip("@"):
            # [synthetic] the doc is silent on a malformed address.
            raise _AbortError(
                self._invalid_argument("Invalid field(s): emailAddress is not an e-mail address")
            )
        follower = account.followers.create(name, email, self.now())
        return Reply(200, json_bytes(follower.contact_id))

    def _create_invitation(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=True)
        account = self._session_account(request, payload)
        contact_id = self._contact_id(request, payload)
        permissions = _lookup(payload, "Permissions")
        if permissions is None:
            permissions = DEFAULT_PERMISSIONS
        if isinstance(permissions, bool) or not isinstance(permissions, int):
            raise _AbortError(self._parse_error("int", "Permissions"))
        display_name = _lookup(payload, "DisplayName")
        if display_name is None:
            display_name = account.username
        if not isinstance(display_name, str):
            raise _AbortError(self._parse_error("java.lang.String", "DisplayName"))
        alert_settings = _lookup(payload, "AlertSettings")
        if alert_settings is not None and not isinstance(alert_settings, dict):
            raise _AbortError(self._parse_error("AlertSettings", "AlertSettings"))
        follower = account.followers.invite(
            contact_id,
            self.now(),
            permissions=permissions,
            display_name=display_name,
            alert_settings=alert_settings,
        )
        return Reply(200, json_bytes(follower.subscription_id))

    def _list_subscriptions(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        return Reply(200, json_bytes(account.followers.subscriptions(), escape_slashes=True))

    def _delete_contact(self, request: Request) -> Reply:
        payload = self._json_object(request.body, required=False)
        account = self._session_account(request, payload)
        account.followers.delete(self._contact_id(request, payload))
        return Reply(200, b"", None)

    def _text_param(self, name: str, request: Request, payload: Mapping[str, object]) -> str:
        value = self._param(name, request.query, payload)
        if value is None or not str(value).strip():
            raise _AbortError(self._invalid_argument(MISSING_FIELDS_PREFIX + name))
        if not isinstance(value, str):
            raise _AbortError(self._parse_error("java.lang.String", name))
        return value.strip()

    def _contact_id(self, request: Request, payload: Mapping[str, object]) -> str:
        value = self._param("contactId", request.query, payload)
        if value is None or value == "":
            raise _AbortError(self._invalid_argument(MISSING_FIELDS_PREFIX + "contactId"))
        if not isinstance(value, str) or not is_uuid(value.strip()):
            raise _AbortError(self._invalid_argument(_uuid_parse_message(value)))
        return value.strip()

    def _parse_error(self, type_name: str, name: str) -> Reply:
        return self._invalid_argument(
            f"{MISSING_FIELDS_PREFIX}JSON parse error: Cannot deserialize value of type "
            f"`{type_name}` ({name})"
        )

    # bodies

    def _json_object(self, body: bytes, *, required: bool) -> Mapping[str, object]:
        """The request body as a JSON object; empty means {} unless the endpoint needs fields."""
        if not body.strip():
            if required:
                raise _AbortError(self._invalid_argument(BAD_JSON_MESSAGE))
            return {}
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _AbortError(self._invalid_argument(BAD_JSON_MESSAGE)) from None
        if not isinstance(value, dict):
            raise _AbortError(self._invalid_argument(BAD_JSON_MESSAGE))
        return value

    def _invalid_argument(self, message: str) -> Reply:
        return self._fault_reply("InvalidArgument", message)

    def _fault_reply(self, code: str, message: str) -> Reply:
        body = error_body(code, message, self.now(), subcode_style=self.subcode_style)
        return Reply(500, body, JSON_TYPE, error=True, code=code)


def _lookup(payload: Mapping[str, object], name: str) -> object | None:
    """A body field, matched without regard to case (sessionId / sessionID)."""
    wanted = name.lower()
    for key, value in payload.items():
        if key.lower() == wanted:
            return value
    return None


def _uuid_parse_message(value: object) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return (
        f"{MISSING_FIELDS_PREFIX}JSON parse error: Cannot deserialize value of type "
        f'`java.util.UUID` from String "{shown}": UUID has to be represented by standard '
        "36-char representation"
    )


def _egv_reading(egv: object, now: datetime) -> PublishedReading | None:
    """One uploaded EGV record as a published reading, or None if it is malformed."""
    if not isinstance(egv, dict):
        return None
    value = egv.get("Value")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if not LOW_MGDL <= value <= HIGH_MGDL:
        return None
    trend = _trend_of(egv.get("Trend"))
    system_time = _DATE_PATTERN.search(str(egv.get("ST", "")))
    display_time = _DATE_PATTERN.search(str(egv.get("DT", "")))
    stamp = system_time or display_time
    if trend is None or stamp is None:
        return None
    offset_minutes = 0
    if display_time is not None and display_time.group(2):
        sign = -1 if display_time.group(2)[0] == "-" else 1
        digits = display_time.group(2)[1:]
        offset_minutes = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    when = from_epoch_ms(int(stamp.group(1)))
    try:
        return PublishedReading(Reading(when, value, trend), now, offset_minutes)
    except ValueError:
        return None


def _trend_of(raw: object) -> Trend | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Trend(raw) if 0 <= raw <= 9 else None
    if isinstance(raw, str):
        wanted = raw.replace(" ", "").casefold()
        for trend in Trend:
            if trend.wire_name.casefold() == wanted:
                return trend
    return None
