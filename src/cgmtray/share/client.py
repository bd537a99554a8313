"""ShareClient: sign-in with a cached account id, session reuse and renewal, reads (protocol 7)."""

from __future__ import annotations

import http.client
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, NoReturn

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from cgmtray import __version__
from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.readings import Reading
from cgmtray.domain.server_clock import ServerClock
from cgmtray.domain.sign_in_gate import Decision
from cgmtray.share import wire
from cgmtray.share.deadline import DeadlineAdapter, RequestDeadline
from cgmtray.share.errors import (
    AccountLocked,
    CredentialsRejected,
    InvalidArgument,
    InvalidRequestError,
    InvalidResponse,
    MalformedSessionRejected,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ResponseTooLarge,
    ServiceUnavailable,
    SessionExpired,
    SessionRejectedAfterRelogin,
    ShareError,
    SignInBlocked,
    ZeroIdReturned,
    error_for_code,
    parse_retry_after,
)
from cgmtray.share.followers import FollowerSummary, parse_followers
from cgmtray.share.gate import SignInGate, outcome_of, refusal
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LIST_SUBSCRIPTIONS,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    SERVICES_PATH,
    Region,
)
from cgmtray.share.urls import EXAMPLE_SHARE_URL, share_url_problem

_log = logging.getLogger(__name__)

#: Bounds of a read window (protocol 2.1: stay within 1..1440 minutes and 1..288 readings).
MIN_MINUTES: Final = 1
MAX_MINUTES: Final = 1440
MIN_COUNT: Final = 1
MAX_COUNT: Final = 288
#: A session older than this is renewed before the next read (protocol 7.2).
SESSION_RENEW_AGE: Final = timedelta(hours=23)
#: A body larger than this is not read to the end (a full day, 288 readings, is about 60 KB).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: Bytes read from a body at a time.
_BODY_CHUNK_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class CallCounts:
    """The HTTP requests one public call made, by kind (for the scheduler's budgets)."""

    reads: int = 0
    sign_ins: int = 0
    #: ListPublisherAccountSubscriptions requests (they count in the read budget).
    follower_lists: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.sign_ins + self.follower_lists


@dataclass(frozen=True)
class ClientConfig:
    """Where and as whom to sign in. Holds no password (that is given to the client alone)."""

    region: Region
    username: str
    base_url: str | None = None  # override (tests/demo); None -> region.base_url
    account_id: str | None = None  # a previously learned account id
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    #: The whole request (connect, headers, body) ends by then, however slowly bytes arrive.
    deadline_s: float = 45.0
    user_agent: str = f"cgm-tray/{__version__} (+https://github.com/cgmtray/cgm-tray)"

    def __repr__(self) -> str:
        return (
            f"ClientConfig(region={self.region.value!r}, "
            f"base_url={'override' if self.base_url else 'default'}, "
            f"account_id={'known' if self.account_id else 'unknown'})"
        )


def validate_share_url(url: str) -> str:
    """`url` if it may replace the region's Share URL (the rule of `share.urls`), else
    InvalidRequestError: credentials are only ever sent to the real region hosts or to this
    computer."""
    problem = share_url_problem(url)
    if problem is not None:
        raise InvalidRequestError(
            "the Share URL override must be http(s)://<loopback host>:<port>" + SERVICES_PATH,
            user_message=(
                f"{problem} The Share URL must point to this computer (127.0.0.1, ::1 or "
                f"localhost), for example {EXAMPLE_SHARE_URL}"
            ),
        )
    return url


