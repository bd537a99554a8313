"""Freedesktop desktop notifications over D-Bus (jeepney), on a thread of their own.

The GUI thread only queues work here and never waits on the bus: every call has a deadline, a
hung or missing notification server turns into a `notification_failed` report (the caller then
falls back to the tray balloon or the status window), and stop() ends the thread promptly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any, Final, Protocol

from jeepney import (
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    MatchRule,
    Message,
    MessageType,
    Parser,
    message_bus,
    new_method_call,
)
from jeepney.bus import get_connectable_addresses
from jeepney.io.blocking import prep_socket

logger = logging.getLogger(__name__)

APP_NAME: Final = "CGM Tray"
APP_ID: Final = "io.github.cgmtray.CgmTray"
#: The longest any single D-Bus call may take before the notification falls back elsewhere.
CALL_TIMEOUT_S: Final = 1.5

NOTIFICATIONS: Final = DBusAddress(
    "/org/freedesktop/Notifications",
    bus_name="org.freedesktop.Notifications",
    interface="org.freedesktop.Notifications",
)
NOTIFY_SIGNATURE: Final = "susssasa{sv}i"

URGENCY_NORMAL: Final = 1
URGENCY_CRITICAL: Final = 2
EXPIRE_NEVER: Final = 0
EXPIRE_SERVER_DEFAULT: Final = -1

ACTION_DEFAULT: Final = "default"
ACTION_SNOOZE: Final = "snooze"

#: NotificationClosed reasons (Desktop Notifications spec).
CLOSED_EXPIRED: Final = 1
CLOSED_DISMISSED: Final = 2
CLOSED_BY_CALL: Final = 3
CLOSED_UNDEFINED: Final = 4


@dataclass(frozen=True, slots=True)
class OutgoingNotification:
    """One notification to send; `key` names the episode it shows (updates replace in place)."""

    token: int
    key: str
    kind: str
    summary: str
    body: str
    urgent: bool
    snoozable: bool = True
    suppress_sound: bool = False
    #: Never expires by itself, stays until acknowledged (urgent ones always do).
    resident: bool = False


def notify_arguments(
    notification: OutgoingNotification, *, replaces_id: int, capabilities: frozenset[str]
) -> tuple[str, int, str, str, str, list[str], dict[str, tuple[str, Any]], int]:
    """The body of a Notify call, typed for `susssasa{sv}i`."""
    actions: list[str] = []
    if "actions" in capabilities:
        actions += [ACTION_DEFAULT, "Acknowledge"]
        if notification.snoozable:
            actions += [ACTION_SNOOZE, "Snooze"]
    hints: dict[str, tuple[str, Any]] = {
        "urgency": ("y", URGENCY_CRITICAL if notification.urgent else URGENCY_NORMAL),
        "desktop-entry": ("s", APP_ID),
        "category": ("s", "device"),
    }
    if notification.suppress_sound:
        hints["suppress-sound"] = ("b", True)
    return (
        APP_NAME,
        replaces_id,
        APP_ID,
        notification.summary,
        notification.body,
        actions,
        hints,
        EXPIRE_NEVER if notification.urgent or notification.resident else EXPIRE_SERVER_DEFAULT,
    )


@dataclass(frozen=True, slots=True)
class ShownId:
    """Where a notification lives: its id, the server's unique bus name and the bus's id.

    Ids are only meaningful to the server that gave them, so a stale one is closed only when the
    same server process on the same bus still owns org.freedesktop.Notifications.
    """

    notification_id: int
    server: str
    bus: str


class DbusListener(Protocol):
    """What the service reports. Called on the service's own thread, never the GUI thread."""

    def notification_sent(self, token: int, shown: ShownId) -> None: ...
    def notification_failed(self, token: int, reason: str) -> None: ...
    def snooze_invoked(self, key: str, kind: str) -> None: ...
    def acknowledged(self, key: str, kind: str) -> None: ...


class _StoppingError(Exception):
    """stop() was called: leave the thread now."""


class _NoReplyError(Exception):
    """The peer did not answer before the deadline (the connection itself is still fine)."""


@dataclass(slots=True)
class _Shown:
    """A notification the server holds for one episode key."""

    notification_id: int
    kind: str
    server: str
    answered: bool = False


@dataclass(frozen=True, slots=True)
class _CloseCommand:
    key: str


@dataclass(frozen=True, slots=True)
class _CloseAllCommand:
    """Close every notification this service shows (quit, logout, crash)."""


@dataclass(frozen=True, slots=True)
class _CloseStaleCommand:
    """Close notifications an earlier run of the app left open."""

    stale: tuple[ShownId, ...]


@dataclass(frozen=True, slots=True)
class _StopCommand:
    """Leave the thread once everything queued before this is done."""


