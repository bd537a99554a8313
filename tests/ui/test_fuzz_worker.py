"""The ShareWorker facing garbage from Share keeps polling, says so honestly, and recovers.

A small loopback server answers each request from a queue of drawn garbage answers (HTML 5xx,
junk 200s, truncated JSON, unknown error codes, 429s, resets) and, once the queue is empty, like
a healthy Share whose sensor has a reading every 5 minutes. The real worker thread polls it in
virtual time the test steps (tests.support.virtual_time), whatever the machine's speed.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytestqt.qtbot import QtBot
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.readings import Reading
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    SERVICES_PATH,
    Region,
)
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0: Final = datetime(2026, 11, 21, 9, 0, 3, tzinfo=UTC)
USER: Final = "fuzz.worker@example.com"
PASSWORD: Final = "Worker-Fuzz-Pa55"
ACCOUNT_ID: Final = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
SESSION_ID: Final = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
#: How much virtual time a run may take to get its readings (as the 15 real seconds at 600x
#: speed this used to be).
WITHIN: Final = timedelta(minutes=150)
#: How long a stopping worker thread may take (real time): only a bound on a hang.
STOP_MS: Final = 30_000
HOUR: Final = timedelta(hours=1)
#: States that honestly say "no current data from Share" (never OK while answers are garbage).
NOT_OK: Final = (LinkState.UNREACHABLE, LinkState.RATE_LIMITED)


@dataclass(frozen=True)
class Garbage:
    """One bad answer: raw status, headers and body; `reset` closes without answering."""

    status: int = 500
    content_type: str = "text/html"
    body: bytes = b""
    retry_after: str | None = None
    reset: bool = False


class GarbageServer(ThreadingHTTPServer):
    """Answers from `queues[endpoint]` while it has entries, then like a healthy Share."""

    daemon_threads = True
    block_on_close = True

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.clock = clock
        self.lock = threading.Lock()
        self.queues: dict[str, deque[Garbage]] = {}
        self.always: dict[str, Garbage] = {}
        self.requests: list[str] = []
        self.request_times: list[tuple[str, datetime]] = []

    def next_garbage(self, endpoint: str) -> Garbage | None:
        with self.lock:
            self.requests.append(endpoint)
            self.request_times.append((endpoint, self.clock.now()))
            queue = self.queues.get(endpoint)
            if queue:
                return queue.popleft()
            return self.always.get(endpoint)

    def reset_script(self) -> None:
        with self.lock:
            self.queues.clear()
            self.always.clear()
            self.requests.clear()
            self.request_times.clear()

    def count(self, endpoint: str) -> int:
        with self.lock:
            return self.requests.count(endpoint)

    def times(self, endpoint: str) -> list[datetime]:
        """When (virtual time) each request to `endpoint` arrived."""
        with self.lock:
            return [when for name, when in self.request_times if name == endpoint]

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up is not a failure of the test."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SERVICES_PATH}"


def _sensor_readings(now: datetime, minutes: int, max_count: int) -> list[dict[str, object]]:
    """A reading every 5 minutes since T0 - 1 day, each available 20 s after its time."""
    newest_index = int((now - timedelta(seconds=20) - T0).total_seconds() // 300)
    out: list[dict[str, object]] = []
    for index in range(newest_index, newest_index - max_count, -1):
        when = T0 + timedelta(seconds=300 * index)
        if now - when > timedelta(minutes=minutes):
            break
        millis = int(when.timestamp() * 1000)
        out.append({"WT": f"Date({millis})", "Value": 100 + index % 50, "Trend": "Flat"})
    return out


class _Handler(BaseHTTPRequestHandler):
    server: GarbageServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        endpoint = parts.path.removeprefix(SERVICES_PATH)
        garbage = self.server.next_garbage(endpoint)
        self.close_connection = True
        if garbage is not None and garbage.reset:
            return  # the connection closes with no answer at all
        if garbage is not None:
            headers = [("Content-Type", garbage.content_type)]
            if garbage.retry_after is not None:
                headers.append(("Retry-After", garbage.retry_after))
            self._answer(garbage.status, headers, garbage.body)
            return
        if endpoint == ENDPOINT_AUTHENTICATE:
            body: object = ACCOUNT_ID
        elif endpoint == ENDPOINT_LOGIN_BY_ID:
            body = SESSION_ID
        else:
            query = parse_qs(parts.query)
            body = _sensor_readings(
                self.server.clock.now(), int(query["minutes"][0]), int(query["maxCount"][0])
            )
        self._answer(200, [("Content-Type", "application/json")], json.dumps(body).encode())

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Share's Date header, on the test's accelerated clock (as the fake's is)."""
        return format_datetime(self.server.clock.now(), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[GarbageServer]:
    httpd = GarbageServer(clock)
    thread = threading.Thread(target=httpd.serve_forever, name="garbage-share", daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@dataclass
class Run:
    """A started worker and what it said."""

    thread: WorkerThread
    time: VirtualTime
    statuses: list[ConnectionStatus]
    readings: list[tuple[Reading, ...]]


def start_worker(qtbot: QtBot, server: GarbageServer, clock: ManualClock, tmp: Path) -> Run:
    config = ClientConfig(
        region=Region.US,
        username=USER,
        base_url=server.base_url,
        # Garbage that hangs up ends at once; a sane answer must not miss these on a busy machine.
        connect_timeout_s=10.0,
        read_timeout_s=10.0,
    )
    vt = VirtualTime(clock)
    worker = ShareWorker(
        lambda: ShareClient(config, PASSWORD, clock=clock),
        clock=clock,
        store_path=str(tmp / "history.sqlite3"),
        timers=vt,
    )
    run = Run(WorkerThread(worker), vt, [], [])
    worker.status_changed.connect(run.statuses.append)
    worker.readings_received.connect(run.readings.append)
    vt.start(run.thread)
    return run


def _outcomes(statuses: list[ConnectionStatus]) -> list[ConnectionStatus]:
    """The statuses that report a poll's outcome (not only a newly planned time)."""
    outcomes: list[ConnectionStatus] = []
    for status in statuses:
        if outcomes and status.state is outcomes[-1].state and status.since == outcomes[-1].since:
            continue
        if status.state is not LinkState.STARTING:
            outcomes.append(status)
    return outcomes


# --- garbage that is the service's fault, never the person's -------------------------------------

_HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"
GARBAGE = st.one_of(
    st.builds(
        Garbage,
        status=st.sampled_from([500, 502, 503, 504, 520, 599]),
        content_type=st.sampled_from(["text/html", "application/json", "text/plain"]),
        body=st.sampled_from([_HTML, b"", b"error", b'{"Code": 42}', b'{"Message": "x"}']),
    ),
    st.builds(
        Garbage,
        status=st.sampled_from([200, 201, 203]),
        content_type=st.sampled_from(["application/json", "text/html"]),
        body=st.sampled_from(
            [
                b"",
                _HTML,
                b'[{"WT": "Date(17',
                b'{"not": "an array"}',
                b'[{"WT": "yesterday", "Value": "high"}]',
                b"\xff\xfe\x00garbage",
                b"[" * 50_000,
                b'"00000000-0000-0000-0000-000000000000"',  # on a read: junk, not a rejection
            ]
        ),
    ),
    st.builds(
        Garbage,
        status=st.just(500),
        content_type=st.just("application/json"),
        body=st.sampled_from(
            [
                b'{"Code": "SomethingNew", "Message": "?"}',
                b'{"Code": "SSO_InternalError", "Message": "Time out issue"}',
            ]
        ),
    ),
    st.builds(
        Garbage,
        status=st.just(429),
        content_type=st.just("text/plain"),
        body=st.just(b"error code: 1015"),
        retry_after=st.one_of(st.none(), st.sampled_from(["", "soon", "-5", "61", "120"])),
    ),
    st.builds(Garbage, reset=st.just(True)),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(GARBAGE, min_size=2, max_size=4))
def test_garbage_reads_keep_the_worker_polling_honestly_until_share_is_sane(
    qtbot: QtBot,
    server: GarbageServer,
    clock: ManualClock,
    tmp_path_factory: pytest.TempPathFactory,
    garbage: list[Garbage],
) -> None:
    server.reset_script()
    server.queues[ENDPOINT_READ] = deque(garbage)
    run = start_worker(qtbot, server, clock, tmp_path_factory.mktemp("worker"))
    try:
        run.time.run_until(lambda: bool(run.readings), within=WITHIN)
        assert run.thread.thread.isRunning()
        outcomes = _outcomes(run.statuses)
        bad, good = outcomes[:-1], outcomes[-1]
        # Every garbage poll was reported, none as fresh data, each with the next poll planned.
        assert len(bad) >= 1
        for status in bad:
            assert status.state in NOT_OK, status
            assert not status.ok
            assert status.problem
        assert good.state is LinkState.OK
        assert server.count(ENDPOINT_READ) >= len(garbage) + 1
        assert run.readings[0][0].time <= clock.now()
        # A garbage read never costs more than one re-login (a session-class answer).
        assert server.count(ENDPOINT_AUTHENTICATE) == 1
    finally:
        assert run.thread.stop(STOP_MS)


def test_between_garbage_polls_a_next_poll_is_always_planned(
    qtbot: QtBot, server: GarbageServer, clock: ManualClock, tmp_path: Path
) -> None:
    server.queues[ENDPOINT_READ] = deque([Garbage(503, body=_HTML)] * 3)
    run = start_worker(qtbot, server, clock, tmp_path)
    try:
        run.time.run_until(lambda: bool(run.readings), within=WITHIN)
        failing = [s for s in run.statuses if s.state is LinkState.UNREACHABLE]
        assert failing
        assert all(s.next_poll is not None for s in failing[1:])
        assert "try again" in failing[0].message
    finally:
        assert run.thread.stop(STOP_MS)


def test_garbage_at_sign_in_stays_within_the_sign_in_budget_and_recovers(
    qtbot: QtBot, server: GarbageServer, clock: ManualClock, tmp_path: Path
) -> None:
    # Protocol 7.1: at most 3 sign-ins an hour whatever the cause, so a misbehaving sign-in
    # service never turns into a login storm against the account.
    server.always[ENDPOINT_AUTHENTICATE] = Garbage(502, body=_HTML)
    started = clock.now()
    run = start_worker(qtbot, server, clock, tmp_path)
    try:
        run.time.run_until(lambda: clock.now() - started > timedelta(minutes=70), within=WITHIN)
        assert run.thread.thread.isRunning()
        first_hour = [t for t in server.times(ENDPOINT_AUTHENTICATE) if t < started + HOUR]
        assert 1 <= len(first_hour) <= 3
        assert server.count(ENDPOINT_READ) == 0  # never signed in, so never read
        outcomes = _outcomes(run.statuses)
        assert outcomes
        assert all(not s.ok and s.problem for s in outcomes)
        last = run.statuses[-1]
        if last.next_poll is None:  # stopped until the person acts: it must not say otherwise
            assert "by itself" not in (last.problem or "")

        server.always.clear()
        run.thread.bridge.poll_requested.emit()  # "Refresh now"
        run.time.run_until(lambda: bool(run.readings), within=WITHIN)
        assert run.statuses[-1].state is LinkState.OK
    finally:
        assert run.thread.stop(STOP_MS)


def test_a_share_that_resets_every_connection_then_returns(
    qtbot: QtBot, server: GarbageServer, clock: ManualClock, tmp_path: Path
) -> None:
    run = start_worker(qtbot, server, clock, tmp_path)
    try:
        run.time.run_until(lambda: bool(run.readings), within=WITHIN)
        first = len(run.readings)
        server.queues[ENDPOINT_READ] = deque([Garbage(reset=True)] * 3)
        run.time.run_until(
            lambda: any(s.state is LinkState.UNREACHABLE for s in run.statuses), within=WITHIN
        )
        run.time.run_until(
            lambda: len(run.readings) > first and run.statuses[-1].state is LinkState.OK,
            within=WITHIN,
        )
        assert server.count(ENDPOINT_AUTHENTICATE) == 1  # a network failure never re-signs in
    finally:
        assert run.thread.stop(STOP_MS)
