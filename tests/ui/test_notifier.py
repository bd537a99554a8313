"""Alerts reach the person on whatever this desktop offers; an alarm stops only when answered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot
from tests.support.notifications import SILENT_PLAYER, URGENT_LOW, MessageTray, quiet_alarm

from cgmtray.ui.dbus_notify import OutgoingNotification, notify_arguments
from cgmtray.ui.notifier import NotificationRequest, Notifier, _read_open_ids
from cgmtray.ui.sound import AlarmSound

URGENT_HIGH = NotificationRequest(
    key="urgent_high#1",
    kind="urgent_high",
    title="Urgent high: 320 mg/dL ↑",
    body="Your glucose is urgently high.",
    urgent=True,
    sound="alarm",
)
LOW = NotificationRequest(
    key="low#1",
    kind="low",
    title="Low: 66 mg/dL ↘",
    body="Your glucose is low.",
    urgent=False,
    sound="chime",
)


@pytest.fixture(autouse=True)
def no_session_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """UI tests never reach the real desktop's notification server."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)


@pytest.fixture
def sound(qtbot: QtBot) -> Iterator[AlarmSound]:
    with quiet_alarm() as alarm:
        yield alarm


@pytest.fixture
def sink() -> list[NotificationRequest]:
    return []


@pytest.fixture
def tray(qtbot: QtBot) -> Iterator[MessageTray]:
    icon = MessageTray()
    yield icon
    icon.deleteLater()


@pytest.fixture
def notifier(
    qtbot: QtBot, sink: list[NotificationRequest], sound: AlarmSound
) -> Iterator[Notifier]:
    shown = Notifier(tray=None, status_sink=sink.append, sound=sound)
    yield shown
    shown.shutdown()


@pytest.fixture
def tray_notifier(
    qtbot: QtBot, tray: MessageTray, sink: list[NotificationRequest], sound: AlarmSound
) -> Iterator[Notifier]:
    shown = Notifier(tray=tray, status_sink=sink.append, sound=sound)
    yield shown
    shown.shutdown()


def test_without_a_bus_or_tray_the_alert_goes_to_the_status_window(
    qtbot: QtBot, notifier: Notifier, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    assert notifier.backend == "window"
    with qtbot.waitSignal(notifier.delivered) as delivered:
        notifier.show(URGENT_LOW)

    assert delivered.args == [URGENT_LOW.key, "window"]
    assert sink == [URGENT_LOW]
    assert sound.playing
    assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())


def test_a_tray_that_shows_balloons_gets_the_alert(
    qtbot: QtBot,
    tray_notifier: Notifier,
    tray: MessageTray,
    sink: list[NotificationRequest],
) -> None:
    assert tray_notifier.backend == "tray"
    with qtbot.waitSignal(tray_notifier.delivered) as delivered:
        tray_notifier.show(URGENT_LOW)
    tray_notifier.show(LOW)

    assert delivered.args == [URGENT_LOW.key, "tray"]
    urgent, low = tray.messages
    assert urgent == (URGENT_LOW.title, URGENT_LOW.body, QSystemTrayIcon.MessageIcon.Critical, 0)
    assert low[2] == QSystemTrayIcon.MessageIcon.Warning
    assert low[3] > 0  # a non-urgent balloon goes away by itself
    assert sink == []


def test_an_unreachable_bus_falls_back_without_blocking(
    qtbot: QtBot, tmp_path: Path, tray: MessageTray, sound: AlarmSound
) -> None:
    notifier = Notifier(
        tray=tray, status_sink=None, sound=sound, bus_address=f"unix:path={tmp_path}/nothing"
    )
    try:
        assert notifier.backend == "dbus"  # what it will try first
        early: list[str] = []
        notifier.delivered.connect(
            lambda key, _backend: early.append(key), Qt.ConnectionType.DirectConnection
        )
        with qtbot.waitSignal(notifier.delivered, timeout=30_000) as delivered:
            notifier.show(URGENT_LOW)
            # show() returned before the bus was found missing (the D-Bus thread learns that and
            # the fallback follows): it did not wait for the bus, however slow the machine.
            assert early == []
        assert delivered.args == [URGENT_LOW.key, "tray"]
        assert notifier.backend == "tray"
    finally:
        notifier.shutdown()


