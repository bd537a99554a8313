"""Hostile HTTP answers for the real ShareClient: any status, headers, framing, body (loopback).

A tiny stdlib server on 127.0.0.1 writes whatever answer hypothesis drew, byte for byte (status
line, headers, Content-Length lies, chunked framing), then closes the connection. The client must
return readings or raise a ShareError whose class fits what it saw, with a short message that
holds no password, id or piece of the body, and it must never hang.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmtray.domain import schedule
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, MAX_REAL_MGDL, MIN_REAL_MGDL, Reading
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.errors import (
    InvalidResponse,
    RateLimited,
    RequestTimedOut,
    ServiceUnavailable,
    ShareError,
)
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    SERVICES_PATH,
    Region,
)

USERNAME: Final = "fuzz.user@example.com"
PASSWORD: Final = "Fuzz-Pa55word!"
ACCOUNT_ID: Final = "6a3c0e2d-1b4f-4c8a-9d7e-2f1a0b9c8d7e"
SESSION_ID: Final = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"
NOW: Final = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
#: Planted in every drawn body: no error message may repeat a piece of the body.
BODY_MARKER: Final = "Body-Marker-Q7"
MAX_MESSAGE_CHARS: Final = 300
SECRETS: Final = (PASSWORD, ACCOUNT_ID, SESSION_ID, USERNAME, BODY_MARKER)
#: Small timeouts: every answer here is written at once, so none should be reached; if one is,
#: the test still ends quickly.
CONNECT_TIMEOUT_S: Final = 2.0
READ_TIMEOUT_S: Final = 2.0

FUZZ = settings(
    max_examples=max(200, settings().max_examples),  # `make fuzz`: the explore profile's count
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# --- the scripted answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, written as raw bytes: status line, headers, framed body."""

    status: int
    reason: str = "Whatever"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: "length" (honest Content-Length), "short" / "long" (Content-Length lies), "chunked",
    #: "bad-chunked" (chunk sizes that lie), "close" (no length: the body ends with the connection).
    framing: str = "length"

    def raw(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        body = self.body
        if self.framing == "length":
            lines.append(f"Content-Length: {len(body)}")
        elif self.framing == "short":
            lines.append(f"Content-Length: {max(0, len(body) // 2)}")
        elif self.framing == "long":
            lines.append(f"Content-Length: {len(body) + 17}")
        elif self.framing in ("chunked", "bad-chunked"):
            lines.append("Transfer-Encoding: chunked")
            body = _chunked(body, lie=self.framing == "bad-chunked")
        lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body

    def describe(self) -> str:
        return f"{self.status} {self.framing} {dict(self.headers)} {self.body[:80]!r}"


def _chunked(body: bytes, *, lie: bool) -> bytes:
    out = b""
    for start in range(0, len(body), 7):
        piece = body[start : start + 7]
        size = len(piece) + (3 if lie else 0)
        out += f"{size:x}\r\n".encode() + piece + b"\r\n"
    return out + (b"" if lie else b"0\r\n\r\n")


def share_json(value: object, status: int = 200) -> Answer:
    return Answer(status, "OK", (("Content-Type", "application/json"),), json.dumps(value).encode())


def sane_answer(endpoint: str) -> Answer:
    """What a healthy Share answers on each endpoint."""
    if endpoint == ENDPOINT_AUTHENTICATE:
        return share_json(ACCOUNT_ID)
    if endpoint == ENDPOINT_LOGIN_BY_ID:
        return share_json(SESSION_ID)
    millis = int((NOW - timedelta(minutes=2)).timestamp() * 1000)
    return share_json([{"WT": f"Date({millis})", "Value": 142, "Trend": "Flat"}])


# --- the loopback server -------------------------------------------------------------------------


class ScriptedServer(ThreadingHTTPServer):
    """Answers each endpoint with `script[endpoint]` (else the sane answer) and closes."""

    daemon_threads = True
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script: dict[str, Answer] = {}
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def answer_for(self, endpoint: str) -> Answer:
        with self._lock:
            self.seen.append(endpoint)
            return self.script.get(endpoint) or sane_answer(endpoint)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up early is not a test failure; stay quiet."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SERVICES_PATH}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        endpoint = self.path.split("?", 1)[0].removeprefix(SERVICES_PATH)
        answer = self.server.answer_for(endpoint)
        self.wfile.write(answer.raw())
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on behaviour, not on access logs."""


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    httpd = ScriptedServer()
    thread = threading.Thread(target=httpd.serve_forever, name="fuzz-share", daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def make_client(server: ScriptedServer, account_id: str | None = None) -> ShareClient:
    config = ClientConfig(
        region=Region.US,
        username=USERNAME,
        base_url=server.base_url,
        account_id=account_id,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        read_timeout_s=READ_TIMEOUT_S,
    )
    return ShareClient(config, PASSWORD, clock=ManualClock(NOW))


# --- strategies ----------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/html; charset=UTF-8",
        "text/plain",
        "application/octet-stream",
        "application/json; charset=latin-1",
        "",
        "garbage/;;;",
    ]
)
RETRY_AFTERS = st.one_of(
    st.integers(min_value=0, max_value=10**15).map(str),
    st.integers(min_value=-(10**6), max_value=-1).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "soon",
            "1.5",
            "1e9",
            "NaN",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Sun, 15 Jun 2025 12:05:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 32 Foo 2025 99:99:99 GMT",
            "120, 60",
            "\u00e9\u00e9",
        ]
    ),
)
DATES = st.sampled_from(
    ["Sun, 15 Jun 2025 12:00:30 GMT", "yesterday", "", "Fri, 31 Dec 9999 23:59:59 +1400", "0"]
)
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
EXTRA_HEADERS = st.lists(
    st.one_of(
        st.tuples(st.just("Content-Type"), CONTENT_TYPES),
        st.tuples(st.just("Retry-After"), RETRY_AFTERS),
        st.tuples(st.just("Date"), DATES),
        st.tuples(st.just("Set-Cookie"), HEADER_TEXT),
        st.tuples(st.sampled_from(["X-Trace-Id", "Server", "Content-Encoding"]), HEADER_TEXT),
        st.tuples(st.just("Content-Encoding"), st.sampled_from(["gzip", "deflate", "br"])),
    ),
    max_size=4,
)
STATUSES = st.one_of(
    st.integers(min_value=100, max_value=599),
    st.sampled_from([200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 502, 503, 504]),
)


def _error_body(code: str, message: str, subcode: str = "") -> bytes:
    body = {"Code": code, "Message": message, "SubCode": subcode, "TypeName": "FaultException"}
    return json.dumps(body).encode()


_HTML: Final = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<h1>Bad gateway</h1>" + BODY_MARKER.encode() + b"<hr>cloudflare</body></html>"
)
_DEEP: Final = b"[" * 100_000 + b"]" * 100_000
_GIANT: Final = b'[{"WT":"Date(1745081013817)","Value":142,"Trend":"Flat"},' * 40_000


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """JSON, HTML, empty, truncated, binary, giant; each with the marker somewhere in it."""
    kind = draw(
        st.sampled_from(
            [
                "json",
                "share-error",
                "odd-error",
                "html",
                "empty",
                "truncated",
                "binary",
                "text",
                "huge-int",
                "deep",
                "giant",
                "zero-id",
                "id",
                "readings",
            ]
        )
    )
    if kind == "json":
        value = draw(
            st.recursive(
                st.one_of(
                    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)
                ),
                lambda c: st.one_of(
                    st.lists(c, max_size=3), st.dictionaries(st.text(max_size=5), c, max_size=3)
                ),
                max_leaves=10,
            )
        )
        return json.dumps([value, BODY_MARKER]).encode()
    if kind == "share-error":
        code = draw(
            st.sampled_from(
                [
                    "SessionIdNotFound",
                    "SessionNotValid",
                    "AccountPasswordInvalid",
                    "SSO_InternalError",
                    "SSO_AuthenticateMaxAttemptsExceeded",
                    "SSO_AuthenticateMaxAttemptsExceeed",
                    "SSO_AuthenticatePasswordInvalid",
                    "SSO_AuthenticateAccountNotFound",
                    "InvalidArgument",
                    "SomethingNew",
                ]
            )
        )
        message = draw(
            st.sampled_from(
                [
                    f"Publisher account password failed {BODY_MARKER}",
                    f"Cannot Authenticate by AccountName='{USERNAME}' {BODY_MARKER}",
                    f"Failed to find session object. [SessionId = {SESSION_ID}] {BODY_MARKER}",
                    f"Missing required field(s): UUID {BODY_MARKER} {PASSWORD}",
                ]
            )
        )
        return _error_body(code, message, f'<OnlineException Id="{ACCOUNT_ID}" />')
    if kind == "odd-error":
        odd_code = draw(st.one_of(st.none(), st.integers(), st.text(max_size=30), st.just("")))
        return json.dumps({"Code": odd_code, "Message": [BODY_MARKER], "SubCode": {}}).encode()
    if kind == "html":
        return _HTML
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\r\n", b"\x00"]))
    if kind == "truncated":
        full = _error_body("SessionIdNotFound", BODY_MARKER)
        return full[: draw(st.integers(min_value=1, max_value=len(full) - 1))]
    if kind == "binary":
        return draw(st.binary(max_size=64)) + BODY_MARKER.encode("utf-16")
    if kind == "text":
        return (
            draw(st.sampled_from([b"Forbidden", b"error code: 1015", b"OK"]))
            + b" "
            + (BODY_MARKER.encode())
        )
    if kind == "huge-int":
        return b'[{"WT":"Date(1745081013817)","Value":' + b"9" * 5000 + b"}]"
    if kind == "deep":
        return _DEEP
    if kind == "giant":
        return _GIANT + b'"' + BODY_MARKER.encode() + b'"]'
    if kind == "zero-id":
        return b'"00000000-0000-0000-0000-000000000000"'
    if kind == "id":
        return json.dumps(draw(st.sampled_from([ACCOUNT_ID, SESSION_ID, "not-an-id", ""]))).encode()
    millis = int(NOW.timestamp() * 1000)
    readings = [
        {"WT": f"Date({millis - 300_000 * i})", "Value": draw(st.integers(0, 500)), "Trend": 4}
        for i in range(draw(st.integers(0, 3)))
    ]
    return json.dumps(readings).encode()


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    body = draw(bodies())
    framing = draw(
        st.sampled_from(["length", "length", "short", "long", "chunked", "bad-chunked", "close"])
    )
    if len(body) > 100_000 and framing in ("chunked", "bad-chunked"):
        framing = "length"  # 7-byte chunks of a giant body would only slow the test down
    return Answer(
        status=draw(STATUSES),
        reason=draw(st.sampled_from(["OK", "Internal Server Error", "", "x" * 200])),
        headers=tuple(draw(EXTRA_HEADERS)),
        body=body,
        framing=framing,
    )


# --- the checks ----------------------------------------------------------------------------------


def _is_share_error_body(answer: Answer) -> bool:
    try:
        decoded = json.loads(answer.body)
    except (ValueError, RecursionError):
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("Code"), str)


def _may_be_a_rejection(answer: Answer, endpoint: str) -> bool:
    """Only a Share error body or a zero id could honestly mean credentials / lockout."""
    zero = answer.body.strip() == b'"00000000-0000-0000-0000-000000000000"'
    return _is_share_error_body(answer) or (zero and endpoint != ENDPOINT_READ)


def check_error(error: ShareError, answer: Answer, endpoint: str, caplog_text: str) -> None:
    """A fitting class, a short message without secrets or body, a sane retry-after."""
    ok_status = 200 <= answer.status < 300
    for text in (str(error), repr(error), error.user_message):
        assert text
        assert len(text) <= MAX_MESSAGE_CHARS, text
        for secret in SECRETS:
            assert secret not in text, (secret, text)
        assert "\n" not in text
    for secret in (PASSWORD, ACCOUNT_ID, SESSION_ID):
        assert secret not in caplog_text
    if error.failure_class in (FailureClass.CREDENTIALS, FailureClass.LOCKED):
        assert _may_be_a_rejection(answer, endpoint), answer.describe()
    if ok_status and not _may_be_a_rejection(answer, endpoint):
        # A 200 with garbage is the service misbehaving, never the person's fault.
        assert error.failure_class in (FailureClass.TRANSIENT, FailureClass.SESSION)
    if answer.status >= 500 and not _is_share_error_body(answer):
        assert error.failure_class is FailureClass.TRANSIENT, answer.describe()
    if isinstance(error, RateLimited):
        retry = error.retry_after_s
        assert retry is None or (math.isfinite(retry) and retry >= 0)
        failed = schedule.record_failure(
            schedule.initial_state(), NOW, FailureClass.RATE_LIMIT, 1, 0, retry
        )
        wait = schedule.plan(failed, NOW).at
        assert wait is not None
        assert timedelta(seconds=60) <= wait - NOW <= schedule.MAX_RETRY_AFTER


def _framing_intact(answer: Answer) -> bool:
    return answer.framing in ("length", "chunked", "close") and answer.status >= 200


def check_status_rules(error: ShareError | None, answer: Answer) -> None:
    """When the answer arrived whole, its status decides the kind of error."""
    if not _framing_intact(answer) or "Content-Encoding" in dict(answer.headers):
        return
    if answer.status == 429:
        assert isinstance(error, RateLimited)
        assert error.failure_class is FailureClass.RATE_LIMIT
    elif answer.status >= 500 and not _is_share_error_body(answer):
        assert isinstance(error, ServiceUnavailable)


def check_readings(readings: tuple[Reading, ...]) -> None:
    for reading in readings:
        assert reading.time.tzinfo is UTC
        assert reading.is_low or reading.is_high or MIN_REAL_MGDL <= reading.mgdl <= MAX_REAL_MGDL
        assert LOW_MGDL <= reading.mgdl <= HIGH_MGDL


def run(
    server: ScriptedServer,
    script: dict[str, Answer],
    call: Callable[[ShareClient], object],
    account_id: str | None = None,
) -> tuple[object, ShareError | None]:
    server.script = script
    client = make_client(server, account_id)
    try:
        return call(client), None
    except ShareError as error:
        return None, error
    finally:
        client.close()
        server.script = {}


# --- the fuzz tests ------------------------------------------------------------------------------


@FUZZ
@given(answers())
def test_sign_in_against_any_authenticate_answer(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, answer: Answer
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cgmtray"):
        result, error = run(server, {ENDPOINT_AUTHENTICATE: answer}, ShareClient.sign_in)
    if error is None:
        assert result is None
        # Only a well-formed id could have been taken as the account id.
        assert json.loads(answer.body) in (ACCOUNT_ID, SESSION_ID)
        return
    check_error(error, answer, ENDPOINT_AUTHENTICATE, caplog.text)
    check_status_rules(error, answer)


@FUZZ
@given(answers())
def test_sign_in_against_any_login_answer(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, answer: Answer
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cgmtray"):
        _, error = run(
            server, {ENDPOINT_LOGIN_BY_ID: answer}, ShareClient.sign_in, account_id=ACCOUNT_ID
        )
    if error is None:
        assert json.loads(answer.body) in (ACCOUNT_ID, SESSION_ID)
        return
    check_error(error, answer, ENDPOINT_LOGIN_BY_ID, caplog.text)
    check_status_rules(error, answer)


@FUZZ
@given(answers())
def test_read_against_any_answer(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, answer: Answer
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cgmtray"):
        result, error = run(
            server,
            {ENDPOINT_READ: answer},
            lambda client: client.read(minutes=30, max_count=6),
        )
    if error is None:
        assert isinstance(result, tuple)
        check_readings(result)
        assert 200 <= answer.status < 300
        return
    check_error(error, answer, ENDPOINT_READ, caplog.text)
    check_status_rules(error, answer)


def test_a_session_error_body_on_a_read_costs_one_relogin_and_no_loop(
    server: ScriptedServer,
) -> None:
    body = _error_body("SessionIdNotFound", "Failed to find session object.")
    answer = Answer(500, "Internal Server Error", (("Content-Type", "application/json"),), body)
    server.seen.clear()
    _, error = run(server, {ENDPOINT_READ: answer}, lambda c: c.read(10, 1), ACCOUNT_ID)
    assert error is not None
    assert error.failure_class is FailureClass.TRANSIENT  # the second session error backs off
    assert server.seen == [ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ]


def test_an_answer_that_never_ends_is_a_timeout_not_a_hang() -> None:
    # Headers promise a body that never comes and the connection stays open.
    gate = threading.Event()

    class SilentHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[")
            self.wfile.flush()
            gate.wait(10)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SilentHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        config = ClientConfig(
            region=Region.US,
            username=USERNAME,
            base_url=f"http://127.0.0.1:{httpd.server_address[1]}{SERVICES_PATH}",
            connect_timeout_s=0.5,
            read_timeout_s=0.5,
        )
        with (
            ShareClient(config, PASSWORD, clock=ManualClock(NOW)) as client,
            pytest.raises(ShareError) as caught,
        ):
            client.sign_in()
        assert isinstance(caught.value, RequestTimedOut)
        assert caught.value.failure_class is FailureClass.TRANSIENT
    finally:
        gate.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_the_generators_reach_every_failure_class_the_client_can_raise(
    server: ScriptedServer,
) -> None:
    # A guard against a fuzzer that only ever produces one kind of failure.
    seen: set[FailureClass] = set()
    cases = [
        Answer(500, body=_HTML),
        Answer(429, headers=(("Retry-After", "90"),)),
        Answer(200, body=b'"00000000-0000-0000-0000-000000000000"'),
        Answer(500, body=_error_body("SSO_AuthenticateMaxAttemptsExceeded", "")),
        Answer(400, body=b"bad"),
    ]
    for answer in cases:
        _, error = run(server, {ENDPOINT_AUTHENTICATE: answer}, ShareClient.sign_in)
        assert error is not None
        seen.add(error.failure_class)
    assert seen == {
        FailureClass.TRANSIENT,
        FailureClass.RATE_LIMIT,
        FailureClass.CREDENTIALS,
        FailureClass.LOCKED,
        FailureClass.CLIENT_BUG,
    }
    assert isinstance(
        run(server, {ENDPOINT_READ: Answer(200, body=b"<html>")}, lambda c: c.read())[1],
        InvalidResponse,
    )
