"""Two people in urgent low at once, through a real notification server on a private bus: one
notification each naming its person, one alarm, which stops only when both are answered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pytestqt.qtbot import QtBot
from tests.support.dbus import PrivateBus, RecordedCall, RecordingNotificationServer
from tests.support.notifications import quiet_alarm

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.person_tag import PersonTag
from cgmtray.domain.readings import Reading, Trend
from cgmtray.share.client import ShareClient
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.dbus_notify import URGENCY_CRITICAL
from cgmtray.ui.notifier import Notifier
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

pytestmark = pytest.mark.desktop

NOW = datetime(2026, 12, 4, 3, 0, 4, tzinfo=UTC)
SAM = PersonTag("p-sam", "Sam")
ALEX = PersonTag("p-alex", "Alex")
#: Each bounds a hang only.
WAIT_MS = 30_000


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


class Watched:
    """One person's controller (own tray presenter, a worker the test speaks for)."""

    def __init__(self, person: PersonTag, clock: ManualClock, notifier: Notifier) -> None:
        self.person = person
        self.clock = clock

        def factory() -> ShareClient:
            raise AssertionError("the worker is not started here")

        self.worker = WorkerThread(ShareWorker(factory, clock=clock, store_path=None))
        self.controller = Controller(
            clock=clock,
            tray=TrayPresenter(force_status_window=True, clock=clock),
            notifier=notifier,
            worker=self.worker,
            view=ViewSettings(),
            person=person,
        )

    def urgent_low(self) -> None:
        self.worker.worker.status_changed.emit(ConnectionStatus(LinkState.OK))
        newest = self.clock.now() - timedelta(minutes=1)
        self.worker.worker.readings_received.emit(
            (
                Reading(newest, 52, Trend.SINGLE_DOWN),
                Reading(newest - timedelta(minutes=5), 60, Trend.SINGLE_DOWN),
            )
        )


class Family:
    """Sam's and Alex's controllers sharing one notifier on the private bus and one alarm."""

    def __init__(self, bus: str, sound: AlarmSound) -> None:
        self.clock = ManualClock(NOW)
        self.sound = sound
        self.notifier = Notifier(
            tray=None, status_sink=lambda _r: None, sound=sound, bus_address=bus
        )
        self.sam = Watched(SAM, self.clock, self.notifier)
        self.alex = Watched(ALEX, self.clock, self.notifier)

    def key(self, person: PersonTag) -> str:
        [key] = [k for k in self.notifier.open_keys if k.startswith(f"{person.id}/")]
        return key

    def stop(self) -> None:
        self.sam.controller.stop()
        self.alex.controller.stop()
        self.notifier.shutdown()


@pytest.fixture
def family(
    qtbot: QtBot, private_bus: PrivateBus, notification_server: RecordingNotificationServer
) -> Iterator[Family]:
    with quiet_alarm() as sound:
        made = Family(private_bus.address, sound)
        try:
            yield made
        finally:
            made.stop()


def both_in_urgent_low(
    qtbot: QtBot, family: Family, server: RecordingNotificationServer
) -> dict[str, int]:
    """Sam, then Alex 40 s later, cross urgent low; returns the notification id per person id."""
    family.sam.urgent_low()
    family.clock.advance(timedelta(seconds=40))
    family.alex.urgent_low()
    qtbot.waitUntil(lambda: len(server.calls("Notify")) == 2, timeout=WAIT_MS)
    ids: dict[str, int] = {}
    keys = {person.id: family.key(person) for person in (SAM, ALEX)}

    def both_shown() -> bool:
        return all(family.notifier.notification_id(key) is not None for key in keys.values())

    qtbot.waitUntil(both_shown, timeout=WAIT_MS)
    for person_id, key in keys.items():
        notification_id = family.notifier.notification_id(key)
        assert notification_id is not None
        ids[person_id] = notification_id
    return ids


def closed_ids(server: RecordingNotificationServer) -> list[int]:
    return [int(call.args[0]) for call in server.calls("CloseNotification")]


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def summary(call: RecordedCall) -> str:
    return str(call.args[3])


