"""The fake Share service over real loopback HTTP: endpoints, errors, sessions, lockout, faults."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.ports import free_port

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare, Fault, RequestRecord
from cgmtray.share.regions import (
    APP_ID_JP,
    APP_ID_US_OUS,
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_IS_MONITORING,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_LOGIN_BY_NAME,
    ENDPOINT_POST_EGVS,
    ENDPOINT_READ,
    ENDPOINT_START_MONITORING,
    ENDPOINT_STOP_MONITORING,
    ENDPOINT_SYSTEM_UTC_TIME,
    SERVICES_PATH,
    Region,
)

# The same values as conftest.FAKE_* (kept here so this module never imports a conftest).
USERNAME = "alice@example.com"
PASSWORD = "s3cret-Passw0rd!"
START = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)
US = Region.US
ZERO = "00000000-0000-0000-0000-000000000000"
BAD_REQUEST_TEXT = (
    "The server encountered an error processing the request. See server logs for more details."
)
UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMEOUT = 5.0
#: "Promptly" for stop(): well under the 30 s slow answer and the handlers' 120 s idle timeout it
#: must not wait for, and long enough that a busy machine's stall cannot fail it.
STOP_PROMPT_S = 15.0


# --- helpers -----------------------------------------------------------------------------------


def post(
    fake: FakeShare,
    endpoint: str,
    *,
    region: Region = US,
    body: Any = None,
    data: bytes | str | None = None,
    params: dict[str, Any] | None = None,
    timeout: float = TIMEOUT,
) -> requests.Response:
    return requests.post(
        fake.base_url(region) + endpoint,
        json=body,
        data=data,
        params=params,
        timeout=timeout,
    )


def authenticate(
    fake: FakeShare,
    username: str = USERNAME,
    password: str = PASSWORD,
    *,
    region: Region = US,
    app_id: str | None = None,
) -> requests.Response:
    body = {
        "accountName": username,
        "password": password,
        "applicationId": app_id or region.application_id,
    }
    return post(fake, ENDPOINT_AUTHENTICATE, region=region, body=body)


def login(
    fake: FakeShare,
    account_id: str,
    password: str = PASSWORD,
    *,
    region: Region = US,
    app_id: str | None = None,
) -> requests.Response:
    body = {
        "accountId": account_id,
        "password": password,
        "applicationId": app_id or region.application_id,
    }
    return post(fake, ENDPOINT_LOGIN_BY_ID, region=region, body=body)


def sign_in(fake: FakeShare, username: str = USERNAME, *, region: Region = US) -> str:
    account_id = fake.account_id(region, username)
    response = login(fake, account_id, PASSWORD, region=region)
    assert response.status_code == 200
    session_id = response.json()
    assert isinstance(session_id, str)
    return session_id


def read(
    fake: FakeShare,
    session_id: str,
    minutes: int = 1440,
    max_count: int = 288,
    *,
    region: Region = US,
) -> requests.Response:
    params = {"sessionId": session_id, "minutes": minutes, "maxCount": max_count}
    return post(fake, ENDPOINT_READ, region=region, body={}, params=params)


def share_error(response: requests.Response) -> dict[str, str]:
    """The body of a Share fault after checking its status, type and shape."""
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"Code", "Message", "SubCode", "TypeName"}
    assert body["TypeName"] == "FaultException"
    assert body["SubCode"].startswith("<OnlineException ")
    return dict(body)


def subcode_triple(body: dict[str, str]) -> tuple[str, str, str]:
    found = re.search(r'Type="(\d+)" Category="(\d+)" Severity="(\d+)"', body["SubCode"])
    assert found is not None
    return found.group(1), found.group(2), found.group(3)


def publish(
    fake: FakeShare,
    age: timedelta,
    mgdl: int = 120,
    trend: Trend = Trend.FLAT,
    *,
    available_after: timedelta = timedelta(0),
    username: str = USERNAME,
    region: Region = US,
    offset_minutes: int = -240,
) -> Reading:
    reading = Reading(fake.now() - age, mgdl, trend)
    fake.publish(region, username, reading, reading.time + available_after, offset_minutes)
    return reading


def ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


@pytest.fixture
def session_id(fake_share: FakeShare) -> str:
    return sign_in(fake_share)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


# --- the service's shape ---------------------------------------------------------------------


def test_each_region_listens_on_its_own_loopback_port(fake_share: FakeShare) -> None:
    ports = {region: fake_share.port(region) for region in Region}
    assert len(set(ports.values())) == 3
    for region, port in ports.items():
        assert fake_share.base_url(region) == f"http://127.0.0.1:{port}/ShareWebServices/Services/"


def test_the_fixture_has_the_documented_account(fake_share: FakeShare) -> None:
    account_id = authenticate(fake_share).json()
    assert UUID_SHAPE.fullmatch(account_id)
    assert account_id == fake_share.account_id(US, USERNAME)
    assert fake_share.now() == START


@pytest.mark.parametrize(
    "path",
    [
        SERVICES_PATH + "General/NoSuchThing",
        SERVICES_PATH + "General/LoginPublisherAccountByNames",
        SERVICES_PATH,
        "/",
        "/General/AuthenticatePublisherAccount",
    ],
)
def test_unknown_paths_are_404(fake_share: FakeShare, path: str) -> None:
    response = requests.post(
        f"http://127.0.0.1:{fake_share.port()}{path}", json={}, timeout=TIMEOUT
    )
    assert response.status_code == 404
    assert fake_share.counters.log[-1].status == 404


def test_a_wrong_method_is_refused(fake_share: FakeShare) -> None:
    response = requests.get(fake_share.base_url() + ENDPOINT_READ, timeout=TIMEOUT)
    assert response.status_code == 405


def test_paths_match_without_regard_to_case(fake_share: FakeShare) -> None:
    body = {"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    response = post(fake_share, ENDPOINT_AUTHENTICATE.lower(), body=body)
    assert response.status_code == 200


def test_headers_look_like_cloudflare_and_carry_the_fake_clock(
    fake_share: FakeShare, fake_clock: ManualClock
) -> None:
    fake_clock.advance(timedelta(hours=3, seconds=7))
    ok = authenticate(fake_share)
    bad = authenticate(fake_share, password="nope")
    for response in (ok, bad):
        assert response.headers["Server"] == "cloudflare"
        assert UUID_SHAPE.fullmatch(response.headers["x-trace-id"])
        assert parsedate_to_datetime(response.headers["Date"]) == fake_clock.now()
        assert response.headers["Content-Type"] == "application/json"
    assert ok.headers["x-trace-id"] != bad.headers["x-trace-id"]
    assert "Cache-Control" not in ok.headers
    assert bad.headers["Cache-Control"] == "no-cache, no-store, max-age=0, must-revalidate"
    assert bad.headers["expires"] == "0"
    assert bad.headers["pragma"] == "no-cache"
    assert bad.headers["x-frame-options"] == "DENY"


# --- AuthenticatePublisherAccount ----------------------------------------------------------------


def test_authenticate_answers_the_account_id_as_a_json_string(fake_share: FakeShare) -> None:
    response = authenticate(fake_share)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.content) == 38
    assert response.text == f'"{fake_share.account_id(US, USERNAME)}"'


def test_usernames_match_without_regard_to_case(fake_share: FakeShare) -> None:
    assert authenticate(fake_share, USERNAME.upper()).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, "wrong"), ("bob@example.com", PASSWORD), (USERNAME, ""), ("", PASSWORD)],
)
def test_bad_credentials_are_account_password_invalid(
    fake_share: FakeShare, username: str, password: str
) -> None:
    body = share_error(authenticate(fake_share, username, password))
    assert body["Code"] == "AccountPasswordInvalid"
    assert body["Message"] == "Publisher account password failed"
    assert subcode_triple(body) == ("13", "4", "1")


@pytest.mark.parametrize("region", [Region.OUS, Region.JP])
def test_the_wrong_region_is_indistinguishable_from_a_wrong_password(
    fake_share: FakeShare, region: Region
) -> None:
    body = share_error(authenticate(fake_share, region=region))
    assert body["Code"] == "AccountPasswordInvalid"


def test_regions_have_separate_account_stores(fake_share: FakeShare) -> None:
    ous_id = fake_share.add_account(Region.OUS, USERNAME, "other-password")
    assert ous_id != fake_share.account_id(US, USERNAME)
    assert authenticate(fake_share, password="other-password", region=Region.OUS).json() == ous_id
    assert authenticate(fake_share, password="other-password").status_code == 500


@pytest.mark.parametrize(
    ("region", "app_id", "accepted"),
    [
        (Region.US, APP_ID_US_OUS, True),
        (Region.US, APP_ID_JP, True),
        (Region.OUS, APP_ID_US_OUS, True),
        (Region.OUS, APP_ID_JP, True),
        (Region.JP, APP_ID_JP, True),
        (Region.JP, APP_ID_US_OUS, False),
        (Region.US, "11111111-2222-3333-4444-555555555555", False),
        (Region.US, "not-an-app-id", False),
    ],
)
def test_application_ids_per_region(
    fake_share: FakeShare, region: Region, app_id: str, accepted: bool
) -> None:
    account_id = fake_share.add_account(region, "carol", "pw-carol")
    response = authenticate(fake_share, "carol", "pw-carol", region=region, app_id=app_id)
    by_id = login(fake_share, account_id, "pw-carol", region=region, app_id=app_id)
    if accepted:
        assert response.json() == account_id
        assert UUID_SHAPE.fullmatch(by_id.json())
    else:
        assert share_error(response)["Code"] == "AccountPasswordInvalid"
        assert share_error(by_id)["Code"] == "AccountPasswordInvalid"


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("accountName",), "accountName"),
        (("password",), "password"),
        (("applicationId",), "applicationId"),
        (("accountName", "password"), "accountName, password"),
    ],
)
def test_authenticate_missing_fields_are_named(
    fake_share: FakeShare, drop: tuple[str, ...], named: str
) -> None:
    body = {"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    for key in drop:
        del body[key]
    error = share_error(post(fake_share, ENDPOINT_AUTHENTICATE, body=body))
    assert error["Code"] == "InvalidArgument"
    assert error["Message"] == f"Missing required field(s): {named}"
    assert subcode_triple(error) == ("10", "4", "2")


def test_a_null_field_counts_as_missing(fake_share: FakeShare) -> None:
    body = {"accountName": USERNAME, "password": None, "applicationId": APP_ID_US_OUS}
    error = share_error(post(fake_share, ENDPOINT_AUTHENTICATE, body=body))
    assert error["Message"] == "Missing required field(s): password"


# --- LoginPublisherAccountById -----------------------------------------------------------------


def test_login_by_id_answers_a_fresh_session_each_time(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    first = login(fake_share, fake_account_id)
    second = login(fake_share, fake_account_id)
    assert first.status_code == second.status_code == 200
    assert first.headers["Content-Type"] == "application/json"
    assert UUID_SHAPE.fullmatch(first.json())
    assert first.json() != second.json()
    assert first.json() != fake_account_id
    assert fake_share.session_count() == 2


def test_login_by_id_accepts_an_upper_case_account_id(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    assert login(fake_share, fake_account_id.upper()).status_code == 200


@pytest.mark.parametrize("account_id", ["", ZERO])
def test_login_with_an_empty_or_zero_account_id_answers_the_zero_uuid(
    fake_share: FakeShare, account_id: str
) -> None:
    response = login(fake_share, account_id, "whatever")
    assert response.status_code == 200
    assert response.json() == ZERO
    assert fake_share.session_count() == 0
    assert fake_share.counters.failed_sign_ins() == 1


@pytest.mark.parametrize("account_id", ["1", "not-a-uuid", "3f2b8c1e7d4a4e9ba1c59e8d7c6b5a41"])
def test_login_with_a_non_uuid_account_id_is_invalid_argument(
    fake_share: FakeShare, account_id: str
) -> None:
    error = share_error(login(fake_share, account_id))
    assert error["Code"] == "InvalidArgument"
    assert error["Message"] == (
        "Missing required field(s): JSON parse error: Cannot deserialize value of type "
        f'`java.util.UUID` from String "{account_id}": UUID has to be represented by '
        "standard 36-char representation"
    )


@pytest.mark.parametrize("drop", ["accountId", "password", "applicationId"])
def test_login_missing_fields_are_named(fake_share: FakeShare, drop: str) -> None:
    body = {"accountId": str(uuid.uuid4()), "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    del body[drop]
    error = share_error(post(fake_share, ENDPOINT_LOGIN_BY_ID, body=body))
    assert error["Code"] == "InvalidArgument"
    assert error["Message"] == f"Missing required field(s): {drop}"


def test_login_with_an_unknown_account_or_wrong_password_or_region(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    for response in (
        login(fake_share, str(uuid.uuid4())),
        login(fake_share, fake_account_id, "wrong"),
        login(fake_share, fake_account_id, region=Region.OUS),
    ):
        error = share_error(response)
        assert error["Code"] == "AccountPasswordInvalid"
        assert error["Message"] == "Publisher account password failed"


def test_an_account_can_be_added_with_a_chosen_id(fake_share: FakeShare) -> None:
    chosen = "3f2b8c1e-7d4a-4e9b-a1c5-9e8d7c6b5a41"
    assert fake_share.add_account(US, "dave", "pw-dave", account_id=chosen) == chosen
    assert authenticate(fake_share, "dave", "pw-dave").json() == chosen
    with pytest.raises(ValueError, match="UUID"):
        fake_share.add_account(US, "erin", "pw", account_id="nope")


def test_adding_an_existing_account_changes_its_password(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    assert fake_share.add_account(US, USERNAME, "new-password") == fake_account_id
    assert authenticate(fake_share).status_code == 500
    assert authenticate(fake_share, password="new-password").json() == fake_account_id


# --- 2024 credential style -----------------------------------------------------------------------


def test_the_2024_style_answers_sso_internal_error_naming_the_account(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    fake_share.set_credential_error_style("2024")
    by_name = share_error(authenticate(fake_share, password="wrong"))
    assert by_name["Code"] == "SSO_InternalError"
    assert by_name["Message"] == (
        "Synchronization of SSO account during authenticate call failed Time out issue.  "
        f"AccountName={USERNAME} Error encountered accessing Keycloak endpoint: UAM_ERROR: "
        f"HttpStatus='401 UNAUTHORIZED(401)' Msg=Cannot Authenticate by AccountName='{USERNAME}'"
    )
    assert subcode_triple(by_name) == ("15", "1", "2")
    by_id = share_error(login(fake_share, fake_account_id, "wrong"))
    assert by_id["Code"] == "SSO_InternalError"
    assert f"Cannot Authenticate by AccountId='{fake_account_id}'" in by_id["Message"]
    fake_share.set_credential_error_style("2025")
    assert share_error(authenticate(fake_share, password="x"))["Code"] == "AccountPasswordInvalid"


def test_the_2024_style_from_the_constructor(fake_clock: ManualClock) -> None:
    with FakeShare(fake_clock, regions=[US], credential_error_style="2024") as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        assert share_error(authenticate(fake, password="no"))["Code"] == "SSO_InternalError"
        assert authenticate(fake).status_code == 200


# --- lockout ----------------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(
    fake_share: FakeShare, fake_clock: ManualClock
) -> None:
    for _ in range(5):
        assert share_error(authenticate(fake_share, password="wrong"))["Code"] == (
            "AccountPasswordInvalid"
        )
    locked = share_error(authenticate(fake_share))
    assert locked["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"
    assert fake_share.is_locked(US, USERNAME)
    account_id = fake_share.account_id(US, USERNAME)
    assert share_error(login(fake_share, account_id))["Code"] == (
        "SSO_AuthenticateMaxAttemptsExceeded"
    )


def test_each_attempt_during_a_lockout_restarts_its_timer(
    fake_share: FakeShare, fake_clock: ManualClock
) -> None:
    fake_share.lock_account(US, USERNAME)
    fake_clock.advance(timedelta(minutes=29))
    assert share_error(authenticate(fake_share))["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"
    fake_clock.advance(timedelta(minutes=29))  # 58 min after the lock, 29 after the attempt
    assert share_error(authenticate(fake_share))["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"
    fake_clock.advance(timedelta(minutes=30))  # 30 min of silence
    assert authenticate(fake_share).status_code == 200
    assert not fake_share.is_locked(US, USERNAME)


def test_a_success_resets_the_failure_count(fake_share: FakeShare) -> None:
    for _ in range(4):
        authenticate(fake_share, password="wrong")
    assert authenticate(fake_share).status_code == 200
    for _ in range(4):
        authenticate(fake_share, password="wrong")
    assert authenticate(fake_share).status_code == 200


def test_failed_logins_by_id_count_towards_the_owners_lockout(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    for _ in range(3):
        login(fake_share, fake_account_id, "wrong")
    for _ in range(2):
        authenticate(fake_share, password="wrong")
    assert share_error(authenticate(fake_share))["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"


def test_lockout_is_per_region_and_account(fake_share: FakeShare) -> None:
    fake_share.add_account(US, "bob", "pw-bob")
    for _ in range(6):
        authenticate(fake_share, password="wrong", region=Region.OUS)
        authenticate(fake_share, "bob", "wrong")
    assert authenticate(fake_share).status_code == 200
    assert share_error(authenticate(fake_share, "bob", "pw-bob"))["Code"] == (
        "SSO_AuthenticateMaxAttemptsExceeded"
    )


def test_unlock_account(fake_share: FakeShare) -> None:
    fake_share.lock_account(US, USERNAME)
    assert authenticate(fake_share).status_code == 500
    fake_share.unlock_account(US, USERNAME)
    assert authenticate(fake_share).status_code == 200


def test_lockout_threshold_and_period_are_configurable(fake_clock: ManualClock) -> None:
    with FakeShare(
        fake_clock, regions=[US], lockout_after=2, lockout_period=timedelta(seconds=90)
    ) as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        authenticate(fake, password="a")
        authenticate(fake, password="b")
        assert share_error(authenticate(fake))["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"
        fake_clock.advance(90)
        assert authenticate(fake).status_code == 200


def test_lockout_can_be_switched_off(fake_clock: ManualClock) -> None:
    with FakeShare(fake_clock, regions=[US], lockout_after=0) as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        for _ in range(20):
            authenticate(fake, password="wrong")
        assert authenticate(fake).status_code == 200


# --- reads: parameters and session errors --------------------------------------------------------


@pytest.mark.parametrize("spelling", ["sessionId", "sessionID"])
@pytest.mark.parametrize("placement", ["query", "body"])
def test_reads_accept_both_spellings_in_query_or_body(
    fake_share: FakeShare, session_id: str, spelling: str, placement: str
) -> None:
    newest = publish(fake_share, timedelta(minutes=2), 140)
    publish(fake_share, timedelta(minutes=7), 135)
    fields = {spelling: session_id, "minutes": 10, "maxCount": 1}
    if placement == "query":
        response = post(fake_share, ENDPOINT_READ, params=fields, body={})
    else:
        response = post(fake_share, ENDPOINT_READ, body=fields)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert [item["Value"] for item in response.json()] == [newest.mgdl]


@pytest.mark.parametrize("body", [None, b"", b"{}", b"  "])
def test_reads_accept_an_empty_or_empty_object_body(
    fake_share: FakeShare, session_id: str, body: bytes | None
) -> None:
    publish(fake_share, timedelta(minutes=1))
    params: dict[str, Any] = {"sessionID": session_id, "minutes": 10, "maxCount": 1}
    response = requests.post(
        fake_share.base_url() + ENDPOINT_READ,
        params=params,
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert len(response.json()) == 1


def test_an_unknown_session_is_session_id_not_found(fake_share: FakeShare) -> None:
    unknown = str(uuid.uuid4())
    error = share_error(read(fake_share, unknown))
    assert error["Code"] == "SessionIdNotFound"
    assert error["Message"] == f"Failed to find session object. [SessionId = {unknown}]"
    assert subcode_triple(error) == ("5", "2", "2")


def test_a_malformed_session_is_a_plain_text_400(fake_share: FakeShare) -> None:
    response = read(fake_share, "not-a-session")
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/plain"
    assert response.text == BAD_REQUEST_TEXT


@pytest.mark.parametrize("params", [{"sessionId": ""}, {"sessionID": "  "}, {}])
def test_an_empty_or_missing_session_is_forbidden(
    fake_share: FakeShare, params: dict[str, str]
) -> None:
    response = post(fake_share, ENDPOINT_READ, params={**params, "minutes": 10, "maxCount": 1})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "text/plain"
    assert response.text == "Forbidden"


def test_the_zero_session_gets_200_with_an_empty_body(fake_share: FakeShare) -> None:
    response = read(fake_share, ZERO)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize(("minutes", "max_count"), [(0, 288), (1440, 0), (0, 0), (-5, 10)])
def test_a_zero_window_is_an_empty_list(
    fake_share: FakeShare, session_id: str, minutes: int, max_count: int
) -> None:
    publish(fake_share, timedelta(minutes=1))
    response = read(fake_share, session_id, minutes, max_count)
    assert response.status_code == 200
    assert response.json() == []


def test_a_missing_window_is_an_empty_list(fake_share: FakeShare, session_id: str) -> None:
    publish(fake_share, timedelta(minutes=1))
    response = post(fake_share, ENDPOINT_READ, params={"sessionId": session_id})
    assert response.json() == []


def test_a_malformed_window_in_the_query_is_a_400(fake_share: FakeShare, session_id: str) -> None:
    response = post(fake_share, ENDPOINT_READ, params={"sessionId": session_id, "minutes": "ten"})
    assert response.status_code == 400


def test_a_malformed_window_in_the_body_is_invalid_argument(
    fake_share: FakeShare, session_id: str
) -> None:
    body = {"sessionId": session_id, "minutes": [10], "maxCount": 1}
    assert share_error(post(fake_share, ENDPOINT_READ, body=body))["Code"] == "InvalidArgument"
    body = {"sessionId": session_id, "minutes": "10", "maxCount": "1"}
    assert post(fake_share, ENDPOINT_READ, body=body).status_code == 200


def test_windows_beyond_a_day_are_clamped(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str
) -> None:
    sensor = SimulatedSensor(seed=2, start=fake_clock.now() - timedelta(days=3), lag_s=0)
    fake_share.attach_sensor(US, USERNAME, sensor)
    day = read(fake_share, session_id, 1440, 288).json()
    assert 287 <= len(day) <= 288
    assert read(fake_share, session_id, 5000, 288).json() == day
    assert read(fake_share, session_id, 1440, 10_000).json() == day


def test_sessions_expire_after_their_ttl(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str
) -> None:
    fake_clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert read(fake_share, session_id).status_code == 200
    fake_clock.advance(timedelta(seconds=1))
    error = share_error(read(fake_share, session_id))
    assert error["Code"] == "SessionNotValid"
    assert error["Message"] == f"Session not active or timed out. [SessionId = {session_id}]"
    assert subcode_triple(error) == ("6", "5", "1")
    assert 'ErrorCode=""' in error["SubCode"]
    assert read(fake_share, sign_in(fake_share)).status_code == 200


def test_a_short_ttl(fake_clock: ManualClock) -> None:
    with FakeShare(fake_clock, regions=[US], session_ttl=timedelta(seconds=30)) as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        session = sign_in(fake)
        fake_clock.advance(29)
        assert read(fake, session).status_code == 200
        fake_clock.advance(1)
        assert share_error(read(fake, session))["Code"] == "SessionNotValid"


def test_sessions_can_be_expired_on_demand(fake_share: FakeShare, session_id: str) -> None:
    ous_id = fake_share.add_account(Region.OUS, USERNAME, PASSWORD)
    ous_session = login(fake_share, ous_id, region=Region.OUS).json()
    fake_share.expire_sessions(Region.OUS)
    assert read(fake_share, session_id).status_code == 200
    assert share_error(read(fake_share, ous_session, region=Region.OUS))["Code"] == (
        "SessionNotValid"
    )
    fake_share.expire_sessions()
    assert share_error(read(fake_share, session_id))["Code"] == "SessionNotValid"
    assert read(fake_share, sign_in(fake_share)).status_code == 200


def test_a_session_belongs_to_its_region(fake_share: FakeShare, session_id: str) -> None:
    assert share_error(read(fake_share, session_id, region=Region.OUS))["Code"] == (
        "SessionIdNotFound"
    )


# --- reads: what comes back ----------------------------------------------------------------------


def test_a_reading_on_the_wire(fake_share: FakeShare, session_id: str) -> None:
    reading = Reading(START - timedelta(minutes=3, seconds=11, milliseconds=817), 224, Trend.FLAT)
    fake_share.publish(US, USERNAME, reading)
    response = read(fake_share, session_id, 10, 1)
    stamp = ms(reading.time)
    assert response.json() == [
        {
            "WT": f"Date({stamp})",
            "ST": f"Date({stamp})",
            "DT": f"Date({stamp}-0400)",
            "Value": 224,
            "Trend": "Flat",
        }
    ]
    assert response.headers.get("Transfer-Encoding") == "chunked"


@pytest.mark.parametrize(("offset", "written"), [(-240, "-0400"), (0, "+0000"), (330, "+0530")])
def test_the_publisher_offset_is_written_in_dt(
    fake_share: FakeShare, session_id: str, offset: int, written: str
) -> None:
    publish(fake_share, timedelta(minutes=1), offset_minutes=offset)
    assert read(fake_share, session_id, 10, 1).json()[0]["DT"].endswith(f"{written})")


def test_every_trend_name_and_low_high_values_pass_through(
    fake_share: FakeShare, session_id: str
) -> None:
    for index, trend in enumerate(Trend):
        publish(fake_share, timedelta(minutes=5 * index + 1), 100 + index, trend)
    publish(fake_share, timedelta(minutes=61), LOW_MGDL)
    publish(fake_share, timedelta(minutes=66), HIGH_MGDL)
    items = read(fake_share, session_id, 120, 20).json()
    assert [item["Trend"] for item in items[:10]] == [trend.wire_name for trend in Trend]
    assert [item["Value"] for item in items[10:]] == [LOW_MGDL, HIGH_MGDL]


def test_reads_are_newest_first_within_the_window_and_count(
    fake_share: FakeShare, session_id: str
) -> None:
    for minutes in (1, 6, 11, 16, 21):
        publish(fake_share, timedelta(minutes=minutes), 100 + minutes)
    assert [item["Value"] for item in read(fake_share, session_id, 15, 288).json()] == [
        101,
        106,
        111,
    ]
    assert [item["Value"] for item in read(fake_share, session_id, 1440, 2).json()] == [101, 106]


def test_a_reading_appears_only_once_available(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str
) -> None:
    publish(fake_share, timedelta(seconds=10), 150, available_after=timedelta(seconds=30))
    assert read(fake_share, session_id, 10, 1).json() == []
    fake_clock.advance(20)
    assert [item["Value"] for item in read(fake_share, session_id, 10, 1).json()] == [150]


def test_a_reading_from_the_future_is_not_served(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str
) -> None:
    future = Reading(START + timedelta(minutes=2), 111, Trend.FLAT)
    fake_share.publish(US, USERNAME, future, available_at=START)
    assert read(fake_share, session_id, 10, 5).json() == []
    fake_clock.advance(timedelta(minutes=2))
    assert len(read(fake_share, session_id, 10, 5).json()) == 1


def test_sensor_readings_arrive_with_their_lag_every_five_minutes(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str
) -> None:
    sensor = SimulatedSensor(seed=4, start=START - timedelta(hours=1), lag_s=25)
    fake_share.attach_sensor(US, USERNAME, sensor)
    first = read(fake_share, session_id, 10, 1).json()[0]
    wt = int(first["WT"][5:-1])
    following = sensor.readings_between(
        datetime.fromtimestamp((wt + 1) / 1000, UTC), START + timedelta(minutes=10)
    )[0]
    fake_clock.set(following.reading.time + timedelta(seconds=24))
    assert read(fake_share, session_id, 10, 1).json()[0] == first
    fake_clock.set(following.reading.time + timedelta(seconds=25))
    assert read(fake_share, session_id, 10, 1).json()[0]["WT"] == (
        f"Date({ms(following.reading.time)})"
    )


def test_published_readings_merge_with_a_sensor_and_win_on_the_same_time(
    fake_share: FakeShare, session_id: str
) -> None:
    sensor = SimulatedSensor(seed=4, start=START - timedelta(hours=1), lag_s=0)
    fake_share.attach_sensor(US, USERNAME, sensor)
    from_sensor = sensor.readings_between(START - timedelta(minutes=30), START)
    replaced = from_sensor[-1].reading
    fake_share.publish(US, USERNAME, Reading(replaced.time, 222, Trend.SINGLE_UP))
    extra = publish(fake_share, timedelta(seconds=1), 99)
    items = read(fake_share, session_id, 30, 288).json()
    assert len(items) == len(from_sensor) + 1
    assert items[0]["Value"] == extra.mgdl
    assert items[1]["Value"] == 222
    assert len({item["WT"] for item in items}) == len(items)


def test_removed_readings_are_not_served(fake_share: FakeShare, session_id: str) -> None:
    sensor = SimulatedSensor(seed=4, start=START - timedelta(hours=1), lag_s=0)
    fake_share.attach_sensor(US, USERNAME, sensor)
    published = publish(fake_share, timedelta(seconds=5), 180)
    newest_from_sensor = sensor.readings_between(START - timedelta(minutes=10), START)[-1]
    fake_share.remove_reading(US, USERNAME, published.time)
    fake_share.remove_reading(US, USERNAME, newest_from_sensor.reading.time)
    served = {item["WT"] for item in read(fake_share, session_id, 60, 288).json()}
    assert f"Date({ms(published.time)})" not in served
    assert f"Date({ms(newest_from_sensor.reading.time)})" not in served
    assert len(served) == 11


def test_a_session_reads_the_readings_of_its_own_account(
    fake_share: FakeShare, session_id: str
) -> None:
    fake_share.add_account(US, "bob", PASSWORD)
    publish(fake_share, timedelta(minutes=1), 101)
    publish(fake_share, timedelta(minutes=1), 202, username="bob")
    bob_session = sign_in(fake_share, "bob")
    assert [item["Value"] for item in read(fake_share, session_id, 10, 5).json()] == [101]
    assert [item["Value"] for item in read(fake_share, bob_session, 10, 5).json()] == [202]


def test_legacy_format(fake_share: FakeShare, session_id: str) -> None:
    reading = publish(fake_share, timedelta(minutes=1), 130, Trend.FORTY_FIVE_DOWN)
    fake_share.set_legacy_format(True)
    response = read(fake_share, session_id, 10, 1)
    stamp = ms(reading.time)
    assert response.json() == [
        {
            "WT": f"/Date({stamp})/",
            "ST": f"/Date({stamp})/",
            "DT": f"/Date({stamp}-0400)/",
            "Value": 130,
            "Trend": 5,
        }
    ]
    assert f'"\\/Date({stamp})\\/"' in response.text  # WCF escaped the slashes
    fake_share.set_legacy_format(False)
    assert read(fake_share, session_id, 10, 1).json()[0]["Trend"] == "FortyFiveDown"


# --- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"{not json", b"\xff\xfe\x00", b"[1, 2, 3]", b'"a string"', b"[" * 5000 + b"]" * 5000],
)
@pytest.mark.parametrize("endpoint", [ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ])
def test_garbage_bodies_are_invalid_argument_and_the_service_lives_on(
    fake_share: FakeShare, session_id: str, garbage: bytes, endpoint: str
) -> None:
    params = {"sessionId": session_id} if endpoint == ENDPOINT_READ else None
    error = share_error(post(fake_share, endpoint, data=garbage, params=params))
    assert error["Code"] == "InvalidArgument"
    assert PASSWORD not in json.dumps(error)
    assert authenticate(fake_share).status_code == 200


@pytest.mark.parametrize("endpoint", [ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID])
def test_an_empty_sign_in_body_is_invalid_argument(fake_share: FakeShare, endpoint: str) -> None:
    assert share_error(post(fake_share, endpoint, data=b""))["Code"] == "InvalidArgument"


@pytest.mark.parametrize("value", [123, True, ["x"], {"a": 1}])
def test_fields_of_the_wrong_type_are_invalid_argument(fake_share: FakeShare, value: Any) -> None:
    for body in (
        {"accountName": value, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
        {"accountId": value, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
    ):
        endpoint = ENDPOINT_AUTHENTICATE if "accountName" in body else ENDPOINT_LOGIN_BY_ID
        response = post(fake_share, endpoint, body=body)
        assert response.status_code == 500
        if isinstance(value, bool | list | dict):
            assert share_error(response)["Code"] == "InvalidArgument"


def test_a_chunked_request_body_is_read(fake_share: FakeShare) -> None:
    payload = json.dumps(
        {"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    ).encode()

    def pieces() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = requests.post(
        fake_share.base_url() + ENDPOINT_AUTHENTICATE, data=pieces(), timeout=TIMEOUT
    )
    assert response.status_code == 200


def test_nothing_is_printed_and_no_secret_is_logged(
    fake_share: FakeShare,
    session_id: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    authenticate(fake_share, password=PASSWORD + "x")
    read(fake_share, session_id)
    post(fake_share, ENDPOINT_READ, data=b"\x00garbage", params={"sessionId": session_id})
    fake_share.inject_fault(Fault.RESET)
    with pytest.raises(requests.ConnectionError):
        read(fake_share, session_id)
    with socket.create_connection(("127.0.0.1", fake_share.port())) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        raw.recv(1000)
    with socket.create_connection(("127.0.0.1", fake_share.port())) as raw:
        raw.sendall(b"POST /ShareWebServices/Services/x HTTP/1.1\r\nContent-Length: 50\r\n\r\n")
    assert authenticate(fake_share).status_code == 200
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    ours = [record for record in caplog.records if record.name.startswith("cgmtray")]
    assert ours
    logged = "\n".join(caplog.handler.format(record) for record in ours)
    for secret in (PASSWORD, session_id, fake_share.account_id(US, USERNAME)):
        assert secret not in logged


def test_concurrent_requests_are_all_answered_and_counted(
    fake_share: FakeShare, session_id: str
) -> None:
    publish(fake_share, timedelta(minutes=1))

    def one(_: int) -> int:
        return read(fake_share, session_id, 10, 1).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [200] * 64
    assert fake_share.counters.reads() == 64


# --- general and uploader endpoints ---------------------------------------------------------------


def test_system_utc_time(fake_share: FakeShare, fake_clock: ManualClock) -> None:
    fake_clock.advance(timedelta(minutes=1, milliseconds=250))
    response = requests.get(fake_share.base_url() + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"DateTime": f"/Date({ms(fake_clock.now())})/", "OffsetMinutes": 0}


def test_uploaded_egvs_are_readable_at_once(fake_share: FakeShare, session_id: str) -> None:
    older = ms(START - timedelta(minutes=6))
    newer = ms(START - timedelta(minutes=1))
    body = {
        "SN": "SM12345678",
        "Egvs": [
            {"Trend": 4, "ST": f"/Date({older})/", "DT": f"/Date({older})/", "Value": 110},
            {"Trend": 3, "ST": f"/Date({newer})/", "DT": f"/Date({newer}-0700)/", "Value": 118},
        ],
        "TA": -5,
    }
    response = post(fake_share, ENDPOINT_POST_EGVS, params={"sessionId": session_id}, body=body)
    assert response.status_code == 200
    items = read(fake_share, session_id, 10, 5).json()
    assert [(item["Value"], item["Trend"]) for item in items] == [
        (118, "FortyFiveUp"),
        (110, "Flat"),
    ]
    assert items[0]["WT"] == f"Date({newer})"
    assert items[0]["DT"] == f"Date({newer}-0700)"


@pytest.mark.parametrize(
    "egvs",
    [
        None,
        [{"Trend": 4, "ST": "/Date(1)/", "Value": 500}],
        [{"Trend": 12, "ST": "/Date(1)/", "Value": 100}],
        [{"Trend": 4, "ST": "yesterday", "Value": 100}],
        ["nonsense"],
    ],
)
def test_malformed_uploads_are_invalid_argument(
    fake_share: FakeShare, session_id: str, egvs: Any
) -> None:
    body = {"SN": "SM1", "Egvs": egvs, "TA": 0}
    response = post(fake_share, ENDPOINT_POST_EGVS, params={"sessionId": session_id}, body=body)
    assert share_error(response)["Code"] == "InvalidArgument"


def test_remote_monitoring_session_round_trip(fake_share: FakeShare, session_id: str) -> None:
    query = {"sessionId": session_id}

    def active() -> Any:
        response = post(fake_share, ENDPOINT_IS_MONITORING, params=query)
        assert response.status_code == 200
        return response.json()

    assert active() is False
    started = post(
        fake_share, ENDPOINT_START_MONITORING, params={**query, "serialNumber": "SM12345678"}
    )
    assert started.status_code == 200
    assert active() is True
    assert post(fake_share, ENDPOINT_STOP_MONITORING, params=query).status_code == 200
    assert active() is False
    missing = post(fake_share, ENDPOINT_START_MONITORING, params=query)
    assert share_error(missing)["Message"] == "Missing required field(s): serialNumber"


@pytest.mark.parametrize(
    "endpoint",
    [
        ENDPOINT_POST_EGVS,
        ENDPOINT_START_MONITORING,
        ENDPOINT_STOP_MONITORING,
        ENDPOINT_IS_MONITORING,
    ],
)
def test_uploader_endpoints_check_the_session_like_reads(
    fake_share: FakeShare, fake_clock: ManualClock, session_id: str, endpoint: str
) -> None:
    params = {"sessionId": str(uuid.uuid4()), "serialNumber": "SM1"}
    body = {"SN": "SM1", "Egvs": [], "TA": 0}
    assert share_error(post(fake_share, endpoint, params=params, body=body))["Code"] == (
        "SessionIdNotFound"
    )
    assert post(fake_share, endpoint, params={"sessionId": "x"}, body=body).status_code == 400
    assert post(fake_share, endpoint, params={"sessionId": ""}, body=body).status_code == 403
    fake_clock.advance(timedelta(days=1))
    params["sessionId"] = session_id
    assert share_error(post(fake_share, endpoint, params=params, body=body))["Code"] == (
        "SessionNotValid"
    )


# --- faults ----------------------------------------------------------------------------------


def test_rate_limit_with_retry_after(fake_share: FakeShare, session_id: str) -> None:
    fake_share.inject_fault(Fault.RATE_LIMIT, endpoint=ENDPOINT_READ, retry_after_s=90)
    response = read(fake_share, session_id)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "90"
    assert read(fake_share, session_id).status_code == 200


def test_rate_limit_without_retry_after(fake_share: FakeShare) -> None:
    fake_share.inject_fault(Fault.RATE_LIMIT_NO_HEADER)
    response = authenticate(fake_share)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("fault", "status"), [(Fault.BAD_GATEWAY_HTML, 502), (Fault.UNAVAILABLE_HTML, 503)]
)
def test_html_error_pages(fake_share: FakeShare, fault: Fault, status: int) -> None:
    fake_share.inject_fault(fault)
    response = authenticate(fake_share)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.lstrip().startswith("<!DOCTYPE html>")
    assert "cloudflare" in response.text
    with pytest.raises(ValueError):  # noqa: PT011
        response.json()


def test_an_empty_200(fake_share: FakeShare, session_id: str) -> None:
    fake_share.inject_fault(Fault.EMPTY_200, endpoint=ENDPOINT_READ)
    response = read(fake_share, session_id)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("endpoint", [ENDPOINT_READ, ENDPOINT_AUTHENTICATE])
def test_truncated_json(fake_share: FakeShare, session_id: str, endpoint: str) -> None:
    publish(fake_share, timedelta(minutes=1))
    fake_share.inject_fault(Fault.TRUNCATED_JSON, endpoint=endpoint)
    response = (
        read(fake_share, session_id) if endpoint == ENDPOINT_READ else authenticate(fake_share)
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content
    with pytest.raises(ValueError):  # noqa: PT011
        json.loads(response.content)


def test_a_slow_answer_outlasts_a_short_read_timeout(
    fake_share: FakeShare, session_id: str
) -> None:
    fake_share.inject_fault(Fault.SLOW, endpoint=ENDPOINT_READ, delay_s=0.5)
    with pytest.raises(requests.ReadTimeout):
        read_with_timeout(fake_share, session_id, 0.05)
    assert read(fake_share, session_id).status_code == 200


def test_a_slow_answer_is_still_a_normal_answer(fake_share: FakeShare, session_id: str) -> None:
    fake_share.inject_fault(Fault.SLOW, endpoint=ENDPOINT_READ, delay_s=0.05)
    began = time.monotonic()
    response = read(fake_share, session_id)
    assert time.monotonic() - began >= 0.05
    assert response.status_code == 200
    assert response.json() == []


def read_with_timeout(fake: FakeShare, session_id: str, timeout: float) -> requests.Response:
    params = {"sessionId": session_id, "minutes": 10, "maxCount": 1}
    return post(fake, ENDPOINT_READ, params=params, body={}, timeout=timeout)


def test_a_reset_connection(fake_share: FakeShare, session_id: str, http: requests.Session) -> None:
    url = fake_share.base_url() + ENDPOINT_READ
    params: dict[str, Any] = {"sessionId": session_id, "minutes": 10, "maxCount": 1}
    assert http.post(url, params=params, timeout=TIMEOUT).status_code == 200
    fake_share.inject_fault(Fault.RESET, endpoint=ENDPOINT_READ)
    with pytest.raises(requests.ConnectionError):
        http.post(url, params=params, timeout=TIMEOUT)
    assert http.post(url, params=params, timeout=TIMEOUT).status_code == 200
    assert [r.status for r in fake_share.counters.log[-3:]] == [200, 0, 200]


def test_a_server_error_with_an_unknown_meaning(fake_share: FakeShare) -> None:
    fake_share.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE)
    error = share_error(authenticate(fake_share))
    assert error["Code"] == "SSO_InternalError"
    assert "Cannot Authenticate" not in error["Message"]
    assert authenticate(fake_share).status_code == 200


def test_faults_queue_in_order_with_counts(fake_share: FakeShare) -> None:
    fake_share.inject_fault(Fault.UNAVAILABLE_HTML, count=2)
    fake_share.inject_fault(Fault.BAD_GATEWAY_HTML)
    assert fake_share.pending_faults() == 3
    statuses = [authenticate(fake_share).status_code for _ in range(4)]
    assert statuses == [503, 503, 502, 200]
    assert fake_share.pending_faults() == 0


def test_faults_hit_only_their_region_and_endpoint(fake_share: FakeShare, session_id: str) -> None:
    fake_share.inject_fault(Fault.UNAVAILABLE_HTML, region=Region.OUS)
    fake_share.inject_fault(Fault.BAD_GATEWAY_HTML, region=US, endpoint=ENDPOINT_READ)
    assert authenticate(fake_share).status_code == 200
    assert read(fake_share, session_id).status_code == 502
    assert authenticate(fake_share, region=Region.OUS).status_code == 503
    fake_share.inject_fault(Fault.EMPTY_200, count=5)
    fake_share.clear_faults()
    assert authenticate(fake_share).status_code == 200


def test_unknown_endpoints_cannot_be_faulted(fake_share: FakeShare) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake_share.inject_fault(Fault.RESET, endpoint="General/Nope")
    with pytest.raises(ValueError, match="count"):
        fake_share.inject_fault(Fault.RESET, count=0)


def test_an_outage_resets_every_request_until_it_ends(
    fake_share: FakeShare, session_id: str
) -> None:
    fake_share.set_outage(True)
    with pytest.raises(requests.ConnectionError):
        authenticate(fake_share)
    with pytest.raises(requests.ConnectionError):
        read(fake_share, session_id)
    fake_share.set_outage(False)
    assert read(fake_share, session_id).status_code == 200


def test_an_outage_can_really_stop_listening(fake_share: FakeShare, session_id: str) -> None:
    port = fake_share.port()
    fake_share.set_outage(True, refuse=True)
    with pytest.raises(requests.ConnectionError):
        authenticate(fake_share)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    fake_share.set_outage(False)
    assert fake_share.port() == port
    assert read(fake_share, session_id).status_code == 200


def test_an_open_keep_alive_connection_is_closed_by_a_refusing_outage(
    fake_share: FakeShare, session_id: str, http: requests.Session
) -> None:
    url = fake_share.base_url() + ENDPOINT_READ
    assert http.post(url, params={"sessionId": session_id}, timeout=TIMEOUT).status_code == 200
    fake_share.set_outage(True, refuse=True)
    with pytest.raises(requests.ConnectionError):
        http.post(url, params={"sessionId": session_id}, timeout=TIMEOUT)
    fake_share.set_outage(False)


# --- counters ----------------------------------------------------------------------------------


def test_counters(fake_share: FakeShare, fake_clock: ManualClock, fake_account_id: str) -> None:
    authenticate(fake_share)
    authenticate(fake_share, password="wrong")
    session = login(fake_share, fake_account_id).json()
    login(fake_share, ZERO)
    fake_clock.advance(timedelta(minutes=5))
    read(fake_share, session)
    read(fake_share, session)
    authenticate(fake_share, region=Region.OUS)
    counters = fake_share.counters
    assert counters.count(ENDPOINT_AUTHENTICATE) == 3
    assert counters.count(ENDPOINT_AUTHENTICATE, US) == 2
    assert counters.count(ENDPOINT_LOGIN_BY_ID) == 2
    assert counters.sign_ins() == 5
    assert counters.sign_ins(US) == 4
    assert counters.failed_sign_ins() == 3  # wrong password, zero UUID, wrong region
    assert counters.failed_sign_ins(US) == 2
    assert counters.reads() == 2
    assert counters.reads(Region.JP) == 0
    assert counters.reads(since=START + timedelta(minutes=5)) == 2
    assert counters.sign_ins(since=START + timedelta(minutes=1)) == 1
    log = counters.log
    assert log[0] == RequestRecord(START, US, ENDPOINT_AUTHENTICATE, 200, "", account=USERNAME)
    assert log[1].code == "AccountPasswordInvalid"
    assert log[4].time == START + timedelta(minutes=5)
    assert [record.status for record in log] == [200, 500, 200, 200, 200, 200, 500]
    counters.reset()
    assert counters.log == ()
    assert counters.sign_ins() == 0


def test_each_request_is_counted_for_its_account(
    fake_share: FakeShare, fake_account_id: str
) -> None:
    bob = "Bob@Example.com"
    fake_share.add_account(US, bob, PASSWORD)
    fake_share.add_account(Region.OUS, USERNAME, PASSWORD)
    alices = login(fake_share, fake_account_id).json()
    bobs = login(fake_share, fake_share.account_id(US, bob)).json()
    authenticate(fake_share, bob.upper(), "wrong")
    authenticate(fake_share, region=Region.OUS)
    for _ in range(3):
        read(fake_share, alices)
    read(fake_share, bobs)
    read(fake_share, "0d9b8c4e-7f3a-4b1e-9c2d-5a6b7c8d9e0f")  # nobody's session
    login(fake_share, "1d9b8c4e-7f3a-4b1e-9c2d-5a6b7c8d9e0f")  # nobody's account id
    counters = fake_share.counters
    alice, bob_key = USERNAME, "bob@example.com"
    assert counters.reads(US, account=alice) == 3
    assert counters.reads(US, account=bob_key) == 1
    assert counters.reads() == 5
    assert counters.sign_ins(US, account=alice) == 1
    assert counters.sign_ins(US, account=bob_key) == 2
    assert counters.failed_sign_ins(US, account=bob_key) == 1
    assert counters.sign_ins(Region.OUS, account=alice) == 1
    assert counters.sign_ins(account=alice) == 2  # the same name in two regions: two accounts
    assert counters.accounts() == [(US, alice), (US, bob_key), (Region.OUS, alice)]
    unknown = [r for r in counters.log if r.account is None]
    assert [(r.endpoint, r.code) for r in unknown] == [
        (ENDPOINT_READ, "SessionIdNotFound"),
        (ENDPOINT_LOGIN_BY_ID, "AccountPasswordInvalid"),
    ]


def test_an_expired_session_a_fault_and_an_outage_are_still_counted_for_their_account(
    fake_share: FakeShare, session_id: str
) -> None:
    fake_share.expire_sessions()
    assert read(fake_share, session_id).status_code == 500
    fake_share.inject_fault(Fault.RESET)
    with pytest.raises(requests.ConnectionError):
        read(fake_share, session_id)
    fake_share.set_outage(True)
    with pytest.raises(requests.ConnectionError):
        authenticate(fake_share)
    fake_share.set_outage(False)
    records = fake_share.counters.log[-3:]
    assert [(r.code, r.account) for r in records] == [
        ("SessionNotValid", USERNAME),
        ("fault:reset", USERNAME),
        ("ConnectionReset", USERNAME),
    ]


def test_faults_and_lockouts_are_counted_as_failed_sign_ins(fake_share: FakeShare) -> None:
    fake_share.inject_fault(Fault.UNAVAILABLE_HTML)
    fake_share.inject_fault(Fault.RESET)
    authenticate(fake_share)
    with pytest.raises(requests.ConnectionError):
        authenticate(fake_share)
    fake_share.lock_account(US, USERNAME)
    authenticate(fake_share)
    assert fake_share.counters.sign_ins() == 3
    assert fake_share.counters.failed_sign_ins() == 3
    assert [r.code for r in fake_share.counters.log] == [
        "fault:unavailable",
        "fault:reset",
        "SSO_AuthenticateMaxAttemptsExceeded",
    ]


# --- lifecycle ---------------------------------------------------------------------------------


def test_stop_is_idempotent_and_really_stops(fake_clock: ManualClock) -> None:
    fake = FakeShare(fake_clock, regions=[US])
    fake.add_account(US, USERNAME, PASSWORD)
    fake.start()
    fake.start()  # already running: nothing happens
    url = fake.base_url()
    was_running = fake.running
    fake.stop()
    fake.stop()
    assert (was_running, fake.running) == (True, False)
    with pytest.raises(requests.ConnectionError):
        requests.post(url + ENDPOINT_AUTHENTICATE, json={}, timeout=TIMEOUT)


def test_stop_closes_idle_keep_alive_connections_promptly(
    fake_clock: ManualClock, http: requests.Session
) -> None:
    with FakeShare(fake_clock, regions=[US]) as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        assert http.post(
            fake.base_url() + ENDPOINT_AUTHENTICATE,
            json={"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
            timeout=TIMEOUT,
        ).ok
        began = time.monotonic()
    assert time.monotonic() - began < STOP_PROMPT_S
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-share-")]


def test_stop_does_not_wait_for_a_slow_answer(fake_clock: ManualClock) -> None:
    fake = FakeShare(fake_clock, regions=[US])
    fake.start()
    fake.inject_fault(Fault.SLOW, delay_s=30)
    url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    with pytest.raises(requests.ReadTimeout):
        requests.get(url, timeout=0.05)
    began = time.monotonic()
    fake.stop()
    assert time.monotonic() - began < STOP_PROMPT_S


def test_a_fixed_port(fake_clock: ManualClock) -> None:
    port = free_port()
    with FakeShare(fake_clock, regions=[Region.JP], ports={Region.JP: port}) as fake:
        assert fake.base_url(Region.JP) == f"http://127.0.0.1:{port}/ShareWebServices/Services/"
        with pytest.raises(RuntimeError):
            fake.port(US)


def test_a_taken_port_fails_to_start_cleanly(fake_clock: ManualClock) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fake = FakeShare(fake_clock, ports={Region.JP: port})
        with pytest.raises(OSError):  # noqa: PT011
            fake.start()
        assert not fake.running


def test_the_clock_can_be_replaced(fake_share: FakeShare) -> None:
    later = ManualClock(START + timedelta(days=2))
    fake_share.set_clock(later)
    assert fake_share.clock is later
    response = requests.get(fake_share.base_url() + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
    assert response.json()["DateTime"] == f"/Date({ms(later.now())})/"


def test_the_json_subcode_form(fake_clock: ManualClock) -> None:
    with FakeShare(fake_clock, regions=[US], subcode_style="json") as fake:
        response = authenticate(fake)
        body = response.json()
        details = json.loads(body["SubCode"])["OnlineException"]
        assert details["ErrorCode"] == "AccountPasswordInvalid"
        # Typed values as recorded since late 2025: numbers, and an id without braces.
        assert (details["Type"], details["Category"], details["Severity"]) == (13, 4, 1)
        assert uuid.UUID(details["Id"])
        assert not details["Id"].startswith("{")
        assert "\n" in body["SubCode"]  # pretty-printed
        assert details["DateThrown"] == "2025-06-15T12:00:00.000Z"
        assert details["DateThrownLocal"] == "2025-06-15T12:00:00.000"


ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}"


def test_error_times_are_utc_iso_with_z_and_the_local_time_is_the_same(
    fake_share: FakeShare, fake_clock: ManualClock
) -> None:
    fake_clock.advance(timedelta(hours=5, minutes=29, seconds=43, milliseconds=728))
    body = share_error(authenticate(fake_share, password="wrong"))
    thrown = re.search(r'DateThrown="([^"]*)"', body["SubCode"])
    local = re.search(r'DateThrownLocal="([^"]*)"', body["SubCode"])
    assert thrown is not None
    assert local is not None
    assert thrown.group(1) == "2025-06-15T17:29:43.728Z"
    assert re.fullmatch(ISO_UTC + "Z", thrown.group(1))
    assert local.group(1) == thrown.group(1).removesuffix("Z")  # the service's zone is UTC
    assert "-0700" not in body["SubCode"]
    assert "+0000" not in body["SubCode"]
    assert re.search(r'Id="\{[0-9a-f-]{36}\}"', body["SubCode"])


def test_quotes_in_a_subcode_message_are_left_as_recorded(fake_share: FakeShare) -> None:
    response = post(
        fake_share,
        ENDPOINT_LOGIN_BY_ID,
        body={"accountId": "1", "password": PASSWORD, "applicationId": APP_ID_US_OUS},
    )
    body = share_error(response)
    assert 'from String "1"' in body["SubCode"]
    assert "&quot;" not in body["SubCode"]


def test_login_by_name_answers_200_with_the_zero_uuid_as_recorded(fake_share: FakeShare) -> None:
    for password in (PASSWORD, "wrong"):
        response = post(
            fake_share,
            ENDPOINT_LOGIN_BY_NAME,
            body={"accountName": USERNAME, "password": password, "applicationId": APP_ID_US_OUS},
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == "00000000-0000-0000-0000-000000000000"


# --- the read window as a property ----------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    ages_s=st.lists(st.integers(min_value=-600, max_value=30 * 3600), max_size=25, unique=True),
    lags_s=st.lists(st.integers(min_value=0, max_value=900), min_size=25, max_size=25),
    minutes=st.integers(min_value=-5, max_value=2000),
    max_count=st.integers(min_value=-1, max_value=400),
)
def test_a_read_returns_exactly_the_visible_readings_in_the_window(
    ages_s: list[int], lags_s: list[int], minutes: int, max_count: int
) -> None:
    clock = ManualClock(START)
    with FakeShare(clock, regions=[US]) as fake:
        fake.add_account(US, USERNAME, PASSWORD)
        published = []
        for index, (age, lag) in enumerate(zip(ages_s, lags_s, strict=False)):
            reading = Reading(START - timedelta(seconds=age), 40 + index, Trend.FLAT)
            fake.publish(US, USERNAME, reading, reading.time + timedelta(seconds=lag))
            published.append((reading, reading.time + timedelta(seconds=lag)))
        session = sign_in(fake)
        served = read(fake, session, minutes, max_count).json()
    window = timedelta(minutes=min(minutes, 1440))
    expected = sorted(
        (
            reading
            for reading, available_at in published
            if START - window <= reading.time <= START and available_at <= START
        ),
        key=lambda reading: reading.time,
        reverse=True,
    )
    if minutes <= 0 or max_count <= 0:
        expected = []
    expected = expected[: min(max_count, 288)] if expected else []
    assert [item["Value"] for item in served] == [reading.mgdl for reading in expected]


class BrokenSensor(SimulatedSensor):
    def readings_between(self, start: datetime, end: datetime) -> list[Any]:
        raise RuntimeError("sensor fell off")


def test_an_internal_failure_is_a_500_not_a_hang(fake_share: FakeShare, session_id: str) -> None:
    fake_share.attach_sensor(US, USERNAME, BrokenSensor(start=START))
    response = read(fake_share, session_id)
    assert share_error(response)["Code"] == "InternalError"
    assert authenticate(fake_share).status_code == 200
