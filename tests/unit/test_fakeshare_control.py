"""The fake's /_fake/ control channel over loopback HTTP, and the fake-share options it needs."""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.ports import free_port

from cgmtray.domain.clock import ManualClock, write_offset_file
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Trend
from cgmtray.fakeshare import control
from cgmtray.fakeshare.control import FaultSpec, FaultSpecError, parse_fault_spec
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.main import add_arguments, run
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import (
    APP_ID_US_OUS,
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    ENDPOINT_SYSTEM_UTC_TIME,
    Region,
)

USERNAME = "alice@example.com"
PASSWORD = "s3cret-Passw0rd!"
START = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)
US = Region.US
OUS = Region.OUS
TIMEOUT = 5.0
CONTROL_LINE = re.compile(r"control: (http://127\.0\.0\.1:\d+/_fake/)")


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    """A started fake (US and OUS) with a control listener and one US account, no readings."""
    with FakeShare(clock, regions=[US, Region.OUS], control_port=0) as started:
        started.add_account(US, USERNAME, PASSWORD)
        yield started


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def region_control_url(fake: FakeShare, region: Region = US) -> str:
    return f"http://127.0.0.1:{fake.port(region)}/_fake/"


def call(
    base: str, method: str, name: str, body: object = None, **params: str
) -> requests.Response:
    return requests.request(method, base + name, json=body, params=params or None, timeout=TIMEOUT)