def _check_window(minutes: int, max_count: int) -> None:
    for name, value, low, high in (
        ("minutes", minutes, MIN_MINUTES, MAX_MINUTES),
        ("max_count", max_count, MIN_COUNT, MAX_COUNT),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidRequestError(f"{name} must be a whole number in {low}..{high}")


def _check_timeout(name: str, seconds: float) -> None:
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise InvalidRequestError(f"{name} must be a positive number of seconds")


class ShareClient:
    """A Dexcom Share client for one account. No network I/O until the first call.

    Sign-in is AuthenticatePublisherAccount (only while the account id is unknown) then
    LoginPublisherAccountById. The session is reused until the server rejects it or it is 23 h
    old. A session error on a read costs exactly one re-login and one retried read; a second
    session error raises SessionRejectedAfterRelogin (class TRANSIENT). Rejected credentials or a
    lockout block every later sign-in (SignInBlocked, no request) until `allow_sign_in()`.

    Every request ends within `config.deadline_s` (RequestTimedOut) and reads at most
    MAX_BODY_BYTES (ResponseTooLarge). Each answer's Date goes to `server_clock` (a ServerClock
    on `clock` if not given; pass one to share Share's clock with the rest of the app).
    """

    def __init__(
        self,
        config: ClientConfig,
        password: str,
        *,
        clock: Clock | None = None,
        session: requests.Session | None = None,
        server_clock: ServerClock | None = None,
        gate: SignInGate | None = None,
    ) -> None:
        if not isinstance(config.username, str) or not config.username.strip():
            raise InvalidRequestError(
                "username is empty",
                user_message="Enter the Dexcom username, e-mail or phone number.",
            )
        if not isinstance(password, str) or not password:
            raise InvalidRequestError(
                "password is empty", user_message="Enter the Dexcom password."
            )
        _check_timeout("connect_timeout_s", config.connect_timeout_s)
        _check_timeout("read_timeout_s", config.read_timeout_s)
        _check_timeout("deadline_s", config.deadline_s)
        if config.base_url is not None:
            self._base_url = validate_share_url(config.base_url)
        else:
            self._base_url = config.region.base_url
        self._config = config
        self._password = password
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._owns_http = session is None
        self._http = session if session is not None else requests.Session()
        if self._owns_http and config.base_url is not None:
            self._http.trust_env = False  # loopback: no proxies from the environment
        # Mounted for this client's URL only, also on a session the caller gave: its
        # connections let the request deadline end a request that trickles in. A transport the
        # caller mounted on purpose (a test's HTTPAdapter subclass) is left in place.
        if type(self._http.get_adapter(self._base_url)) is HTTPAdapter:
            self._http.mount(self._base_url, DeadlineAdapter())
        self._account_id: str | None = None
        if config.account_id is not None:
            try:
                self._account_id = wire.parse_id(config.account_id)
            except wire.WireFormatError:
                _log.warning("ignoring a stored account id that is not a valid id")
        self._session_id: str | None = None
        self._session_started: datetime | None = None
        self._blocked_by: ShareError | None = None
        self._server_clock = server_clock if server_clock is not None else ServerClock(self._clock)
        self._answer_date: datetime | None = None
        #: The shared sign-in gate (rejections, locks, the sign-in budget of every process).
        self._gate = gate
        self._last_call = CallCounts()
        self._sign_in_count = 0

    # --- public API ----------------------------------------------------------------------------

    @property
    def region(self) -> Region:
        return self._config.region

    @property
    def account_id(self) -> str | None:
        """The account id learned from Authenticate (or given); persist it, it is stable."""
        return self._account_id

    @property
    def has_session(self) -> bool:
        return self._session_id is not None

    @property
    def sign_in_blocked(self) -> ShareError | None:
        """The credentials / lockout error that stopped sign-ins, until `allow_sign_in()`."""
        return self._blocked_by

    @property
    def server_clock(self) -> ServerClock:
        """Share's clock as the Date headers of this client's answers steadied it; share it."""
        return self._server_clock

    @property
    def server_clock_skew(self) -> timedelta | None:
        """Server `Date` minus the local clock as `server_clock` adopted it (None: not yet)."""
        return self._server_clock.skew

    @property
    def last_request_count(self) -> int:
        """HTTP requests made by the last public call (read, latest or sign_in)."""
        return self._last_call.total

    @property
    def last_call(self) -> CallCounts:
        """The requests of the last public call, reads and sign-ins apart."""
        return self._last_call

    def read(self, minutes: int = 10, max_count: int = 1) -> tuple[Reading, ...]:
        """Readings of the last `minutes`, at most `max_count`, newest first; `()` if none."""
        self._last_call = CallCounts()
        _check_window(minutes, max_count)
        if self._session_id is not None and self._session_is_old():
            self._drop_session()
        if self._session_id is None:
            # A session made for this very read gets no second chance: that would be a
            # second sign-in in one call.
            self._sign_in()
            return self._read_or_give_up(minutes, max_count)
        try:
            return self._read_once(minutes, max_count)
        except SessionExpired:
            self._drop_session()
        self._sign_in()  # exactly one re-login (LoginById with the cached account id)
        return self._read_or_give_up(minutes, max_count)

    def latest(self) -> Reading | None:
        """The newest reading of the last 10 minutes, or None when there is none."""
        readings = self.read(10, 1)
        return readings[0] if readings else None

    @property
    def sign_in_count(self) -> int:
        """Successful sign-ins of this client: a new number means a new session."""
        return self._sign_in_count

    def list_followers(self) -> FollowerSummary:
        """Who follows this account (ListPublisherAccountSubscriptions, protocol 2.5): read only,
        one request on the current session. It never signs in (InvalidRequestError without a
        session) and never re-logs in: a session error is raised as it is, for the caller to
        fall back on."""
        self._last_call = CallCounts()
        session_id = self._session_id
        if session_id is None:
            raise InvalidRequestError("no session: read first")
        answer = self._post(ENDPOINT_LIST_SUBSCRIPTIONS, body={}, params={"sessionId": session_id})
        try:
            return parse_followers(answer)
        except wire.WireFormatError as exc:
            raise wire.WireFormatError(
                exc.detail, status=200, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS
            ) from None

    def sign_in(self) -> None:
        """Signs in now (Authenticate if the account id is unknown, then LoginById)."""
        self._last_call = CallCounts()
        self._sign_in()

    def allow_sign_in(self, *, credentials_changed: bool = False) -> None:
        """The user acted (changed settings, pressed retry): sign-ins may be tried again (as far
        as the shared gate allows: a lock still has to run its course)."""
        self._blocked_by = None
        if self._gate is not None:
            self._gate.user_acted(credentials_changed=credentials_changed)

    def sign_in_decision(self, *, asked: bool | None = None) -> Decision | None:
        """What a sign-in now would meet at the shared gate; None without a gate."""
        if self._gate is None:
            return None
        return self._gate.check(self._clock.now(), asked=asked)

    def close(self) -> None:
        """Forgets the session and closes the HTTP connection pool (if this client made it)."""
        self._drop_session()
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ShareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ShareClient(region={self._config.region.value!r}, "
            f"session={'yes' if self.has_session else 'no'}, "
            f"sign_in_blocked={self._blocked_by is not None})"
        )

    # --- sign-in -------------------------------------------------------------------------------

    def _sign_in(self) -> None:
        if self._blocked_by is not None:
            raise SignInBlocked(self._blocked_by)
        gate = self._gate
        if gate is not None:
            decision = gate.reserve(self._clock.now())
            if not decision.allowed:
                refused = refusal(decision)
                refused.during_sign_in = True
                raise refused
        self._drop_session()
        try:
            session_id = self._login_with_account_id()
        except ShareError as exc:
            exc.during_sign_in = True
            if isinstance(exc, CredentialsRejected | AccountLocked):
                self._blocked_by = exc
            if gate is not None:
                gate.record(self._clock.now(), outcome_of(exc))
            _log.info(
                "Share sign-in failed: %s",
                type(exc).__name__,
                extra={"event": "share.login", "outcome": type(exc).__name__},
            )
            raise
        self._session_id = session_id
        self._session_started = self._clock.now()
        self._sign_in_count += 1
        if gate is not None:
            gate.record(self._session_started, outcome_of(None))
        _log.info("Share sign-in ok", extra={"event": "share.login", "outcome": "ok"})

    def _login_with_account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self._authenticate()
            return self._login_by_id(self._account_id)
        try:
            return self._login_by_id(self._account_id)
        except (InvalidArgument, ZeroIdReturned):
            # The cached id is bad (protocol 7.2): forget it and authenticate by name, once.
            _log.warning("the stored account id was refused; signing in by name")
            self._account_id = None
        self._account_id = self._authenticate()
        return self._login_by_id(self._account_id)

    def _authenticate(self) -> str:
        body = {
            "accountName": self._config.username,
            "password": self._password,
            "applicationId": self._config.region.application_id,
        }
        return self._id_from(self._post(ENDPOINT_AUTHENTICATE, body=body), ENDPOINT_AUTHENTICATE)

    def _login_by_id(self, account_id: str) -> str:
        body = {
            "accountId": account_id,
            "password": self._password,
            "applicationId": self._config.region.application_id,
        }
        return self._id_from(self._post(ENDPOINT_LOGIN_BY_ID, body=body), ENDPOINT_LOGIN_BY_ID)

    @staticmethod
    def _id_from(answer: object, endpoint: str) -> str:
        if wire.is_zero_id(answer):
            raise ZeroIdReturned(status=200, endpoint=endpoint)
        try:
            return wire.parse_id(answer)
        except wire.WireFormatError as exc:
            raise wire.WireFormatError(exc.detail, status=200, endpoint=endpoint) from None

    # --- session -------------------------------------------------------------------------------

    def _session_is_old(self) -> bool:
        started = self._session_started
        return started is None or self._clock.now() - started >= SESSION_RENEW_AGE

    def _drop_session(self) -> None:
        self._session_id = None
        self._session_started = None

    def _read_or_give_up(self, minutes: int, max_count: int) -> tuple[Reading, ...]:
        """A read on a session made in this call: a session error now is not retried."""
        try:
            return self._read_once(minutes, max_count)
        except SessionExpired as error:
            self._drop_session()
            gave_up = SessionRejectedAfterRelogin(
                f"{type(error).__name__} right after signing in",
                code=error.code,
                status=error.status,
                endpoint=error.endpoint,
            )
            gave_up.catalogue_row = error.catalogue_row
            raise gave_up from None

    def _read_once(self, minutes: int, max_count: int) -> tuple[Reading, ...]:
        session_id = self._session_id
        if session_id is None:  # pragma: no cover - read() signs in first
            raise MalformedSessionRejected("no session")
        params = {"sessionId": session_id, "minutes": str(minutes), "maxCount": str(max_count)}
        answer = self._post(ENDPOINT_READ, body={}, params=params)
        # Share's now for refusing readings from the future: the later of the steadied clock
        # and this answer's own Date, so a local clock an hour slow on the first answer (no
        # skew adopted yet) does not refuse real readings.
        share_now = self.server_now()
        if self._answer_date is not None:
            share_now = max(share_now, self._answer_date)
        try:
            return wire.parse_readings(answer, now=share_now)
        except wire.WireFormatError as exc:
            raise wire.WireFormatError(exc.detail, status=200, endpoint=ENDPOINT_READ) from None

    # --- HTTP ----------------------------------------------------------------------------------

    def _post(
        self, endpoint: str, *, body: dict[str, str], params: dict[str, str] | None = None
    ) -> object:
        """One POST; the decoded JSON of a 2xx answer, else the matching ShareError."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self._config.user_agent,
        }
        previous = self._last_call
        if endpoint == ENDPOINT_READ:
            self._last_call = replace(previous, reads=previous.reads + 1)
        elif endpoint == ENDPOINT_LIST_SUBSCRIPTIONS:
            self._last_call = replace(previous, follower_lists=previous.follower_lists + 1)
        else:
            self._last_call = replace(previous, sign_ins=previous.sign_ins + 1)
        started = time.perf_counter()
        status: int | None = None
        self._answer_date = None
        deadline = RequestDeadline(self._config.deadline_s)
        try:
            with deadline:
                response = self._http.post(
                    self._base_url + endpoint,
                    params=params,
                    data=json.dumps(body).encode("utf-8"),
                    headers=headers,
                    timeout=(self._config.connect_timeout_s, self._config.read_timeout_s),
                    verify=True,
                    allow_redirects=False,
                    stream=True,  # the body is read below, so a failed read still closes it
                )
                try:
                    status = response.status_code
                    content = _read_body(response, endpoint)
                finally:
                    # A body that fails half-way (bad Content-Encoding, a connection closed
                    # early, too large) must not leave its socket open for the garbage collector.
                    response.close()
        except ResponseTooLarge:
            self._log_request(endpoint, status, started)
            raise
        except _BROKEN_ANSWER_ERRORS as exc:
            self._log_request(endpoint, status, started)
            if deadline.expired:
                self._raise_deadline_passed(endpoint)
            self._raise_transport_error(exc, endpoint)
        self._log_request(endpoint, status, started)
        if deadline.expired:
            # The socket was shut down under the body: what was read may look whole but is not.
            self._raise_deadline_passed(endpoint)
        self._answer_date = self._note_server_date(response.headers.get("Date"))
        try:
            return self._interpret(endpoint, response, content)
        except ShareError as exc:
            if isinstance(exc, CredentialsRejected | AccountLocked):
                self._blocked_by = exc
            raise

    @staticmethod
    def _log_request(endpoint: str, status: int | None, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        _log.info(
            "Share %s -> %s in %.0f ms",
            endpoint,
            status if status is not None else "no answer",
            elapsed_ms,
            extra={
                "event": "share.request",
                "endpoint": endpoint,
                "status": status,
                "ms": round(elapsed_ms, 1),
            },
        )

    def _raise_deadline_passed(self, endpoint: str) -> NoReturn:
        raise RequestTimedOut(
            f"no whole answer within {self._config.deadline_s:g} s", endpoint=endpoint
        ) from None

    @staticmethod
    def _raise_transport_error(exc: Exception, endpoint: str) -> NoReturn:
        # The requests exception's text holds the URL with the session id: never chain it.
        kind = type(exc).__name__
        if isinstance(exc, requests.Timeout) or (
            isinstance(exc, requests.ConnectionError)
            and exc.args
            and isinstance(exc.args[0], ReadTimeoutError)
        ):
            raise RequestTimedOut(f"no answer in time ({kind})", endpoint=endpoint) from None
        if isinstance(exc, requests.RequestException | OSError):
            raise NetworkError(f"connection failed ({kind})", endpoint=endpoint) from None
        # urllib3 / http.client errors requests did not wrap (broken chunked framing, a bad
        # status line or header): the server answered, but nothing readable.
        raise InvalidResponse(f"broken answer ({kind})", endpoint=endpoint) from None

    def _note_server_date(self, header: str | None) -> datetime | None:
        """Shows the answer's Date to Share's clock; the Date, if usable."""
        if not header:
            return None
        try:
            server_now = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if server_now.tzinfo is None:
            server_now = server_now.replace(tzinfo=UTC)
        if not wire.EARLIEST_DATE <= server_now < wire.LATEST_DATE:
            return None  # absurd: not even a candidate (and no overflow later)
        self._server_clock.observe(server_now)
        return server_now.astimezone(UTC)

    def _interpret(self, endpoint: str, response: requests.Response, content: bytes) -> object:
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.server_now())
            raise RateLimited(retry_after, status=status, endpoint=endpoint)
        decoded, ok = _decode_json(content)
        if 200 <= status < 300:
            if not ok:
                raise InvalidResponse(_describe_body(content), status=status, endpoint=endpoint)
            return decoded
        if ok and isinstance(decoded, dict) and isinstance(decoded.get("Code"), str):
            message = decoded.get("Message")
            raise error_for_code(
                decoded["Code"],
                message if isinstance(message, str) else "",
                status=status,
                endpoint=endpoint,
            )
        raise self._error_without_code(endpoint, status, content)

    @staticmethod
    def _error_without_code(endpoint: str, status: int, content: bytes) -> ShareError:
        looks_html = _looks_html(content)
        if endpoint == ENDPOINT_READ and status == 400 and not looks_html:
            return MalformedSessionRejected(status=status, endpoint=endpoint)
        if endpoint == ENDPOINT_READ and status == 403 and not looks_html:
            return MalformedSessionRejected("read forbidden", status=status, endpoint=endpoint)
        if endpoint != ENDPOINT_READ and status == 400 and not looks_html:
            return InvalidArgument(
                "the service rejected the request", status=status, endpoint=endpoint
            )
        if status >= 500:
            return ServiceUnavailable(_describe_body(content), status=status, endpoint=endpoint)
        return InvalidResponse(
            "unexpected status; " + _describe_body(content), status=status, endpoint=endpoint
        )

    def server_now(self) -> datetime:
        """Share's clock, as best known: ours plus the skew its Date headers agreed on."""
        return self._server_clock.now()


#: What reading an answer can raise besides a ShareError: requests' own errors, and the
#: urllib3 / http.client / socket / framing errors it lets through (never a traceback).
_BROKEN_ANSWER_ERRORS: Final = (
    requests.RequestException,
    Urllib3Error,
    http.client.HTTPException,
    OSError,
    ValueError,
)


def _read_body(response: requests.Response, endpoint: str) -> bytes:
    """The body, read in chunks that stop at MAX_BODY_BYTES (never `response.content`)."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ResponseTooLarge(
            f"Content-Length over {MAX_BODY_BYTES} bytes",
            status=response.status_code,
            endpoint=endpoint,
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_BODY_CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ResponseTooLarge(
                f"body over {MAX_BODY_BYTES} bytes", status=response.status_code, endpoint=endpoint
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_json(content: bytes) -> tuple[object, bool]:
    """(value, True) for a JSON body, (None, False) for anything else."""
    try:
        return json.loads(content.decode("utf-8")), True
    except (ValueError, RecursionError):
        return None, False


def _looks_html(content: bytes) -> bool:
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml"))


def _describe_body(content: bytes) -> str:
    if not content.strip():
        return "empty body"
    if _looks_html(content):
        return "HTML body"
    return f"body is not JSON ({len(content)} bytes)"
