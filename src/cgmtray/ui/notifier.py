"""Alerts that reach the person: D-Bus notification, else tray balloon, else the status window."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QSystemTrayIcon

from cgmtray.domain.person_tag import key_person
from cgmtray.storage.atomic import write_atomically
from cgmtray.storage.safe_open import read_capped
from cgmtray.ui.sound import AlarmSound

try:  # jeepney is a dependency on Linux only
    from cgmtray.ui.dbus_notify import DbusNotificationService, OutgoingNotification, ShownId
except ImportError:  # pragma: no cover - exercised on macOS and Windows
    _JEEPNEY_AVAILABLE = False
else:
    _JEEPNEY_AVAILABLE = True

logger = logging.getLogger(__name__)

BACKEND_DBUS: Final = "dbus"
BACKEND_TRAY: Final = "tray"
BACKEND_WINDOW: Final = "window"
BACKEND_NONE: Final = "none"

#: How long a non-urgent tray balloon stays (urgent ones stay until clicked where Qt allows).
TRAY_MESSAGE_MS: Final = 15_000

#: At quit, logout or a crash, closing what the app shows may take this long (then it gives up).
SHUTDOWN_CLOSE_S: Final = 1.0
#: The name of the file (in the data folder) that lists the notifications still open.
OPEN_NOTIFICATIONS_FILE: Final = "notifications.json"
#: A list of a few open notifications is far below this; a bigger file is not ours to read.
OPEN_IDS_LIMIT_BYTES: Final = 64 * 1024

_FREEDESKTOP_PLATFORM: Final = not sys.platform.startswith(("darwin", "win32", "cygwin"))

#: Every notifier not yet shut down, for the crash path (shutdown_all).
_LIVE: weakref.WeakSet[Notifier] = weakref.WeakSet()


def shutdown_all() -> None:
    """Best effort at a fatal error or at exit: every live notifier closes what it shows."""
    for notifier in list(_LIVE):
        try:
            notifier.shutdown()
        except Exception:  # the process is going down: never let this hide the first error
            logger.exception("closing notifications at exit failed")


@dataclass(frozen=True)
class NotificationRequest:
    """One alert to show. The same `key` replaces the earlier notification in place.

    A named person's keys start with their id (domain/person_tag.py): `person` is read from it.
    """

    key: str
    kind: str
    title: str
    body: str
    urgent: bool
    sound: str | None = None
    snoozable: bool = True
    #: Stays until acknowledged: never expires by itself (always so when urgent).
    resident: bool = False

    @property
    def person(self) -> str | None:
        """The id of the person the alert is about (None: the unnamed single person)."""
        return key_person(self.key)


class _DbusBridge(QObject):
    """The service's DbusListener: turns its reports (made on the D-Bus thread) into Qt signals.

    Signals: sent(int token, ShownId shown), failed(int token, str reason), snoozed(str key,
    str kind), dismissed(str key, str kind). The Notifier receives them queued, on the GUI thread.
    """

    sent = Signal(int, object)
    failed = Signal(int, str)
    snoozed = Signal(str, str)
    dismissed = Signal(str, str)

    def notification_sent(self, token: int, shown: ShownId) -> None:
        self.sent.emit(token, shown)

    def notification_failed(self, token: int, reason: str) -> None:
        self.failed.emit(token, reason)

    def snooze_invoked(self, key: str, kind: str) -> None:
        self.snoozed.emit(key, kind)

    def acknowledged(self, key: str, kind: str) -> None:
        self.dismissed.emit(key, kind)


class Notifier(QObject):
    """Shows alerts on the best backend available for each call, and plays their sound.

    The notifier only reports what the person answered on a notification; it never stops a sound
    or closes anything by itself for an answer: the controller's one control path does that (via
    close / close_kinds), so every way of answering has the same effect.

    It owns what it shows: shutdown() closes every notification still open (bounded), and with a
    `state_file` the ids of open D-Bus notifications are kept there, so the next start closes any
    an abrupt end left behind before it shows anything.

    One notifier serves every person's controller: each signal carries the notification's key,
    which names its person (NotificationRequest.person), so each controller answers only its own;
    the alarm loops while any person's alarming alert is open, and stops with the last of them.

    Signals: snooze_requested(str key, str kind) — "Snooze" was chosen on the notification `key`;
    acknowledged(str key, str kind) — the notification `key` was clicked or dismissed;
    delivered(str key, str backend) — the alert was shown ("dbus" | "tray" | "window");
    withdrawn(str key) — the alert's notification was closed (its episode ended or was answered).
    """

    snooze_requested = Signal(str, str)
    acknowledged = Signal(str, str)
    delivered = Signal(str, str)
    withdrawn = Signal(str)

    def __init__(
        self,
        *,
        tray: QSystemTrayIcon | None,
        status_sink: Callable[[NotificationRequest], None] | None,
        sound: AlarmSound | None,
        bus_address: str | None = None,
        state_file: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._state_file = state_file
        self._open: dict[str, NotificationRequest] = {}
        self._ids: dict[str, tuple[str, ShownId]] = {}
        self._tray = tray
        self._status_sink = status_sink
        self._sound = sound
        self._bus_address = bus_address
        self._tokens = count(1)
        self._pending: dict[int, NotificationRequest] = {}
        self._alarm_keys: set[str] = set()
        self._chime_key: str | None = None
        self._last_tray_request: NotificationRequest | None = None
        self._backend: str | None = None
        self._shut_down = False
        self._service: DbusNotificationService | None = None
        self._bridge = _DbusBridge(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._bridge.sent.connect(self._on_bridge_sent, queued)
        self._bridge.failed.connect(self._on_bridge_failed, queued)
        self._bridge.snoozed.connect(self._on_bridge_snoozed, queued)
        self._bridge.dismissed.connect(self._on_bridge_dismissed, queued)
        if tray is not None:
            tray.messageClicked.connect(self._on_tray_message_clicked)
        _LIVE.add(self)
        self._close_left_over()

    @property
    def backend(self) -> str:
        """The backend used for the latest alert, or the one the next alert will try first."""
        if self._backend is not None:
            return self._backend
        if self._dbus_possible():
            return BACKEND_DBUS
        return self._fallback_backend()

    def request_for(self, key: str) -> NotificationRequest | None:
        """The latest request shown for `key` while it is open."""
        return self._open.get(key)

    def notification_id(self, key: str) -> int | None:
        """The desktop notification's id for `key`, once the server has answered."""
        known = self._ids.get(key)
        return None if known is None else known[1].notification_id

    @property
    def open_keys(self) -> tuple[str, ...]:
        """The keys of every alert shown and not closed since."""
        return tuple(self._open)

    def show(self, request: NotificationRequest) -> None:
        """Shows or updates the alert for `request.key` and starts its sound. Never blocks."""
        if not self._shut_down:
            self._open[request.key] = request
        self._start_sound(request)
        if self._dbus_possible():
            token = next(self._tokens)
            self._pending[token] = request
            if self._dbus_service().submit(_outgoing(token, request, self._sound)):
                return
            del self._pending[token]
        self._show_fallback(request)

    def close(self, key: str) -> None:
        """The episode `key` ended or was answered: close its notification, stop its sound."""
        self._stop_sound_for(key)
        for token in [t for t, r in self._pending.items() if r.key == key]:
            del self._pending[token]
        if self._last_tray_request is not None and self._last_tray_request.key == key:
            self._last_tray_request = None
        if self._service is not None:
            self._service.close(key)
        was_open = self._open.pop(key, None) is not None
        if self._ids.pop(key, None) is not None:
            self._save_open_ids()
        if was_open:
            self.withdrawn.emit(key)

    def close_kinds(self, kinds: Collection[str], *, person: str | None = None) -> tuple[str, ...]:
        """Closes every open alert of these kinds about `person` (None: the unnamed person) and
        stops their sound; returns their keys. Another person's alerts stay open and sounding."""
        keys = tuple(
            key
            for key, request in self._open.items()
            if request.kind in kinds and request.person == person
        )
        for key in keys:
            self.close(key)
        return keys

    def close_person(self, person: str | None) -> tuple[str, ...]:
        """Closes every open alert about `person` (their controller stopped); returns the keys."""
        keys = tuple(key for key, request in self._open.items() if request.person == person)
        for key in keys:
            self.close(key)
        return keys

    def close_all(self) -> None:
        """Closes every alert shown (logout); the notifier keeps working for later alerts."""
        for key in list(self._open):
            self.close(key)

    def shutdown(self) -> None:
        """Closes every notification shown (waiting at most SHUTDOWN_CLOSE_S for the bus), then
        stops the D-Bus thread and any alarm this notifier started. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        _LIVE.discard(self)
        self._pending.clear()
        if self._alarm_keys:
            self._alarm_keys.clear()
            if self._sound is not None:
                with contextlib.suppress(RuntimeError):  # the sound may be gone at exit
                    self._sound.stop()
        open_keys = list(self._open)
        self._open.clear()
        if self._service is not None:
            all_closed = self._service.close_all_and_stop(SHUTDOWN_CLOSE_S)
            self._service = None
            if all_closed:
                self._ids.clear()
        self._save_open_ids()
        logger.info(
            "notifications closed",
            extra={"event": "notify.closed_all", "count": len(open_keys)},
        )
        if self._tray is not None:
            with contextlib.suppress(RuntimeError):  # the tray may already be gone at exit
                self._tray.messageClicked.disconnect(self._on_tray_message_clicked)

    @property
    def tray(self) -> QSystemTrayIcon | None:
        """The icon balloons go to when no notification server answers."""
        return self._tray

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        """Balloons go to another icon from now on (the app switched between one icon per
        person and one for everyone)."""
        if tray is self._tray:
            return
        if self._tray is not None:
            with contextlib.suppress(RuntimeError):  # the old icon may already be gone
                self._tray.messageClicked.disconnect(self._on_tray_message_clicked)
        self._tray = tray
        self._last_tray_request = None
        if tray is not None and not self._shut_down:
            tray.messageClicked.connect(self._on_tray_message_clicked)

    # Notifications an earlier run left open ---------------------------------------------

    def _close_left_over(self) -> None:
        """Closes (once, before anything is shown) the ids an earlier run left in the file."""
        if self._state_file is None or not _JEEPNEY_AVAILABLE:
            return
        stale = _read_open_ids(self._state_file)
        if stale and self._dbus_possible():
            self._dbus_service().close_stale(stale)
        if stale:
            self._save_open_ids()

    def _save_open_ids(self) -> None:
        if self._state_file is None:
            return
        entries = [
            {
                "id": shown.notification_id,
                "kind": kind,
                "server": shown.server,
                "bus": shown.bus,
            }
            for kind, shown in self._ids.values()
        ]
        try:
            write_atomically(self._state_file, json.dumps({"version": 1, "open": entries}).encode())
        except OSError as error:
            logger.warning(
                "could not keep the list of open notifications (%s)",
                type(error).__name__,
                extra={"event": "notify.state_unwritable"},
            )

    # Backends -----------------------------------------------------------------------------

    def _dbus_possible(self) -> bool:
        if self._shut_down or not (_FREEDESKTOP_PLATFORM and _JEEPNEY_AVAILABLE):
            return False
        return bool(self._bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS"))

    def _dbus_service(self) -> DbusNotificationService:
        if self._service is None:
            service = DbusNotificationService(self._bus_address, self._bridge)
            # A notifier deleted without shutdown() still ends its thread.
            self.destroyed.connect(lambda *_: service.stop())
            self._service = service
        return self._service

    def _tray_shows_messages(self) -> bool:
        """Only a tray icon that is on screen in a real tray can show a balloon someone sees."""
        tray = self._tray
        if tray is None:
            return False
        try:
            return tray.isVisible() and tray.isSystemTrayAvailable() and tray.supportsMessages()
        except RuntimeError:  # the tray icon was deleted
            return False

    def _fallback_backend(self) -> str:
        if self._tray_shows_messages():
            return BACKEND_TRAY
        if self._status_sink is not None:
            return BACKEND_WINDOW
        return BACKEND_NONE

    def _show_fallback(self, request: NotificationRequest) -> None:
        backend = self._fallback_backend()
        if backend == BACKEND_TRAY:
            assert self._tray is not None
            icon = (
                QSystemTrayIcon.MessageIcon.Critical
                if request.urgent
                else QSystemTrayIcon.MessageIcon.Warning
            )
            self._tray.showMessage(
                request.title,
                request.body,
                icon,
                0 if request.urgent or request.resident else TRAY_MESSAGE_MS,
            )
            self._last_tray_request = request
        elif backend == BACKEND_WINDOW:
            assert self._status_sink is not None
            try:
                self._status_sink(request)
            except Exception:
                logger.exception(
                    "the status window could not show the alert",
                    extra={"event": "notify.failed", "backend": backend, **_about(request)},
                )
                return
        else:
            logger.error(
                "no way to show the alert: no notification server, tray or status window",
                extra={"event": "notify.failed", "backend": backend, **_about(request)},
            )
            self._backend = backend
            return
        self._delivered(request, backend)

    def _delivered(self, request: NotificationRequest, backend: str) -> None:
        self._backend = backend
        logger.info(
            "alert shown",
            extra={
                "event": "notify.sent",
                "backend": backend,
                **_about(request),
                "urgent": request.urgent,
            },
        )
        self.delivered.emit(request.key, backend)

    # Sound --------------------------------------------------------------------------------

    def _start_sound(self, request: NotificationRequest) -> None:
        """One alarm for everyone: the keys of the open alarming alerts (any person's) are
        counted; the first starts the one looping alarm, later ones join it, and it stops only
        when the last of them is closed (_stop_sound_for)."""
        if self._sound is None or request.sound is None:
            return
        if request.sound == "alarm":
            self._alarm_keys.add(request.key)
            if self._sound.current != "alarm":
                self._sound.play("alarm", loop=True)
        elif request.sound == "chime":
            if not self._alarm_keys:  # never cut an alarm short for a chime
                self._chime_key = request.key
                self._sound.play("chime", loop=False)
        else:
            logger.warning("unknown alert sound %r", request.sound)

    def _stop_sound_for(self, key: str) -> None:
        if key == self._chime_key:
            self._chime_key = None
            if self._sound is not None and self._sound.current == "chime":
                self._sound.stop()
        if key not in self._alarm_keys:
            return
        self._alarm_keys.discard(key)
        if not self._alarm_keys and self._sound is not None and self._sound.current == "alarm":
            self._sound.stop()

    # Reports ------------------------------------------------------------------------------

    @Slot(int, object)
    def _on_bridge_sent(self, token: int, shown: ShownId) -> None:
        request = self._pending.pop(token, None)
        if request is None:
            return
        known = self._ids.get(request.key)
        if request.key in self._open and (known is None or known[1] != shown):
            self._ids[request.key] = (request.kind, shown)
            self._save_open_ids()
        self._delivered(request, BACKEND_DBUS)

    @Slot(int, str)
    def _on_bridge_failed(self, token: int, reason: str) -> None:
        request = self._pending.pop(token, None)
        if request is None or self._shut_down:
            return
        logger.info(
            "falling back from D-Bus (%s)",
            reason,
            extra={"event": "notify.fallback", **_about(request)},
        )
        self._show_fallback(request)

    @Slot(str, str)
    def _on_bridge_snoozed(self, key: str, kind: str) -> None:
        if not self._shut_down:
            self.snooze_requested.emit(key, kind)

    @Slot(str, str)
    def _on_bridge_dismissed(self, key: str, kind: str) -> None:
        if not self._shut_down:
            self.acknowledged.emit(key, kind)

    @Slot()
    def _on_tray_message_clicked(self) -> None:
        request, self._last_tray_request = self._last_tray_request, None
        if request is not None:
            self.acknowledged.emit(request.key, request.kind)


def _about(request: NotificationRequest) -> dict[str, str]:
    """The log fields naming an alert: its kind, and its person's id when it has one (never the
    name: names are personal)."""
    fields = {"kind": request.kind}
    if request.person is not None:
        fields["person"] = request.person
    return fields


def _outgoing(
    token: int, request: NotificationRequest, sound: AlarmSound | None
) -> OutgoingNotification:
    """The D-Bus form of a request; the server keeps quiet when we play our own sound."""
    return OutgoingNotification(
        token=token,
        key=request.key,
        kind=request.kind,
        summary=request.title,
        body=request.body,
        urgent=request.urgent,
        snoozable=request.snoozable,
        resident=request.resident,
        suppress_sound=request.sound is not None and sound is not None and sound.available,
    )


def _read_open_ids(path: Path) -> tuple[ShownId, ...]:
    """The notifications an earlier run listed as open; nothing when the file is absent or bad."""
    try:
        data = json.loads(read_capped(path, OPEN_IDS_LIMIT_BYTES).decode("utf-8"))
        entries = data["open"]
        return tuple(
            ShownId(int(entry["id"]), str(entry["server"]), str(entry["bus"])) for entry in entries
        )
    except FileNotFoundError:
        return ()
    except (OSError, ValueError, TypeError, KeyError) as error:
        logger.warning(
            "ignored an unreadable list of open notifications (%s)",
            type(error).__name__,
            extra={"event": "notify.state_unreadable"},
        )
        return ()
