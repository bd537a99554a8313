"""`cgm-tray fake-share` (run / add_arguments) and the in-process DemoService."""

from __future__ import annotations

import argparse
import io
import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest
import requests
from tests.support.ports import free_port

from cgmtray.domain.clock import ManualClock, ScaledClock, SystemClock
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.fakeshare.demo import (
    DEMO_FAMILY,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DemoService,
    demo_offset_minutes,
)
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.main import FaultSpec, add_arguments, parse_account, parse_fault_spec, run
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    ENDPOINT_SYSTEM_UTC_TIME,
    Region,
)

URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)/ShareWebServices/Services/")
WAIT_S = 10.0
TIMEOUT = 5.0


class LineSink(io.StringIO):
    """A text stream that tells when the first lines have arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.two_lines = threading.Event()
        self.family = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.getvalue().count("\n") >= 3:
            self.two_lines.set()
        if "family: " in self.getvalue():
            self.family.set()
        return written

    @property
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@dataclass
class Running:
    lines: list[str]
    base_url: str
    result: list[int] = field(default_factory=list)
    sink: LineSink = field(default_factory=LineSink)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cgm-tray fake-share")
    add_arguments(parser)
    return parser.parse_args(argv)


@contextmanager
def serving(argv: list[str]) -> Iterator[Running]:
    """Runs `fake-share` with `argv` in a thread until the block ends; waits for its first lines."""
    stop = threading.Event()
    sink = LineSink()
    running = Running([], "", sink=sink)

    def target() -> None:
        running.result.append(run(parse(argv), stop_event=stop, out=sink))

    thread = threading.Thread(target=target, name="fake-share-main-test")
    thread.start()
    try:
        assert sink.two_lines.wait(WAIT_S), "fake-share printed nothing"
        running.lines = sink.lines
        running.base_url = sink.lines[0]
        yield running
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    assert running.result == [0]


def sign_in_and_read(base_url: str, username: str, password: str, app_id: str) -> list[object]:
    with requests.Session() as http:
        account_id = http.post(
            base_url + ENDPOINT_AUTHENTICATE,
            json={"accountName": username, "password": password, "applicationId": app_id},
            timeout=TIMEOUT,
        ).json()
        session_id = http.post(
            base_url + ENDPOINT_LOGIN_BY_ID,
            json={"accountId": account_id, "password": password, "applicationId": app_id},
            timeout=TIMEOUT,
        ).json()
        response = http.post(
            base_url + ENDPOINT_READ,
            params={"sessionId": session_id, "minutes": 1440, "maxCount": 288},
            json={},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        readings = response.json()
        assert isinstance(readings, list)
        return readings


# --- the command ------------------------------------------------------------------------------


def test_the_first_line_is_the_base_url_and_the_demo_account_works() -> None:
    with serving([]) as running:
        assert URL_LINE.fullmatch(running.lines[0])
        assert running.lines[2] == f"account: {DEMO_USERNAME} / {DEMO_PASSWORD}"
        readings = sign_in_and_read(
            running.base_url, DEMO_USERNAME, DEMO_PASSWORD, Region.US.application_id
        )
        assert 285 <= len(readings) <= 288  # 24 h of history, one reading per 5 minutes
    with pytest.raises(requests.ConnectionError):
        requests.get(running.base_url + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)


def _region_urls(lines: list[str]) -> dict[str, str]:
    """The printed "REGION: URL" lines of the regions after the first."""
    found: dict[str, str] = {}
    for line in lines[3:]:
        name, _separator, url = line.partition(": ")
        if URL_LINE.fullmatch(url):
            found[name] = url
    return found


def test_without_accounts_the_demo_family_is_served_on_its_regions() -> None:
    with serving([]) as running:
        assert running.sink.family.wait(WAIT_S), f"no family line in {running.sink.lines!r}"
        lines = running.sink.lines
        family_line = next(line for line in lines if line.startswith("family: "))
        for person in DEMO_FAMILY:
            assert f"{person.name} ({person.label}) {person.username}" in family_line
        assert family_line.endswith(f"password {DEMO_PASSWORD}")
        urls = {"us": running.base_url, **_region_urls(lines)}
        for person in DEMO_FAMILY:
            here = urls[person.region.value]
            app_id = person.region.application_id
            readings = sign_in_and_read(here, person.username, DEMO_PASSWORD, app_id)
            assert 285 <= len(readings) <= 288, person.name
        alex = DEMO_FAMILY[2]
        assert alex.region is Region.OUS
        refused = requests.post(
            running.base_url + ENDPOINT_AUTHENTICATE,
            json={
                "accountName": alex.username,
                "password": DEMO_PASSWORD,
                "applicationId": Region.US.application_id,
            },
            timeout=TIMEOUT,
        )
        assert refused.json()["Code"] == "AccountPasswordInvalid"  # Alex is on ous only


def test_accounts_given_replace_the_demo_family() -> None:
    with serving(["--account", "carol:pw-carol"]) as running:
        assert not any(line.startswith("family: ") for line in running.sink.lines)
        for person in DEMO_FAMILY:
            refused = requests.post(
                running.base_url + ENDPOINT_AUTHENTICATE,
                json={
                    "accountName": person.username,
                    "password": DEMO_PASSWORD,
                    "applicationId": Region.US.application_id,
                },
                timeout=TIMEOUT,
            )
            assert refused.json()["Code"] == "AccountPasswordInvalid"


def test_the_port_option() -> None:
    port = free_port()
    with serving(["--port", str(port)]) as running:
        assert running.base_url == f"http://127.0.0.1:{port}/ShareWebServices/Services/"
        response = requests.get(running.base_url + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
        assert response.status_code == 200


def test_accounts_get_a_sensor_each_and_passwords_are_not_printed() -> None:
    argv = ["--account", "alice:pw:with:colons", "--account", "bob@example.com:pw-bob"]
    with serving(argv) as running:
        assert "pw:with:colons" not in "\n".join(running.lines)
        assert "alice" in running.lines[2]
        app_id = Region.US.application_id
        alice = sign_in_and_read(running.base_url, "alice", "pw:with:colons", app_id)
        bob = sign_in_and_read(running.base_url, "bob@example.com", "pw-bob", app_id)
        assert len(alice) >= 285
        assert alice != bob  # a sensor each, different seeds
        response = requests.post(
            running.base_url + ENDPOINT_AUTHENTICATE,
            json={"accountName": DEMO_USERNAME, "password": DEMO_PASSWORD, "applicationId": app_id},
            timeout=TIMEOUT,
        )
        assert response.json()["Code"] == "AccountPasswordInvalid"


def test_the_region_option_prints_that_regions_url() -> None:
    with serving(["--region", "jp"]) as running:
        readings = sign_in_and_read(
            running.base_url, DEMO_USERNAME, DEMO_PASSWORD, Region.JP.application_id
        )
        assert readings
        us_app = {
            "accountName": DEMO_USERNAME,
            "password": DEMO_PASSWORD,
            "applicationId": Region.US.application_id,
        }
        response = requests.post(
            running.base_url + ENDPOINT_AUTHENTICATE, json=us_app, timeout=TIMEOUT
        )
        assert response.json()["Code"] == "AccountPasswordInvalid"  # the JP host's rules


def test_faults_from_the_command_line() -> None:
    with serving(["--fault", "unavailable:x2", "--fault", "rate-limit:60"]) as running:
        url = running.base_url + ENDPOINT_SYSTEM_UTC_TIME
        statuses = [requests.get(url, timeout=TIMEOUT) for _ in range(4)]
        assert [r.status_code for r in statuses] == [503, 503, 429, 200]
        assert statuses[2].headers["Retry-After"] == "60"


def test_error_style_session_ttl_lockout_and_legacy_options() -> None:
    argv = ["--error-style", "2024", "--lockout-after", "1", "--legacy-format"]
    with serving(argv) as running:
        app_id = Region.US.application_id
        readings = sign_in_and_read(running.base_url, DEMO_USERNAME, DEMO_PASSWORD, app_id)
        first = readings[0]
        assert isinstance(first, dict)
        assert first["WT"].startswith("/Date(")
        assert isinstance(first["Trend"], int)
        wrong = {"accountName": DEMO_USERNAME, "password": "nope", "applicationId": app_id}
        url = running.base_url + ENDPOINT_AUTHENTICATE
        assert requests.post(url, json=wrong, timeout=TIMEOUT).json()["Code"] == "SSO_InternalError"
        right = {**wrong, "password": DEMO_PASSWORD}
        assert requests.post(url, json=right, timeout=TIMEOUT).json()["Code"] == (
            "SSO_AuthenticateMaxAttemptsExceeded"
        )


def test_the_json_subcode_style_option() -> None:
    with serving(["--subcode-style", "json"]) as running:
        wrong = {
            "accountName": DEMO_USERNAME,
            "password": "nope",
            "applicationId": Region.US.application_id,
        }
        url = running.base_url + ENDPOINT_AUTHENTICATE
        body = requests.post(url, json=wrong, timeout=TIMEOUT).json()
        details = json.loads(body["SubCode"])["OnlineException"]
        assert details["Type"] == 13
        assert details["DateThrown"].endswith("Z")


def test_a_taken_port_is_reported_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = io.StringIO()
        assert run(parse(["--port", str(port)]), stop_event=threading.Event(), out=out) == 1
    assert out.getvalue() == ""
    assert f"cannot listen on port {port}" in capsys.readouterr().err


def test_defaults() -> None:
    args = parse([])
    assert args.port == 0
    assert args.region == "us"
    assert args.speed == 1.0
    assert args.session_ttl == 86400.0
    assert args.lockout_after == 5
    assert args.error_style == "2025"
    assert args.subcode_style == "xml"
    assert args.legacy_format is False
    assert args.account is None
    assert args.fault is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--region", "eu"],
        ["--speed", "0"],
        ["--account", "no-colon"],
        ["--account", ":pw"],
        ["--fault", "meteor"],
        ["--fault", "slow:soon"],
        ["--fault", "reset:x0"],
        ["--error-style", "2023"],
    ],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)
    assert capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("rate-limit", FaultSpec(Fault.RATE_LIMIT)),
        ("rate-limit:60", FaultSpec(Fault.RATE_LIMIT, 1, 60.0)),
        ("rate-limit-no-header:x2", FaultSpec(Fault.RATE_LIMIT_NO_HEADER, 2)),
        ("bad-gateway", FaultSpec(Fault.BAD_GATEWAY_HTML)),
        ("unavailable:x3", FaultSpec(Fault.UNAVAILABLE_HTML, 3)),
        ("empty", FaultSpec(Fault.EMPTY_200)),
        ("truncated", FaultSpec(Fault.TRUNCATED_JSON)),
        ("slow:35", FaultSpec(Fault.SLOW, 1, 35.0)),
        ("slow:0.5:x4", FaultSpec(Fault.SLOW, 4, 0.5)),
        ("reset", FaultSpec(Fault.RESET)),
        ("Server-Error", FaultSpec(Fault.SERVER_ERROR_JSON)),
    ],
)
def test_fault_specs(spec: str, parsed: FaultSpec) -> None:
    assert parse_fault_spec(spec) == parsed


def test_account_specs() -> None:
    assert parse_account("alice@example.com:p:w") == ("alice@example.com", "p:w")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_account("alice:")


# --- the demo service -----------------------------------------------------------------------------


def test_the_demo_service_has_a_day_of_history() -> None:
    clock = ManualClock(datetime(2025, 6, 15, 12, 0, tzinfo=UTC))
    with DemoService(clock=clock, seed=3) as demo:
        assert URL_LINE.fullmatch(demo.base_url)
        assert demo.clock is clock
        assert (demo.username, demo.password) == (DEMO_USERNAME, DEMO_PASSWORD)
        readings = demo.fake.readings(demo.region, demo.username)
        assert 285 <= len(readings) <= 288
        newest = readings[0]
        assert clock.now() - newest.reading.time < timedelta(minutes=6)
        clock.advance(timedelta(minutes=5))
        assert demo.fake.readings(demo.region, demo.username)[0] != newest  # a new one arrived
        served = sign_in_and_read(
            demo.base_url, demo.username, demo.password, demo.region.application_id
        )
        assert len(served) == len(demo.fake.readings(demo.region, demo.username))
    assert not demo.fake.running


@pytest.mark.parametrize("hour", range(24))
def test_a_demo_opens_mid_morning_in_range_whatever_the_hour(hour: int) -> None:
    clock = ManualClock(datetime(2025, 6, 15, hour, 7, tzinfo=UTC))
    offset = demo_offset_minutes(clock.now())
    assert offset % 15 == 0
    assert -12 * 60 <= offset <= 14 * 60
    local = clock.now() + timedelta(minutes=offset)
    assert time(9, 45) <= local.time() <= time(10, 15)
    with DemoService(clock=clock, seed=hour) as demo:
        readings = demo.fake.readings(demo.region, demo.username)
        newest = readings[0].reading
        assert Thresholds().classify(newest) is GlucoseRange.IN_RANGE
        day = [published.reading for published in readings]
        assert any(reading.mgdl < 70 for reading in day)  # the night low is in the chart
        assert any(reading.mgdl > 250 for reading in day)  # and the dinner high


def test_a_fast_demo_runs_on_a_scaled_clock() -> None:
    demo = DemoService(speed=60.0, region=Region.OUS)
    assert isinstance(demo.clock, ScaledClock)
    assert demo.clock.speed == 60.0
    assert demo.fake.clock is demo.clock
    demo.start()
    try:
        assert demo.base_url.endswith("/ShareWebServices/Services/")
        assert demo.fake.regions == (Region.OUS,)
    finally:
        demo.stop()


def test_a_normal_demo_runs_on_the_system_clock() -> None:
    demo = DemoService()
    assert isinstance(demo.clock, SystemClock)
    assert "password" not in repr(demo)
    with pytest.raises(ValueError, match="speed"):
        DemoService(speed=0)


def test_the_program_stops_cleanly_on_sigint() -> None:
    command = [sys.executable, "-m", "cgmtray.fakeshare.main", "--speed", "30"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "no output from fake-share"
        first = process.stdout.readline().strip()
        assert URL_LINE.fullmatch(first)
        response = requests.get(first + ENDPOINT_SYSTEM_UTC_TIME, timeout=TIMEOUT)
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