def sign_in(fake: FakeShare, http: requests.Session) -> str:
    base = fake.base_url(US)
    account_id = http.post(
        base + ENDPOINT_AUTHENTICATE,
        json={"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
        timeout=TIMEOUT,
    ).json()
    session_id = http.post(
        base + ENDPOINT_LOGIN_BY_ID,
        json={"accountId": account_id, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
        timeout=TIMEOUT,
    ).json()
    assert isinstance(session_id, str)
    return session_id


def read(fake: FakeShare, http: requests.Session, session_id: str) -> requests.Response:
    params: dict[str, str | int] = {"sessionId": session_id, "minutes": 1440, "maxCount": 288}
    return http.post(
        fake.base_url(US) + ENDPOINT_READ,
        params=params,
        json={},
        timeout=TIMEOUT,
    )


def reading(when: datetime, mgdl: int = 120, trend: str = "Flat") -> dict[str, object]:
    return {"time": when.isoformat(), "mgdl": mgdl, "trend": trend}


# --- shape ---------------------------------------------------------------------------------------


def test_the_control_listener_has_its_own_port_and_lists_its_endpoints(fake: FakeShare) -> None:
    url = fake.control_url
    assert CONTROL_LINE.fullmatch(f"control: {url}")
    assert port_of(url) not in {fake.port(region) for region in fake.regions}
    listed = call(url, "GET", "").json()["endpoints"]
    assert "POST /_fake/publish" in listed
    assert "GET /_fake/counters" in listed


def test_every_region_listener_also_answers_control_paths(
    fake: FakeShare, clock: ManualClock
) -> None:
    for base in (fake.control_url, region_control_url(fake, US), region_control_url(fake, OUS)):
        response = call(base, "GET", "now")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert datetime.fromisoformat(response.json()["now"]) == clock.now()


def test_now_follows_the_fakes_clock(fake: FakeShare, clock: ManualClock) -> None:
    clock.advance(timedelta(minutes=17))
    assert datetime.fromisoformat(call(fake.control_url, "GET", "now").json()["now"]) == (
        START + timedelta(minutes=17)
    )


def test_control_requests_are_never_counted_nor_faulted(fake: FakeShare) -> None:
    fake.inject_fault(Fault.UNAVAILABLE_HTML)
    for base in (fake.control_url, region_control_url(fake)):
        assert call(base, "GET", "counters").status_code == 200
        assert call(base, "POST", "expire-sessions").status_code == 200
    assert fake.counters.total() == 0
    assert fake.pending_faults() == 1  # still waiting for a Share request
    assert requests.get(
        fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT
    ).status_code == (503)


@pytest.mark.parametrize(
    ("method", "name", "status"),
    [
        ("GET", "no-such-thing", 404),
        ("POST", "now", 405),
        ("GET", "publish", 405),
        ("DELETE", "counters", 405),
    ],
)
def test_unknown_paths_and_wrong_methods_get_a_json_error(
    fake: FakeShare, method: str, name: str, status: int
) -> None:
    for base in (fake.control_url, region_control_url(fake)):
        response = call(base, method, name)
        assert response.status_code == status
        assert "error" in response.json()


def test_the_control_listener_serves_nothing_but_control_paths(fake: FakeShare) -> None:
    port = port_of(fake.control_url)
    response = requests.get(
        f"http://127.0.0.1:{port}/ShareWebServices/Services/" + ENDPOINT_SYSTEM_UTC_TIME,
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(fake: FakeShare, body: bytes) -> None:
    response = requests.post(fake.control_url + "fault", data=body, timeout=TIMEOUT)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


# --- publish and readings ------------------------------------------------------------------------


def test_published_readings_are_served_once_available(
    fake: FakeShare, clock: ManualClock, http: requests.Session
) -> None:
    session_id = sign_in(fake, http)
    body = {
        "username": USERNAME,
        "readings": [
            reading(START - timedelta(minutes=10), 64, "FortyFiveDown"),
            reading(START - timedelta(minutes=5), 66, "Flat"),
        ],
        "available_at": None,
    }
    assert call(fake.control_url, "POST", "publish", body).json() == {"published": 2}
    later = {
        "username": USERNAME,
        "readings": [reading(START + timedelta(minutes=5), 63)],
        "available_at": (START + timedelta(minutes=5, seconds=30)).isoformat(),
    }
    assert call(region_control_url(fake), "POST", "publish", later).status_code == 200
    served = read(fake, http, session_id).json()
    assert [(r["Value"], r["Trend"]) for r in served] == [(66, "Flat"), (64, "FortyFiveDown")]
    clock.advance(timedelta(minutes=5, seconds=29))
    assert len(read(fake, http, session_id).json()) == 2
    clock.advance(timedelta(seconds=1))
    assert [r["Value"] for r in read(fake, http, session_id).json()] == [63, 66, 64]


def test_each_reading_may_carry_its_own_available_at(fake: FakeShare, clock: ManualClock) -> None:
    first = {**reading(START), "available_at": (START + timedelta(seconds=20)).isoformat()}
    second = {**reading(START + timedelta(minutes=5)), "available_at": None}
    body = {"username": USERNAME, "readings": [first, second], "available_at": "2030-01-01T00:00Z"}
    assert call(fake.control_url, "POST", "publish", body).status_code == 200
    listed = call(fake.control_url, "GET", "readings", username=USERNAME, until="2030-01-01T00:00Z")
    found = {r["time"]: r for r in listed.json()["readings"]}
    assert found[START.isoformat()]["available_at"] == (START + timedelta(seconds=20)).isoformat()
    later = (START + timedelta(minutes=5)).isoformat()
    assert found[later]["available_at"] == later


def test_readings_lists_everything_the_account_holds_with_its_availability(
    fake: FakeShare, clock: ManualClock
) -> None:
    times = [START - timedelta(minutes=5 * k) for k in range(3)] + [START + timedelta(minutes=5)]
    body = {
        "username": USERNAME,
        "readings": [
            {**reading(when, 100 + k), "available_at": (when + timedelta(seconds=20)).isoformat()}
            for k, when in enumerate(times)
        ],
    }
    call(fake.control_url, "POST", "publish", body)
    listed = call(fake.control_url, "GET", "readings", username=USERNAME).json()
    assert datetime.fromisoformat(listed["now"]) == START
    rows = listed["readings"]
    assert [datetime.fromisoformat(r["time"]) for r in rows] == sorted(times, reverse=True)
    by_time = {datetime.fromisoformat(r["time"]): r for r in rows}
    assert by_time[START]["available"] is False  # 20 s of upload lag still to go
    assert by_time[START - timedelta(minutes=5)]["available"] is True
    assert by_time[START + timedelta(minutes=5)]["available"] is False
    assert by_time[START - timedelta(minutes=10)]["mgdl"] == 102
    window = call(
        fake.control_url,
        "GET",
        "readings",
        username=USERNAME,
        since=(START - timedelta(minutes=5)).isoformat(),
        until=START.isoformat(),
    ).json()["readings"]
    assert [datetime.fromisoformat(r["time"]) for r in window] == [
        START,
        START - timedelta(minutes=5),
    ]


def test_readings_include_a_sensors_readings_not_yet_uploaded(
    fake: FakeShare, clock: ManualClock
) -> None:
    from cgmtray.fakeshare.sensor import SimulatedSensor

    fake.attach_sensor(US, USERNAME, SimulatedSensor(start=START - timedelta(hours=1), lag_s=60))
    rows = call(fake.control_url, "GET", "readings", username=USERNAME).json()["readings"]
    assert 11 <= len(rows) <= 13
    newest = rows[0]
    age = START - datetime.fromisoformat(newest["time"])
    assert newest["available"] is (age >= timedelta(seconds=60))
    assert all(r["available"] for r in rows[1:])


@pytest.mark.parametrize(
    "body",
    [
        {"readings": []},
        {"username": USERNAME},
        {"username": USERNAME, "readings": [{"time": "2025-06-15T12:00:00", "mgdl": 100}]},
        {"username": USERNAME, "readings": [{"time": "yesterday", "mgdl": 100}]},
        {"username": USERNAME, "readings": [{"time": "2025-06-15T12:00Z", "mgdl": 38}]},
        {"username": USERNAME, "readings": [{"time": "2025-06-15T12:00Z", "mgdl": "100"}]},
        {"username": USERNAME, "readings": [{"time": "2025-06-15T12:00Z", "mgdl": True}]},
        {"username": USERNAME, "readings": [{**reading(START), "trend": "Sideways"}]},
        {"username": USERNAME, "readings": [{**reading(START), "trend": 10}]},
        {"username": USERNAME, "readings": [reading(START)], "available_at": 5},
        {"username": USERNAME, "readings": [reading(START)], "region": "eu"},
        {"username": USERNAME, "readings": ["120"]},
    ],
)
def test_bad_publish_requests_are_a_400_and_publish_nothing(
    fake: FakeShare, body: dict[str, Any]
) -> None:
    response = call(fake.control_url, "POST", "publish", body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert fake.all_readings(US, USERNAME, since=START - timedelta(days=1)) == []


def test_an_unknown_account_is_a_404(fake: FakeShare) -> None:
    body = {"username": "bob", "readings": [reading(START)]}
    assert call(fake.control_url, "POST", "publish", body).status_code == 404
    assert call(fake.control_url, "GET", "readings", username="bob").status_code == 404
    ous = {"username": USERNAME, "readings": [reading(START)], "region": "ous"}
    assert call(fake.control_url, "POST", "publish", ous).status_code == 404  # a US account
    assert call(
        region_control_url(fake, OUS), "GET", "readings", username=USERNAME
    ).status_code == (404)


def test_low_and_high_and_numeric_trends_are_accepted(fake: FakeShare) -> None:
    body = {
        "username": USERNAME,
        "readings": [
            reading(START, LOW_MGDL, "NotComputable"),
            {"time": (START - timedelta(minutes=5)).isoformat(), "mgdl": HIGH_MGDL, "trend": 1},
        ],
    }
    assert call(fake.control_url, "POST", "publish", body).status_code == 200
    held = fake.all_readings(US, USERNAME, since=START - timedelta(hours=1))
    assert [(p.reading.mgdl, p.reading.trend) for p in held] == [
        (LOW_MGDL, Trend.NOT_COMPUTABLE),
        (HIGH_MGDL, Trend.DOUBLE_UP),
    ]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=288),
            st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL),
            st.sampled_from(list(Trend)),
            st.integers(min_value=0, max_value=600),
        ),
        max_size=20,
        unique_by=lambda item: item[0],
    )
)
def test_what_is_published_is_what_readings_lists(
    values: list[tuple[int, int, Trend, int]],
) -> None:
    clock = ManualClock(START)
    fake = FakeShare(clock, regions=[US])  # the channel needs no listener to be understood
    fake.add_account(US, USERNAME, PASSWORD)
    items = [
        {
            "time": (START - timedelta(minutes=5 * slot)).isoformat(),
            "mgdl": mgdl,
            "trend": trend.wire_name,
            "available_at": (START - timedelta(minutes=5 * slot, seconds=-lag)).isoformat(),
        }
        for slot, mgdl, trend, lag in values
    ]
    body = json.dumps({"username": USERNAME, "readings": items}).encode()
    assert control.handle(fake, "POST", "/_fake/publish", "", body, region=US).status == 200
    listed = control.handle(
        fake, "GET", "/_fake/readings", f"username={USERNAME}", b"", region=US
    ).payload["readings"]
    assert isinstance(listed, list)
    expected = sorted(
        (
            {
                "time": item["time"],
                "mgdl": item["mgdl"],
                "trend": item["trend"],
                "available_at": item["available_at"],
                "available": datetime.fromisoformat(str(item["available_at"])) <= START,
            }
            for item in items
        ),
        key=lambda row: str(row["time"]),
        reverse=True,
    )
    assert listed == expected


