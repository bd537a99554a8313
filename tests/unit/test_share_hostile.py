"""Hostile servers on loopback: every request ends by its deadline, no answer fills memory,
a broken body is a ShareError, one lying Date header moves nothing, the future is refused."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.server_clock import ServerClock
from cgmtray.fakeshare.server import FakeShare, Fault
from cgmtray.share.client import MAX_BODY_BYTES, ClientConfig, ShareClient
from cgmtray.share.errors import (
    InvalidRequestError,
    InvalidResponse,
    NetworkError,
    RequestTimedOut,
    ResponseTooLarge,
    ShareError,
)
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_READ, SERVICES_PATH, Region

USERNAME = "alice@example.com"
PASSWORD = "s3cret-Passw0rd!"
ACCOUNT_ID = "3f2b8c1e-7d4a-4e9b-a1c5-9e8d7c6b5a41"
START = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
#: A short deadline for the tests; the read timeout is far longer, so only the deadline can end
#: a trickle.
DEADLINE_S = 2.0
#: A bound that holds on any busy machine: the point is "it ends", not "it ends fast".
GENEROUS_S = 30.0
#: Python allocations while a hostile answer is read stay far below this.
MEMORY_BOUND = 50 * 1024 * 1024


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        server.add_account(Region.US, USERNAME, PASSWORD, account_id=ACCOUNT_ID)
        yield server


def config_for(base_url: str, **overrides: object) -> ClientConfig:
    settings: dict[str, object] = {
        "connect_timeout_s": 5.0,
        "read_timeout_s": 20.0,
        "deadline_s": DEADLINE_S,
    }
    settings.update(overrides)
    return ClientConfig(Region.US, USERNAME, base_url=base_url, **settings)  # type: ignore[arg-type]


@pytest.fixture
def make_client(clock: ManualClock) -> Iterator[Callable[..., ShareClient]]:
    made: list[ShareClient] = []

    def factory(base_url: str, **kwargs: object) -> ShareClient:
        config_keys = {"deadline_s", "account_id", "read_timeout_s"}
        config = config_for(base_url, **{k: v for k, v in kwargs.items() if k in config_keys})
        options = {k: v for k, v in kwargs.items() if k not in config_keys}
        options.setdefault("clock", clock)
        client = ShareClient(config, PASSWORD, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


def publish(fake: FakeShare, clock: ManualClock, mgdl: int, minutes_ago: int = 2) -> Reading:
    reading = Reading(clock.now() - timedelta(minutes=minutes_ago), mgdl, Trend.FLAT)
    fake.publish(Region.US, USERNAME, reading)
    return reading


# --- a raw loopback server that answers whatever a test writes ----------------------------------

Script = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """Accepts connections on loopback; each gets its request read, then `script` answers."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{SERVICES_PATH}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            thread = threading.Thread(target=self._answer, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            received = b""
            while b"\r\n\r\n" not in received:
                data = connection.recv(65536)
                if not data:
                    return
                received += data
            head, _, body = received.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += connection.recv(65536)
            self._script(connection, self._stop)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(GENEROUS_S)
        self._acceptor.join(GENEROUS_S)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def trickle(data: bytes, every_s: float) -> Script:
    def script(connection: socket.socket, stop: threading.Event) -> None:
        for byte in data:
            if stop.wait(every_s):
                return
            connection.sendall(bytes((byte,)))

    return script


