"""Alerts really go out as freedesktop notifications on a private bus, and come back as answers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jeepney import message_bus, new_signal
from jeepney.io.blocking import Proxy, open_dbus_connection
from PySide6.QtCore import QProcess, Qt, QTimer
from PySide6.QtWidgets import QMenu, QSystemTrayIcon
from pytestqt.qtbot import QtBot
from tests.support.dbus import (
    NOTIFICATIONS,
    PrivateBus,
    RecordedCall,
    RecordingNotificationServer,
)
from tests.support.notifications import URGENT_LOW, MessageTray, quiet_alarm

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.alerts import AlertDecision, DecisionAction
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading, Trend
from cgmtray.share.client import ShareClient
from cgmtray.ui import notifier as notifier_module
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

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

    assert snoozed.args == [URGENT_LOW.key, "urgent_low"]
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

    assert acknowledged.args == [URGENT_LOW.key, "urgent_low"]
    assert sound.playing  # a report only: the controller answers it


def test_clicking_the_notification_acknowledges_it_once(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)
    answers: list[str] = []
    notifier.acknowledged.connect(lambda _key, kind: answers.append(kind))

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
    notifier.acknowledged.connect(lambda _key, kind: answers.append(kind))

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
    notifier.acknowledged.connect(lambda _key, kind: answers.append(kind))

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
    notifier.acknowledged.connect(lambda _key, kind: answers.append(kind))

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
        early: list[str] = []
        notifier.delivered.connect(
            lambda key, _backend: early.append(key), Qt.ConnectionType.DirectConnection
        )
        with qtbot.waitSignal(notifier.delivered, timeout=60_000) as delivered:
            notifier.show(URGENT_LOW)
            # show() returned before the hung server's call timed out (the fallback follows it):
            # it did not wait for the bus, however slow the machine.
            assert early == []

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


# --- One path for every control: the whole app's answer, per (control x alert kind) ------------

NOW = datetime(2026, 11, 21, 15, 0, 4, tzinfo=UTC)
#: Every kind repeats this often in the table (so "no repeat while snoozed" is quick to check).
REPEAT = timedelta(minutes=5)


@dataclass(frozen=True)
class KindScenario:
    """Readings (5 min apart, the newest 1 min old) that raise `kind`, the next reading that keeps
    it on, and the link state around them."""

    kind: AlertKind
    values: tuple[int, ...]
    next_value: int | None
    trend: Trend = Trend.FLAT
    link: ConnectionStatus = field(default_factory=lambda: ConnectionStatus(LinkState.OK))
    #: The newest reading is this much older than 1 min (no data).
    age: timedelta = timedelta(0)

    def __str__(self) -> str:
        return self.kind.value


KIND_SCENARIOS = [
    KindScenario(AlertKind.URGENT_LOW, (60, 52), 51),
    KindScenario(AlertKind.URGENT_LOW_SOON, (84, 80, 76, 72, 68), 63),
    KindScenario(AlertKind.LOW, (72, 65), 65),
    KindScenario(AlertKind.URGENT_HIGH, (300, 320), 320),
    KindScenario(AlertKind.HIGH, (262, 262, 262, 262), 262),
    KindScenario(AlertKind.FALLING_FAST, (170, 160, 150), 140, Trend.DOUBLE_DOWN),
    KindScenario(AlertKind.RISING_FAST, (130, 140, 150), 160, Trend.DOUBLE_UP),
    KindScenario(AlertKind.NO_DATA, (120,), None, age=timedelta(minutes=24)),
    KindScenario(
        AlertKind.SIGN_IN_PROBLEM,
        (120, 120),
        120,
        link=ConnectionStatus(
            LinkState.SIGN_IN_REJECTED,
            message="Dexcom did not accept the password.",
            failure=FailureClass.CREDENTIALS,
        ),
    ),
]

MENU_SNOOZE = "menu snooze"
NOTIFICATION_SNOOZE = "notification Snooze"
NOTIFICATION_CLICK = "notification click"
NOTIFICATION_DISMISS = "notification dismissed"
WINDOW_SNOOZE = "status window Snooze"
WINDOW_ACKNOWLEDGE = "status window Acknowledge"
SETTINGS_OFF = "Settings turns it off"
SILENCING_CONTROLS = [
    MENU_SNOOZE,
    NOTIFICATION_SNOOZE,
    NOTIFICATION_CLICK,
    NOTIFICATION_DISMISS,
    WINDOW_SNOOZE,
    WINDOW_ACKNOWLEDGE,
    SETTINGS_OFF,
]
WINDOW_CONTROLS = {WINDOW_SNOOZE, WINDOW_ACKNOWLEDGE}
ACKNOWLEDGING = {NOTIFICATION_CLICK, NOTIFICATION_DISMISS, WINDOW_ACKNOWLEDGE}


def table_settings(kind: AlertKind, *, enabled: bool = True) -> AlertSettings:
    """Every kind on, silent and repeating every 5 min without persistence; `kind` sounds."""
    base = AlertSettings()
    kinds = {
        k: replace(
            base[k],
            enabled=enabled if k is kind else True,
            sound=k is kind,
            repeat=None if base[k].repeat is None else REPEAT,
            persistence=timedelta(0),
        )
        for k in AlertKind
    }
    return AlertSettings(kinds)


class RecordingPlayer:
    """A real player program that plays nothing and appends a line to a file per start."""

    def __init__(self, directory: Path) -> None:
        self.log = directory / "player.runs"
        self.path = directory / "fake-play"
        self.path.write_text(f'#!/bin/sh\necho "$*" >> "{self.log}"\nexit 0\n')
        self.path.chmod(0o755)

    @property
    def starts(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def nothing_can_sound(sound: AlarmSound) -> bool:
    """Silent, and nothing left that could start the player again (no process, no timer)."""
    timers = [t for t in sound.findChildren(QTimer) if t.isActive()]
    processes = [
        p for p in sound.findChildren(QProcess) if p.state() != QProcess.ProcessState.NotRunning
    ]
    return sound.current is None and not timers and not processes


class AppRig:
    """The app's alert path with real parts: Controller, TrayPresenter (its status window),
    Notifier on a private bus (or none: the status window shows alerts), AlarmSound with a
    recording player, and a worker whose signals the test emits."""

    def __init__(
        self, scenario: KindScenario, bus: str | None, player: RecordingPlayer, state: Path
    ) -> None:
        self.scenario = scenario
        self.kind = scenario.kind
        self.clock = ManualClock(NOW)
        self.tray = TrayPresenter(force_status_window=True, clock=self.clock)
        self.sound = AlarmSound(player=[str(player.path)])
        self.sound_changes: list[bool] = []
        self.sound.playing_changed.connect(self.sound_changes.append)
        self.notifier = Notifier(
            tray=None,
            status_sink=lambda _r: None,  # the controller shows it (as the session wires it)
            sound=self.sound,
            bus_address=bus,
            state_file=state,
        )

        def factory() -> ShareClient:
            raise AssertionError("the worker is not started here")

        self.worker = WorkerThread(ShareWorker(factory, clock=self.clock, store_path=None))
        self.controller = Controller(
            clock=self.clock,
            tray=self.tray,
            notifier=self.notifier,
            worker=self.worker,
            view=ViewSettings(alerts=table_settings(self.kind)),
        )
        self.decisions: list[AlertDecision] = []
        self.controller.decisions_made.connect(self.decisions.extend)

    def feed(self, values: tuple[int, ...], age: timedelta = timedelta(0)) -> None:
        newest = self.clock.now() - timedelta(minutes=1) - age
        batch = tuple(
            Reading(newest - timedelta(minutes=5 * i), value, self.scenario.trend)
            for i, value in enumerate(reversed(values))
        )
        self.worker.worker.readings_received.emit(batch)

    def raise_alert(self) -> None:
        self.worker.worker.status_changed.emit(self.scenario.link)
        self.feed(self.scenario.values, self.scenario.age)

    def advance(self, span: timedelta) -> None:
        """Time passes and the condition holds: a new reading (if any), then a tick."""
        self.clock.advance(span)
        if self.scenario.next_value is not None:
            self.feed((self.scenario.next_value,))
        self.controller._on_tick_timeout()

    def raised_now(self) -> list[AlertDecision]:
        return [
            d
            for d in self.decisions
            if d.kind is self.kind and d.action in (DecisionAction.RAISE, DecisionAction.REPEAT)
        ]

    def key(self) -> str:
        [key] = [
            k
            for k in self.notifier.open_keys
            if (request := self.notifier.request_for(k)) and request.kind == self.kind.value
        ]
        return key

    def trigger(self, *path: str) -> None:
        """Chooses a menu item by object names, as a person does after opening the menu."""
        menu = self.tray.menu
        menu.aboutToShow.emit()
        for name in path[:-1]:
            [sub] = [a.menu() for a in menu.actions() if a.menu() and a.menu().objectName() == name]
            assert isinstance(sub, QMenu)
            menu = sub
        [action] = [a for a in menu.actions() if a.objectName() == path[-1] or a.text() == path[-1]]
        assert action.isEnabled()
        action.trigger()

    def stop(self) -> None:
        self.controller.stop()
        self.sound.stop()
        self.sound.deleteLater()


@pytest.fixture
def player(tmp_path: Path) -> RecordingPlayer:
    return RecordingPlayer(tmp_path)


def make_rig(
    qtbot: QtBot,
    scenario: KindScenario,
    bus: PrivateBus | None,
    player: RecordingPlayer,
    state: Path,
) -> AppRig:
    rig = AppRig(scenario, bus.address if bus else None, player, state)
    backend = "dbus" if bus else "window"
    with qtbot.waitSignal(
        rig.notifier.delivered,
        timeout=5000,
        check_params_cb=lambda k, b: b == backend and k.startswith(scenario.kind.value),
    ):
        rig.raise_alert()
    assert rig.raised_now(), "the scenario raises its kind"
    assert True in rig.sound_changes  # its sound started (the alarm loops for urgent kinds)
    return rig


def control_applicable(control: str, kind: AlertKind) -> bool:
    if control == SETTINGS_OFF:
        return kind is not AlertKind.URGENT_LOW  # urgent low can never be turned off
    if control == NOTIFICATION_SNOOZE:
        return kind is not AlertKind.SIGN_IN_PROBLEM  # its notification offers no Snooze
    return True


def apply(
    rig: AppRig, control: str, server: RecordingNotificationServer | None, qtbot: QtBot
) -> None:
    kind = rig.kind
    if control == MENU_SNOOZE:
        rig.trigger("snooze-menu", f"snooze-{kind.value}", "30 min")
    elif control in (NOTIFICATION_SNOOZE, NOTIFICATION_CLICK, NOTIFICATION_DISMISS):
        assert server is not None
        notification_id = rig.notifier.notification_id(rig.key())
        assert notification_id is not None
        with qtbot.waitSignal(rig.notifier.withdrawn, timeout=5000):
            if control == NOTIFICATION_SNOOZE:
                server.emit_action_invoked(notification_id, "snooze")
            elif control == NOTIFICATION_CLICK:
                server.emit_action_invoked(notification_id, "default")
            else:
                server.emit_notification_closed(notification_id, 2)
    elif control in WINDOW_CONTROLS:
        window = rig.tray.status_window
        assert window is not None
        button = window.snooze_button if control == WINDOW_SNOOZE else window.acknowledge_button
        assert button.isVisibleTo(window)
        button.click()
    else:
        rig.controller.apply_view(ViewSettings(alerts=table_settings(kind, enabled=False)))


@pytest.mark.parametrize("scenario", KIND_SCENARIOS, ids=str)
@pytest.mark.parametrize("control", SILENCING_CONTROLS)
def test_every_control_silences_closes_and_holds_back_the_repeat(
    qtbot: QtBot,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    player: RecordingPlayer,
    control: str,
    scenario: KindScenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not control_applicable(control, scenario.kind):
        pytest.skip(f"{control} does not apply to {scenario.kind.value}")
    caplog.set_level(logging.INFO)
    server: RecordingNotificationServer | None = None
    bus: PrivateBus | None = None
    if control in WINDOW_CONTROLS:
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    else:
        bus = request.getfixturevalue("private_bus")
        server = request.getfixturevalue("notification_server")
    rig = make_rig(qtbot, scenario, bus, player, tmp_path / "notifications.json")
    try:
        key = rig.key()
        notification_id = rig.notifier.notification_id(key)
        shown = rig.notifier.request_for(key)
        assert shown is not None
        rig.decisions.clear()

        apply(rig, control, server, qtbot)

        # The alarm (or chime) stopped, and nothing is left that could start the player again.
        assert nothing_can_sound(rig.sound)
        starts = player.starts
        # The notification is closed: over D-Bus, or the status window's alert text is gone.
        assert rig.notifier.request_for(key) is None
        if server is not None:
            if control != NOTIFICATION_DISMISS:  # a dismissed one the server closed already
                qtbot.waitUntil(
                    lambda: any(
                        c.args == (notification_id,) for c in server.calls("CloseNotification")
                    ),
                    timeout=5000,
                )
        else:
            window = rig.tray.status_window
            assert window is not None
            assert shown.title not in window.message  # (a lesser alert still open may show)
            if not window.message:
                assert not window.snooze_button.isVisibleTo(window)
        # The log says what was done, to which kind, from where.
        events = {
            MENU_SNOOZE: ("alert.snoozed", "menu"),
            NOTIFICATION_SNOOZE: ("alert.snoozed", "notification"),
            NOTIFICATION_CLICK: ("alert.acknowledged", "notification"),
            NOTIFICATION_DISMISS: ("alert.acknowledged", "notification"),
            WINDOW_SNOOZE: ("alert.snoozed", "window"),
            WINDOW_ACKNOWLEDGE: ("alert.acknowledged", "window"),
            SETTINGS_OFF: ("alert.turned_off", "settings"),
        }
        event, source = events[control]
        logged = [r for r in caplog.records if getattr(r, "event", None) == event]
        assert [(r.kind, r.source) for r in logged] == [(scenario.kind.value, source)]  # type: ignore[attr-defined]

        # The repeat is held back: past the repeat interval (acknowledged: just short of the
        # interval it restarts) the kind is not raised again while the condition holds.
        rig.advance(REPEAT - timedelta(minutes=1) if control in ACKNOWLEDGING else REPEAT * 1.2)
        assert rig.raised_now() == []
        assert nothing_can_sound(rig.sound)
        assert player.starts == starts
    finally:
        rig.stop()


@pytest.mark.parametrize("scenario", KIND_SCENARIOS, ids=str)
def test_cancelling_a_snooze_from_the_menu_brings_the_alert_back_at_once(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    player: RecordingPlayer,
    scenario: KindScenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rig = make_rig(qtbot, scenario, private_bus, player, tmp_path / "notifications.json")
    try:
        rig.trigger("snooze-menu", f"snooze-{scenario.kind.value}", "30 min")
        assert nothing_can_sound(rig.sound)
        snoozed = menu_texts(rig.tray.menu, "snooze-menu")
        until = (NOW + timedelta(minutes=30)).astimezone().strftime("%H:%M")
        assert f"{scenario.kind.title} — snoozed until {until}" in snoozed
        assert f"Cancel snooze: {scenario.kind.title}" in snoozed
        assert "&Cancel all snoozes" in snoozed
        rig.decisions.clear()
        rig.sound_changes.clear()

        with qtbot.waitSignal(rig.notifier.delivered, timeout=5000):
            rig.trigger("snooze-menu", f"cancel-snooze-{scenario.kind.value}")

        assert [d.kind for d in rig.raised_now()] == [scenario.kind]
        assert True in rig.sound_changes  # its sound starts again
        texts = menu_texts(rig.tray.menu, "snooze-menu")
        assert not any("snoozed until" in t or t.startswith("Cancel") for t in texts)
        [cancelled] = [
            r for r in caplog.records if getattr(r, "event", None) == "alert.snooze_cancelled"
        ]
        assert (cancelled.kind, cancelled.source) == (scenario.kind.value, "menu")  # type: ignore[attr-defined]
    finally:
        rig.stop()


def menu_texts(menu: QMenu, name: str) -> list[str]:
    """The item texts of the submenu `name`, as shown when the menu opens."""
    menu.aboutToShow.emit()
    [sub] = [a.menu() for a in menu.actions() if a.menu() and a.menu().objectName() == name]
    assert isinstance(sub, QMenu)
    return [a.text() for a in sub.actions() if not a.isSeparator()]


def test_the_status_window_shows_the_most_urgent_alert_and_clears_it_when_it_ends(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, player: RecordingPlayer
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    [soon] = [s for s in KIND_SCENARIOS if s.kind is AlertKind.URGENT_LOW_SOON]
    rig = make_rig(qtbot, soon, None, player, tmp_path / "notifications.json")
    try:
        window = rig.tray.status_window
        assert window is not None
        assert window.message.startswith("<b>Urgent low soon")  # not the low that came after
        assert window.acknowledge_button.isVisibleTo(window)
        rig.clock.advance(timedelta(minutes=5))
        rig.feed((90, 100, 110))  # back in range: both episodes end
        assert window.message == ""
        assert not window.acknowledge_button.isVisibleTo(window)
        assert not window.snooze_button.isVisibleTo(window)
        assert nothing_can_sound(rig.sound)
    finally:
        rig.stop()


@pytest.mark.parametrize(
    "scenario", [s for s in KIND_SCENARIOS if s.kind is not AlertKind.SIGN_IN_PROBLEM], ids=str
)
def test_without_an_answer_each_table_scenario_repeats_and_sounds_again(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    player: RecordingPlayer,
    scenario: KindScenario,
) -> None:
    """The control table's "no repeat" is no accident of its inputs: unanswered, they repeat."""
    rig = make_rig(qtbot, scenario, private_bus, player, tmp_path / "notifications.json")
    try:
        rig.decisions.clear()
        rig.sound_changes.clear()
        rig.sound.stop()  # a chime may have ended by itself already; the alarm is cut here
        rig.advance(REPEAT * 1.2)
        assert [(d.kind, d.action) for d in rig.raised_now()] == [
            (scenario.kind, DecisionAction.REPEAT)
        ]
        assert True in rig.sound_changes
    finally:
        rig.stop()


