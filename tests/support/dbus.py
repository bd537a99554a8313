"""The one private D-Bus session bus of tests and benchmarks, and a
recording org.freedesktop.Notifications server for tests."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jeepney import (
    DBusAddress,
    HeaderFields,
    MatchRule,
    Message,
    MessageType,
    message_bus,
    new_error,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import DBusNameFlags
from jeepney.io import blocking
from jeepney.io.threading import DBusConnection, ReceiveStopped, open_dbus_connection
from tests.support.processes import read_line, stop_process

NOTIFICATIONS_NAME: Final = "org.freedesktop.Notifications"
NOTIFICATIONS: Final = DBusAddress(
    "/org/freedesktop/Notifications", bus_name=NOTIFICATIONS_NAME, interface=NOTIFICATIONS_NAME
)
STARTUP_TIMEOUT_S: Final = 30.0

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={socket_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def own_name(conn: DBusConnection, name: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Asks the bus for `name` on a connection whose receiving thread is not yet running, waiting
    for the answer (messages before it are dropped); RuntimeError unless it became the owner."""
    serial = next(conn.outgoing_serial)
    conn.send(message_bus.RequestName(name, DBusNameFlags.do_not_queue), serial=serial)
    while True:
        reply = conn.receive(timeout=timeout)
        if reply.header.fields.get(HeaderFields.reply_serial) == serial:
            break
    if reply.header.message_type == MessageType.error or reply.body[0] != 1:
        raise RuntimeError(f"could not own {name}: {reply.body}")


class PrivateBus:
    """A `dbus-daemon --session` of our own, with no service activation, on a short socket path."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="cgmbus-"))
        config = self._dir / "session.conf"
        config.write_text(_BUS_CONFIG.format(socket_dir=self._dir), encoding="utf-8")
        self._process = subprocess.Popen(
            [
                "dbus-daemon",
                f"--config-file={config}",
                "--nofork",
                "--nopidfile",
                "--print-address=1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            self.address = read_line(self._process.stdout, STARTUP_TIMEOUT_S).strip()
            if not self.address:
                raise RuntimeError("dbus-daemon printed no address")
        except BaseException:
            self.stop()
            raise

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def environment(self, **extra: str) -> dict[str, str]:
        """A child environment that talks to this bus only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
        env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        env.update(extra)
        return env

    def wait_for_name(self, name: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Blocks until some connection owns `name` (event driven: NameOwnerChanged)."""
        with blocking.open_dbus_connection(self.address) as conn:
            rule = MatchRule(
                type="signal",
                sender="org.freedesktop.DBus",
                interface="org.freedesktop.DBus",
                member="NameOwnerChanged",
            )
            rule.add_arg_condition(0, name)
            bus = blocking.Proxy(message_bus, conn, timeout=timeout)
            with conn.filter(rule) as changes:
                bus.AddMatch(rule)
                if bus.NameHasOwner(name)[0]:
                    return
                while True:
                    change = conn.recv_until_filtered(changes, timeout=timeout)
                    if change.body[2]:
                        return

    def stop(self) -> None:
        stop_process(self._process)
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass(frozen=True)
class RecordedCall:
    """One method call the recording server received, with its arguments as typed on the wire."""

    member: str
    signature: str
    args: tuple[Any, ...]

    @property
    def hints(self) -> dict[str, tuple[str, Any]]:
        """Notify's hints: name -> (D-Bus type code, value)."""
        assert self.member == "Notify"
        return dict(self.args[6])

    @property
    def actions(self) -> list[str]:
        assert self.member == "Notify"
        return list(self.args[5])

    @property
    def replaces_id(self) -> int:
        assert self.member == "Notify"
        return int(self.args[1])

    @property
    def expire_timeout(self) -> int:
        assert self.member == "Notify"
        return int(self.args[7])


class RecordingNotificationServer:
    """Owns org.freedesktop.Notifications on a bus, answers like a real server, records calls.

    `hang=True` makes it record Notify and GetCapabilities calls but never answer them (a hung
    server). Signals are sent with emit_action_invoked / emit_notification_closed.
    """

    def __init__(
        self,
        address: str,
        *,
        capabilities: Iterable[str] = ("body", "actions", "persistence"),
        hang: bool = False,
    ) -> None:
        self.capabilities = list(capabilities)
        self.hang = hang
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._open_ids: set[int] = set()
        self._shown: list[tuple[int, RecordedCall]] = []
        self._conn: DBusConnection = open_dbus_connection(address)
        try:
            self.unique_name: str = self._conn.unique_name
            own_name(self._conn, NOTIFICATIONS_NAME)
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="recording-notifications")
        self._thread.start()

    # Test side ----------------------------------------------------------------------------

    def calls(self, member: str | None = None) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if member is None or c.member == member]

    def shown(self) -> list[tuple[int, RecordedCall]]:
        """Each Notify answered, with the id it was given, in order."""
        with self._lock:
            return list(self._shown)

    def open_ids(self) -> set[int]:
        """The ids shown and not closed since (by CloseNotification)."""
        with self._lock:
            return set(self._open_ids)

    def emit_action_invoked(self, notification_id: int, action_key: str) -> None:
        self._emit("ActionInvoked", "us", (notification_id, action_key))

    def emit_notification_closed(self, notification_id: int, reason: int) -> None:
        self._emit("NotificationClosed", "uu", (notification_id, reason))

    def stop(self) -> None:
        self._conn.interrupt()
        self._thread.join(timeout=10)
        self._conn.close()

    # Server side --------------------------------------------------------------------------

    def _emit(self, member: str, signature: str, body: tuple[Any, ...]) -> None:
        self._conn.send(new_signal(NOTIFICATIONS, member, signature, body))

    def _serve(self) -> None:
        try:
            while True:
                message = self._conn.receive()
                if message.header.message_type == MessageType.method_call:
                    self._answer(message)
        except (ReceiveStopped, OSError, ValueError):
            return

    def _answer(self, call: Message) -> None:
        fields: Mapping[HeaderFields, Any] = call.header.fields
        member = str(fields.get(HeaderFields.member))
        if fields.get(HeaderFields.interface) != NOTIFICATIONS_NAME:
            self._conn.send(
                new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
            )
            return
        recorded = RecordedCall(member, str(fields.get(HeaderFields.signature, "")), call.body)
        with self._lock:
            self._calls.append(recorded)
        if self.hang and member in ("Notify", "GetCapabilities"):
            return
        if member == "Notify":
            replaces = recorded.replaces_id
            with self._lock:
                notification_id = replaces if replaces in self._open_ids else next(self._ids)
                self._open_ids.add(notification_id)
                self._shown.append((notification_id, recorded))
            self._conn.send(new_method_return(call, "u", (notification_id,)))
        elif member == "CloseNotification":
            self._conn.send(new_method_return(call))
            closed = int(call.body[0])
            with self._lock:
                was_open = closed in self._open_ids
                self._open_ids.discard(closed)
            if was_open:
                self.emit_notification_closed(closed, 3)
        elif member == "GetCapabilities":
            self._conn.send(new_method_return(call, "as", (self.capabilities,)))
        elif member == "GetServerInformation":
            info = ("Recorder", "cgmtray tests", "1.0", "1.2")
            self._conn.send(new_method_return(call, "ssss", info))
        else:
            self._conn.send(
                new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
            )
