"""The request deadline's parts: the watchdog, a stalled TLS handshake, proxies keep it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from urllib3 import poolmanager
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.deadline import DeadlineAdapter, RequestDeadline
from cgmtray.share.errors import RequestTimedOut
from cgmtray.share.regions import SERVICES_PATH, Region

#: Generous bounds for things that take milliseconds on an idle machine.
GENEROUS_S = 30.0


def wait_until_expired(deadline: RequestDeadline) -> None:
    waiter = threading.Event()
    give_up = time.monotonic() + GENEROUS_S
    while not deadline.expired and time.monotonic() < give_up:
        waiter.wait(0.01)
    assert deadline.expired


def test_a_socket_attached_after_the_deadline_is_shut_down_at_once() -> None:
    left, right = socket.socketpair()
    with left, right, RequestDeadline(0.01) as deadline:
        assert deadline.seconds == 0.01
        wait_until_expired(deadline)
        deadline.attach(left)
        assert left.recv(1) == b""  # shut down: a read ends at once


def test_the_watchdog_ends_a_blocked_read() -> None:
    left, right = socket.socketpair()
    with left, right, RequestDeadline(0.2) as deadline:
        deadline.attach(left)
        assert left.recv(1) == b""  # blocked until the watchdog shut the socket down
        assert deadline.expired


def test_a_deadline_that_did_not_pass_leaves_the_socket_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        with RequestDeadline(GENEROUS_S) as deadline:
            deadline.attach(left)
        assert not deadline.expired
        right.sendall(b"x")
        assert left.recv(1) == b"x"


@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    """Accepts connections and never says a word (a TLS handshake that never ends)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    for connection in accepted:
        connection.close()
    thread.join(GENEROUS_S)


def test_a_tls_handshake_that_never_ends_ends_at_the_deadline(
    silent_listener: socket.socket,
) -> None:
    port = silent_listener.getsockname()[1]
    config = ClientConfig(
        Region.US,
        "alice",
        base_url=f"https://127.0.0.1:{port}{SERVICES_PATH}",
        connect_timeout_s=20.0,
        read_timeout_s=20.0,
        deadline_s=1.0,
    )
    began = time.monotonic()
    with ShareClient(config, "pw") as client, pytest.raises(RequestTimedOut):
        client.sign_in()
    assert time.monotonic() - began < GENEROUS_S


def test_an_http_proxy_keeps_the_deadline_connections() -> None:
    adapter = DeadlineAdapter()
    manager = adapter.proxy_manager_for("http://127.0.0.1:3128")
    assert manager.pool_classes_by_scheme is not poolmanager.pool_classes_by_scheme
    assert set(manager.pool_classes_by_scheme) == {"http", "https"}
    adapter.close()


def test_a_proxy_with_pools_of_its_own_keeps_them() -> None:
    adapter = DeadlineAdapter()
    own: dict[str, type[HTTPConnectionPool]] = {
        "http": HTTPConnectionPool,
        "https": HTTPSConnectionPool,
    }
    adapter.proxy_manager["socks5://127.0.0.1:1080"] = manager = poolmanager.ProxyManager(
        "http://127.0.0.1:1080"
    )
    manager.pool_classes_by_scheme = own
    assert adapter.proxy_manager_for("socks5://127.0.0.1:1080").pool_classes_by_scheme is own
    adapter.close()


def test_a_closed_socket_is_not_attached() -> None:
    left, right = socket.socketpair()
    left.close()
    with right, RequestDeadline(GENEROUS_S) as deadline:
        deadline.attach(left)  # nothing to end, and no error
    assert not deadline.expired