_Command = (
    OutgoingNotification | _CloseCommand | _CloseAllCommand | _CloseStaleCommand | _StopCommand
)


class _BusLink:
    """One authenticated connection to a bus: bytes in and out, parsed messages."""

    def __init__(self, address: str, timeout: float) -> None:
        path = next(get_connectable_addresses(address))
        self.sock: socket.socket = prep_socket(path, timeout=timeout)
        self.sock.settimeout(timeout)  # bounds sendall; reads only happen once select says so
        self._parser = Parser()
        self._serials = count(1)

    def send(self, message: Message) -> int:
        serial = next(self._serials)
        self.sock.sendall(message.serialise(serial=serial))
        return serial

    def feed(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the bus closed the connection")
        self._parser.add_data(data)

    def next_message(self) -> Message | None:
        """The next complete message; ConnectionError if the stream cannot be parsed."""
        try:
            return self._parser.get_next_message()
        except Exception as exc:  # the parser is out of step with the stream: drop the link
            raise ConnectionError(f"malformed D-Bus message ({type(exc).__name__})") from exc

    def close(self) -> None:
        self.sock.close()


def _signal_rules() -> list[MatchRule]:
    notifications = MatchRule(
        type="signal",
        interface=NOTIFICATIONS.interface,
        path=NOTIFICATIONS.object_path,
    )
    owner_changed = MatchRule(
        type="signal",
        sender="org.freedesktop.DBus",
        interface="org.freedesktop.DBus",
        member="NameOwnerChanged",
    )
    owner_changed.add_arg_condition(0, NOTIFICATIONS.bus_name)
    return [notifications, owner_changed]


class DbusNotificationService:
    """Sends, updates and closes notifications on a worker thread; reports back via a listener.

    `address` is a D-Bus address ("unix:path=..."); None means $DBUS_SESSION_BUS_ADDRESS, read
    when the first notification goes out. The thread starts on first use.
    """

    def __init__(
        self, address: str | None, listener: DbusListener, *, timeout: float = CALL_TIMEOUT_S
    ) -> None:
        self._address = address
        self._listener = listener
        self._timeout = timeout
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop_requested = threading.Event()
        self._wake_reader: socket.socket | None = None
        self._wake_writer: socket.socket | None = None
        # Owned by the worker thread from here on.
        self._selector: selectors.BaseSelector | None = None
        self._link: _BusLink | None = None
        self._capabilities: frozenset[str] | None = None
        self._bus_id = ""
        self._all_closed = threading.Event()
        self._shown: dict[str, _Shown] = {}
        self._keys_by_id: dict[int, str] = {}

    # Any thread ---------------------------------------------------------------------------

    def submit(self, notification: OutgoingNotification) -> bool:
        """Queues a notification; False if the service is stopped (the caller falls back now)."""
        return self._enqueue(notification)

    def close(self, key: str) -> None:
        """Queues CloseNotification for the episode `key`, if the server shows one for it."""
        self._enqueue(_CloseCommand(key))

    def close_stale(self, stale: tuple[ShownId, ...]) -> None:
        """Queues CloseNotification for ids an earlier run left open (before anything else)."""
        if stale:
            self._enqueue(_CloseStaleCommand(stale))

    def close_all_and_stop(self, timeout: float) -> bool:
        """Closes every notification shown, then stops; waits at most about `timeout` seconds
        for the closes (a dead or hung bus never holds up quit). True if all were closed."""
        with self._lock:
            thread = self._thread
            if self._closed or thread is None:
                thread = None
            else:
                self._commands.put(_CloseAllCommand())
                self._commands.put(_StopCommand())
        if thread is not None:
            self._wake()
            thread.join(timeout)
        self.stop()
        return thread is None or self._all_closed.is_set()

    def stop(self) -> None:
        """Ends the thread and closes the connection. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._closed = True
        self._stop_requested.set()
        self._wake()
        if thread is not None:
            thread.join(timeout=5 * self._timeout)
            if thread.is_alive():  # pragma: no cover - every wait in the thread is bounded
                logger.error("the D-Bus notification thread did not stop")
                return
        for end in (self._wake_reader, self._wake_writer):
            if end is not None:
                end.close()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def _enqueue(self, command: _Command) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._wake_reader, self._wake_writer = socket.socketpair()
                self._wake_reader.setblocking(False)
                self._wake_writer.setblocking(False)
                self._thread = threading.Thread(
                    target=self._run, name="cgmtray-dbus-notify", daemon=True
                )
                self._thread.start()
            self._commands.put(command)
        self._wake()
        return True

    def _wake(self) -> None:
        # BlockingIOError: a wake-up is already pending; OSError: the service is closed.
        if self._wake_writer is not None:
            with contextlib.suppress(OSError):
                self._wake_writer.send(b"\0")

    # The worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        assert self._wake_reader is not None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        try:
            while True:
                self._run_commands()
                try:
                    self._dispatch_parsed()
                    self._wait(None)
                except OSError as exc:
                    self._drop_link(exc)
        except _StoppingError:
            pass
        except Exception:
            logger.exception("the D-Bus notification thread failed; falling back to the tray")
        finally:
            with self._lock:
                self._closed = True
            self._fail_queued()
            self._drop_link(None)
            self._selector.close()

    def _fail_queued(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, OutgoingNotification):
                self._tell(self._listener.notification_failed, command.token, "stopped")

    def _run_commands(self) -> None:
        while True:
            if self._stop_requested.is_set():
                raise _StoppingError
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, OutgoingNotification):
                self._deliver(command)
            elif isinstance(command, _CloseCommand):
                self._close_shown(command.key)
            elif isinstance(command, _CloseAllCommand):
                closed = [self._close_shown(key) for key in list(self._shown)]
                if self._link is not None and all(closed):
                    self._all_closed.set()  # else the bus went away: the ids may still show
            elif isinstance(command, _CloseStaleCommand):
                self._close_stale(command.stale)
            else:
                raise _StoppingError

    def _wait(self, deadline: float | None) -> None:
        """Blocks until bus data, a command or stop() arrive, or until `deadline` (monotonic)."""
        assert self._selector is not None
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        for key, _events in self._selector.select(timeout):
            if key.fileobj is self._wake_reader:
                self._drain_wake()
            elif self._link is not None and key.fileobj is self._link.sock:
                self._link.feed()
        if self._stop_requested.is_set():
            raise _StoppingError

    def _drain_wake(self) -> None:
        assert self._wake_reader is not None
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            return

    def _call(self, message: Message) -> Message:
        """Sends a method call and waits (bounded) for its reply, handling signals meanwhile."""
        link = self._ensure_link()
        serial = link.send(message)
        deadline = time.monotonic() + self._timeout
        while True:
            incoming = link.next_message()
            if incoming is None:
                if time.monotonic() >= deadline:
                    member = message.header.fields.get(HeaderFields.member)
                    raise _NoReplyError(f"no reply to {member} within {self._timeout} s")
                self._wait(deadline)
                continue
            if incoming.header.fields.get(HeaderFields.reply_serial) != serial:
                self._dispatch(incoming)
                continue
            if incoming.header.message_type == MessageType.error:
                raise DBusErrorResponse(incoming)
            return incoming

    def _ensure_link(self) -> _BusLink:
        if self._link is not None:
            return self._link
        address = self._address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            raise ConnectionError("no D-Bus session bus address")
        link = _BusLink(address, self._timeout)
        assert self._selector is not None
        self._selector.register(link.sock, selectors.EVENT_READ)
        self._link = link
        try:
            self._call(message_bus.Hello())
            for rule in _signal_rules():
                self._call(message_bus.AddMatch(rule))
            self._bus_id = str(self._call(message_bus.GetId()).body[0])
        except BaseException:
            self._drop_link(None)
            raise
        return link

    def _drop_link(self, error: BaseException | None) -> None:
        link, self._link = self._link, None
        self._capabilities = None
        self._shown.clear()
        self._keys_by_id.clear()
        if link is None:
            return
        if error is not None:
            logger.warning(
                "lost the D-Bus connection (%s)",
                type(error).__name__,
                extra={"event": "notify.bus_lost"},
            )
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(link.sock)
        link.close()

    def _server_capabilities(self) -> frozenset[str]:
        if self._capabilities is None:
            try:
                reply = self._call(new_method_call(NOTIFICATIONS, "GetCapabilities"))
            except DBusErrorResponse:
                return frozenset()
            self._capabilities = frozenset(str(item) for item in reply.body[0])
        return self._capabilities

    def _deliver(self, notification: OutgoingNotification) -> None:
        try:
            capabilities = self._server_capabilities()
            earlier = self._shown.get(notification.key)
            arguments = notify_arguments(
                notification,
                replaces_id=earlier.notification_id if earlier else 0,
                capabilities=capabilities,
            )
            reply = self._call(
                new_method_call(NOTIFICATIONS, "Notify", NOTIFY_SIGNATURE, arguments)
            )
            notification_id = int(reply.body[0])
            server = str(reply.header.fields.get(HeaderFields.sender, ""))
        except _StoppingError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError):
                self._drop_link(exc)
            logger.warning(
                "the desktop notification was not accepted (%s)",
                type(exc).__name__,
                extra={"event": "notify.failed", "backend": "dbus", "kind": notification.kind},
            )
            self._tell(self._listener.notification_failed, notification.token, type(exc).__name__)
            return
        self._remember(notification, notification_id, server, earlier)
        shown = ShownId(notification_id, server, self._bus_id)
        self._tell(self._listener.notification_sent, notification.token, shown)

    def _remember(
        self,
        notification: OutgoingNotification,
        notification_id: int,
        server: str,
        earlier: _Shown | None,
    ) -> None:
        if earlier is not None:
            self._keys_by_id.pop(earlier.notification_id, None)
        other_key = self._keys_by_id.pop(notification_id, None)
        if other_key is not None:
            self._shown.pop(other_key, None)
        self._shown[notification.key] = _Shown(notification_id, notification.kind, server)
        self._keys_by_id[notification_id] = notification.key

    def _close_stale(self, stale: tuple[ShownId, ...]) -> None:
        try:
            self._ensure_link()
            owner = str(self._call(message_bus.GetNameOwner(NOTIFICATIONS.bus_name)).body[0])
        except _StoppingError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError):
                self._drop_link(exc)
            logger.info(
                "left-over notifications not closed: no notification server (%s)",
                type(exc).__name__,
                extra={"event": "notify.stale_skipped"},
            )
            return
        closed = 0
        for old in stale:
            if old.bus != self._bus_id or old.server != owner:
                continue  # another server's ids: they may name someone else's notifications
            if self._send_close(old.notification_id, "stale"):
                closed += 1
        logger.info(
            "closed %d notification(s) left open by an earlier run",
            closed,
            extra={"event": "notify.stale_closed", "count": closed},
        )

    def _close_shown(self, key: str) -> bool:
        """Closes the episode's notification; False if it may still be on screen."""
        shown = self._shown.pop(key, None)
        if shown is None:
            return True
        self._keys_by_id.pop(shown.notification_id, None)
        if self._link is None:
            return False
        return self._send_close(shown.notification_id, shown.kind)

    def _send_close(self, notification_id: int, kind: str) -> bool:
        try:
            self._call(new_method_call(NOTIFICATIONS, "CloseNotification", "u", (notification_id,)))
        except _StoppingError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError):
                self._drop_link(exc)
            logger.warning(
                "could not close the desktop notification (%s)",
                type(exc).__name__,
                extra={"event": "notify.close_failed", "kind": kind},
            )
            return False
        return True

    def _dispatch_parsed(self) -> None:
        while self._link is not None:
            message = self._link.next_message()
            if message is None:
                return
            self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        try:
            self._dispatch_signal(message)
        except (ValueError, TypeError, IndexError, KeyError):
            logger.debug("ignored a malformed D-Bus signal", exc_info=True)

    def _dispatch_signal(self, message: Message) -> None:
        if message.header.message_type != MessageType.signal:
            return  # e.g. a late reply to a call that already timed out
        fields = message.header.fields
        interface = fields.get(HeaderFields.interface)
        member = fields.get(HeaderFields.member)
        sender = str(fields.get(HeaderFields.sender, ""))
        body = message.body
        if interface == "org.freedesktop.DBus" and member == "NameOwnerChanged":
            if body and body[0] == NOTIFICATIONS.bus_name:
                self._on_server_changed()
        elif interface == NOTIFICATIONS.interface and len(body) == 2:
            if member == "ActionInvoked":
                self._on_action_invoked(int(body[0]), str(body[1]), sender)
            elif member == "NotificationClosed":
                self._on_notification_closed(int(body[0]), int(body[1]), sender)

    def _on_server_changed(self) -> None:
        """Another notification server took over: its ids and capabilities are not the old ones."""
        self._capabilities = None
        self._shown.clear()
        self._keys_by_id.clear()

    def _shown_for(self, notification_id: int, sender: str) -> tuple[str, _Shown] | None:
        key = self._keys_by_id.get(notification_id)
        if key is None:
            return None
        shown = self._shown[key]
        if shown.server and sender != shown.server:
            return None  # not from the server that holds our notification
        return key, shown

    def _on_action_invoked(self, notification_id: int, action: str, sender: str) -> None:
        found = self._shown_for(notification_id, sender)
        if found is None or action not in (ACTION_SNOOZE, ACTION_DEFAULT):
            return
        key, shown = found
        if shown.answered:
            return
        shown.answered = True
        if action == ACTION_SNOOZE:
            self._tell(self._listener.snooze_invoked, key, shown.kind)
        else:
            self._tell(self._listener.acknowledged, key, shown.kind)

    def _on_notification_closed(self, notification_id: int, reason: int, sender: str) -> None:
        found = self._shown_for(notification_id, sender)
        if found is None:
            return
        key, shown = found
        del self._shown[key]
        del self._keys_by_id[notification_id]
        if reason == CLOSED_DISMISSED and not shown.answered:
            self._tell(self._listener.acknowledged, key, shown.kind)

    @staticmethod
    def _tell(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("a notification listener failed")