# --- sessions, faults, outages -------------------------------------------------------------------


def test_expire_sessions_makes_the_next_read_session_not_valid(
    fake: FakeShare, http: requests.Session
) -> None:
    session_id = sign_in(fake, http)
    assert read(fake, http, session_id).status_code == 200
    assert call(fake.control_url, "POST", "expire-sessions").json()["expired"] is True
    answer = read(fake, http, session_id)
    assert answer.status_code == 500
    assert answer.json()["Code"] == "SessionNotValid"
    assert read(fake, http, sign_in(fake, http)).status_code == 200  # a new session works


def test_expire_sessions_of_one_region(fake: FakeShare, http: requests.Session) -> None:
    session_id = sign_in(fake, http)
    call(fake.control_url, "POST", "expire-sessions", {"region": "ous"})
    assert read(fake, http, session_id).status_code == 200


def test_a_fault_spec_as_in_the_command_line(fake: FakeShare, http: requests.Session) -> None:
    answer = call(fake.control_url, "POST", "fault", {"fault": "rate-limit:60:x2"})
    assert answer.json() == {"pending": 2}
    url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    replies = [http.get(url, timeout=TIMEOUT) for _ in range(3)]
    assert [r.status_code for r in replies] == [429, 429, 200]
    assert replies[0].headers["Retry-After"] == "60"


