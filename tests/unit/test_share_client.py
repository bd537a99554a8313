"""ShareClient against the real fake Share service over loopback HTTP: every catalogue row."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.fakeshare.server import FakeShare, Fault
from cgmtray.share.client import CallCounts, ClientConfig, ShareClient, validate_share_url
from cgmtray.share.errors import (
    AccountLocked,
    AccountPasswordInvalid,
    CredentialsRejected,
    InvalidArgument,
    InvalidRequestError,
    InvalidResponse,
    MalformedSessionRejected,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ServiceUnavailable,
    SessionRejectedAfterRelogin,
    ShareError,
    SignInBlocked,
    SsoCredentialsRejected,
    ZeroIdReturned,
)
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    SERVICES_PATH,
    Region,
)

USERNAME = "alice@example.com"
PASSWORD = "s3cret-Passw0rd!"
ACCOUNT_ID = "3f2b8c1e-7d4a-4e9b-a1c5-9e8d7c6b5a41"
START = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
UUID_SHAPE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


class TamperingSession(requests.Session):
    """A real requests session that rewrites the JSON body or query of chosen endpoints.

    It lets a test put on the wire what our client would never send (a malformed session id,
    a bad account id) and see how the client copes with the fake's real answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.body_rewrites: dict[str, Rewrite] = {}
        self.query_rewrites: dict[str, Rewrite] = {}

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        url = str(args[1] if len(args) > 1 else kwargs["url"])
        for endpoint, rewrite in self.body_rewrites.items():
            if url.endswith(endpoint):
                kwargs["data"] = json.dumps(rewrite(json.loads(kwargs["data"]))).encode()
        for endpoint, rewrite in self.query_rewrites.items():
            if url.endswith(endpoint):
                kwargs["params"] = rewrite(dict(kwargs["params"]))
        return super().request(*args, **kwargs)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _with_account(server: FakeShare) -> FakeShare:
    server.add_account(Region.US, USERNAME, PASSWORD, account_id=ACCOUNT_ID)
    return server


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        yield _with_account(server)


ClientFactory = Callable[..., ShareClient]


@pytest.fixture
def make_client(clock: ManualClock) -> Iterator[ClientFactory]:
    made: list[ShareClient] = []
    sessions: list[requests.Session] = []

    def factory(
        server: FakeShare,
        *,
        region: Region = Region.US,
        url_region: Region | None = None,
        password: str = PASSWORD,
        username: str = USERNAME,
        account_id: str | None = None,
        read_timeout_s: float = 5.0,
        session: requests.Session | None = None,
        client_clock: ManualClock | None = None,
    ) -> ShareClient:
        config = ClientConfig(
            region=region,
            username=username,
            base_url=server.base_url(url_region or region),
            account_id=account_id,
            connect_timeout_s=2.0,
            read_timeout_s=read_timeout_s,
        )
        if session is not None:
            sessions.append(session)
        client = ShareClient(config, password, clock=client_clock or clock, session=session)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()
    for session in sessions:
        session.close()


def _publish_recent(server: FakeShare, clock: ManualClock, *values: int) -> list[Reading]:
    """Readings 5 min apart, the last 2 min old, already available; returned newest first."""
    readings = []
    newest = clock.now() - timedelta(minutes=2)
    for age, mgdl in enumerate(reversed(values)):
        reading = Reading(newest - timedelta(minutes=5 * age), mgdl, Trend.FLAT)
        server.publish(Region.US, USERNAME, reading, available_at=reading.time)
        readings.append(reading)
    return readings


class Counts:
    """The fake's request counters, so a test can assert deltas per endpoint."""

    def __init__(self, server: FakeShare) -> None:
        self._server = server
        self._base = self._now()

    def _now(self) -> dict[str, int]:
        counters = self._server.counters
        return {
            "auth": counters.count(ENDPOINT_AUTHENTICATE),
            "login": counters.count(ENDPOINT_LOGIN_BY_ID),
            "read": counters.count(ENDPOINT_READ),
        }

    def delta(self) -> dict[str, int]:
        now = self._now()
        return {key: now[key] - self._base[key] for key in now}


