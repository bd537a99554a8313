"""The fake Dexcom Share service: one loopback HTTP server per region (protocol section 8)."""

from __future__ import annotations

import contextlib
import email.utils
import io
import ipaddress
import logging
import secrets
import selectors
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final, Literal
from urllib.parse import parse_qsl, urlsplit

from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.readings import Reading
from cgmtray.fakeshare import control
from cgmtray.fakeshare.bodies import HTML_TYPE, JSON_TYPE, TEXT_TYPE, SubCodeStyle, error_body
from cgmtray.fakeshare.counters import (
    NO_ANSWER_STATUS,
    RESET_CODE,
    Counters,
    RequestRecord,
)
from cgmtray.fakeshare.faults import (
    DEFAULT_DRIP_DELAY_S,
    DEFAULT_ENDLESS_S,
    DEFAULT_HUGE_MB,
    LYING_DATE_VALUE,
    RATE_LIMIT_TEXT,
    SERVER_ERROR_CODE,
    SERVER_ERROR_MESSAGE,
    Fault,
    FaultPlan,
    FaultQueue,
    cloudflare_html,
    endless_pieces,
    huge_body,
    truncate,
    with_future_reading,
)
from cgmtray.fakeshare.followers import Follower
from cgmtray.fakeshare.sensor import PublishedReading, SimulatedSensor
from cgmtray.fakeshare.service import (
    ENDPOINT_METHODS,
    CredentialErrorStyle,
    Reply,
    Request,
    ShareService,
)
from cgmtray.share.regions import ENDPOINT_READ, SERVICES_PATH, Region

__all__ = ["Counters", "FakeShare", "Fault", "RequestRecord"]

logger = logging.getLogger(__name__)

#: Request bodies larger than this are refused (the real ones are a few hundred bytes).
MAX_BODY_BYTES: Final = 1_000_000
#: How long a handler thread may take to finish once the server stops.
_JOIN_TIMEOUT_S: Final = 5.0
#: Bytes per write of a streamed fault (ENDLESS, HUGE).
_STREAM_PIECE_BYTES: Final = 64 * 1024