def test_a_fault_for_one_endpoint_only(fake: FakeShare, http: requests.Session) -> None:
    body = {"fault": "unavailable", "endpoint": ENDPOINT_READ}
    assert call(fake.control_url, "POST", "fault", body).status_code == 200
    session_id = sign_in(fake, http)  # sign-ins pass
    assert read(fake, http, session_id).status_code == 503
    assert read(fake, http, session_id).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"fault": "meteor"},
        {"fault": "slow:soon"},
        {"fault": 3},
        {"fault": "reset", "endpoint": "X"},
    ],
)
def test_bad_fault_requests_are_a_400(fake: FakeShare, body: dict[str, Any]) -> None:
    response = call(fake.control_url, "POST", "fault", body)
    assert response.status_code == 400
    assert fake.pending_faults() == 0


def test_an_outage_with_resets_leaves_the_control_paths_working(
    fake: FakeShare, http: requests.Session
) -> None:
    share_url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    answer = call(region_control_url(fake), "POST", "outage", {"down": True})
    assert answer.json() == {"down": True, "refuse": False}
    with pytest.raises(requests.ConnectionError):
        requests.get(share_url, timeout=TIMEOUT)
    assert call(region_control_url(fake), "GET", "now").status_code == 200
    call(region_control_url(fake), "POST", "outage", {"down": False})
    assert http.get(share_url, timeout=TIMEOUT).status_code == 200
    counted = call(fake.control_url, "GET", "counters").json()
    assert [(r["status"], r["code"]) for r in counted["log"]] == [
        (0, "ConnectionReset"),
        (200, ""),
    ]


