"""An overall deadline per HTTP request: a watchdog shuts the request's socket down when it passes.

Connect and read timeouts bound one socket operation each, so a server that sends one byte a
second never trips them. A `RequestDeadline` (a context manager around one request, headers and
body) starts a timer; every socket the request opens or reuses on this thread is attached to it
through the connection classes of `DeadlineAdapter`, and when the timer fires each attached
socket is shut down, which ends whatever read or write http.client is blocked in.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any, Final

from requests.adapters import HTTPAdapter
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class RequestDeadline:
    """The deadline of the request(s) made on this thread inside `with` (not reentrant)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.name = "share-request-deadline"

    @property
    def seconds(self) -> float:
        return self._seconds

    @property
    def expired(self) -> bool:
        """True once the deadline passed (the request's sockets are then shut down)."""
        with self._lock:
            return self._expired

    def attach(self, sock: socket.socket) -> None:
        """Shuts `sock` down when the deadline passes (at once if it already has).

        What is kept is a duplicate of its descriptor: TLS wraps a connection's socket in a new
        object and detaches the old one, and shutdown() on any descriptor of a socket ends the
        connection for all of them.
        """
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # already closed: nothing left to end
        with self._lock:
            self._sockets.append(duplicate)
            if self._expired:
                _shut_down(duplicate)

    def __enter__(self) -> RequestDeadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        _current.deadline = None
        with self._lock:  # never closed while the watchdog shuts it down
            for duplicate in self._sockets:
                duplicate.close()
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    # A plain duplicate: no TLS state is touched from this thread; the blocked read on the
    # request's thread sees the connection end.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _attach(sock: socket.socket | None) -> None:
    deadline: RequestDeadline | None = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.attach(sock)


class _DeadlineHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)  # a kept-alive connection made by an earlier request
        super().request(*args, **kwargs)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach(sock)  # before the TLS handshake, so a stalled handshake ends too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOL_CLASSES: Final = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections attach their sockets to the current deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # An HTTP(S) proxy uses the default pools; a SOCKS one has its own and keeps them.
        if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