def test_a_tray_icon_with_no_tray_on_screen_is_not_trusted_with_alerts(
    qtbot: QtBot, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    offscreen_tray = QSystemTrayIcon()  # offscreen Qt: no system tray exists
    notifier = Notifier(tray=offscreen_tray, status_sink=sink.append, sound=sound)
    try:
        assert not offscreen_tray.isSystemTrayAvailable()
        with qtbot.waitSignal(notifier.delivered) as delivered:
            notifier.show(LOW)
        assert delivered.args == [LOW.key, "window"]
        assert sink == [LOW]
    finally:
        notifier.shutdown()
        offscreen_tray.deleteLater()


def test_with_nowhere_to_show_it_the_failure_is_logged_and_the_alarm_still_sounds(
    qtbot: QtBot, sound: AlarmSound, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(tray=None, status_sink=None, sound=sound)
    delivered: list[str] = []
    notifier.delivered.connect(delivered.append)
    try:
        with caplog.at_level(logging.ERROR, logger="cgmtray.ui.notifier"):
            notifier.show(URGENT_LOW)
        assert delivered == []
        assert notifier.backend == "none"
        assert [getattr(r, "event", None) for r in caplog.records] == ["notify.failed"]
        assert sound.playing
    finally:
        notifier.shutdown()


def test_a_failing_status_window_does_not_break_the_caller(
    qtbot: QtBot, sound: AlarmSound, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_sink(request: NotificationRequest) -> None:
        raise RuntimeError("window gone")

    notifier = Notifier(tray=None, status_sink=broken_sink, sound=sound)
    try:
        with caplog.at_level(logging.ERROR, logger="cgmtray.ui.notifier"):
            notifier.show(URGENT_LOW)
        assert [getattr(r, "event", None) for r in caplog.records] == ["notify.failed"]
        assert sound.playing
    finally:
        notifier.shutdown()


def test_the_alarm_loops_until_the_balloon_click_is_answered(
    qtbot: QtBot, tray_notifier: Notifier, tray: MessageTray, sound: AlarmSound
) -> None:
    """The notifier reports the click; the controller's one control path answers it by closing
    the kind (tests/ui/test_alert_controls.py checks the whole path)."""
    tray_notifier.show(URGENT_LOW)
    assert sound.current == "alarm"

    with qtbot.waitSignal(tray_notifier.acknowledged) as acknowledged:
        tray.messageClicked.emit()

    assert acknowledged.args == [URGENT_LOW.key, "urgent_low"]
    assert sound.current == "alarm"  # a report only: nothing is silenced behind the engine's back
    assert tray_notifier.close_kinds({"urgent_low"}) == (URGENT_LOW.key,)
    assert not sound.playing


def test_a_click_on_a_balloon_that_was_already_answered_says_nothing(
    qtbot: QtBot, tray_notifier: Notifier, tray: MessageTray
) -> None:
    tray_notifier.show(URGENT_LOW)
    tray_notifier.close(URGENT_LOW.key)

    with qtbot.assertNotEmitted(tray_notifier.acknowledged):
        tray.messageClicked.emit()


def test_a_chime_never_cuts_an_alarm_short(
    qtbot: QtBot, tray_notifier: Notifier, tray: MessageTray, sound: AlarmSound
) -> None:
    tray_notifier.show(URGENT_LOW)
    tray_notifier.show(LOW)
    assert sound.current == "alarm"

    tray_notifier.close(URGENT_LOW.key)
    assert not sound.playing
    tray_notifier.show(LOW)
    assert sound.current == "chime"


def test_the_alarm_stops_only_when_every_alarming_episode_is_over(
    notifier: Notifier, sound: AlarmSound
) -> None:
    notifier.show(URGENT_LOW)
    notifier.show(URGENT_HIGH)

    notifier.close(URGENT_LOW.key)
    assert sound.current == "alarm"

    notifier.close(URGENT_HIGH.key)
    assert not sound.playing


def test_each_delivery_is_logged_without_the_glucose_value(
    notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cgmtray.ui.notifier"):
        notifier.show(URGENT_LOW)

    [sent] = [r for r in caplog.records if getattr(r, "event", None) == "notify.sent"]
    assert (sent.backend, sent.kind, sent.urgent) == ("window", "urgent_low", True)  # type: ignore[attr-defined]
    for record in caplog.records:
        assert "52" not in record.getMessage()
        assert all("52" not in str(v) for v in vars(record).values() if isinstance(v, str))


def test_shutdown_silences_the_alarm_and_is_idempotent(
    qtbot: QtBot, tmp_path: Path, sink: list[NotificationRequest], sound: AlarmSound
) -> None:
    notifier = Notifier(
        tray=None, status_sink=sink.append, sound=sound, bus_address=f"unix:path={tmp_path}/x"
    )
    with qtbot.waitSignal(notifier.delivered, timeout=60_000):
        notifier.show(URGENT_LOW)  # starts (and fails over from) the D-Bus thread

    notifier.shutdown()
    notifier.shutdown()

    assert not sound.playing
    assert not any(t.name == "cgmtray-dbus-notify" for t in threading.enumerate())


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["show", "close"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([None, "alarm", "chime"]),
    ),
    max_size=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_the_alarm_sounds_exactly_while_an_alarming_episode_is_open(
    qtbot: QtBot, operations: list[tuple[str, str, str | None]]
) -> None:
    sound = AlarmSound(player=SILENT_PLAYER)
    notifier = Notifier(tray=None, status_sink=lambda request: None, sound=sound)
    open_alarms: set[str] = set()
    try:
        for operation, key, noise in operations:
            if operation == "show":
                notifier.show(NotificationRequest(key, "low", "t", "b", urgent=True, sound=noise))
                if noise == "alarm":
                    open_alarms.add(key)
            else:
                notifier.close(key)
                open_alarms.discard(key)
            assert (sound.current == "alarm") == bool(open_alarms)
    finally:
        notifier.shutdown()
        sound.stop()


@given(
    urgent=st.booleans(),
    snoozable=st.booleans(),
    suppress_sound=st.booleans(),
    capabilities=st.frozensets(st.sampled_from(["actions", "body", "persistence", "sound"])),
    replaces_id=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_notify_arguments_follow_the_alert(
    urgent: bool,
    snoozable: bool,
    suppress_sound: bool,
    capabilities: frozenset[str],
    replaces_id: int,
) -> None:
    notification = OutgoingNotification(
        token=1,
        key="k",
        kind="low",
        summary="Low: 66 mg/dL",
        body="Your glucose is low.",
        urgent=urgent,
        snoozable=snoozable,
        suppress_sound=suppress_sound,
    )
    app, replaces, _icon, summary, body, actions, hints, expire = notify_arguments(
        notification, replaces_id=replaces_id, capabilities=capabilities
    )

    assert (app, replaces, summary, body) == ("CGM Tray", replaces_id, "Low: 66 mg/dL", body)
    assert hints["urgency"] == ("y", 2 if urgent else 1)
    assert expire == (0 if urgent else -1)
    assert len(actions) % 2 == 0
    assert ("snooze" in actions[0::2]) == ("actions" in capabilities and snoozable)
    assert ("default" in actions[0::2]) == ("actions" in capabilities)
    assert ("suppress-sound" in hints) == suppress_sound


def test_a_symlinked_list_of_open_notifications_is_not_read_and_its_target_is_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"version": 1, "open": [{"id": 7, "server": ":1.9", "bus": "b"}]}')
    before = target.read_bytes()
    link = tmp_path / "notifications.json"
    link.symlink_to(target)
    with caplog.at_level(logging.WARNING):
        assert _read_open_ids(link) == ()  # nothing of another file's is closed at start
    assert "notify.state_unreadable" in {getattr(r, "event", "") for r in caplog.records}
    assert target.read_bytes() == before


def test_a_no_data_balloon_stays_until_clicked_without_being_critical(
    qtbot: QtBot, tray_notifier: Notifier, tray: MessageTray
) -> None:
    no_data = NotificationRequest(
        key="no_data#1",
        kind="no_data",
        title="No data: 20 min",
        body="No new readings for 20 min.",
        urgent=False,
        resident=True,
    )
    with qtbot.waitSignal(tray_notifier.delivered, timeout=15_000):
        tray_notifier.show(no_data)
    [(title, _body, icon, msecs)] = tray.messages
    assert (title, icon, msecs) == ("No data: 20 min", QSystemTrayIcon.MessageIcon.Warning, 0)


def test_closing_one_persons_kinds_leaves_another_persons_alert_open_and_the_alarm_on(
    notifier: Notifier, sound: AlarmSound
) -> None:
    sams = replace(URGENT_LOW, key=f"p-sam/{URGENT_LOW.key}", title="Sam · Urgent low")
    alexs = replace(URGENT_LOW, key=f"p-alex/{URGENT_LOW.key}", title="Alex · Urgent low")
    notifier.show(sams)
    notifier.show(alexs)
    assert (sams.person, alexs.person) == ("p-sam", "p-alex")

    assert notifier.close_kinds({"urgent_low"}) == ()  # the unnamed person has none open
    assert notifier.close_kinds({"urgent_low"}, person="p-sam") == (sams.key,)
    assert notifier.open_keys == (alexs.key,)
    assert sound.current == "alarm"

    assert notifier.close_person("p-alex") == (alexs.key,)
    assert not sound.playing