# --- The app owns what it shows: quit closes everything, a new start closes what was left -----


def open_ids(path: Path) -> list[int]:
    return [entry["id"] for entry in json.loads(path.read_text(encoding="utf-8"))["open"]]


def test_quit_closes_every_open_notification_before_the_bus_thread_ends(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    player: RecordingPlayer,
) -> None:
    [soon] = [s for s in KIND_SCENARIOS if s.kind is AlertKind.URGENT_LOW_SOON]
    state = tmp_path / "notifications.json"
    rig = make_rig(qtbot, soon, private_bus, player, state)
    try:
        qtbot.waitUntil(lambda: len(notify_calls(notification_server)) == 2)  # soon, low
        qtbot.waitUntil(lambda: sorted(open_ids(state)) == [1, 2])
        entries = json.loads(state.read_text(encoding="utf-8"))["open"]
        # Ids, kinds and whose ids they are; no glucose value, title or text.
        assert {tuple(sorted(entry)) for entry in entries} == {("bus", "id", "kind", "server")}
        assert {entry["kind"] for entry in entries} == {"urgent_low_soon", "low"}
    finally:
        rig.stop()  # Controller.stop(): what Quit, SIGTERM and aboutToQuit end in

    closed = sorted(c.args[0] for c in notification_server.calls("CloseNotification"))
    assert closed == [1, 2]
    assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())
    assert open_ids(state) == []
    assert nothing_can_sound(rig.sound)


