"""Alerts really go out as freedesktop notifications on a private bus, and come back as answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from jeepney import message_bus, new_signal
from jeepney.io.blocking import Proxy, open_dbus_connection
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot
from tests.support.notifications import URGENT_LOW, MessageTray, quiet_alarm

from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound

if TYPE_CHECKING:  # mypy names the helper by its path; pytest puts tests/desktop on sys.path
    from tests.desktop.dbus_fixtures import (
        NOTIFICATIONS,
        PrivateBus,
        RecordedCall,
        RecordingNotificationServer,
    )
else:
    from dbus_fixtures import NOTIFICATIONS, PrivateBus, RecordedCall, RecordingNotificationServer

pytestmark = pytest.mark.desktop

HIGH = NotificationRequest(
    key="high#1",
    kind="high",
    title="High: 262 mg/dL →",
    body="Your glucose has been high for 15 minutes.",
    urgent=False,
    sound="chime",
)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def sink() -> list[NotificationRequest]:
    return []


@pytest.fixture
def sound(qtbot: QtBot) -> Iterator[AlarmSound]:
    with quiet_alarm() as alarm:
        yield alarm


def make_notifier(
    address: str | None,
    sink: list[NotificationRequest],
    sound: AlarmSound | None,
    tray: QSystemTrayIcon | None = None,
) -> Notifier:
    return Notifier(tray=tray, status_sink=sink.append, sound=sound, bus_address=address)


@pytest.fixture
def notifier(
    qtbot: QtBot,
    notification_server: RecordingNotificationServer,
    private_bus: PrivateBus,
    sink: list[NotificationRequest],
    sound: AlarmSound,
) -> Iterator[Notifier]:
    shown = make_notifier(private_bus.address, sink, sound)
    yield shown
    shown.shutdown()


def show_and_wait(qtbot: QtBot, notifier: Notifier, request: NotificationRequest) -> str:
    """Shows `request` and returns the backend that delivered it."""
    with qtbot.waitSignal(notifier.delivered, timeout=5000) as delivered:
        notifier.show(request)
    assert delivered.args is not None
    assert delivered.args[0] == request.key
    return str(delivered.args[1])


def notify_calls(server: RecordingNotificationServer) -> list[RecordedCall]:
    return server.calls("Notify")


def test_urgent_low_goes_out_critical_and_never_expiring(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    backend = show_and_wait(qtbot, notifier, URGENT_LOW)

    assert backend == "dbus"
    assert notifier.backend == "dbus"
    [call] = notify_calls(notification_server)
    assert call.signature == "susssasa{sv}i"
    app_name, replaces_id, _icon, summary, body, _actions, _hints, expire = call.args
    assert (app_name, replaces_id, expire) == ("CGM Tray", 0, 0)
    assert (summary, body) == (URGENT_LOW.title, URGENT_LOW.body)
    assert call.hints["urgency"] == ("y", 2)
    assert call.hints["desktop-entry"] == ("s", "io.github.cgmtray.CgmTray")
    assert call.hints["category"] == ("s", "device")


def test_an_update_for_the_same_episode_replaces_the_notification_in_place(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    later = NotificationRequest(
        key=URGENT_LOW.key,
        kind="urgent_low",
        title="Urgent low: 48 mg/dL ↓",
        body="Still urgently low.",
        urgent=True,
        sound="alarm",
    )
    show_and_wait(qtbot, notifier, later)
    show_and_wait(qtbot, notifier, HIGH)

    first, update, other = notify_calls(notification_server)
    assert first.replaces_id == 0
    assert update.replaces_id == 1  # the id the server returned for the first one
    assert update.args[3] == "Urgent low: 48 mg/dL ↓"
    assert other.replaces_id == 0  # another episode is a notification of its own


def test_a_non_urgent_alert_has_normal_urgency_and_the_server_default_timeout(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    show_and_wait(qtbot, notifier, HIGH)

    [call] = notify_calls(notification_server)
    assert call.hints["urgency"] == ("y", 1)
    assert call.expire_timeout == -1


def test_snooze_is_offered_when_the_server_supports_actions(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    no_snooze = NotificationRequest(
        key="sign_in#1",
        kind="sign_in_problem",
        title="Dexcom Share rejected the password",
        body="Check the account in Settings.",
        urgent=False,
        snoozable=False,
    )
    show_and_wait(qtbot, notifier, no_snooze)

    with_snooze, without_snooze = notify_calls(notification_server)
    assert "snooze" in with_snooze.actions[0::2]
    assert "default" in with_snooze.actions[0::2]
    assert "snooze" not in without_snooze.actions[0::2]


def test_no_actions_are_sent_to_a_server_without_them(
    qtbot: QtBot,
    private_bus: PrivateBus,
    sink: list[NotificationRequest],
    sound: AlarmSound,
) -> None:
    server = RecordingNotificationServer(private_bus.address, capabilities=["body"])
    notifier = make_notifier(private_bus.address, sink, sound)
    try:
        assert show_and_wait(qtbot, notifier, URGENT_LOW) == "dbus"
        [call] = notify_calls(server)
        assert call.actions == []
    finally:
        notifier.shutdown()
        server.stop()


# The notifier only reports answers; the controller's apply_control silences and closes (the
# whole path, for every control and kind: tests/ui/test_alert_controls.py and the Controller
# tests below).


def test_snooze_clicked_on_the_notification_asks_for_a_snooze(
    qtbot: QtBot,
    notifier: Notifier,
    notification_server: RecordingNotificationServer,
    sound: AlarmSound,
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    assert sound.playing

    with qtbot.waitSignal(notifier.snooze_requested, timeout=5000) as snoozed:
        notification_server.emit_action_invoked(1, "snooze")

    assert snoozed.args == ["urgent_low"]
    assert sound.playing  # a report only: the controller answers it


def test_dismissing_the_notification_acknowledges_it(
    qtbot: QtBot,
    notifier: Notifier,
    notification_server: RecordingNotificationServer,
    sound: AlarmSound,
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    assert sound.playing

    with qtbot.waitSignal(notifier.acknowledged, timeout=5000) as acknowledged:
        notification_server.emit_notification_closed(1, 2)  # 2: dismissed by the user

    assert acknowledged.args == ["urgent_low"]
    assert sound.playing  # a report only: the controller answers it


def test_clicking_the_notification_acknowledges_it_once(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)
    answers: list[str] = []
    notifier.acknowledged.connect(answers.append)

    notification_server.emit_action_invoked(1, "default")
    notification_server.emit_notification_closed(1, 2)  # servers close after an action
    notification_server.emit_notification_closed(2, 2)
    qtbot.waitUntil(lambda: "high" in answers)  # answers arrive in the order they were sent

    assert answers == ["urgent_low", "high"]


def test_an_expired_notification_is_not_an_acknowledgement(
    qtbot: QtBot,
    notifier: Notifier,
    notification_server: RecordingNotificationServer,
    sound: AlarmSound,
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)
    answers: list[str] = []
    notifier.acknowledged.connect(answers.append)

    notification_server.emit_notification_closed(1, 1)  # 1: expired, nobody saw it go
    notification_server.emit_notification_closed(2, 2)
    qtbot.waitUntil(lambda: "high" in answers)

    assert answers == ["high"]
    assert sound.playing  # the urgent alarm keeps sounding


def test_answers_from_another_program_on_the_bus_are_ignored(
    qtbot: QtBot,
    notifier: Notifier,
    notification_server: RecordingNotificationServer,
    private_bus: PrivateBus,
    sound: AlarmSound,
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)
    answers: list[str] = []
    notifier.acknowledged.connect(answers.append)

    with open_dbus_connection(private_bus.address) as impostor:
        impostor.send(new_signal(NOTIFICATIONS, "ActionInvoked", "us", (1, "default")))
        Proxy(message_bus, impostor, timeout=5).GetId()  # the bus has routed the signal
    notification_server.emit_notification_closed(2, 2)
    qtbot.waitUntil(lambda: "high" in answers)

    assert answers == ["high"]
    assert sound.playing


def test_close_withdraws_the_notification_without_counting_as_acknowledged(
    qtbot: QtBot,
    notifier: Notifier,
    notification_server: RecordingNotificationServer,
    sound: AlarmSound,
) -> None:
    show_and_wait(qtbot, notifier, HIGH)
    show_and_wait(qtbot, notifier, URGENT_LOW)
    answers: list[str] = []
    notifier.acknowledged.connect(answers.append)

    notifier.close(URGENT_LOW.key)

    assert not sound.playing
    qtbot.waitUntil(lambda: len(notification_server.calls("CloseNotification")) == 1)
    [close_call] = notification_server.calls("CloseNotification")
    assert close_call.signature == "u"
    assert close_call.args == (2,)  # the urgent low's id, not the high's
    notification_server.emit_notification_closed(1, 2)
    qtbot.waitUntil(lambda: "high" in answers)
    assert answers == ["high"]  # our own close (reason 3) was not taken for the person's answer

    show_and_wait(qtbot, notifier, URGENT_LOW)
    assert notify_calls(notification_server)[-1].replaces_id == 0  # a new episode


def test_a_hung_server_never_blocks_the_gui_and_the_alert_falls_back(
    qtbot: QtBot,
    private_bus: PrivateBus,
    sink: list[NotificationRequest],
    sound: AlarmSound,
) -> None:
    server = RecordingNotificationServer(private_bus.address, hang=True)
    notifier = make_notifier(private_bus.address, sink, sound)
    try:
        with qtbot.waitSignal(notifier.delivered, timeout=10_000) as delivered:
            started = time.monotonic()
            notifier.show(URGENT_LOW)
            returned_after = time.monotonic() - started

        assert returned_after < 0.25
        assert delivered.args == [URGENT_LOW.key, "window"]
        assert sink == [URGENT_LOW]
        assert sound.playing
    finally:
        notifier.shutdown()
        server.stop()


def test_a_bus_without_a_notification_server_falls_back_to_the_tray(
    qtbot: QtBot, private_bus: PrivateBus, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    tray = MessageTray()
    notifier = make_notifier(private_bus.address, sink, sound, tray)
    try:
        assert show_and_wait(qtbot, notifier, URGENT_LOW) == "tray"
        assert notifier.backend == "tray"
        [(title, body, icon, msecs)] = tray.messages
        assert (title, body) == (URGENT_LOW.title, URGENT_LOW.body)
        assert icon == QSystemTrayIcon.MessageIcon.Critical
        assert msecs == 0
        assert sink == []
    finally:
        notifier.shutdown()


def test_no_bus_at_all_falls_back_to_the_tray_balloon(
    qtbot: QtBot, tmp_path: Path, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    tray = MessageTray()
    notifier = make_notifier(f"unix:path={tmp_path}/no-bus-here", sink, sound, tray)
    try:
        assert show_and_wait(qtbot, notifier, HIGH) == "tray"
        [(_title, _body, icon, msecs)] = tray.messages
        assert icon == QSystemTrayIcon.MessageIcon.Warning
        assert msecs > 0
    finally:
        notifier.shutdown()


def test_no_bus_and_no_tray_reaches_the_status_window(
    qtbot: QtBot, tmp_path: Path, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    notifier = make_notifier(f"unix:path={tmp_path}/no-bus-here", sink, sound)
    try:
        assert show_and_wait(qtbot, notifier, URGENT_LOW) == "window"
        assert sink == [URGENT_LOW]
        assert sound.playing
    finally:
        notifier.shutdown()


def test_when_the_bus_goes_away_later_alerts_still_arrive(
    qtbot: QtBot,
    notifier: Notifier,
    private_bus: PrivateBus,
    sink: list[NotificationRequest],
) -> None:
    assert show_and_wait(qtbot, notifier, HIGH) == "dbus"

    private_bus.stop()

    assert show_and_wait(qtbot, notifier, URGENT_LOW) == "window"
    assert sink == [URGENT_LOW]


def test_each_delivery_is_logged_without_the_value(
    qtbot: QtBot, notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cgmtray.ui.notifier"):
        show_and_wait(qtbot, notifier, URGENT_LOW)

    [sent] = [r for r in caplog.records if getattr(r, "event", None) == "notify.sent"]
    assert (sent.backend, sent.kind, sent.urgent) == ("dbus", "urgent_low", True)  # type: ignore[attr-defined]
    assert all("52" not in r.getMessage() for r in caplog.records)


def test_shutdown_ends_the_dbus_thread_and_later_alerts_use_the_fallback(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    sink: list[NotificationRequest],
    sound: AlarmSound,
) -> None:
    notifier = make_notifier(private_bus.address, sink, sound)
    show_and_wait(qtbot, notifier, URGENT_LOW)
    assert any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())

    notifier.shutdown()
    notifier.shutdown()

    assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())
    assert not sound.playing
    assert show_and_wait(qtbot, notifier, HIGH) == "window"
    assert len(notify_calls(notification_server)) == 1