def test_two_people_in_urgent_low_get_a_notification_each_and_one_alarm_until_both_answer(
    qtbot: QtBot,
    family: Family,
    notification_server: RecordingNotificationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ids = both_in_urgent_low(qtbot, family, notification_server)

    sam_call, alex_call = notification_server.calls("Notify")
    assert summary(sam_call) == "Sam · Urgent low: 52 mg/dL ↓"
    assert summary(alex_call) == "Alex · Urgent low: 52 mg/dL ↓"
    for call in (sam_call, alex_call):
        assert call.hints["urgency"] == ("y", URGENCY_CRITICAL)
        assert call.replaces_id == 0  # a notification of its own, not one replacing the other
        assert "snooze" in call.actions
    assert ids[SAM.id] != ids[ALEX.id]
    assert family.sound.current == "alarm"
    assert [r.sound for r in events(caplog, "sound.started")] == ["alarm"]  # type: ignore[attr-defined]
    raised = [(r.person, r.kind) for r in events(caplog, "alert.raised")]  # type: ignore[attr-defined]
    assert raised == [(SAM.id, "urgent_low"), (ALEX.id, "urgent_low")]
    sent = [(r.person, r.backend) for r in events(caplog, "notify.sent")]  # type: ignore[attr-defined]
    assert sorted(sent) == sorted([(SAM.id, "dbus"), (ALEX.id, "dbus")])

    # Sam's notification is clicked: Sam's closes, Alex's stays, the alarm goes on.
    sam_key = family.key(SAM)
    with qtbot.waitSignal(
        family.notifier.withdrawn, timeout=WAIT_MS, check_params_cb=lambda k: k == sam_key
    ):
        notification_server.emit_action_invoked(ids[SAM.id], "default")
    qtbot.waitUntil(lambda: closed_ids(notification_server) == [ids[SAM.id]], timeout=WAIT_MS)
    assert notification_server.open_ids() == {ids[ALEX.id]}
    assert family.notifier.request_for(family.key(ALEX)) is not None
    assert family.sound.current == "alarm"

    # Alex's Snooze button: Alex's closes too, and only now the alarm stops.
    alex_key = family.key(ALEX)
    with qtbot.waitSignal(
        family.notifier.withdrawn, timeout=WAIT_MS, check_params_cb=lambda k: k == alex_key
    ):
        notification_server.emit_action_invoked(ids[ALEX.id], "snooze")
    qtbot.waitUntil(
        lambda: closed_ids(notification_server) == [ids[SAM.id], ids[ALEX.id]], timeout=WAIT_MS
    )
    assert notification_server.open_ids() == set()
    assert family.notifier.open_keys == ()
    assert not family.sound.playing
    assert [r.sound for r in events(caplog, "sound.started")] == ["alarm"]  # type: ignore[attr-defined]

    acknowledged = [(r.person, r.kind, r.source) for r in events(caplog, "alert.acknowledged")]  # type: ignore[attr-defined]
    assert acknowledged == [(SAM.id, "urgent_low", "notification")]
    snoozed = [(r.person, r.kind, r.source, r.minutes) for r in events(caplog, "alert.snoozed")]  # type: ignore[attr-defined]
    assert snoozed == [(ALEX.id, "urgent_low", "notification", 30)]
    # The log names people by id only: their names are personal.
    for record in caplog.records:
        texts = [record.getMessage(), *(v for v in vars(record).values() if isinstance(v, str))]
        assert not any("Sam" in text or "Alex" in text for text in texts)


def test_snoozing_one_persons_low_from_its_notification_leaves_the_others_open_and_sounding(
    qtbot: QtBot,
    family: Family,
    notification_server: RecordingNotificationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ids = both_in_urgent_low(qtbot, family, notification_server)
    sam_key = family.key(SAM)

    with qtbot.waitSignal(
        family.notifier.withdrawn, timeout=WAIT_MS, check_params_cb=lambda k: k == sam_key
    ):
        notification_server.emit_action_invoked(ids[SAM.id], "snooze")

    qtbot.waitUntil(lambda: closed_ids(notification_server) == [ids[SAM.id]], timeout=WAIT_MS)
    assert notification_server.open_ids() == {ids[ALEX.id]}
    assert family.sound.current == "alarm"
    snoozed = [(r.person, r.kind) for r in events(caplog, "alert.snoozed")]  # type: ignore[attr-defined]
    assert snoozed == [(SAM.id, "urgent_low")]
    # Still low ten minutes on: Sam's stays snoozed, Alex's repeats, nothing reopens Sam's.
    family.clock.advance(timedelta(minutes=10))
    family.sam.controller._on_tick_timeout()
    family.alex.controller._on_tick_timeout()
    qtbot.waitUntil(lambda: len(notification_server.calls("Notify")) == 3, timeout=WAIT_MS)
    repeat = notification_server.calls("Notify")[-1]
    assert summary(repeat).startswith("Alex · ")
    assert repeat.replaces_id == ids[ALEX.id]
    assert [k.split("/")[0] for k in family.notifier.open_keys] == [ALEX.id]
    assert family.sound.current == "alarm"