NONE = {"auth": 0, "login": 0, "read": 0}


# --- the happy path ----------------------------------------------------------------------------


def test_no_network_until_the_first_call(fake: FakeShare, make_client: ClientFactory) -> None:
    counts = Counts(fake)
    client = make_client(fake)
    assert counts.delta() == NONE
    assert not client.has_session
    assert client.account_id is None


def test_first_read_signs_in_twice_then_reads_reuse_the_session(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    published = _publish_recent(fake, clock, 120, 125, 131)
    client = make_client(fake)
    counts = Counts(fake)

    assert client.read(minutes=30, max_count=12) == tuple(published)
    assert counts.delta() == {"auth": 1, "login": 1, "read": 1}
    assert client.last_request_count == 3
    assert client.last_call == CallCounts(reads=1, sign_ins=2)
    assert client.account_id == ACCOUNT_ID
    assert client.has_session

    assert client.latest() == published[0]
    assert client.last_request_count == 1
    assert counts.delta() == {"auth": 1, "login": 1, "read": 2}


def test_an_empty_window_is_not_an_error(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake)
    assert client.read(10, 1) == ()
    assert client.latest() is None
    assert client.has_session


def test_low_and_high_arrive_as_low_and_high(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    _publish_recent(fake, clock, LOW_MGDL, HIGH_MGDL)
    newest, older = make_client(fake).read(30, 12)
    assert newest.is_high
    assert older.is_low


def test_legacy_format_readings_parse(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    published = _publish_recent(fake, clock, 101, 99)
    fake.set_legacy_format(True)
    assert make_client(fake).read(30, 12) == tuple(published)


def test_a_known_account_id_skips_authenticate(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    _publish_recent(fake, clock, 150)
    first = make_client(fake)
    first.sign_in()
    assert first.last_request_count == 2
    counts = Counts(fake)
    second = make_client(fake, account_id=first.account_id)
    assert second.latest() is not None
    assert counts.delta() == {"auth": 0, "login": 1, "read": 1}


def test_explicit_sign_in(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake, account_id=ACCOUNT_ID)
    counts = Counts(fake)
    client.sign_in()
    assert client.has_session
    assert client.last_request_count == 1
    assert counts.delta() == {"auth": 0, "login": 1, "read": 0}


# --- sessions (rows 1, 2, 12) ------------------------------------------------------------------


def test_expired_session_costs_one_login_and_one_retried_read(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    published = _publish_recent(fake, clock, 140)
    client = make_client(fake)
    client.read()
    fake.expire_sessions()
    counts = Counts(fake)

    assert client.read() == tuple(published)
    assert counts.delta() == {"auth": 0, "login": 1, "read": 2}
    assert client.last_request_count == 3
    assert client.last_call == CallCounts(reads=2, sign_ins=1)


def test_session_timed_out_by_the_servers_clock_is_renewed_once(
    clock: ManualClock, make_client: ClientFactory
) -> None:
    with FakeShare(clock, session_ttl=timedelta(minutes=10)) as server:
        _with_account(server)
        client = make_client(server)
        client.read()
        clock.advance(timedelta(minutes=11))
        published = _publish_recent(server, clock, 88)
        counts = Counts(server)
        assert client.read() == tuple(published)
        assert counts.delta() == {"auth": 0, "login": 1, "read": 2}


def test_a_session_is_renewed_before_it_is_23_hours_old(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    client = make_client(fake)
    client.read()
    clock.advance(timedelta(hours=22, minutes=59))
    counts = Counts(fake)
    client.read()
    assert counts.delta() == {"auth": 0, "login": 0, "read": 1}
    clock.advance(timedelta(minutes=1))
    client.read()
    assert counts.delta() == {"auth": 0, "login": 1, "read": 2}


def test_a_malformed_session_is_row_12_and_a_second_failure_is_not_looped(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    client = make_client(fake, session=session)
    client.read()
    session.query_rewrites[ENDPOINT_READ] = lambda q: {**q, "sessionId": "not-a-session"}
    counts = Counts(fake)

    with pytest.raises(SessionRejectedAfterRelogin) as caught:
        client.read()
    assert caught.value.status == 400
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert counts.delta() == {"auth": 0, "login": 1, "read": 2}
    assert not client.has_session


def test_a_fresh_session_rejected_at_once_is_not_retried(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    session.query_rewrites[ENDPOINT_READ] = lambda q: {**q, "sessionId": "not-a-session"}
    client = make_client(fake, session=session)
    counts = Counts(fake)
    with pytest.raises(SessionRejectedAfterRelogin):
        client.read()
    assert counts.delta() == {"auth": 1, "login": 1, "read": 1}


def test_a_read_forbidden_for_an_empty_session_is_a_session_problem(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    published = _publish_recent(fake, clock, 111)
    session = TamperingSession()
    client = make_client(fake, session=session)
    client.read()
    tampered = {"count": 0}

    def empty_once(query: dict[str, Any]) -> dict[str, Any]:
        tampered["count"] += 1
        return {**query, "sessionId": ""} if tampered["count"] == 1 else query

    session.query_rewrites[ENDPOINT_READ] = empty_once
    counts = Counts(fake)
    assert client.read() == tuple(published)
    assert counts.delta() == {"auth": 0, "login": 1, "read": 2}


def test_the_error_type_for_a_malformed_session(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    session.query_rewrites[ENDPOINT_READ] = lambda q: {**q, "sessionId": "1234"}
    client = make_client(fake, session=session)
    with pytest.raises(SessionRejectedAfterRelogin) as caught:
        client.read()
    assert caught.value.catalogue_row == MalformedSessionRejected.catalogue_row == 12
    assert caught.value.status == 400


def test_the_zero_session_answer_is_an_unreadable_response(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    session.query_rewrites[ENDPOINT_READ] = lambda q: {
        **q,
        "sessionId": "00000000-0000-0000-0000-000000000000",
    }
    client = make_client(fake, session=session)
    with pytest.raises(InvalidResponse) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT


# --- credentials and lockout (rows 3, 4, 6, 10) ------------------------------------------------


def test_a_rejected_password_is_never_retried_automatically(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    client = make_client(fake, password="wrong-password")
    counts = Counts(fake)
    with pytest.raises(AccountPasswordInvalid) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.CREDENTIALS
    assert caught.value.catalogue_row == 3
    assert counts.delta() == {"auth": 1, "login": 0, "read": 0}

    for _ in range(10):
        with pytest.raises(SignInBlocked) as blocked:
            client.read()
        assert client.last_request_count == 0
    assert blocked.value.failure_class is FailureClass.CREDENTIALS
    assert blocked.value.user_message == AccountPasswordInvalid.user_message
    assert isinstance(client.sign_in_blocked, AccountPasswordInvalid)
    with pytest.raises(SignInBlocked):
        client.sign_in()
    assert counts.delta() == {"auth": 1, "login": 0, "read": 0}
    assert fake.counters.failed_sign_ins() == 1


def test_allow_sign_in_lifts_the_block(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake, password="wrong-password")
    with pytest.raises(CredentialsRejected):
        client.sign_in()
    client.allow_sign_in()
    assert client.sign_in_blocked is None
    counts = Counts(fake)
    with pytest.raises(CredentialsRejected):
        client.sign_in()
    assert counts.delta() == {"auth": 1, "login": 0, "read": 0}


def test_a_wrong_password_with_a_known_account_id(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    client = make_client(fake, password="wrong-password", account_id=ACCOUNT_ID)
    with pytest.raises(AccountPasswordInvalid):
        client.read()
    assert client.account_id == ACCOUNT_ID  # the id is not the problem; keep it


def test_the_wrong_region_looks_like_wrong_credentials(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    client = make_client(fake, region=Region.OUS)
    with pytest.raises(CredentialsRejected) as caught:
        client.read()
    assert "region" in caught.value.user_message


def test_the_2024_style_rejection_is_still_a_credentials_problem(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    fake.set_credential_error_style("2024")
    by_name = make_client(fake, password="wrong-password")
    with pytest.raises(SsoCredentialsRejected) as caught:
        by_name.read()
    assert caught.value.catalogue_row == 4
    assert caught.value.failure_class is FailureClass.CREDENTIALS
    by_id = make_client(fake, password="wrong-password", account_id=ACCOUNT_ID)
    with pytest.raises(SsoCredentialsRejected):
        by_id.read()


def test_a_locked_account_causes_no_sign_in_until_the_user_acts(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    fake.lock_account(Region.US, USERNAME)
    client = make_client(fake, account_id=ACCOUNT_ID)
    counts = Counts(fake)
    with pytest.raises(AccountLocked) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.LOCKED
    assert caught.value.catalogue_row == 6
    assert counts.delta() == {"auth": 0, "login": 1, "read": 0}

    for _ in range(5):
        with pytest.raises(SignInBlocked) as blocked:
            client.latest()
    assert blocked.value.failure_class is FailureClass.LOCKED
    assert "do not retry" in blocked.value.user_message
    assert counts.delta() == {"auth": 0, "login": 1, "read": 0}

    fake.unlock_account(Region.US, USERNAME)
    client.allow_sign_in()
    assert client.read() == ()
    assert counts.delta() == {"auth": 0, "login": 2, "read": 1}


def test_a_lockout_by_the_service_after_failures_is_never_reached_by_one_client(
    clock: ManualClock, make_client: ClientFactory
) -> None:
    with FakeShare(clock, lockout_after=2) as server:
        _with_account(server)
        client = make_client(server, password="wrong-password")
        for _ in range(6):
            with pytest.raises(ShareError):
                client.read()
        assert server.counters.failed_sign_ins() == 1
        assert isinstance(client.sign_in_blocked, AccountPasswordInvalid)


def test_a_zero_id_from_a_fresh_sign_in_is_rejected_credentials(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    session.body_rewrites[ENDPOINT_LOGIN_BY_ID] = lambda body: {**body, "accountId": ""}
    client = make_client(fake, session=session)
    with pytest.raises(ZeroIdReturned) as caught:
        client.read()
    assert caught.value.catalogue_row == 10
    assert caught.value.failure_class is FailureClass.CREDENTIALS
    assert isinstance(client.sign_in_blocked, ZeroIdReturned)


# --- a bad stored account id (rows 9, 10) ------------------------------------------------------


@pytest.mark.parametrize("sent_account_id", ["1", "00000000-0000-0000-0000-000000000000"])
def test_a_refused_stored_account_id_is_dropped_and_the_name_used_once(
    fake: FakeShare, make_client: ClientFactory, sent_account_id: str
) -> None:
    session = TamperingSession()
    calls = {"login": 0}

    def spoil_first_login(body: dict[str, Any]) -> dict[str, Any]:
        calls["login"] += 1
        return {**body, "accountId": sent_account_id} if calls["login"] == 1 else body

    session.body_rewrites[ENDPOINT_LOGIN_BY_ID] = spoil_first_login
    client = make_client(fake, session=session, account_id="0e3c2b1a-0000-4000-8000-000000000001")
    counts = Counts(fake)
    assert client.read() == ()
    assert counts.delta() == {"auth": 1, "login": 2, "read": 1}
    assert client.account_id == ACCOUNT_ID


def test_invalid_argument_after_a_fresh_authenticate_is_a_client_bug(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    session = TamperingSession()
    session.body_rewrites[ENDPOINT_LOGIN_BY_ID] = lambda body: {**body, "accountId": "1"}
    client = make_client(fake, session=session)
    counts = Counts(fake)
    with pytest.raises(InvalidArgument) as caught:
        client.read()
    assert caught.value.catalogue_row == 9
    assert caught.value.failure_class is FailureClass.CLIENT_BUG
    assert caught.value.field == "UUID"
    assert counts.delta() == {"auth": 1, "login": 1, "read": 0}
    assert client.sign_in_blocked is None


def test_a_missing_field_names_the_field(fake: FakeShare, make_client: ClientFactory) -> None:
    session = TamperingSession()
    session.body_rewrites[ENDPOINT_AUTHENTICATE] = lambda body: {
        key: value for key, value in body.items() if key != "accountName"
    }
    client = make_client(fake, session=session)
    with pytest.raises(InvalidArgument) as caught:
        client.sign_in()
    assert caught.value.field == "accountName"


def test_a_stored_account_id_that_is_not_an_id_is_ignored(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    client = make_client(fake, account_id="not-an-id")
    counts = Counts(fake)
    client.sign_in()
    assert counts.delta() == {"auth": 1, "login": 1, "read": 0}
    assert client.account_id == ACCOUNT_ID


# --- server trouble (rows 5, 13, 14, 15) -------------------------------------------------------


def test_identity_service_trouble_is_transient_and_does_not_block(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE)
    client = make_client(fake)
    with pytest.raises(ShareError) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.catalogue_row in {0, 5}
    assert client.sign_in_blocked is None
    assert client.read() == ()


@pytest.mark.parametrize(
    ("fault", "error_type", "status"),
    [
        (Fault.EMPTY_200, InvalidResponse, 200),
        (Fault.TRUNCATED_JSON, InvalidResponse, 200),
        (Fault.BAD_GATEWAY_HTML, ServiceUnavailable, 502),
        (Fault.UNAVAILABLE_HTML, ServiceUnavailable, 503),
        (Fault.SERVER_ERROR_JSON, ShareError, 500),
    ],
)
def test_bad_answers_to_a_read_are_transient_and_keep_the_session(
    fake: FakeShare,
    make_client: ClientFactory,
    fault: Fault,
    error_type: type[ShareError],
    status: int,
) -> None:
    client = make_client(fake)
    client.read()
    fake.inject_fault(fault, endpoint=ENDPOINT_READ)
    counts = Counts(fake)
    with pytest.raises(error_type) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.status == status
    assert counts.delta() == {"auth": 0, "login": 0, "read": 1}
    assert client.has_session
    assert client.read() == ()
    assert counts.delta() == {"auth": 0, "login": 0, "read": 2}


@pytest.mark.parametrize("endpoint", [ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID])
@pytest.mark.parametrize("fault", [Fault.EMPTY_200, Fault.TRUNCATED_JSON, Fault.BAD_GATEWAY_HTML])
def test_bad_answers_to_a_sign_in_are_transient_not_credentials(
    fake: FakeShare, make_client: ClientFactory, endpoint: str, fault: Fault
) -> None:
    fake.inject_fault(fault, endpoint=endpoint)
    client = make_client(fake)
    with pytest.raises(ShareError) as caught:
        client.sign_in()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert client.sign_in_blocked is None
    assert not client.has_session
    client.sign_in()
    assert client.has_session


def test_rate_limited_with_retry_after(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake)
    client.read()
    fake.inject_fault(Fault.RATE_LIMIT, endpoint=ENDPOINT_READ, retry_after_s=90)
    with pytest.raises(RateLimited) as caught:
        client.read()
    assert caught.value.retry_after_s == 90
    assert caught.value.failure_class is FailureClass.RATE_LIMIT
    assert caught.value.catalogue_row == 14
    assert client.has_session


def test_rate_limited_without_retry_after(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake)
    fake.inject_fault(Fault.RATE_LIMIT_NO_HEADER, endpoint=ENDPOINT_AUTHENTICATE)
    with pytest.raises(RateLimited) as caught:
        client.read()
    assert caught.value.retry_after_s is None
    assert client.sign_in_blocked is None


def test_a_dropped_connection_is_a_network_error(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    client = make_client(fake)
    client.read()
    fake.inject_fault(Fault.RESET, endpoint=ENDPOINT_READ)
    with pytest.raises(NetworkError) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.catalogue_row == 15
    assert client.has_session


def test_a_slow_answer_times_out(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake, read_timeout_s=0.05)
    client.sign_in()
    fake.inject_fault(Fault.SLOW, endpoint=ENDPOINT_READ, delay_s=0.3)
    with pytest.raises(RequestTimedOut) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert client.has_session


def test_an_outage_is_transient(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake)
    client.read()
    fake.set_outage(True)
    with pytest.raises(ShareError) as caught:
        client.read()
    assert caught.value.failure_class is FailureClass.TRANSIENT
    fake.set_outage(False)
    assert client.read() == ()


def test_nothing_listening_is_a_network_error(
    clock: ManualClock, make_client: ClientFactory
) -> None:
    server = _with_account(FakeShare(clock))
    server.start()
    client = make_client(server)
    server.stop()
    with pytest.raises(NetworkError):
        client.read()


# --- arguments refused before any request ------------------------------------------------------


@pytest.mark.parametrize(("minutes", "max_count"), [(0, 1), (1441, 1), (10, 0), (10, 289), (-1, 1)])
def test_windows_out_of_range_are_refused_before_any_request(
    fake: FakeShare, make_client: ClientFactory, minutes: int, max_count: int
) -> None:
    client = make_client(fake)
    counts = Counts(fake)
    with pytest.raises(InvalidRequestError):
        client.read(minutes, max_count)
    assert counts.delta() == NONE
    assert client.last_request_count == 0


@pytest.mark.parametrize("bad", [True, 10.0, "10", None])
def test_windows_of_the_wrong_type_are_refused(
    fake: FakeShare, make_client: ClientFactory, bad: Any
) -> None:
    client = make_client(fake)
    with pytest.raises(InvalidRequestError):
        client.read(bad, 1)
    with pytest.raises(InvalidRequestError):
        client.read(10, bad)
    assert Counts(fake).delta() == NONE


@pytest.mark.parametrize(
    ("minutes", "max_count", "expected"),
    [(1, 1, 0), (1440, 1, 1), (1440, 288, 3), (10, 288, 2), (1, 288, 0)],
)
def test_windows_at_the_limits_are_read(
    fake: FakeShare,
    clock: ManualClock,
    make_client: ClientFactory,
    minutes: int,
    max_count: int,
    expected: int,
) -> None:
    _publish_recent(fake, clock, 100, 101, 102)  # 12, 7 and 2 minutes old
    readings = make_client(fake).read(minutes, max_count)
    assert len(readings) == expected


@pytest.mark.parametrize(
    ("username", "password"), [("", PASSWORD), ("  ", PASSWORD), (USERNAME, "")]
)
def test_empty_credentials_are_refused_before_any_request(
    fake: FakeShare, username: str, password: str
) -> None:
    config = ClientConfig(Region.US, username, base_url=fake.base_url(Region.US))
    with pytest.raises(InvalidRequestError) as caught:
        ShareClient(config, password)
    assert caught.value.user_message.startswith("Enter the Dexcom")
    assert Counts(fake).delta() == NONE


@pytest.mark.parametrize(
    "url",
    [
        "https://share2.dexcom.com/ShareWebServices/Services/",
        "http://evil.example.com:8080/ShareWebServices/Services/",
        "http://10.0.0.5:8080/ShareWebServices/Services/",
        "http://[::ffff:127.0.0.1]:8080/ShareWebServices/Services/",
        "http://127.0.0.1.evil.example.com:8080/ShareWebServices/Services/",
        "http://localhost.evil.example.com:8080/ShareWebServices/Services/",
        "http://127.0.0.1/ShareWebServices/Services/",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/ShareWebServices/Services",
        "http://127.0.0.1:8080/Other/ShareWebServices/Services/",
        "ftp://127.0.0.1:8080/ShareWebServices/Services/",
        "http://user:pw@127.0.0.1:8080/ShareWebServices/Services/",
        "http://127.0.0.1:8080/ShareWebServices/Services/?x=1",
        "http://127.0.0.1:99999/ShareWebServices/Services/",
        "127.0.0.1:8080/ShareWebServices/Services/",
        "",
    ],
)
def test_the_url_override_refuses_anything_but_loopback_share_urls(url: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        ShareClient(ClientConfig(Region.US, USERNAME, base_url=url), PASSWORD)
    assert "this computer" in caught.value.user_message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/ShareWebServices/Services/",
        "http://127.3.2.1:8080/ShareWebServices/Services/",
        "https://localhost:8443/ShareWebServices/Services/",
        "http://LOCALHOST:8080/ShareWebServices/Services/",
        "http://[::1]:8080/ShareWebServices/Services/",
    ],
)
def test_the_url_override_accepts_loopback(url: str) -> None:
    assert validate_share_url(url) == url
    assert SERVICES_PATH in url


def test_bad_timeouts_are_refused() -> None:
    for connect, read in [(0.0, 30.0), (10.0, -1.0), (float("nan"), 30.0), (10.0, float("inf"))]:
        config = ClientConfig(Region.US, USERNAME, connect_timeout_s=connect, read_timeout_s=read)
        with pytest.raises(InvalidRequestError):
            ShareClient(config, PASSWORD)


# --- what the client reports -------------------------------------------------------------------


def test_server_clock_skew_comes_from_the_date_header(
    fake: FakeShare, clock: ManualClock, make_client: ClientFactory
) -> None:
    local_clock = ManualClock(START + timedelta(minutes=5))
    client = make_client(fake, client_clock=local_clock)
    before = client.server_clock_skew
    assert before is None
    client.sign_in()
    skew = client.server_clock_skew
    assert skew is not None
    assert abs(skew - timedelta(minutes=-5)) <= timedelta(seconds=1)


def test_one_log_record_per_request_and_per_sign_in(
    fake: FakeShare, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cgmtray.share")
    client = make_client(fake)
    client.read()
    requests_logged = [r for r in caplog.records if getattr(r, "event", None) == "share.request"]
    assert [getattr(r, "endpoint", None) for r in requests_logged] == [
        ENDPOINT_AUTHENTICATE,
        ENDPOINT_LOGIN_BY_ID,
        ENDPOINT_READ,
    ]
    assert [getattr(r, "status", None) for r in requests_logged] == [200, 200, 200]
    assert all(isinstance(getattr(r, "ms", None), float) for r in requests_logged)
    logins = [r for r in caplog.records if getattr(r, "event", None) == "share.login"]
    assert [getattr(r, "outcome", None) for r in logins] == ["ok"]

    caplog.clear()
    bad = make_client(fake, password="wrong-password")
    with pytest.raises(CredentialsRejected):
        bad.sign_in()
    logins = [r for r in caplog.records if getattr(r, "event", None) == "share.login"]
    assert [getattr(r, "outcome", None) for r in logins] == ["AccountPasswordInvalid"]


def test_repr_shows_region_and_session_only(fake: FakeShare, make_client: ClientFactory) -> None:
    client = make_client(fake)
    assert "us" in repr(client)
    assert "session=no" in repr(client)
    client.sign_in()
    assert "session=yes" in repr(client)
    client.close()
    assert not client.has_session


# --- secrets -----------------------------------------------------------------------------------


def _provoke_every_error(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> list[BaseException]:
    caught: list[BaseException] = []

    def expect(call: Callable[[], object]) -> None:
        try:
            call()
        except ShareError as error:
            caught.append(error)
        else:  # pragma: no cover - a test bug
            raise AssertionError("expected a ShareError")

    wrong = make_client(fake, password="wrong-password")
    expect(wrong.read)
    expect(wrong.read)  # SignInBlocked
    fake.set_credential_error_style("2024")
    expect(make_client(fake, password="wrong-password").read)
    expect(make_client(fake, password="wrong-password", account_id=ACCOUNT_ID).read)
    fake.set_credential_error_style("2025")

    good = make_client(fake)
    good.read()
    for fault in Fault:
        # SLOW and DRIP need a timeout or deadline of their own (below and in
        # test_share_hostile); FUTURE_READING and LYING_DATE are answers, not errors.
        if fault in (Fault.SLOW, Fault.DRIP, Fault.FUTURE_READING, Fault.LYING_DATE):
            continue
        fake.inject_fault(fault, endpoint=ENDPOINT_READ)
        expect(good.read)
    slow = make_client(fake, read_timeout_s=0.05)
    slow.sign_in()
    fake.inject_fault(Fault.SLOW, endpoint=ENDPOINT_READ, delay_s=0.3)
    expect(slow.read)

    tampering = TamperingSession()
    tampering.query_rewrites[ENDPOINT_READ] = lambda q: {**q, "sessionId": "bad-session"}
    expect(make_client(fake, session=tampering).read)
    bad_id = TamperingSession()
    bad_id.body_rewrites[ENDPOINT_LOGIN_BY_ID] = lambda body: {**body, "accountId": "1"}
    expect(make_client(fake, session=bad_id).read)
    zero = TamperingSession()
    zero.body_rewrites[ENDPOINT_LOGIN_BY_ID] = lambda body: {**body, "accountId": ""}
    expect(make_client(fake, session=zero).read)

    fake.lock_account(Region.US, USERNAME)
    locked = make_client(fake)
    expect(locked.read)
    expect(locked.read)
    expect(lambda: good.read(0, 1))
    try:
        ShareClient(ClientConfig(Region.US, USERNAME, base_url="http://x:1/"), PASSWORD)
    except InvalidRequestError as error:
        caught.append(error)
    return caught


def test_no_secret_ever_reaches_an_error_or_a_log_line(
    fake: FakeShare,
    clock: ManualClock,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cgmtray")
    caught = _provoke_every_error(fake, make_client, clock)
    kinds = {type(error).__name__ for error in caught}
    assert kinds >= {
        "AccountPasswordInvalid",
        "SignInBlocked",
        "SsoCredentialsRejected",
        "RateLimited",
        "ServiceUnavailable",
        "InvalidResponse",
        "NetworkError",
        "RequestTimedOut",
        "ResponseTooLarge",
        "SessionRejectedAfterRelogin",
        "InvalidArgument",
        "ZeroIdReturned",
        "AccountLocked",
        "InvalidRequestError",
    }
    texts = [str(error) for error in caught] + [repr(error) for error in caught]
    texts += [error.user_message for error in caught if isinstance(error, ShareError)]
    ours = [record for record in caplog.records if record.name.startswith("cgmtray.share")]
    texts += [record.getMessage() for record in ours]
    texts += [repr(record.__dict__) for record in ours]
    assert len(ours) > 20
    for text in texts:
        assert PASSWORD not in text
        assert USERNAME not in text
        assert "alice" not in text
        assert UUID_SHAPE.search(text) is None, text


def test_an_error_says_whether_the_sign_in_or_the_read_failed() -> None:
    """The schedule counts failed sign-ins (protocol 7.1) apart from failed reads."""
    clock = ManualClock(START)
    with FakeShare(clock) as fake:
        fake.add_account(Region.US, USERNAME, PASSWORD)
        config = ClientConfig(
            region=Region.US, username=USERNAME, base_url=fake.base_url(Region.US)
        )
        with ShareClient(config, PASSWORD, clock=clock) as client:
            fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_AUTHENTICATE)
            with pytest.raises(ShareError) as at_sign_in:
                client.read(10, 1)
            assert at_sign_in.value.during_sign_in
            fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_READ)
            with pytest.raises(ShareError) as at_read:
                client.read(10, 1)
            assert not at_read.value.during_sign_in
            assert client.has_session  # the sign-in of that call worked