def test_a_refusing_outage_keeps_the_control_listener_up(fake: FakeShare) -> None:
    share_url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    port = fake.port(US)
    answer = call(fake.control_url, "POST", "outage", {"down": True, "refuse": True})
    assert answer.status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(share_url, timeout=TIMEOUT)
    assert call(fake.control_url, "GET", "counters").status_code == 200
    assert call(fake.control_url, "POST", "outage", {"down": False}).status_code == 200
    assert fake.port(US) == port
    assert requests.get(share_url, timeout=TIMEOUT).status_code == 200


def test_a_refusing_outage_asked_of_a_share_listener_still_answers(fake: FakeShare) -> None:
    answer = call(region_control_url(fake), "POST", "outage", {"down": True, "refuse": True})
    assert answer.json() == {"down": True, "refuse": True}
    with pytest.raises(requests.ConnectionError):
        requests.get(fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
    call(fake.control_url, "POST", "outage", {"down": False})
    assert fake.running


@pytest.mark.parametrize("body", [{}, {"down": "yes"}, {"down": True, "refuse": 1}])
def test_bad_outage_requests_are_a_400(fake: FakeShare, body: dict[str, Any]) -> None:
    assert call(fake.control_url, "POST", "outage", body).status_code == 400
    assert not fake.outage


# --- counters ------------------------------------------------------------------------------------


def test_counters_count_per_endpoint_with_virtual_times(
    fake: FakeShare, clock: ManualClock, http: requests.Session
) -> None:
    session_id = sign_in(fake, http)
    clock.advance(timedelta(minutes=5))
    read(fake, http, session_id)
    http.post(
        fake.base_url() + ENDPOINT_AUTHENTICATE,
        json={"accountName": USERNAME, "password": "wrong", "applicationId": APP_ID_US_OUS},
        timeout=TIMEOUT,
    )
    counted = call(fake.control_url, "GET", "counters").json()
    assert counted["endpoints"] == {
        ENDPOINT_AUTHENTICATE: 2,
        ENDPOINT_LOGIN_BY_ID: 1,
        ENDPOINT_READ: 1,
    }
    assert (counted["sign_ins"], counted["failed_sign_ins"], counted["reads"]) == (3, 1, 1)
    assert counted["total"] == 4
    times = [datetime.fromisoformat(r["time"]) for r in counted["log"]]
    assert times == [START, START, START + timedelta(minutes=5), START + timedelta(minutes=5)]
    assert counted["log"][-1] == {
        "time": (START + timedelta(minutes=5)).isoformat(),
        "region": "us",
        "endpoint": ENDPOINT_AUTHENTICATE,
        "status": 500,
        "code": "AccountPasswordInvalid",
        "account": USERNAME,
    }
    assert counted["accounts"] == {
        "us": {USERNAME: {"reads": 1, "sign_ins": 3, "failed_sign_ins": 1, "total": 4}}
    }
    since = call(
        fake.control_url, "GET", "counters", since=(START + timedelta(minutes=1)).isoformat()
    ).json()
    assert (since["total"], since["reads"], since["sign_ins"]) == (2, 1, 1)


def test_counters_report_reads_and_sign_ins_per_account(
    fake: FakeShare, clock: ManualClock, http: requests.Session
) -> None:
    fake.add_account(US, "Bob", PASSWORD)
    alices = sign_in(fake, http)
    bob_id = fake.account_id(US, "Bob")
    bobs = http.post(
        fake.base_url(US) + ENDPOINT_LOGIN_BY_ID,
        json={"accountId": bob_id, "password": PASSWORD, "applicationId": APP_ID_US_OUS},
        timeout=TIMEOUT,
    ).json()
    clock.advance(timedelta(minutes=5))
    for _ in range(2):
        read(fake, http, alices)
    read(fake, http, bobs)
    read(fake, http, "0d9b8c4e-7f3a-4b1e-9c2d-5a6b7c8d9e0f")
    counted = call(fake.control_url, "GET", "counters").json()
    assert counted["accounts"] == {
        "us": {
            USERNAME: {"reads": 2, "sign_ins": 2, "failed_sign_ins": 0, "total": 4},
            "bob": {"reads": 1, "sign_ins": 1, "failed_sign_ins": 0, "total": 2},
        }
    }
    assert counted["reads"] == 4  # the read with nobody's session is in the totals only
    assert [r["account"] for r in counted["log"]][-4:] == [USERNAME, USERNAME, "bob", None]
    since = (START + timedelta(minutes=1)).isoformat()
    later = call(fake.control_url, "GET", "counters", since=since).json()
    assert later["accounts"]["us"]["bob"] == {
        "reads": 1,
        "sign_ins": 0,
        "failed_sign_ins": 0,
        "total": 1,
    }
    assert bob_id not in json.dumps(counted)


def test_no_secret_leaves_through_the_control_channel(
    fake: FakeShare, http: requests.Session
) -> None:
    session_id = sign_in(fake, http)
    read(fake, http, session_id)
    account_id = fake.account_id(US, USERNAME)
    for name in ("counters", "", "now"):
        text = call(fake.control_url, "GET", name).text
        assert PASSWORD not in text
        assert session_id not in text
        assert account_id not in text


def test_issued_lists_every_account_and_session_id_ever_handed_out_in_every_region(
    fake: FakeShare, http: requests.Session
) -> None:
    assert call(fake.control_url, "GET", "issued").json() == {
        "account_ids": [fake.account_id(US, USERNAME)],
        "session_ids": [],
    }
    ous_id = fake.add_account(OUS, "bob@example.org", "another-Passw0rd")
    first = sign_in(fake, http)
    fake.expire_sessions()
    second = sign_in(fake, http)  # a fresh session id; the expired one still counts
    issued = call(region_control_url(fake, OUS), "GET", "issued").json()
    assert issued == {
        "account_ids": [fake.account_id(US, USERNAME), ous_id],
        "session_ids": [first, second],
    }
    assert first != second


# --- fault specs ---------------------------------------------------------------------------------


@given(
    fault=st.sampled_from(list(Fault)),
    count=st.integers(min_value=1, max_value=50),
    seconds=st.none() | st.integers(min_value=0, max_value=600),
)
def test_fault_specs_read_back_what_they_say(fault: Fault, count: int, seconds: int | None) -> None:
    text = fault.value + ("" if seconds is None else f":{seconds}") + f":x{count}"
    expected = FaultSpec(fault, count, None if seconds is None else float(seconds))
    assert parse_fault_spec(text.upper()) == expected


@pytest.mark.parametrize("text", ["meteor", "slow:soon", "reset:x0", "slow:-1", "unavailable:xx"])
def test_bad_fault_specs(text: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault_spec(text)


# --- the command's options -----------------------------------------------------------------------


class _Lines(io.StringIO):
    def __init__(self, wanted: int) -> None:
        super().__init__()
        self.wanted = wanted
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.getvalue().count("\n") >= self.wanted:
            self.ready.set()
        return written


@contextmanager
def fake_share_command(argv: list[str]) -> Iterator[list[str]]:
    """Runs `fake-share` in a thread until the block ends; yields its first three lines."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)
    stop = threading.Event()
    sink = _Lines(3)
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(run(args, stop_event=stop, out=sink)), name="control-test"
    )
    thread.start()
    try:
        assert sink.ready.wait(60), "fake-share printed too little"
        yield sink.getvalue().splitlines()
    finally:
        stop.set()
        thread.join(60)
    assert results == [0]


def test_the_second_line_is_the_control_url() -> None:
    with fake_share_command(["--account", f"{USERNAME}:{PASSWORD}"]) as lines:
        assert lines[0].endswith("/ShareWebServices/Services/")
        match = CONTROL_LINE.fullmatch(lines[1])
        assert match is not None
        assert USERNAME in lines[2]
        assert PASSWORD not in "\n".join(lines)
        listed = call(match.group(1), "GET", "readings", username=USERNAME).json()
        assert len(listed["readings"]) >= 285  # the simulated sensor's day


def test_no_sensor_starts_the_accounts_empty() -> None:
    with fake_share_command(["--account", f"{USERNAME}:{PASSWORD}", "--no-sensor"]) as lines:
        control_url = CONTROL_LINE.fullmatch(lines[1])
        assert control_url is not None
        listed = call(control_url.group(1), "GET", "readings", username=USERNAME).json()
        assert listed["readings"] == []


def test_control_requests_concern_the_printed_region() -> None:
    argv = ["--region", "jp", "--account", f"{USERNAME}:{PASSWORD}", "--no-sensor"]
    with fake_share_command(argv) as lines:
        control_url = CONTROL_LINE.fullmatch(lines[1])
        assert control_url is not None
        body = {"username": USERNAME, "readings": [reading(START)]}
        assert call(control_url.group(1), "POST", "publish", body).json() == {"published": 1}
        listed = call(
            control_url.group(1), "GET", "readings", username=USERNAME, since=START.isoformat()
        ).json()
        assert listed["region"] == "jp"
        assert len(listed["readings"]) == 1


def test_speed_and_clock_epoch_give_the_shared_clock() -> None:
    epoch = datetime.now(UTC) - timedelta(seconds=2)
    argv = ["--speed", "100", "--clock-epoch", epoch.isoformat(), "--no-sensor"]
    with fake_share_command(argv) as lines:
        control_url = CONTROL_LINE.fullmatch(lines[1])
        assert control_url is not None
        before = datetime.now(UTC)
        virtual = datetime.fromisoformat(call(control_url.group(1), "GET", "now").json()["now"])
        after = datetime.now(UTC)
    assert epoch + (before - epoch) * 100 <= virtual <= epoch + (after - epoch) * 100


def test_the_control_port_option() -> None:
    port = free_port()
    with fake_share_command(["--control-port", str(port)]) as lines:
        assert lines[1] == f"control: http://127.0.0.1:{port}/_fake/"


@pytest.mark.parametrize(
    "argv",
    [["--clock-epoch", "2026-01-01T00:00"], ["--clock-epoch", "soon"], ["--control-port", "-1"]],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert capsys.readouterr().err


def test_the_defaults_of_the_new_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.control_port, args.clock_epoch, args.no_sensor) == (0, None, False)


# --- soak controls: faults lasting a virtual time, lock, password, the clock file -------------


def test_a_fault_with_until_answers_every_request_until_then(
    fake: FakeShare, http: requests.Session, clock: ManualClock
) -> None:
    until = START + timedelta(minutes=30)
    body = {"fault": "unavailable", "endpoint": ENDPOINT_READ, "until": until.isoformat()}
    assert call(fake.control_url, "POST", "fault", body).json() == {"pending": 1}
    session_id = sign_in(fake, http)
    statuses = []
    for _ in range(4):
        statuses.append(read(fake, http, session_id).status_code)
        clock.advance(timedelta(minutes=7))
    assert statuses == [503, 503, 503, 503]
    clock.advance(timedelta(minutes=3))  # 31 minutes in: the run is over
    assert read(fake, http, session_id).status_code == 200
    assert fake.pending_faults() == 0


def test_a_fault_with_until_and_a_count_stops_at_whichever_comes_first(
    fake: FakeShare, http: requests.Session, clock: ManualClock
) -> None:
    until = (START + timedelta(minutes=10)).isoformat()
    call(fake.control_url, "POST", "fault", {"fault": "empty:x2", "until": until})
    call(fake.control_url, "POST", "fault", {"fault": "truncated:x5", "until": until})
    url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    first = [http.get(url, timeout=TIMEOUT) for _ in range(3)]
    assert [r.content for r in first[:2]] == [b"", b""]
    assert first[2].status_code == 200
    assert fake.pending_faults() == 4
    clock.advance(timedelta(minutes=10))
    assert fake.pending_faults() == 0
    assert http.get(url, timeout=TIMEOUT).json()["OffsetMinutes"] == 0


def test_a_fault_without_count_or_end_is_refused_by_the_queue(fake: FakeShare) -> None:
    with pytest.raises(ValueError, match="end time"):
        fake.inject_fault(Fault.EMPTY_200, count=None)


def test_a_bad_until_is_a_400(fake: FakeShare) -> None:
    response = call(fake.control_url, "POST", "fault", {"fault": "empty", "until": "later"})
    assert response.status_code == 400
    assert fake.pending_faults() == 0


def test_lock_refuses_every_sign_in_until_lifted(fake: FakeShare, http: requests.Session) -> None:
    assert call(fake.control_url, "POST", "lock", {"username": USERNAME}).json() == {"locked": True}
    body = {"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    refused = http.post(fake.base_url() + ENDPOINT_AUTHENTICATE, json=body, timeout=TIMEOUT)
    assert refused.status_code == 500
    assert refused.json()["Code"] == "SSO_AuthenticateMaxAttemptsExceeded"
    answer = call(fake.control_url, "POST", "lock", {"username": USERNAME, "locked": False})
    assert answer.json() == {"locked": False}
    assert isinstance(sign_in(fake, http), str)


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("lock", {}, 400),
        ("lock", {"username": USERNAME, "locked": "yes"}, 400),
        ("lock", {"username": "nobody@example.com"}, 404),
        ("password", {"username": USERNAME}, 400),
        ("password", {"username": USERNAME, "password": ""}, 400),
        ("password", {"username": "nobody@example.com", "password": "x"}, 404),
    ],
)
def test_bad_lock_and_password_requests(
    fake: FakeShare, name: str, body: dict[str, Any], status: int
) -> None:
    assert call(fake.control_url, "POST", name, body).status_code == status
    assert not fake.is_locked(US, USERNAME)


def test_a_changed_password_rejects_the_old_one(fake: FakeShare, http: requests.Session) -> None:
    new_password = "N3w-password!"
    body = {"username": USERNAME, "password": new_password}
    assert call(fake.control_url, "POST", "password", body).json() == {"changed": True}
    old = {"accountName": USERNAME, "password": PASSWORD, "applicationId": APP_ID_US_OUS}
    refused = http.post(fake.base_url() + ENDPOINT_AUTHENTICATE, json=old, timeout=TIMEOUT)
    assert refused.json()["Code"] == "AccountPasswordInvalid"
    new = {**old, "password": new_password}
    accepted = http.post(fake.base_url() + ENDPOINT_AUTHENTICATE, json=new, timeout=TIMEOUT)
    assert accepted.status_code == 200
    assert new_password not in call(fake.control_url, "GET", "counters").text


def test_the_clock_file_moves_the_fakes_clock(tmp_path: Path) -> None:
    clock_file = tmp_path / "clock.json"
    write_offset_file(clock_file, timedelta(hours=3))
    epoch = datetime.now(UTC)
    argv = ["--speed", "2", "--clock-epoch", epoch.isoformat(), "--clock-file", str(clock_file)]
    with fake_share_command([*argv, "--no-sensor"]) as lines:
        control_url = CONTROL_LINE.fullmatch(lines[1])
        assert control_url is not None
        virtual = datetime.fromisoformat(call(control_url.group(1), "GET", "now").json()["now"])
    real_elapsed = datetime.now(UTC) - epoch
    assert timedelta(hours=3) <= virtual - epoch <= timedelta(hours=3) + 2 * real_elapsed


def test_the_clock_file_needs_a_speed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--clock-file", str(tmp_path / "clock.json"), "--no-sensor"])
    assert run(args, stop_event=threading.Event(), out=io.StringIO()) == 2
    assert "--speed" in capsys.readouterr().err