_ENDPOINTS_BY_LOWER: Final = {name.lower(): name for name in ENDPOINT_METHODS}
_NOT_FOUND_HTML: Final = (
    b"<!DOCTYPE html><html><head><title>Service</title></head>"
    b"<body><p>Endpoint not found.</p></body></html>"
)
_NO_CACHE_HEADERS: Final = (
    ("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
    ("expires", "0"),
    ("pragma", "no-cache"),
    ("x-frame-options", "DENY"),
)


class _BodyTooLargeError(Exception):
    pass


class _FakeServer(ThreadingHTTPServer):
    """One listener of the fake; tracks its open connections so stop() can close them.

    `region` is the region it serves (a control listener: the default region of its requests).
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64
    timeout = 1.0  # handle_request() never blocks longer than this

    def __init__(
        self,
        fake: FakeShare,
        region: Region,
        host: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
    ) -> None:
        self.fake = fake
        self.region = region
        self.closing = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        # Every handler thread not yet known to have ended: a thread is untracked from its
        # connection in finish() but is still alive for a moment after, and stop() must join it.
        self._handler_threads: list[threading.Thread] = []
        self._connections_lock = threading.Lock()
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name; loopback needs no lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # Never print per-request tracebacks to stderr.
        logger.debug("fake share: connection error on %s", self.region.value, exc_info=True)

    def track(self, connection: socket.socket) -> None:
        current = threading.current_thread()
        with self._connections_lock:
            self._connections[connection] = current
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(current)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.pop(connection, None)

    def close_connections(self) -> list[threading.Thread]:
        """Shuts every open connection but the calling thread's own (a control request that
        stopped this listener still answers); returns the threads that were serving them."""
        with self._connections_lock:
            open_connections = list(self._connections.items())
            threads = list(self._handler_threads)
        for connection, thread in open_connections:
            if thread is threading.current_thread():
                continue
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return threads


class _RegionServer(_FakeServer):
    """The Share listener of one region (it also answers the control paths)."""

    def __init__(self, fake: FakeShare, region: Region, host: str, port: int) -> None:
        super().__init__(fake, region, host, port, _ShareRequestHandler)


class _ControlServer(_FakeServer):
    """The control listener: only /_fake/ paths; stays up through a refused-connection outage."""

    def __init__(self, fake: FakeShare, region: Region, host: str, port: int) -> None:
        super().__init__(fake, region, host, port, _ControlRequestHandler)


class _TrackedHandler(BaseHTTPRequestHandler):
    """What every listener's handler shares: connection tracking, quiet logs, control answers."""

    protocol_version = "HTTP/1.1"
    server: _FakeServer
    timeout = 120
    # Headers and body go out in separate writes; without TCP_NODELAY each answer waits ~40 ms
    # on the client's delayed ACK.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return "cloudflare"

    #: The Date header of the answer being written, when a fault says otherwise than the clock.
    date_override: datetime | None = None

    def date_time_string(self, timestamp: float | None = None) -> str:
        when = self.date_override or self.server.fake.now()
        return email.utils.format_datetime(when, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        # The request line carries session ids: log nothing of it.
        return

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BodyTooLargeError
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLargeError
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _serve_control(self, method: str, *, on_share_listener: bool) -> None:
        """Answers a /_fake/ request: loopback clients only, never counted, never faulted."""
        parts = urlsplit(self.path)
        if not _is_loopback(self.client_address[0]):
            self._send_control(control.ControlReply(403, {"error": "loopback clients only"}))
            return
        try:
            body = self._read_body()
        except (_BodyTooLargeError, ValueError):
            self.close_connection = True
            self._send_control(control.ControlReply(413, {"error": "the body is too large"}))
            return
        if on_share_listener:
            # One request per connection: an outage may have just stopped this listener.
            self.close_connection = True
        fake = self.server.fake
        reply = control.handle(
            fake, method, parts.path, parts.query, body, region=self.server.region
        )
        self._send_control(reply)

    def _send_control(self, reply: control.ControlReply) -> None:
        body = reply.body()
        self.send_response(reply.status)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class _ControlRequestHandler(_TrackedHandler):
    """The control listener's handler: /_fake/ paths in JSON, a JSON 404 for anything else."""

    def do_GET(self) -> None:
        self._serve_control("GET", on_share_listener=False)

    def do_POST(self) -> None:
        self._serve_control("POST", on_share_listener=False)

    def do_PUT(self) -> None:
        self._serve_control("PUT", on_share_listener=False)

    def do_DELETE(self) -> None:
        self._serve_control("DELETE", on_share_listener=False)

    def do_PATCH(self) -> None:
        self._serve_control("PATCH", on_share_listener=False)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _ShareRequestHandler(_TrackedHandler):
    """Turns HTTP requests into service requests, applies faults, writes Share-like answers."""

    server: _RegionServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    # -- one request ---------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        if control.is_control_path(urlsplit(self.path).path):
            self._serve_control(method, on_share_listener=True)
            return
        fake = self.server.fake
        region = self.server.region
        received_at = fake.now()
        self.date_override = None
        try:
            body = self._read_body()
        except (_BodyTooLargeError, ValueError):
            self.close_connection = True
            fake.record(RequestRecord(received_at, region, "", 413, "BodyTooLarge"))
            self._send(Reply(413, b"Request Entity Too Large", TEXT_TYPE, error=True))
            return
        parts = urlsplit(self.path)
        relative = parts.path[len(SERVICES_PATH) :] if parts.path.startswith(SERVICES_PATH) else ""
        endpoint = _ENDPOINTS_BY_LOWER.get(relative.lower()) if relative else None
        label = endpoint or parts.path
        query = {key.lower(): value for key, value in _query_pairs(parts.query)}
        request = Request(region, endpoint, query, body) if endpoint else None
        # Whose it is, asked before handling: a sign-in may open the session it is for.
        account = fake.service.account_of(request) if request else None
        if fake.outage:
            fake.record(
                RequestRecord(
                    received_at, region, label, NO_ANSWER_STATUS, RESET_CODE, account=account
                )
            )
            self._reset()
            return
        if endpoint is None or request is None:
            reply = Reply(404, _NOT_FOUND_HTML, HTML_TYPE, error=True, code="NotFound")
        elif ENDPOINT_METHODS[endpoint] != method:
            reply = Reply(405, b"Method not allowed.", TEXT_TYPE, error=True, code="NotAllowed")
        else:
            plan = fake.take_fault(region, endpoint)
            if plan is not None and plan.fault is Fault.RESET:
                code = f"fault:{plan.fault.value}"
                fake.record(
                    RequestRecord(
                        received_at, region, endpoint, NO_ANSWER_STATUS, code, account=account
                    )
                )
                self._reset()
                return
            if plan is not None and plan.fault in (Fault.DRIP, Fault.ENDLESS, Fault.HUGE):
                self._stream_fault(plan, request, received_at, account)
                return
            reply = self._faulty_reply(plan, request) if plan else fake.service.handle(request)
        # Recorded before answering, so a client that has its answer sees it counted.
        fake.record(
            RequestRecord(received_at, region, label, reply.status, reply.code, account=account)
        )
        self._send(reply)
        logger.debug("fake share %s %s -> %d", region.value, label, reply.status)

    def _faulty_reply(self, plan: FaultPlan, request: Request) -> Reply:
        fake = self.server.fake
        code = f"fault:{plan.fault.value}"
        match plan.fault:
            case Fault.RATE_LIMIT:
                retry_after = (("Retry-After", str(plan.retry_after_s)),)
                body = RATE_LIMIT_TEXT.encode()
                return Reply(429, body, TEXT_TYPE, error=True, code=code, headers=retry_after)
            case Fault.RATE_LIMIT_NO_HEADER:
                return Reply(429, RATE_LIMIT_TEXT.encode(), TEXT_TYPE, error=True, code=code)
            case Fault.BAD_GATEWAY_HTML:
                body = cloudflare_html(502, "Bad Gateway")
                return Reply(502, body, HTML_TYPE, error=True, code=code)
            case Fault.UNAVAILABLE_HTML:
                body = cloudflare_html(503, "Service Temporarily Unavailable")
                return Reply(503, body, HTML_TYPE, error=True, code=code)
            case Fault.EMPTY_200:
                return Reply(200, b"", JSON_TYPE, code=code)
            case Fault.TRUNCATED_JSON:
                normal = fake.service.handle(request)
                cut = truncate(normal.body if normal.status == 200 else b"")
                return Reply(200, cut, JSON_TYPE, code=code)
            case Fault.SLOW:
                self.server.closing.wait(plan.delay_s)
                return fake.service.handle(request)
            case Fault.SERVER_ERROR_JSON:
                body = error_body(SERVER_ERROR_CODE, SERVER_ERROR_MESSAGE, fake.now())
                return Reply(500, body, JSON_TYPE, error=True, code=code)
            case Fault.FUTURE_READING:
                normal = fake.service.handle(request)
                if normal.status != 200 or request.endpoint != ENDPOINT_READ:
                    return normal
                body = with_future_reading(normal.body, fake.now())
                return Reply(200, body, normal.content_type, code=code, headers=normal.headers)
            case Fault.LYING_DATE:
                self.date_override = LYING_DATE_VALUE
                return fake.service.handle(request)
            case Fault.RESET | Fault.DRIP | Fault.ENDLESS | Fault.HUGE:  # no Reply (see _serve)
                raise AssertionError(f"{plan.fault.value} has no reply")

    def _stream_fault(
        self, plan: FaultPlan, request: Request, received_at: datetime, account: str | None
    ) -> None:
        """DRIP, ENDLESS, HUGE: answers written bit by bit; each ends when the client goes
        away, when its own time is up, or when the fake stops (never holding up stop())."""
        fake = self.server.fake
        code = f"fault:{plan.fault.value}"
        self.close_connection = True
        if plan.fault is Fault.DRIP:
            normal = fake.service.handle(request)
            fake.record(
                RequestRecord(
                    received_at,
                    request.region,
                    request.endpoint,
                    normal.status,
                    code,
                    account=account,
                )
            )
            rendered = io.BytesIO()
            real_wfile, self.wfile = self.wfile, rendered
            try:
                self._send(normal)
            finally:
                self.wfile = real_wfile
            delay = plan.delay_s or DEFAULT_DRIP_DELAY_S
            with contextlib.suppress(OSError):
                for byte in rendered.getvalue():
                    if self.server.closing.wait(delay):
                        return
                    self.wfile.write(bytes((byte,)))
            return
        fake.record(
            RequestRecord(received_at, request.region, request.endpoint, 200, code, account=account)
        )
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        if plan.fault is Fault.ENDLESS:
            self.send_header("Transfer-Encoding", "chunked")
            pieces: Iterator[bytes] = _chunked(endless_pieces())
            ends_at = time.monotonic() + (plan.delay_s or DEFAULT_ENDLESS_S)
        else:
            size = round(plan.size_mb * 1024 * 1024)
            self.send_header("Content-Length", str(max(size, 3)))
            pieces = huge_body(size)
            ends_at = None
        with contextlib.suppress(OSError):
            self.end_headers()
            for piece in pieces:
                if self.server.closing.is_set() or (
                    ends_at is not None and time.monotonic() >= ends_at
                ):
                    return
                self.wfile.write(piece)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("x-trace-id", str(uuid.uuid4()))
        self.send_header("CF-RAY", f"{secrets.token_hex(8)}-IAD")
        self.send_header(
            "strict-transport-security", "max-age=15780000; includeSubDomains; preload"
        )
        self.send_header(
            "vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        )
        if reply.error:
            for name, value in _NO_CACHE_HEADERS:
                self.send_header(name, value)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.chunked and reply.body:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            middle = max(1, len(reply.body) // 2)
            for piece in (reply.body[:middle], reply.body[middle:]):
                if piece:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)
        self.wfile.flush()

    def _reset(self) -> None:
        """Closes the connection with a TCP reset and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """`pieces` in HTTP/1.1 chunked framing (never ending if `pieces` does not)."""
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(query, keep_blank_values=True)
    seen: set[str] = set()
    first: list[tuple[str, str]] = []
    for key, value in pairs:
        if key.lower() not in seen:
            seen.add(key.lower())
            first.append((key, value))
    return first


@dataclass
class _Listener:
    server: _FakeServer
    thread: threading.Thread
    wake_reader: socket.socket
    wake_writer: socket.socket


class FakeShare:
    """A faithful fake Dexcom Share service on loopback: one HTTP server per region.

    Accounts, sessions, lockout, reads, uploads, fault injection and request counters, all on an
    injected clock. Use as a context manager, or start() / stop().

    Every listener also answers the control paths under /_fake/ (see `control`); with
    `control_port` (0: a free one) a separate control listener serves only those and stays up
    through a refused-connection outage. Its requests concern the first of `regions` unless they
    name one.

    True to recorded traffic (protocol 2.6): error SubCodes carry UTC ISO-8601 times
    (`2025-06-15T17:29:43.728Z`, `DateThrownLocal` the same without the `Z`), as the XML-ish
    string (`subcode_style="xml"`, to 2025-06) or the typed, pretty-printed JSON string ("json",
    since 2025-11); `General/LoginPublisherAccountByName` answers 200 with the all-zero UUID as
    a JSON string for any credentials, as the real service has since 2020.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        regions: Iterable[Region] = tuple(Region),
        host: str = "127.0.0.1",
        session_ttl: timedelta = timedelta(hours=24),
        lockout_after: int = 5,
        lockout_period: timedelta = timedelta(minutes=30),
        credential_error_style: CredentialErrorStyle = "2025",
        ports: Mapping[Region, int] | None = None,
        subcode_style: SubCodeStyle = "xml",
        control_port: int | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._host = host
        self._regions = tuple(dict.fromkeys(regions))
        if not self._regions:
            raise ValueError("a fake service needs at least one region")
        self._requested_ports = dict(ports or {})
        self._ports: dict[Region, int] = {}
        self._listeners: dict[Region, _Listener] = {}
        self._control_port = control_port
        self._control: _Listener | None = None
        self._refusing = False
        self._outage = False
        self.service = ShareService(
            clock if clock is not None else SystemClock(),
            regions=self._regions,
            session_ttl=session_ttl,
            lockout_after=lockout_after,
            lockout_period=lockout_period,
            credential_error_style=credential_error_style,
            subcode_style=subcode_style,
            lock=self._lock,
        )
        self._counters = Counters(self._lock)
        self._faults = FaultQueue(self._lock)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listens on a loopback port per region (port 0 = a free one, unless `ports` says)."""
        with self._lock:
            if self._listeners:
                return
            try:
                for region in self._regions:
                    port = self._ports.get(region, self._requested_ports.get(region, 0))
                    self._open(region, port)
                if self._control_port is not None:
                    self._control = self._listen(
                        _ControlServer(self, self._regions[0], self._host, self._control_port),
                        "fake-share-control",
                    )
                    self._control_port = self._control.server.server_port
            except BaseException:
                self._close_all()
                raise

    def stop(self) -> None:
        """Stops listening, closes every connection and joins the threads. Idempotent."""
        with self._lock:
            self._refusing = False
            listeners = list(self._listeners.values())
            self._listeners.clear()
            if self._control is not None:
                listeners.append(self._control)
                self._control = None
        self._close(listeners)

    def __enter__(self) -> FakeShare:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        with self._lock:
            return bool(self._listeners) or self._refusing or self._control is not None

    def base_url(self, region: Region = Region.US) -> str:
        """Exactly `http://127.0.0.1:PORT/ShareWebServices/Services/`."""
        return f"http://{self._host}:{self.port(region)}{SERVICES_PATH}"

    def port(self, region: Region = Region.US) -> int:
        with self._lock:
            if region not in self._ports:
                raise RuntimeError(f"the fake service does not serve {region.value} (or not yet)")
            return self._ports[region]

    @property
    def regions(self) -> tuple[Region, ...]:
        return self._regions

    @property
    def control_url(self) -> str:
        """`http://127.0.0.1:PORT/_fake/` of the control listener (made with `control_port`)."""
        with self._lock:
            if self._control is None:
                raise RuntimeError("the fake service has no control listener (or not yet)")
            return f"http://{self._host}:{self._control.server.server_port}{control.CONTROL_PREFIX}"

    # -- clock ---------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.service.clock

    def set_clock(self, clock: Clock) -> None:
        with self._lock:
            self.service.clock = clock

    def now(self) -> datetime:
        """The fake's time (its clock, as aware UTC)."""
        return self.service.now()

    # -- accounts and readings -------------------------------------------------------------------

    def add_account(
        self, region: Region, username: str, password: str, account_id: str | None = None
    ) -> str:
        """Adds (or updates the password of) an account; returns its account id (a UUID)."""
        return self.service.add_account(region, username, password, account_id)

    def account_id(self, region: Region, username: str) -> str:
        with self._lock:
            return self.service.account(region, username).account_id

    def attach_sensor(self, region: Region, username: str, sensor: SimulatedSensor) -> None:
        """The account's readings include the sensor's (computed lazily at each read)."""
        self.service.attach_sensor(region, username, sensor)

    def publish(
        self,
        region: Region,
        username: str,
        reading: Reading,
        available_at: datetime | None = None,
        offset_minutes: int = -240,
    ) -> None:
        """Adds one reading, visible from `available_at` (default: its own time)."""
        when = available_at if available_at is not None else reading.time
        self.service.publish(region, username, PublishedReading(reading, when, offset_minutes))

    def all_readings(
        self,
        region: Region,
        username: str,
        *,
        since: datetime,
        until: datetime | None = None,
    ) -> list[PublishedReading]:
        """Every reading the account holds from `since`, visible yet or not, newest first: the
        sensors' up to `until` (default: now), published ones up to `until` (default: all)."""
        return self.service.all_readings(region, username, since, until)

    def remove_reading(self, region: Region, username: str, when: datetime) -> None:
        """Hides the reading at WT `when` (published or from a sensor)."""
        self.service.remove_reading(region, username, when)

    def readings(
        self,
        region: Region,
        username: str,
        *,
        minutes: int = 1440,
        max_count: int = 288,
    ) -> list[PublishedReading]:
        """What a read would return now, newest first (for assertions and demos)."""
        return self.service.readings_for(region, username, minutes, max_count)

    # -- the publisher's follower list (protocol 2.5) ----------------------------------------------

    def add_follower(
        self,
        region: Region,
        username: str,
        name: str,
        *,
        accepted: bool = True,
        email: str | None = None,
    ) -> str:
        """Adds a contact with an invitation, accepted (readings flow) or still pending; returns
        its contact id. Every new account starts with one accepted follower ("Follower")."""
        address = email if email is not None else f"{name.strip().replace(' ', '.')}@example.com"
        return self.service.add_follower(
            region, username, name, accepted=accepted, email=address
        ).contact_id

    def accept_follower(self, region: Region, username: str, name: str) -> None:
        """The follower named `name` accepts the invitation (as in the Dexcom Follow app)."""
        self.service.accept_follower(region, username, name)

    def remove_followers(self, region: Region, username: str, name: str | None = None) -> int:
        """Removes the follower `name`, or every follower (Share on, nobody follows)."""
        return self.service.remove_followers(region, username, name)

    def followers(self, region: Region, username: str) -> list[Follower]:
        """The account's contacts, invited or not, in the order they were made."""
        return self.service.followers(region, username)

    # -- behaviour switches ------------------------------------------------------------------------

    def inject_fault(
        self,
        fault: Fault,
        *,
        region: Region | None = None,
        endpoint: str | None = None,
        count: int | None = 1,
        retry_after_s: int = 120,
        delay_s: float = 0.0,
        until: datetime | None = None,
        size_mb: float = DEFAULT_HUGE_MB,
    ) -> None:
        """The next `count` matching requests get `fault` (endpoint None = any); FIFO. With
        `until` (the fake's time) only requests before then, and count None means all of them.
        FUTURE_READING only means something on a read: with endpoint None it waits for one."""
        if endpoint is not None and endpoint not in ENDPOINT_METHODS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if fault is Fault.FUTURE_READING and endpoint is None:
            endpoint = ENDPOINT_READ
        plan = FaultPlan(fault, retry_after_s=retry_after_s, delay_s=delay_s, size_mb=size_mb)
        self._faults.add(plan, region=region, endpoint=endpoint, count=count, until=until)

    def clear_faults(self) -> None:
        self._faults.clear()

    def pending_faults(self) -> int:
        return self._faults.pending(self.now())

    def take_fault(self, region: Region, endpoint: str) -> FaultPlan | None:
        """Used by the request handler: the fault for this request, if any."""
        return self._faults.take(region, endpoint, self.now())

    def set_outage(self, down: bool, *, refuse: bool = False) -> None:
        """While down, every request is answered with a connection reset; with `refuse`, the
        servers really stop listening (connection refused) and come back on the same ports."""
        to_close: list[_Listener] = []
        with self._lock:
            if down and refuse and self._listeners:
                to_close = list(self._listeners.values())
                self._listeners.clear()
                self._refusing = True
            elif not down and self._refusing:
                self._refusing = False
                for region in self._regions:
                    self._open(region, self._ports[region])
            self._outage = down and not refuse
        self._close(to_close)

    @property
    def outage(self) -> bool:
        with self._lock:
            return self._outage

    def expire_sessions(self, region: Region | None = None) -> None:
        """Every existing session answers SessionNotValid from now on."""
        self.service.expire_sessions(region)

    def set_credential_error_style(self, style: Literal["2025", "2024"]) -> None:
        with self._lock:
            self.service.credential_error_style = style

    def lock_account(self, region: Region, username: str) -> None:
        """Locks the account now, as if it had too many failed sign-ins."""
        self.service.lock_account(region, username)

    def unlock_account(self, region: Region, username: str) -> None:
        self.service.unlock_account(region, username)

    def is_locked(self, region: Region, username: str) -> bool:
        return self.service.is_locked(region, username)

    def set_legacy_format(self, on: bool) -> None:
        """Pre-2021 reads: `/Date(ms)/` dates and integer trends."""
        with self._lock:
            self.service.legacy_format = on

    def session_count(self, region: Region | None = None) -> int:
        return self.service.session_count(region)

    def issued_ids(self) -> tuple[list[str], list[str]]:
        """(account ids, session ids) this fake ever handed out, all regions (for tests that
        search what a client wrote down)."""
        return self.service.issued_ids()

    @property
    def counters(self) -> Counters:
        return self._counters

    def record(self, record: RequestRecord) -> None:
        self._counters.add(record)

    # -- listeners -------------------------------------------------------------------------------

    def _open(self, region: Region, port: int) -> None:
        server = _RegionServer(self, region, self._host, port)
        self._listeners[region] = self._listen(server, f"fake-share-{region.value}")
        self._ports[region] = server.server_port

    @staticmethod
    def _listen(server: _FakeServer, name: str) -> _Listener:
        wake_reader, wake_writer = socket.socketpair()
        thread = threading.Thread(
            target=_serve_until_woken, args=(server, wake_reader), name=name, daemon=True
        )
        thread.start()
        return _Listener(server, thread, wake_reader, wake_writer)

    def _close_all(self) -> None:
        listeners = list(self._listeners.values())
        self._listeners.clear()
        if self._control is not None:
            listeners.append(self._control)
            self._control = None
        self._close(listeners)

    @staticmethod
    def _close(listeners: list[_Listener]) -> None:
        handler_threads: list[threading.Thread] = []
        for listener in listeners:
            listener.server.closing.set()
            with contextlib.suppress(OSError):
                listener.wake_writer.send(b"x")
        for listener in listeners:
            listener.thread.join(_JOIN_TIMEOUT_S)
            listener.server.server_close()
            listener.wake_reader.close()
            listener.wake_writer.close()
            handler_threads.extend(listener.server.close_connections())
        for thread in handler_threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_TIMEOUT_S)


def _serve_until_woken(server: _FakeServer, wake_reader: socket.socket) -> None:
    """Accepts connections until a byte arrives on `wake_reader` (no polling interval)."""
    with selectors.DefaultSelector() as selector:
        selector.register(server.socket, selectors.EVENT_READ)
        selector.register(wake_reader, selectors.EVENT_READ)
        while True:
            for key, _events in selector.select():
                if key.fileobj is wake_reader:
                    return
                server.handle_request()
