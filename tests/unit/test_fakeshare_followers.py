"""The fake's follower endpoints (protocol 2.5) over raw loopback HTTP, and their control paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import (
    APP_ID_US_OUS,
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_CONTACT_EXISTS,
    ENDPOINT_CREATE_CONTACT,
    ENDPOINT_CREATE_INVITATION,
    ENDPOINT_DELETE_CONTACT,
    ENDPOINT_LIST_SUBSCRIPTIONS,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    Region,
)

USERNAME = "pat@example.com"
PASSWORD = "pa55-Pat-word"
START = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
ZERO = "00000000-0000-0000-0000-000000000000"
TIMEOUT = 30.0  # bounds a hang only
INVITATION: dict[str, Any] = {
    "AlertSettings": {
        "FixedLowAlert": {
            "AlarmDelay": "PT0M",
            "AlertType": 3,
            "IsEnabled": True,
            "MaxValue": 55,
            "MinValue": 39,
            "RealarmDelay": "PT30M",
            "Sound": "UrgentLow.wav",
        }
    },
    "Permissions": 1,
    "DisplayName": "Pat",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    """A fake with one US account whose default follower is gone: Share on, nobody follows."""
    with FakeShare(clock, regions=[Region.US], control_port=0) as started:
        started.add_account(Region.US, USERNAME, PASSWORD)
        started.remove_followers(Region.US, USERNAME)
        started.publish(Region.US, USERNAME, Reading(START - timedelta(minutes=2), 120, Trend.FLAT))
        yield started


def _post(
    fake: FakeShare, endpoint: str, query: dict[str, str] | None = None, body: object = None
) -> requests.Response:
    data = b"" if body is None else json.dumps(body).encode()
    return requests.post(
        fake.base_url(Region.US) + endpoint,
        params=query,
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )


def _session(fake: FakeShare) -> str:
    account = _post(
        fake,
        ENDPOINT_AUTHENTICATE,
        body={"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
    ).json()
    session = _post(
        fake,
        ENDPOINT_LOGIN_BY_ID,
        body={"accountId": account, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
    ).json()
    assert isinstance(session, str)
    return session


def _read(fake: FakeShare, session: str) -> list[Any]:
    answer = _post(fake, ENDPOINT_READ, {"sessionId": session, "minutes": "10", "maxCount": "1"})
    assert answer.status_code == 200
    value = answer.json()
    assert isinstance(value, list)
    return value


def _list(fake: FakeShare, session: str) -> list[dict[str, Any]]:
    answer = _post(fake, ENDPOINT_LIST_SUBSCRIPTIONS, {"sessionId": session})
    assert answer.status_code == 200
    value = answer.json()
    assert isinstance(value, list)
    return value


def _control(fake: FakeShare, method: str, path: str, **payload: object) -> requests.Response:
    url = fake.control_url + path
    if method == "GET":
        return requests.get(url, params={k: str(v) for k, v in payload.items()}, timeout=TIMEOUT)
    return requests.post(url, json=payload, timeout=TIMEOUT)


def _fault(answer: requests.Response) -> str:
    assert answer.status_code == 500
    body = answer.json()
    assert body["TypeName"] == "FaultException"
    code = body["Code"]
    assert isinstance(code, str)
    return code


# --- the round trip -------------------------------------------------------------------------------


def test_create_invite_accept_list_delete_round_trip(fake: FakeShare) -> None:
    session = _session(fake)
    assert _list(fake, session) == []
    assert _read(fake, session) == []  # Share on, nobody follows: reads are empty

    exists = _post(fake, ENDPOINT_CONTACT_EXISTS, {"sessionId": session, "contactName": "Sam"})
    assert exists.status_code == 200
    assert exists.json() is False

    created = _post(
        fake,
        ENDPOINT_CREATE_CONTACT,
        {"sessionId": session, "contactName": "Sam", "emailAddress": "sam@example.com"},
    )
    assert created.status_code == 200
    contact_id = created.json()
    assert isinstance(contact_id, str)
    assert len(contact_id) == 36
    exists = _post(fake, ENDPOINT_CONTACT_EXISTS, {"sessionId": session, "contactName": "sam"})
    assert exists.json() is True
    assert _list(fake, session) == []  # a contact without an invitation follows nobody

    invited = _post(
        fake,
        ENDPOINT_CREATE_INVITATION,
        {"sessionId": session, "contactId": contact_id},
        INVITATION,
    )
    assert invited.status_code == 200
    subscription_id = invited.json()
    (pending,) = _list(fake, session)
    assert pending["ContactId"] == contact_id
    assert pending["ContactName"] == "Sam"
    assert pending["DisplayName"] == "Pat"
    assert pending["SubscriptionId"] == subscription_id
    assert pending["SubscriberId"] == ZERO
    assert pending["State"] == 2
    assert pending["Permissions"] == 1
    assert pending["IsEnabled"] is True
    for stamp in ("DateTimeCreated", "DateTimeModified", "InviteExpires"):
        assert pending[stamp]["DateTime"].startswith("/Date(")
        assert pending[stamp]["OffsetMinutes"] == 0
    assert _read(fake, session) == []  # a pending invitation lets nothing flow yet

    accepted = _control(fake, "POST", "accept-follower", username=USERNAME, name="Sam")
    assert accepted.status_code == 200
    (follower,) = _list(fake, session)
    assert follower["SubscriberId"] != ZERO
    assert follower["State"] != 2
    assert [r["Value"] for r in _read(fake, session)] == [120]  # now readings flow

    deleted = _post(fake, ENDPOINT_DELETE_CONTACT, {"sessionId": session, "contactId": contact_id})
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert _list(fake, session) == []
    assert _read(fake, session) == []
    again = _post(fake, ENDPOINT_DELETE_CONTACT, {"sessionId": session, "contactId": contact_id})
    assert _fault(again) == "ContactNotFound"

    assert fake.counters.follower_requests() == 11  # 2 exists, create, invite, 5 lists, 2 deletes
    assert fake.counters.subscription_lists() == 5


def test_a_new_account_has_one_accepted_follower_so_reads_flow(clock: ManualClock) -> None:
    with FakeShare(clock, regions=[Region.US]) as fake:
        fake.add_account(Region.US, USERNAME, PASSWORD)
        fake.publish(Region.US, USERNAME, Reading(START - timedelta(minutes=1), 99, Trend.FLAT))
        session = _session(fake)
        (follower,) = _list(fake, session)
        assert follower["SubscriberId"] != ZERO
        assert [r["Value"] for r in _read(fake, session)] == [99]


# --- errors ---------------------------------------------------------------------------------------


def test_a_second_contact_of_the_same_name_is_refused(fake: FakeShare) -> None:
    session = _session(fake)
    query = {"sessionId": session, "contactName": "Sam", "emailAddress": "sam@example.com"}
    assert _post(fake, ENDPOINT_CREATE_CONTACT, query).status_code == 200
    assert _fault(_post(fake, ENDPOINT_CREATE_CONTACT, {**query, "contactName": " SAM "})) == (
        "DuplicateContact"
    )


def test_a_second_invitation_and_an_unknown_contact_are_refused(fake: FakeShare) -> None:
    session = _session(fake)
    contact_id = _post(
        fake,
        ENDPOINT_CREATE_CONTACT,
        {"sessionId": session, "contactName": "Sam", "emailAddress": "sam@example.com"},
    ).json()
    query = {"sessionId": session, "contactId": contact_id}
    assert _post(fake, ENDPOINT_CREATE_INVITATION, query, INVITATION).status_code == 200
    assert _fault(_post(fake, ENDPOINT_CREATE_INVITATION, query, INVITATION)) == (
        "DuplicateSubscription"
    )
    unknown = {"sessionId": session, "contactId": "11111111-2222-3333-4444-555555555555"}
    assert _fault(_post(fake, ENDPOINT_CREATE_INVITATION, unknown, INVITATION)) == (
        "ContactNotFound"
    )
    assert _fault(_post(fake, ENDPOINT_DELETE_CONTACT, unknown)) == "ContactNotFound"


@pytest.mark.parametrize(
    ("endpoint", "query", "body", "named"),
    [
        (ENDPOINT_CONTACT_EXISTS, {}, None, "contactName"),
        (ENDPOINT_CREATE_CONTACT, {"contactName": "Sam"}, None, "emailAddress"),
        (ENDPOINT_CREATE_CONTACT, {"emailAddress": "sam@example.com"}, None, "contactName"),
        (
            ENDPOINT_CREATE_CONTACT,
            {"contactName": "Sam", "emailAddress": "not-an-address"},
            None,
            "emailAddress",
        ),
        (ENDPOINT_CREATE_INVITATION, {}, INVITATION, "contactId"),
        (ENDPOINT_CREATE_INVITATION, {"contactId": "1"}, INVITATION, "UUID"),
        (ENDPOINT_CREATE_INVITATION, {"contactId": ZERO}, None, "JSON parse error"),
        (
            ENDPOINT_CREATE_INVITATION,
            {"contactId": ZERO},
            {**INVITATION, "Permissions": "all"},
            "Permissions",
        ),
        (ENDPOINT_DELETE_CONTACT, {}, None, "contactId"),
        (ENDPOINT_DELETE_CONTACT, {"contactId": "abc"}, None, "UUID"),
    ],
)
def test_bad_arguments_are_invalid_argument_naming_the_field(
    fake: FakeShare, endpoint: str, query: dict[str, str], body: object, named: str
) -> None:
    session = _session(fake)
    answer = _post(fake, endpoint, {"sessionId": session, **query}, body)
    assert _fault(answer) == "InvalidArgument"
    assert named in answer.json()["Message"]


@pytest.mark.parametrize(
    "endpoint",
    [
        ENDPOINT_CONTACT_EXISTS,
        ENDPOINT_CREATE_CONTACT,
        ENDPOINT_CREATE_INVITATION,
        ENDPOINT_LIST_SUBSCRIPTIONS,
        ENDPOINT_DELETE_CONTACT,
    ],
)
def test_a_wrong_or_expired_session_is_refused_like_a_read(
    fake: FakeShare, clock: ManualClock, endpoint: str
) -> None:
    unknown = {"sessionId": "11111111-2222-3333-4444-555555555555"}
    assert _fault(_post(fake, endpoint, unknown, INVITATION)) == "SessionIdNotFound"
    malformed = _post(fake, endpoint, {"sessionId": "nope"}, INVITATION)
    assert malformed.status_code == 400
    session = _session(fake)
    clock.advance(timedelta(hours=25))
    assert _fault(_post(fake, endpoint, {"sessionId": session}, INVITATION)) == "SessionNotValid"


def test_the_follower_endpoints_answer_post_only(fake: FakeShare) -> None:
    answer = requests.get(fake.base_url(Region.US) + ENDPOINT_LIST_SUBSCRIPTIONS, timeout=TIMEOUT)
    assert answer.status_code == 405


# --- the control channel --------------------------------------------------------------------------


def test_the_control_channel_adds_reports_and_removes_followers(fake: FakeShare) -> None:
    session = _session(fake)
    report = _control(fake, "GET", "followers", username=USERNAME).json()
    assert report == {"followers": [], "following": False}

    added = _control(fake, "POST", "add-follower", username=USERNAME, name="Kim", accepted=False)
    assert added.status_code == 200
    report = _control(fake, "GET", "followers", username=USERNAME).json()
    assert [(f["name"], f["state"]) for f in report["followers"]] == [("Kim", "pending")]
    assert report["following"] is False
    assert _read(fake, session) == []

    _control(fake, "POST", "add-follower", username=USERNAME, name="Lee")
    report = _control(fake, "GET", "followers", username=USERNAME).json()
    assert [(f["name"], f["state"]) for f in report["followers"]] == [
        ("Kim", "pending"),
        ("Lee", "accepted"),
    ]
    assert report["following"] is True
    assert len(_read(fake, session)) == 1
    duplicate = _control(fake, "POST", "add-follower", username=USERNAME, name="lee")
    assert duplicate.status_code == 409

    one = _control(fake, "POST", "remove-followers", username=USERNAME, name="Lee").json()
    assert one == {"removed": 1}
    everyone = _control(fake, "POST", "remove-followers", username=USERNAME).json()
    assert everyone == {"removed": 1}
    assert _control(fake, "GET", "followers", username=USERNAME).json()["followers"] == []
    missing = _control(fake, "POST", "remove-followers", username=USERNAME, name="Nobody")
    assert missing.status_code == 404
    assert _control(fake, "POST", "accept-follower", username=USERNAME, name="X").status_code == (
        404
    )
    assert _control(fake, "GET", "followers", username="who@example.com").status_code == 404
    assert _control(fake, "POST", "add-follower", username=USERNAME).status_code == 400


def test_the_counters_report_the_follower_calls(fake: FakeShare) -> None:
    session = _session(fake)
    _list(fake, session)
    _post(fake, ENDPOINT_CONTACT_EXISTS, {"sessionId": session, "contactName": "Sam"})
    counters = _control(fake, "GET", "counters").json()
    assert counters["subscription_lists"] == 1
    assert counters["follower_requests"] == 2
    assert counters["endpoints"][ENDPOINT_LIST_SUBSCRIPTIONS] == 1
    assert counters["reads"] == 0
