"""The Share client against raw garbage on loopback: only a ShareError ever leaves it."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmtray.domain.clock import ManualClock
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.errors import (
    AccountLocked,
    InvalidResponse,
    NetworkError,
    ShareError,
    SignInBlocked,
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
SESSION_ID = "8d1c5e2a-6b3f-4a7e-9c0d-1e2f3a4b5c6d"
START = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
#: Every garbage answer ends with the connection closed, so the deadline only bounds a hang.
DEADLINE_S = 20.0
JOIN_S = 30.0

FUZZ = settings(
    max_examples=max(150, settings().max_examples),  # `make fuzz`: the explore profile's count
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class GarbageServer:
    """Loopback server: the endpoint under test gets `garbage`, the others a good answer."""

    def __init__(self) -> None:
        self.garbage = b""
        self.target = ENDPOINT_AUTHENTICATE
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{SERVICES_PATH}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            connection.settimeout(JOIN_S)
            received = b""
            while b"\r\n\r\n" not in received:
                data = connection.recv(65536)
                if not data:
                    return
                received += data
            head, _, body = received.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    # The whole request is read, so the answer is not cut short by a reset.
                    while len(body) < int(value):
                        more = connection.recv(65536)
                        if not more:
                            return
                        body += more
            request_line = head.split(b"\r\n", 1)[0]
            if self.target.encode() in request_line:
                connection.sendall(self.garbage)
            elif ENDPOINT_AUTHENTICATE.encode() in request_line:
                connection.sendall(_json_answer(f'"{ACCOUNT_ID}"'.encode()))
            elif ENDPOINT_LOGIN_BY_ID.encode() in request_line:
                connection.sendall(_json_answer(f'"{SESSION_ID}"'.encode()))
            else:
                connection.sendall(_json_answer(b"[]"))
            connection.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(JOIN_S)
        for thread in self._threads:
            thread.join(JOIN_S)


def _json_answer(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@pytest.fixture(scope="module")
def server() -> Iterator[GarbageServer]:
    garbage = GarbageServer()
    yield garbage
    garbage.close()


# --- what a hostile server writes ----------------------------------------------------------------

STATUS_CODES = st.sampled_from(
    [100, 101, 102, 103, 199, 200, 201, 204, 206, 301, 304, 400, 401, 404, 429, 500, 502, 503]
) | st.integers(0, 1200)
REASONS = st.sampled_from([b"OK", b"", b"Switching Protocols", b"\xff\xfe", b"\x00", b"a" * 300])
STATUS_LINES = (
    st.builds(
        lambda version, code, reason: version + b" " + str(code).encode() + b" " + reason,
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/9.9", b"HTTX/1.1", b""]),
        STATUS_CODES,
        REASONS,
    )
    | st.sampled_from([b"", b"NOT HTTP", b"HTTP/1.1", b"HTTP/1.1 2OO OK", b"\x00\x00\x00"])
    | st.binary(max_size=40)
)
HEADER_LINES = st.sampled_from(
    [
        b"Content-Length: 0",
        b"Content-Length: 2",
        b"Content-Length: 5",
        b"Content-Length: 100000",
        b"Content-Length: -1",
        b"Content-Length: x",
        b"Content-Length: 2, 3",
        b"Content-Length: 99999999999999999999999999",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip, chunked",
        b"Transfer-Encoding: identity",
        b"Transfer-Encoding: \xff",
        b"Content-Encoding: gzip",
        b"Content-Encoding: deflate",
        b"Content-Encoding: br",
        b"Content-Encoding: zstd",
        b"Content-Encoding: gzip, deflate",
        b"Content-Encoding: x-unknown",
        b"Content-Type: application/json",
        b"Content-Type: application/json; charset=utf-16",
        b"Content-Type: application/json; charset=klingon",
        b"Content-Type: text/html; charset=\xff",
        b"Date: Sun, 15 Jun 2025 12:00:00 GMT",
        b"Date: \x00garbage",
        b"Retry-After: 99999999999999999999",
        b"Connection: close",
        b"Connection: upgrade",
        b"Upgrade: websocket",
        b"X-Nul: a\x00b",
        b"X-Bytes: \xc3\x28\xa0\xa1",
        b": no name",
        b"no colon at all",
        b" folded continuation",
    ]
) | st.binary(max_size=60).filter(lambda line: b"\r\n" not in line)
FLOODS = st.sampled_from([b"", b"X-A: b\r\n" * 150, b"X-Long: " + b"a" * 70_000 + b"\r\n"])


def _chunked(pieces: list[bytes]) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


BODIES = (
    st.sampled_from(
        [
            b"",
            b"[]",
            b'"' + ACCOUNT_ID.encode() + b'"',
            b'{"Code": "SessionIdNotFound", "Message": "x"}',
            b"zz\r\n[]\r\n0\r\n\r\n",
            b"5\r\n[]",
            b"-1\r\n\r\n",
            b"1;ext\r\nab\r\n",
            b"ffffffffffffffffffff\r\n[]\r\n",
            b"0\r\n",
            gzip.compress(b"[]")[:-4],
            gzip.compress(b"\xff\xfe not json"),
            b"\x1f\x8b\x08\x00garbage",
            b"\xef\xbb\xbf[]",
            b"\xff\xfe[\x00]\x00",
            b"\x00" * 64,
            b"<html><body>502</body></html>",
            b"[" * 5000,
        ]
    )
    | st.binary(max_size=300)
    | st.lists(st.binary(max_size=40), max_size=4).map(_chunked)
    | st.lists(st.binary(max_size=40), min_size=1, max_size=4).map(lambda p: _chunked(p)[:-7])
)


@st.composite
def garbage_answers(draw: st.DrawFn) -> bytes:
    status = draw(STATUS_LINES)
    headers = draw(st.lists(HEADER_LINES, max_size=6))
    flood = draw(FLOODS)
    body = draw(BODIES)
    ending = draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b""]))
    head = b"\r\n".join([status, *headers])
    return head + b"\r\n" + flood + ending + body


# --- the property --------------------------------------------------------------------------------

Call = Callable[[ShareClient], object]
CALLS: dict[str, tuple[str, bool, Call]] = {
    # name: (endpoint answered with garbage, account id known beforehand, the public call)
    "authenticate": (ENDPOINT_AUTHENTICATE, False, lambda client: client.sign_in()),
    "login": (ENDPOINT_LOGIN_BY_ID, True, lambda client: client.sign_in()),
    "read": (ENDPOINT_READ, True, lambda client: client.read()),
}


def _only_a_share_error_leaves(server: GarbageServer, name: str, garbage: bytes) -> None:
    endpoint, id_known, call = CALLS[name]
    server.target = endpoint
    server.garbage = garbage
    config = ClientConfig(
        Region.US,
        USERNAME,
        base_url=server.base_url,
        account_id=ACCOUNT_ID if id_known else None,
        deadline_s=DEADLINE_S,
    )
    with ShareClient(config, PASSWORD, clock=ManualClock(START)) as client:
        try:
            call(client)
        except ShareError as error:
            shown = f"{error} {error.user_message}"
            assert PASSWORD not in shown
            assert ACCOUNT_ID not in shown
            assert SESSION_ID not in shown
            assert "Traceback" not in shown
        # Anything else (ValueError, UnicodeError, AttributeError...) fails the test here.


@pytest.mark.parametrize("name", sorted(CALLS))
@FUZZ
@given(garbage=garbage_answers())
def test_any_garbage_answer_is_a_share_error_or_an_answer(
    server: GarbageServer, name: str, garbage: bytes
) -> None:
    _only_a_share_error_leaves(server, name, garbage)


# --- regressions found by fuzzing -----------------------------------------------------------------

REGRESSIONS = {
    # A 101 with broken chunked framing raised a bare ValueError out of the client.
    "101-broken-chunks": b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n"
    b"\r\nzz\r\n[]\r\n0\r\n\r\n",
    "101-cut-chunks": b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n"
    b"\r\n5\r\n[]",
    "101-upgrade": b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
    "100-then-close": b"HTTP/1.1 100 Continue\r\n\r\n",
    "204-chunked": b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "304-chunked": b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]",
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("answer", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_a_hostile_status_or_framing_is_a_transport_failure(
    server: GarbageServer, name: str, answer: bytes
) -> None:
    endpoint, id_known, call = CALLS[name]
    server.target = endpoint
    server.garbage = answer
    config = ClientConfig(
        Region.US,
        USERNAME,
        base_url=server.base_url,
        account_id=ACCOUNT_ID if id_known else None,
        deadline_s=DEADLINE_S,
    )
    with (
        ShareClient(config, PASSWORD, clock=ManualClock(START)) as client,
        pytest.raises(ShareError) as caught,
    ):
        call(client)
    assert isinstance(caught.value, InvalidResponse | NetworkError)
    assert caught.value.user_message.endswith("CGM Tray will try again by itself.")


# --- the lockout code, both spellings (protocol 2.6: Dexcom's own app has three e's) ------------


@pytest.mark.parametrize(
    "code", ["SSO_AuthenticateMaxAttemptsExceeded", "SSO_AuthenticateMaxAttemptsExceeed"]
)
def test_both_spellings_of_the_lockout_lock_the_account_and_stop_sign_ins(
    server: GarbageServer, code: str
) -> None:
    body = f'{{"Code": "{code}", "Message": "", "TypeName": "FaultException"}}'.encode()
    server.target = ENDPOINT_AUTHENTICATE
    server.garbage = (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    config = ClientConfig(Region.US, USERNAME, base_url=server.base_url, deadline_s=DEADLINE_S)
    with ShareClient(config, PASSWORD, clock=ManualClock(START)) as client:
        with pytest.raises(AccountLocked) as caught:
            client.sign_in()
        assert "locked" in caught.value.user_message
        with pytest.raises(SignInBlocked):
            client.sign_in()
        assert client.last_call.sign_ins == 0  # no second attempt reached the server
