"""The D-Bus notification service on a real private bus: hung servers, stop, a server restart."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from jeepney import new_method_call
from jeepney.io.blocking import open_dbus_connection
from pytestqt.qtbot import QtBot
from tests.support.dbus import NOTIFICATIONS, PrivateBus, RecordingNotificationServer

from cgmtray.ui.dbus_notify import DbusNotificationService, OutgoingNotification, ShownId

pytestmark = pytest.mark.desktop

#: Only bounds a hang: every answer the tests wait for comes far sooner.
HANG_BOUND_S = 30.0


@dataclass(frozen=True)
class Report:
    """One call the service made on its listener."""

    event: str
    token: int
    detail: ShownId | str


class RecordingListener:
    """A DbusListener that queues what it is told (from the service's thread)."""

    def __init__(self) -> None:
        self.reports: queue.Queue[Report] = queue.Queue()

    def notification_sent(self, token: int, shown: ShownId) -> None:
        self.reports.put(Report("sent", token, shown))

    def notification_failed(self, token: int, reason: str) -> None:
        self.reports.put(Report("failed", token, reason))

    def snooze_invoked(self, key: str, kind: str) -> None:
        self.reports.put(Report("snoozed", 0, key))

    def acknowledged(self, key: str, kind: str) -> None:
        self.reports.put(Report("acknowledged", 0, key))

    def next(self) -> Report:
        return self.reports.get(timeout=HANG_BOUND_S)


def alert(token: int, key: str, summary: str = "Low: 65 mg/dL") -> OutgoingNotification:
    return OutgoingNotification(token, key, key.split("#")[0], summary, "body", urgent=False)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """The service's thread and jeepney's receiver thread both end with the service."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


def test_a_server_that_never_answers_fails_the_notification_and_a_later_answer_shows_it(
    private_bus: PrivateBus, listener: RecordingListener
) -> None:
    server = RecordingNotificationServer(private_bus.address, hang=True)
    # Long enough that the calls answered later never miss it, even on a busy machine.
    service = DbusNotificationService(private_bus.address, listener, timeout=5.0)
    try:
        assert service.submit(alert(1, "low#1"))

        assert listener.next() == Report("failed", 1, "TimeoutError")  # after its 5 s
        assert service.running  # the bus is fine: the service keeps its connection

        server.hang = False  # the server recovers
        assert service.submit(alert(2, "low#1"))
        sent = listener.next()
        assert (sent.event, sent.token) == ("sent", 2)
        assert isinstance(sent.detail, ShownId)
        assert sent.detail.server == server.unique_name
        members = [call.member for call in server.calls()]
        assert members == ["GetCapabilities", "GetCapabilities", "Notify"]
    finally:
        service.stop()
        server.stop()


def test_stop_cuts_short_a_call_the_server_never_answers(
    qtbot: QtBot, private_bus: PrivateBus, listener: RecordingListener
) -> None:
    server = RecordingNotificationServer(private_bus.address, hang=True)
    service = DbusNotificationService(private_bus.address, listener, timeout=120.0)
    try:
        assert service.submit(alert(1, "urgent_low#1"))
        qtbot.waitUntil(lambda: server.calls() != [], timeout=int(HANG_BOUND_S * 1000))

        started = time.monotonic()
        service.stop()

        assert time.monotonic() - started < HANG_BOUND_S  # not the 120 s call timeout
        assert not service.running
        assert not service.submit(alert(2, "urgent_low#1"))  # the caller falls back at once
    finally:
        service.stop()
        server.stop()


def test_close_all_and_stop_on_a_server_that_never_answers_gives_up_within_its_wait(
    qtbot: QtBot, private_bus: PrivateBus, listener: RecordingListener
) -> None:
    server = RecordingNotificationServer(private_bus.address)
    service = DbusNotificationService(private_bus.address, listener, timeout=120.0)
    try:
        assert service.submit(alert(1, "urgent_low#1"))
        assert listener.next().event == "sent"
        server.hang = True
        assert service.submit(alert(2, "high#1"))  # GetCapabilities is cached: Notify hangs
        qtbot.waitUntil(lambda: len(server.calls("Notify")) == 2, timeout=int(HANG_BOUND_S * 1000))

        started = time.monotonic()
        all_closed = service.close_all_and_stop(1.0)

        assert time.monotonic() - started < HANG_BOUND_S  # not the 120 s call timeout
        assert not all_closed  # the urgent low may still be on screen: the caller keeps its id
        assert not service.running
    finally:
        service.stop()
        server.stop()


def test_a_bus_that_goes_away_during_a_call_fails_the_notification_at_once(
    qtbot: QtBot, private_bus: PrivateBus, listener: RecordingListener
) -> None:
    server = RecordingNotificationServer(private_bus.address, hang=True)
    service = DbusNotificationService(private_bus.address, listener, timeout=120.0)
    try:
        assert service.submit(alert(1, "urgent_low#1"))
        qtbot.waitUntil(lambda: server.calls() != [], timeout=int(HANG_BOUND_S * 1000))

        private_bus.stop()  # the session ends while the call waits for its answer

        failed = listener.next()  # well before the 120 s call timeout
        assert (failed.event, failed.token) == ("failed", 1)
        assert failed.detail == "RouterClosed"
        assert service.submit(alert(2, "urgent_low#1"))  # tried again: no bus, so it fails
        assert listener.next() == Report("failed", 2, "FileNotFoundError")
    finally:
        service.stop()
        server.stop()


def test_after_the_notification_server_restarts_an_update_never_replaces_another_programs(
    private_bus: PrivateBus, listener: RecordingListener
) -> None:
    """Ids belong to the server that gave them: the new server's id 1 is not the old id 1."""
    servers = [RecordingNotificationServer(private_bus.address)]
    service = DbusNotificationService(private_bus.address, listener, timeout=HANG_BOUND_S)
    try:
        assert service.submit(alert(1, "low#1"))
        assert listener.next().event == "sent"  # id 1 on the first server
        servers.pop().stop()  # the notification server restarts (NameOwnerChanged twice)
        second = RecordingNotificationServer(private_bus.address)
        servers.append(second)
        with open_dbus_connection(private_bus.address) as other_program:
            arguments: tuple[object, ...] = ("mail", 0, "", "New mail", "", [], {}, -1)
            notify = new_method_call(NOTIFICATIONS, "Notify", "susssasa{sv}i", arguments)
            assert other_program.send_and_get_reply(notify, timeout=HANG_BOUND_S).body == (1,)

        assert service.submit(alert(2, "high#1", "High: 262 mg/dL"))
        high = listener.next()  # its reply comes after the bus said the name changed owner
        assert isinstance(high.detail, ShownId)
        assert (high.detail.notification_id, high.detail.server) == (2, second.unique_name)
        assert service.submit(alert(3, "low#1", "Low: 62 mg/dL"))
        low = listener.next()

        assert isinstance(low.detail, ShownId)
        assert low.detail.notification_id == 3  # a notification of its own
        assert [call.replaces_id for call in second.calls("Notify")] == [0, 0, 0]
        assert [call.args[3] for _id, call in second.shown()] == [
            "New mail",  # still on screen, not replaced by the low's update
            "High: 262 mg/dL",
            "Low: 62 mg/dL",
        ]
    finally:
        service.stop()
        for server in servers:
            server.stop()


def test_close_all_after_an_earlier_stop_says_nothing_was_closed(
    private_bus: PrivateBus, listener: RecordingListener
) -> None:
    """The caller keeps the ids for the next start when the service had already stopped: the
    alert shown is still on screen."""
    server = RecordingNotificationServer(private_bus.address)
    service = DbusNotificationService(private_bus.address, listener, timeout=HANG_BOUND_S)
    try:
        assert service.submit(alert(1, "urgent_low#1"))
        assert listener.next().event == "sent"
        service.stop()  # as when the thread ended earlier
        assert service.close_all_and_stop(1.0) is False
        assert [call.member for call in server.calls("CloseNotification")] == []
    finally:
        service.stop()
        server.stop()


def test_close_all_with_nothing_ever_shown_is_all_closed(
    private_bus: PrivateBus, listener: RecordingListener
) -> None:
    service = DbusNotificationService(private_bus.address, listener, timeout=HANG_BOUND_S)
    service.stop()
    assert service.close_all_and_stop(1.0) is True