def slow_chunks(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
    while not stop.wait(0.2):
        connection.sendall(b"2\r\n1,\r\n")


def close_delimited_flood(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
    piece = b"1," * 32768
    for _ in range(8000):  # 500 MB, no Content-Length: the end of the body is the close
        if stop.is_set():
            return
        connection.sendall(piece)


def expect_plain_transient(error: ShareError) -> None:
    assert error.failure_class is FailureClass.TRANSIENT
    assert "Traceback" not in error.user_message
    assert error.user_message.endswith("CGM Tray will try again by itself.")


def ends_in_time(call: Callable[[], object]) -> ShareError:
    began = time.monotonic()
    with pytest.raises(ShareError) as caught:
        call()
    assert time.monotonic() - began < GENEROUS_S
    return caught.value


# --- the deadline ------------------------------------------------------------------------------


def test_an_answer_at_one_byte_a_second_ends_at_the_deadline(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    fake.inject_fault(Fault.DRIP, endpoint=ENDPOINT_AUTHENTICATE, delay_s=1.0)
    client = make_client(fake.base_url())
    error = ends_in_time(client.sign_in)
    assert isinstance(error, RequestTimedOut)
    expect_plain_transient(error)
    assert client.sign_in_blocked is None  # no answer: not a refusal of the credentials
    assert "did not answer in time" in error.user_message


def test_the_deadline_also_holds_on_a_session_the_caller_gave(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    fake.inject_fault(Fault.DRIP, endpoint=ENDPOINT_AUTHENTICATE, delay_s=1.0)
    with requests.Session() as session:
        client = make_client(fake.base_url(), session=session)
        assert isinstance(ends_in_time(client.sign_in), RequestTimedOut)


def test_a_read_that_trickles_ends_and_the_next_read_works(
    fake: FakeShare, clock: ManualClock, make_client: Callable[..., ShareClient]
) -> None:
    reading = publish(fake, clock, 110)
    client = make_client(fake.base_url())
    client.sign_in()
    fake.inject_fault(Fault.DRIP, endpoint=ENDPOINT_READ, delay_s=0.5)
    assert isinstance(ends_in_time(client.latest), RequestTimedOut)
    assert client.latest() == reading


def test_headers_that_trickle_end_at_the_deadline(
    raw_server: Callable[[Script], RawServer], make_client: Callable[..., ShareClient]
) -> None:
    server = raw_server(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0.3))
    error = ends_in_time(make_client(server.base_url).sign_in)
    assert isinstance(error, RequestTimedOut)


def test_a_chunked_body_that_never_ends_slowly_ends_at_the_deadline(
    raw_server: Callable[[Script], RawServer], make_client: Callable[..., ShareClient]
) -> None:
    server = raw_server(slow_chunks)
    error = ends_in_time(make_client(server.base_url).sign_in)
    assert isinstance(error, RequestTimedOut)


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_missing_or_endless_deadline_is_refused(seconds: float) -> None:
    with pytest.raises(InvalidRequestError):
        ShareClient(config_for(f"http://127.0.0.1:1{SERVICES_PATH}", deadline_s=seconds), "pw")


def test_the_default_deadline() -> None:
    assert ClientConfig(Region.US, USERNAME).deadline_s == 45.0


# --- the size cap ------------------------------------------------------------------------------


def read_with_bounded_memory(call: Callable[[], object]) -> ShareError:
    tracemalloc.start()
    try:
        error = ends_in_time(call)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND
    return error


def test_an_endless_chunked_answer_stops_at_the_cap(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    fake.inject_fault(Fault.ENDLESS, endpoint=ENDPOINT_AUTHENTICATE, delay_s=60)
    client = make_client(fake.base_url(), deadline_s=20.0)
    error = read_with_bounded_memory(client.sign_in)
    assert isinstance(error, ResponseTooLarge | RequestTimedOut)
    expect_plain_transient(error)
    assert client.sign_in_blocked is None


def test_a_500_mb_answer_is_refused_by_its_content_length(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    fake.inject_fault(Fault.HUGE, endpoint=ENDPOINT_AUTHENTICATE, size_mb=500)
    client = make_client(fake.base_url())
    error = read_with_bounded_memory(client.sign_in)
    assert isinstance(error, ResponseTooLarge)
    assert isinstance(error, InvalidResponse)
    expect_plain_transient(error)
    assert "larger than a real one" in error.user_message


def test_a_500_mb_answer_without_a_length_stops_at_the_cap(
    raw_server: Callable[[Script], RawServer], make_client: Callable[..., ShareClient]
) -> None:
    server = raw_server(close_delimited_flood)
    client = make_client(server.base_url, deadline_s=20.0)
    error = read_with_bounded_memory(client.sign_in)
    assert isinstance(error, ResponseTooLarge | RequestTimedOut)


def test_an_answer_just_under_the_cap_is_read(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    size_mb = (MAX_BODY_BYTES - 1024) / (1024 * 1024)
    fake.inject_fault(Fault.HUGE, endpoint=ENDPOINT_AUTHENTICATE, size_mb=size_mb)
    client = make_client(fake.base_url(), deadline_s=20.0)
    with pytest.raises(InvalidResponse) as caught:  # read whole, but an array is not an id
        client.sign_in()
    assert not isinstance(caught.value, ResponseTooLarge)


# --- broken answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n[]",
        b"HTTP/1.1 2000 Very OK\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
    ],
    ids=[
        "bad-chunk-size",
        "chunked-cut",
        "short-body",
        "bad-gzip",
        "bad-length",
        "bad-status",
        "not-http",
        "too-many-headers",
        "header-too-long",
    ],
)
def test_a_broken_answer_is_a_share_error_not_a_crash(
    answer: bytes,
    raw_server: Callable[[Script], RawServer],
    make_client: Callable[..., ShareClient],
) -> None:
    def script(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(answer)
        connection.shutdown(socket.SHUT_WR)

    server = raw_server(script)
    error = ends_in_time(make_client(server.base_url).sign_in)
    assert isinstance(error, InvalidResponse | NetworkError)
    expect_plain_transient(error)


# --- Share's clock -----------------------------------------------------------------------------


def test_one_lying_date_header_amid_honest_ones_leaves_share_s_clock(
    fake: FakeShare, clock: ManualClock, make_client: Callable[..., ShareClient]
) -> None:
    local = ManualClock(START - timedelta(hours=1))  # an hour slow: the skew is +1 h
    publish(fake, clock, 110)
    client = make_client(fake.base_url(), clock=local)
    client.latest()
    assert client.server_clock_skew == timedelta(hours=1)
    fake.inject_fault(Fault.LYING_DATE, endpoint=ENDPOINT_READ)
    client.latest()
    assert client.server_clock_skew == timedelta(hours=1)
    assert client.server_now() == clock.now()
    client.latest()
    assert client.server_now() == clock.now()


def test_one_server_clock_can_be_shared(
    fake: FakeShare, clock: ManualClock, make_client: Callable[..., ShareClient]
) -> None:
    local = ManualClock(START + timedelta(minutes=30))
    shared = ServerClock(local)
    client = make_client(fake.base_url(), clock=local, server_clock=shared)
    assert client.server_clock is shared
    client.sign_in()
    assert shared.skew == timedelta(minutes=-30)
    assert shared.now() == clock.now() == client.server_now()


def test_a_client_makes_its_own_server_clock(
    fake: FakeShare, make_client: Callable[..., ShareClient]
) -> None:
    client = make_client(fake.base_url())
    assert isinstance(client.server_clock, ServerClock)
    assert client.server_clock_skew is None


# --- readings from the future ------------------------------------------------------------------


def test_a_reading_a_year_ahead_beside_a_real_45_is_refused(
    fake: FakeShare,
    clock: ManualClock,
    make_client: Callable[..., ShareClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = publish(fake, clock, 45)
    fake.inject_fault(Fault.FUTURE_READING)
    client = make_client(fake.base_url())
    with caplog.at_level(logging.WARNING):
        assert client.read(10, 2) == (real,)
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "share.future_reading"]
    assert len(warnings) == 1
    record = warnings[0]
    assert getattr(record, "count", None) == 1
    assert getattr(record, "ahead_s", 0) >= 364 * 86400
    assert "250" not in record.getMessage()
    assert "250" not in str(record.args)
    # (not vars(record): its timestamps and thread ids may hold "250" by chance)


def test_a_clock_an_hour_slow_with_no_skew_yet_keeps_real_readings(
    fake: FakeShare, clock: ManualClock, make_client: Callable[..., ShareClient]
) -> None:
    """The sign-in answer lies about the date, so no skew is adopted before the read: the read
    answer's own Date is what shows the readings are not from the future."""
    real = publish(fake, clock, 110)
    local = ManualClock(START - timedelta(hours=1))
    fake.inject_fault(Fault.LYING_DATE)  # the LoginById answer
    client = make_client(fake.base_url(), clock=local, account_id=ACCOUNT_ID)
    assert client.latest() == real
    assert client.server_clock_skew is None
