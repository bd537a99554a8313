"""The fake's hostile faults: a reading from the future, a lying Date, drip, endless, huge."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from tests.support.processes import poll_until

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare import control
from cgmtray.fakeshare.faults import (
    FUTURE_READING_AHEAD,
    FUTURE_READING_MGDL,
    LYING_DATE_VALUE,
    FaultPlan,
    FaultQueue,
    huge_body,
    with_future_reading,
)
from cgmtray.fakeshare.server import FakeShare, Fault
from cgmtray.share import wire
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
TIMEOUT = 10.0
#: Generous: stop() must not wait for a fault's own end, but the machine may be busy.
STOP_BOUND_S = 10.0
#: Only bounds a hang (a busy machine may be slow to answer).
HANG_BOUND_S = 60.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock, regions=[US], control_port=0) as started:
        started.add_account(US, USERNAME, PASSWORD)
        yield started


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
    return http.post(fake.base_url(US) + ENDPOINT_READ, params=params, json={}, timeout=TIMEOUT)


def test_a_future_reading_beside_the_real_ones(fake: FakeShare, clock: ManualClock) -> None:
    real = Reading(clock.now() - timedelta(minutes=2), 45, Trend.FLAT)
    fake.publish(US, USERNAME, real)
    fake.inject_fault(Fault.FUTURE_READING)  # waits for a read: sign-ins pass
    with requests.Session() as http:
        session_id = sign_in(fake, http)
        answer = read(fake, http, session_id)
        assert answer.status_code == 200
        readings = wire.parse_readings(answer.json())
        assert [(r.time, r.mgdl) for r in readings] == [
            (clock.now() + FUTURE_READING_AHEAD, FUTURE_READING_MGDL),
            (real.time, 45),
        ]
        assert len(wire.parse_readings(read(fake, http, session_id).json())) == 1
    assert fake.counters.count(ENDPOINT_READ) == 2


def test_a_future_reading_on_a_failed_read_leaves_it_as_it_was(fake: FakeShare) -> None:
    fake.inject_fault(Fault.FUTURE_READING)
    params = {"sessionId": "not-a-session", "minutes": "10", "maxCount": "1"}
    answer = requests.post(fake.base_url() + ENDPOINT_READ, params=params, json={}, timeout=TIMEOUT)
    assert answer.status_code != 200
    assert fake.pending_faults() == 0


def test_with_future_reading_leaves_a_body_that_is_no_array_alone() -> None:
    assert with_future_reading(b"not json", START) == b"not json"
    assert with_future_reading(b'{"a": 1}', START) == b'{"a": 1}'


def test_a_lying_date_header_says_2001(fake: FakeShare, clock: ManualClock) -> None:
    fake.inject_fault(Fault.LYING_DATE)
    url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    with requests.Session() as http:
        lying = http.get(url, timeout=TIMEOUT)
        honest = http.get(url, timeout=TIMEOUT)
    assert lying.status_code == 200
    assert email.utils.parsedate_to_datetime(lying.headers["Date"]) == LYING_DATE_VALUE
    assert email.utils.parsedate_to_datetime(honest.headers["Date"]) == clock.now()


def raw_request(fake: FakeShare) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fake.port(US)), timeout=TIMEOUT)
    sock.sendall(
        b"GET /ShareWebServices/Services/" + ENDPOINT_SYSTEM_UTC_TIME.encode() + b" HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n\r\n"
    )
    return sock


def test_drip_sends_the_whole_answer_a_byte_at_a_time(fake: FakeShare) -> None:
    fake.inject_fault(Fault.DRIP, delay_s=0.001)
    with raw_request(fake) as sock:
        first = sock.recv(65536)
        received = first
        while chunk := sock.recv(65536):
            received += chunk
    assert len(first) < 16  # headers trickle too
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)


def test_stop_does_not_wait_for_a_drip_or_an_endless_answer(clock: ManualClock) -> None:
    fake = FakeShare(clock, regions=[US])
    fake.start()
    try:
        # One fault, one request, in turn: two requests racing for two queued faults could
        # give the endless one the drip (a byte a minute) on a busy machine.
        fake.inject_fault(Fault.DRIP, delay_s=60)
        dripping = raw_request(fake)
        poll_until(lambda: fake.pending_faults() == 0, HANG_BOUND_S, what="the drip taken")
        fake.inject_fault(Fault.ENDLESS, delay_s=600)
        endless = raw_request(fake)
        endless.settimeout(HANG_BOUND_S)
        try:
            assert endless.recv(1)  # the endless answer has begun
            began = time.monotonic()
            fake.stop()
            assert time.monotonic() - began < STOP_BOUND_S
        finally:
            dripping.close()
            endless.close()
    finally:
        fake.stop()  # idempotent: a failure above must not leave the fake's threads behind


def test_endless_is_a_chunked_200_that_goes_on(fake: FakeShare) -> None:
    fake.inject_fault(Fault.ENDLESS, delay_s=600)
    with requests.get(
        fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME, stream=True, timeout=TIMEOUT
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["Transfer-Encoding"] == "chunked"
        size = 0
        for chunk in answer.iter_content(65536):
            size += len(chunk)
            if size > 8 * 1024 * 1024:
                break
    assert size > 8 * 1024 * 1024


def test_endless_ends_when_its_own_time_is_up(fake: FakeShare) -> None:
    fake.inject_fault(Fault.ENDLESS, delay_s=0.01)
    url = fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME
    # The body stops without its last chunk: a broken answer, but an ended one.
    with (
        requests.get(url, stream=True, timeout=TIMEOUT) as answer,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        for _ in answer.iter_content(65536):
            pass


def test_huge_is_one_json_answer_of_the_asked_size(fake: FakeShare) -> None:
    fake.inject_fault(Fault.HUGE, size_mb=1.5)
    answer = requests.get(fake.base_url() + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content) == 1.5 * 1024 * 1024
    assert isinstance(answer.json(), list)


@pytest.mark.parametrize("size", [0, 3, 10, 500, 100_000, 1_234_567])
def test_huge_body_is_valid_json_of_exactly_its_size(size: int) -> None:
    body = b"".join(huge_body(size))
    assert len(body) == max(size, 3)
    assert isinstance(json.loads(body), list)


@pytest.mark.parametrize(
    ("spec", "plan"),
    [
        ("drip", FaultPlan(Fault.DRIP)),
        ("drip:0.5", FaultPlan(Fault.DRIP, delay_s=0.5)),
        ("endless:30", FaultPlan(Fault.ENDLESS, delay_s=30)),
        ("huge", FaultPlan(Fault.HUGE)),
        ("huge:20", FaultPlan(Fault.HUGE, size_mb=20)),
        ("lying-date:x2", FaultPlan(Fault.LYING_DATE)),
        ("future-reading", FaultPlan(Fault.FUTURE_READING)),
    ],
)
def test_the_new_faults_from_the_command_line_and_control_channel(
    fake: FakeShare, spec: str, plan: FaultPlan
) -> None:
    answer = requests.post(fake.control_url + "fault", json={"fault": spec}, timeout=TIMEOUT)
    assert answer.status_code == 200
    endpoint = ENDPOINT_READ if plan.fault is Fault.FUTURE_READING else ENDPOINT_AUTHENTICATE
    assert fake.take_fault(US, endpoint) == plan
    parsed = control.parse_fault_spec(spec)
    assert parsed.fault is plan.fault


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        FaultQueue().add(FaultPlan(Fault.HUGE, size_mb=-1))
