"""Freedesktop desktop notifications over D-Bus (jeepney's threading router), off the GUI thread.

The GUI thread only queues work here and never waits on the bus: every call has a deadline, a
hung or missing notification server turns into a `notification_failed` report (the caller then
falls back to the tray balloon or the status window), and stop() ends the thread promptly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from jeepney import (
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    MatchRule,
    Message,
    MessageType,
    message_bus,
    new_method_call,
)
from jeepney.bus import get_bus
from jeepney.io.blocking import prep_socket
from jeepney.io.common import RouterClosed
from jeepney.io.threading import DBusConnection, DBusRouter, Proxy, ReceiveStopped

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


class _StoppingError(BaseException):
    """stop() was called: leave the thread now (no `except Exception` stops it on its way)."""


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
    """Leave the thread once everything queued before this is done (or at once after stop())."""


_Command = (
    OutgoingNotification | _CloseCommand | _CloseAllCommand | _CloseStaleCommand | _StopCommand
)


class _Connection(DBusConnection):  # type: ignore[misc]  # jeepney is untyped
    """jeepney's thread-safe connection, except that a bus that goes away (or sends bytes that do
    not parse) ends the router's receiver quietly: its callers get RouterClosed, and `lost` says
    the link is gone, instead of an exception escaping the receiver thread. A send that times out
    is a lost link too, never a call that merely had no answer."""

    lost: BaseException | None = None

    def send(self, message: Message, serial: int | None = None) -> None:
        try:
            super().send(message, serial=serial)
        except TimeoutError as exc:  # (socket timeout) part of a message may be out: drop the link
            raise ConnectionAbortedError("the bus did not take the message in time") from exc

    def receive(self, *, timeout: float | None = None) -> Message:
        try:
            return super().receive(timeout=timeout)
        except ReceiveStopped:
            raise
        except Exception as exc:
            self.lost = exc
            raise ReceiveStopped from exc

    def close(self) -> None:
        super().close()
        for end in ("_stop_r", "_stop_w"):  # jeepney leaves its interrupt pipe open
            with contextlib.suppress(AttributeError, OSError):
                os.close(getattr(self, end))


class _Router(DBusRouter):  # type: ignore[misc]  # jeepney is untyped
    """jeepney's router; a reply arriving just as its call times out is dropped, not raised in
    the receiver thread (the call's reply slot may go between the lookup and its use)."""

    def _dispatch(self, msg: Message) -> None:
        with contextlib.suppress(KeyError):
            super()._dispatch(msg)


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
    when the first notification goes out. The thread starts on first use. Commands and the
    signals the router's filters catch share one queue, so the thread handles them in order.
    """

    def __init__(
        self, address: str | None, listener: DbusListener, *, timeout: float = CALL_TIMEOUT_S
    ) -> None:
        self._address = address
        self._listener = listener
        self._timeout = timeout
        self._inbox: queue.SimpleQueue[_Command | Message] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _thread, _closed and _connection
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = threading.Event()
        self._connection: _Connection | None = None
        self._all_closed = threading.Event()
        #: Whether the server ever took a notification of ours (nothing to close if not).
        self._delivered_any = False
        # Owned by the worker thread.
        self._router: _Router | None = None
        self._capabilities: frozenset[str] | None = None
        self._bus_id = ""
        self._shown: dict[str, _Shown] = {}

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
            thread = None if self._closed else self._thread
            if thread is not None:
                self._inbox.put(_CloseAllCommand())
                self._inbox.put(_StopCommand())
        if thread is not None:
            thread.join(timeout)
        self.stop()
        # A service stopped before (its thread gone with the bus) closed nothing: the caller keeps
        # the ids for the next start, unless none was ever shown.
        return self._all_closed.is_set() or not self._delivered_any

    def stop(self) -> None:
        """Ends the thread (cutting short any call in progress) and the connection. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._closed = True
            self._stopping.set()
            self._inbox.put(_StopCommand())  # wakes a thread waiting for work
            if self._connection is not None:
                self._connection.interrupt()  # a pending call fails now with RouterClosed
        if thread is not None:
            thread.join(timeout=5 * self._timeout)
            if thread.is_alive():  # pragma: no cover - every wait in the thread is bounded
                logger.error("the D-Bus notification thread did not stop")

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
                self._thread = threading.Thread(
                    target=self._run, name="cgmtray-dbus-notify", daemon=True
                )
                self._thread.start()
            self._inbox.put(command)
        return True

    # The worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                item = self._inbox.get()
                if isinstance(item, _StopCommand):
                    return
                if isinstance(item, OutgoingNotification):
                    self._deliver(item)
                elif isinstance(item, _CloseCommand):
                    self._close_shown(item.key)
                elif isinstance(item, _CloseAllCommand):
                    closed = [self._close_shown(key) for key in list(self._shown)]
                    if self._link_alive() and all(closed):
                        self._all_closed.set()  # else the bus went away: the ids may still show
                elif isinstance(item, _CloseStaleCommand):
                    self._close_stale(item.stale)
                else:
                    self._dispatch(item)
        except _StoppingError:
            pass
        except Exception:
            logger.exception("the D-Bus notification thread failed; falling back to the tray")
        finally:
            with self._lock:
                self._closed = True
            self._fail_queued()
            self._drop_link(None)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, OutgoingNotification):
                self._tell(self._listener.notification_failed, item.token, "stopped")

    def _call(self, message: Message) -> Message:
        """Sends a method call and waits (at most the timeout) for its reply."""
        router = self._ensure_link()
        try:
            reply = router.send_and_get_reply(message, timeout=self._timeout)
        except (OSError, RouterClosed, KeyError) as exc:
            if self._stopping.is_set():
                raise _StoppingError from exc
            if isinstance(exc, TimeoutError):  # no reply in time: the link itself is fine
                raise
            if isinstance(exc, KeyError):  # jeepney loses the reply slot when its receiver ends
                lost = RouterClosed("the bus connection ended")
                self._drop_link(lost)
                raise lost from exc
            self._drop_link(exc)
            raise
        if reply.header.message_type == MessageType.error:
            raise DBusErrorResponse(reply)
        return reply

    def _link_alive(self) -> bool:
        return self._connection is not None and self._connection.lost is None

    def _ensure_link(self) -> _Router:
        if self._router is not None and self._link_alive():
            return self._router
        if self._connection is not None:
            self._drop_link(self._connection.lost)
        address = self._address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            raise ConnectionError("no D-Bus session bus address")
        sock = prep_socket(get_bus(address), timeout=self._timeout)
        sock.settimeout(self._timeout)  # bounds sendall; reads only happen once select says so
        connection = _Connection(sock)
        with self._lock:
            self._connection = connection
            if self._stopping.is_set():
                connection.interrupt()
        router = self._router = _Router(connection)
        for rule in _signal_rules():  # before Hello: nothing arrives yet to race the filters
            router.filter(rule, queue=self._inbox)
        bus = Proxy(message_bus, router, timeout=self._timeout)
        try:
            connection.unique_name = bus.Hello()[0]
            for rule in _signal_rules():
                bus.AddMatch(rule)
            self._bus_id = str(bus.GetId()[0])
        except BaseException as exc:
            self._drop_link(None)
            if self._stopping.is_set():
                raise _StoppingError from exc
            raise
        return router

    def _drop_link(self, error: BaseException | None) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        router, self._router = self._router, None
        self._capabilities = None
        self._shown.clear()
        if connection is None:
            return
        if error is not None:
            logger.warning(
                "lost the D-Bus connection (%s)",
                type(error).__name__,
                extra={"event": "notify.bus_lost"},
            )
        if router is not None:
            router.close()  # ends and joins the receiver thread
        connection.close()

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
        except Exception as exc:
            logger.warning(
                "the desktop notification was not accepted (%s)",
                type(exc).__name__,
                extra={"event": "notify.failed", "backend": "dbus", "kind": notification.kind},
            )
            self._tell(self._listener.notification_failed, notification.token, type(exc).__name__)
            return
        for key in [k for k, s in self._shown.items() if s.notification_id == notification_id]:
            del self._shown[key]  # the id is this key's now (an update, or a reused id)
        self._shown[notification.key] = _Shown(notification_id, notification.kind, server)
        self._delivered_any = True
        shown = ShownId(notification_id, server, self._bus_id)
        self._tell(self._listener.notification_sent, notification.token, shown)

    def _close_stale(self, stale: tuple[ShownId, ...]) -> None:
        try:
            owner = str(self._call(message_bus.GetNameOwner(NOTIFICATIONS.bus_name)).body[0])
        except Exception as exc:
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
        if not self._link_alive():
            return False
        return self._send_close(shown.notification_id, shown.kind)

    def _send_close(self, notification_id: int, kind: str) -> bool:
        try:
            self._call(new_method_call(NOTIFICATIONS, "CloseNotification", "u", (notification_id,)))
        except Exception as exc:
            logger.warning(
                "could not close the desktop notification (%s)",
                type(exc).__name__,
                extra={"event": "notify.close_failed", "kind": kind},
            )
            return False
        return True

    def _dispatch(self, message: Message) -> None:
        """Handles a signal the router's filters caught (they match the rules added to the bus)."""
        fields = message.header.fields
        member = fields.get(HeaderFields.member)
        sender = str(fields.get(HeaderFields.sender, ""))
        try:
            if member == "NameOwnerChanged":
                self._on_server_changed(str(message.body[2]))
            elif member == "ActionInvoked":
                self._on_action_invoked(int(message.body[0]), str(message.body[1]), sender)
            elif member == "NotificationClosed":
                self._on_notification_closed(int(message.body[0]), int(message.body[1]), sender)
        except (ValueError, TypeError, IndexError):
            logger.debug("ignored a malformed D-Bus signal", exc_info=True)

    def _on_server_changed(self, new_owner: str) -> None:
        """Another notification server took over: its ids and capabilities are not the old ones."""
        self._capabilities = None
        for key in [k for k, s in self._shown.items() if s.server != new_owner]:
            del self._shown[key]

    def _shown_for(self, notification_id: int, sender: str) -> tuple[str, _Shown] | None:
        for key, shown in self._shown.items():
            if shown.notification_id == notification_id:
                if shown.server and sender != shown.server:
                    return None  # not from the server that holds our notification
                return key, shown
        return None

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
        if reason == CLOSED_DISMISSED and not shown.answered:
            self._tell(self._listener.acknowledged, key, shown.kind)

    @staticmethod
    def _tell(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("a notification listener failed")