def test_quit_on_a_hung_server_gives_up_within_a_bounded_wait_and_keeps_the_ids(
    qtbot: QtBot, private_bus: PrivateBus, tmp_path: Path, sink: list[NotificationRequest]
) -> None:
    state = tmp_path / "notifications.json"
    server = RecordingNotificationServer(private_bus.address)
    try:
        notifier = Notifier(
            tray=None,
            status_sink=sink.append,
            sound=None,
            bus_address=private_bus.address,
            state_file=state,
        )
        show_and_wait(qtbot, notifier, URGENT_LOW)
        qtbot.waitUntil(lambda: open_ids(state) == [1])
        private_bus.stop()  # the bus is gone (a dead session): nothing can be closed
        started = time.monotonic()
        notifier.shutdown()
        assert time.monotonic() - started < 10  # bounded (≈1 s), generous for a busy machine
        assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())
        assert open_ids(state) == [1]  # not closed: the next start tries again
    finally:
        server.stop()


def test_a_new_start_closes_what_an_abrupt_end_left_open_before_showing_anything(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    sink: list[NotificationRequest],
) -> None:
    state = tmp_path / "notifications.json"
    first = make_notifier(private_bus.address, sink, None)
    first._state_file = state  # as the app builds it
    show_and_wait(qtbot, first, URGENT_LOW)
    qtbot.waitUntil(lambda: open_ids(state) == [1])
    # The process dies here (no shutdown): the urgent notification stays on screen.
    first._service.stop()  # type: ignore[union-attr]  # its thread, as the OS ends it
    assert notification_server.calls("CloseNotification") == []

    second = Notifier(
        tray=None,
        status_sink=sink.append,
        sound=None,
        bus_address=private_bus.address,
        state_file=state,
    )
    try:
        show_and_wait(qtbot, second, URGENT_LOW)
        members = [c.member for c in notification_server.calls() if c.member != "GetCapabilities"]
        # The old one is closed before the new one is shown: never two urgent lows side by side.
        assert members[members.index("Notify", 1) - 1] == "CloseNotification"
        [close] = notification_server.calls("CloseNotification")
        assert close.args == (1,)
        assert notify_calls(notification_server)[-1].replaces_id == 0
    finally:
        second.shutdown()
        first.shutdown()


def test_ids_left_by_another_notification_server_are_not_closed(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    sink: list[NotificationRequest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ids are the server's own: after a reboot or a new server, id 1 is someone else's."""
    caplog.set_level(logging.INFO)
    state = tmp_path / "notifications.json"
    stale = {"id": 1, "kind": "urgent_low", "server": ":1.999", "bus": "another-bus"}
    state.write_text(json.dumps({"version": 1, "open": [stale]}), encoding="utf-8")
    notifier = Notifier(
        tray=None,
        status_sink=sink.append,
        sound=None,
        bus_address=private_bus.address,
        state_file=state,
    )
    try:
        show_and_wait(qtbot, notifier, HIGH)
        assert notification_server.calls("CloseNotification") == []
        assert any(getattr(r, "event", None) == "notify.stale_closed" for r in caplog.records)
    finally:
        notifier.shutdown()
    assert open_ids(state) == []


FATAL_CHILD = r"""
import sys, time
from PySide6.QtCore import QCoreApplication
from cgmtray.ui import app
from cgmtray.ui.notifier import NotificationRequest, Notifier

qt = QCoreApplication(sys.argv[:1])
app._install_excepthook()
notifier = Notifier(tray=None, status_sink=None, sound=None, bus_address=sys.argv[1])
notifier.show(NotificationRequest("urgent_low#1", "urgent_low", "Urgent low", "b", urgent=True))
deadline = time.monotonic() + 30
while notifier.notification_id("urgent_low#1") is None and time.monotonic() < deadline:
    qt.processEvents()
print("shown", flush=True)
raise RuntimeError("a fatal error escapes the event loop")
"""


def test_a_fatal_error_still_closes_the_notifications_at_exit(
    private_bus: PrivateBus, notification_server: RecordingNotificationServer, tmp_path: Path
) -> None:
    env = private_bus.environment(QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.run(
        [sys.executable, "-c", FATAL_CHILD, private_bus.address],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode != 0
    assert "shown" in child.stdout
    assert "a fatal error escapes" in child.stderr  # logged by the app's hook
    [close] = notification_server.calls("CloseNotification")
    assert close.args == (1,)


def test_shutdown_all_closes_what_every_live_notifier_shows(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    sink: list[NotificationRequest],
) -> None:
    notifier = make_notifier(private_bus.address, sink, None)
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)

    notifier_module.shutdown_all()

    assert sorted(c.args[0] for c in notification_server.calls("CloseNotification")) == [1, 2]
    assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())


def test_an_episode_that_ends_closes_its_notification_and_its_alarm(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    player: RecordingPlayer,
) -> None:
    [urgent_low] = [s for s in KIND_SCENARIOS if s.kind is AlertKind.URGENT_LOW]
    rig = make_rig(qtbot, urgent_low, private_bus, player, tmp_path / "notifications.json")
    try:
        notification_id = rig.notifier.notification_id(rig.key())
        rig.clock.advance(timedelta(minutes=5))
        rig.feed((70, 80, 90))
        assert nothing_can_sound(rig.sound)
        qtbot.waitUntil(
            lambda: (
                [c.args for c in notification_server.calls("CloseNotification")]
                == [(notification_id,)]
            ),
            timeout=5000,
        )
        assert rig.notifier.open_keys == ()
    finally:
        rig.stop()


def test_logout_closes_every_notification_and_later_alerts_still_go_out(
    qtbot: QtBot, notifier: Notifier, notification_server: RecordingNotificationServer
) -> None:
    """commitDataRequest (logout) calls close_all(): the logout may still be cancelled."""
    show_and_wait(qtbot, notifier, URGENT_LOW)
    show_and_wait(qtbot, notifier, HIGH)

    notifier.close_all()

    qtbot.waitUntil(lambda: len(notification_server.calls("CloseNotification")) == 2)
    assert notifier.open_keys == ()
    assert show_and_wait(qtbot, notifier, URGENT_LOW) == "dbus"


# --- The no-data alert stays until acknowledged and turns critical as the gap goes on --------


def test_the_no_data_alert_never_expires_and_is_critical_from_its_second_repeat(
    qtbot: QtBot,
    private_bus: PrivateBus,
    notification_server: RecordingNotificationServer,
    tmp_path: Path,
    player: RecordingPlayer,
) -> None:
    [no_data] = [s for s in KIND_SCENARIOS if s.kind is AlertKind.NO_DATA]
    rig = make_rig(qtbot, no_data, private_bus, player, tmp_path / "notifications.json")
    try:
        for shown in (2, 3):  # the first and the second repeat
            rig.advance(REPEAT * 1.2)

            def arrived(count: int = shown) -> bool:
                return len(notify_calls(notification_server)) == count

            qtbot.waitUntil(arrived, timeout=30_000)
        raised, first_repeat, second_repeat = notify_calls(notification_server)
        assert [d.action for d in rig.raised_now()] == [
            DecisionAction.RAISE,
            DecisionAction.REPEAT,
            DecisionAction.REPEAT,
        ]
        # Resident from the first raise: the server never times it out.
        assert [c.expire_timeout for c in (raised, first_repeat, second_repeat)] == [0, 0, 0]
        assert [c.hints["urgency"] for c in (raised, first_repeat, second_repeat)] == [
            ("y", 1),
            ("y", 1),
            ("y", 2),  # critical after the second repeat
        ]
    finally:
        rig.stop()
