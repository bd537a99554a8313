"""Two people, one notifier, one alarm: each alert names its person, each answer stays with it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pytestqt.qtbot import QtBot
from tests.support.notifications import MessageTray, quiet_alarm

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.person_tag import PersonTag
from cgmtray.domain.readings import Reading, Trend
from cgmtray.share.client import ShareClient
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import StatusWindow, TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

NOW = datetime(2026, 12, 4, 3, 0, 4, tzinfo=UTC)
SAM = PersonTag("p-sam", "Sam")
ALEX = PersonTag("p-alex", "Alex")


@pytest.fixture(autouse=True)
def no_session_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """No notification server: the alerts go to each person's status window."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)


class Watched:
    """One person's controller with its own tray presenter (status window) and a worker that is
    never started (the test emits its signals, as the worker thread would)."""

    def __init__(
        self, person: PersonTag, clock: ManualClock, notifier: Notifier, *, demo: bool = False
    ) -> None:
        self.person = person
        self.clock = clock
        self.tray = TrayPresenter(force_status_window=True, clock=clock, demo=demo)

        def factory() -> ShareClient:
            raise AssertionError("the worker is not started in these tests")

        self.worker = WorkerThread(ShareWorker(factory, clock=clock, store_path=None))
        self.controller = Controller(
            clock=clock,
            tray=self.tray,
            notifier=notifier,
            worker=self.worker,
            view=ViewSettings(),
            person=person,
        )

    def urgent_low(self) -> None:
        """The first fetch succeeds with readings falling to 52 mg/dL, the newest 1 min old."""
        self.worker.worker.status_changed.emit(ConnectionStatus(LinkState.OK))
        newest = self.clock.now() - timedelta(minutes=1)
        batch = (
            Reading(newest, 52, Trend.SINGLE_DOWN),
            Reading(newest - timedelta(minutes=5), 60, Trend.SINGLE_DOWN),
        )
        self.worker.worker.readings_received.emit(batch)

    @property
    def window(self) -> StatusWindow:
        window = self.tray.status_window
        assert window is not None
        return window


class Family:
    """Two people's controllers sharing one notifier and one alarm, as the app will run them."""

    def __init__(self, sound: AlarmSound, tray: MessageTray | None = None) -> None:
        self.clock = ManualClock(NOW)
        self.sound = sound
        self.sound_changes: list[bool] = []
        sound.playing_changed.connect(self.sound_changes.append)
        # The controllers show what reaches the status window (as the session wires it).
        self.notifier = Notifier(tray=tray, status_sink=lambda _r: None, sound=sound)
        self.sam = Watched(SAM, self.clock, self.notifier)
        self.alex = Watched(ALEX, self.clock, self.notifier)

    def open_requests(self) -> dict[str | None, NotificationRequest]:
        """The open alerts by person id."""
        requests = [self.notifier.request_for(key) for key in self.notifier.open_keys]
        return {request.person: request for request in requests if request is not None}

    def stop(self) -> None:
        self.sam.controller.stop()
        self.alex.controller.stop()
        self.notifier.shutdown()


@pytest.fixture
def family(qtbot: QtBot) -> Iterator[Family]:
    with quiet_alarm() as sound:
        made = Family(sound)
        try:
            yield made
        finally:
            made.stop()


def sound_starts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.sound for r in caplog.records if getattr(r, "event", None) == "sound.started"]  # type: ignore[attr-defined]


def test_two_urgent_lows_in_one_minute_give_two_named_alerts_and_one_alarm_until_both_answered(
    family: Family, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    family.sam.urgent_low()
    family.clock.advance(timedelta(seconds=40))
    family.alex.urgent_low()

    shown = family.open_requests()
    assert set(shown) == {SAM.id, ALEX.id}
    assert shown[SAM.id].title == "Sam · Urgent low: 52 mg/dL ↓"
    assert shown[ALEX.id].title == "Alex · Urgent low: 52 mg/dL ↓"
    assert "<b>Sam · Urgent low" in family.sam.window.message
    assert "<b>Alex · Urgent low" in family.alex.window.message
    assert family.sound.current == "alarm"
    assert sound_starts(caplog) == ["alarm"]  # one alarm for both, not one each
    assert family.sound_changes == [True]

    family.sam.window.acknowledge_button.click()

    assert set(family.open_requests()) == {ALEX.id}  # Alex's alert stays open
    assert family.sam.window.message == ""
    assert "Alex · Urgent low" in family.alex.window.message
    assert family.sound.current == "alarm"  # and keeps sounding
    assert family.sound_changes == [True]

    family.alex.window.snooze_button.click()

    assert family.open_requests() == {}
    assert family.alex.window.message == ""
    assert not family.sound.playing
    assert family.sound_changes == [True, False]
    assert sound_starts(caplog) == ["alarm"]
    answers = [
        (r.event, r.person, r.kind, r.source)  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "event", None) in ("alert.acknowledged", "alert.snoozed")
    ]
    assert answers == [
        ("alert.acknowledged", SAM.id, "urgent_low", "window"),
        ("alert.snoozed", ALEX.id, "urgent_low", "window"),
    ]


def test_snoozing_one_persons_low_leaves_the_others_open_and_sounding(family: Family) -> None:
    family.sam.urgent_low()
    family.alex.urgent_low()

    family.sam.window.snooze_button.click()

    assert set(family.open_requests()) == {ALEX.id}
    assert family.sound.current == "alarm"
    assert family.sam.controller.alert_state.snoozes != ()
    assert family.alex.controller.alert_state.snoozes == ()  # the snooze is Sam's alone
    # Time passes with both still low: Sam's stays quiet, Alex's goes on.
    family.clock.advance(timedelta(minutes=10))
    family.sam.controller._on_tick_timeout()
    family.alex.controller._on_tick_timeout()
    assert set(family.open_requests()) == {ALEX.id}
    assert family.sound.current == "alarm"


def test_one_persons_low_ending_never_closes_or_silences_the_others(family: Family) -> None:
    family.sam.urgent_low()
    family.alex.urgent_low()

    family.clock.advance(timedelta(minutes=5))
    back = Reading(family.clock.now() - timedelta(minutes=1), 110, Trend.FLAT)
    family.sam.worker.worker.readings_received.emit((back,))

    assert set(family.open_requests()) == {ALEX.id}
    assert family.sam.window.message == ""
    assert family.sound.current == "alarm"


def test_a_balloon_click_answers_only_the_person_it_named(qtbot: QtBot) -> None:
    tray = MessageTray()
    with quiet_alarm() as sound:
        family = Family(sound, tray)
        try:
            family.sam.urgent_low()
            family.alex.urgent_low()
            assert [m[0] for m in tray.messages] == [
                "Sam · Urgent low: 52 mg/dL ↓",
                "Alex · Urgent low: 52 mg/dL ↓",
            ]

            tray.messageClicked.emit()  # the newest balloon: Alex's

            assert set(family.open_requests()) == {SAM.id}
            assert family.sound.current == "alarm"
        finally:
            family.stop()
            tray.deleteLater()


def test_a_named_persons_demo_alert_still_says_it_is_the_demos(qtbot: QtBot) -> None:
    clock = ManualClock(NOW)
    with quiet_alarm() as sound:
        notifier = Notifier(tray=None, status_sink=lambda _r: None, sound=sound)
        sam = Watched(SAM, clock, notifier, demo=True)
        try:
            sam.urgent_low()
            [request] = [notifier.request_for(key) for key in notifier.open_keys]
            assert request is not None
            assert request.title == "Demo: Sam · Urgent low: 52 mg/dL ↓"
        finally:
            sam.controller.stop()
            notifier.shutdown()


def test_stopping_one_persons_controller_closes_only_their_alerts(family: Family) -> None:
    family.sam.urgent_low()
    family.alex.urgent_low()

    family.sam.controller.stop()

    assert set(family.open_requests()) == {ALEX.id}
    assert family.sound.current == "alarm"
    assert family.alex.controller.snooze(AlertKind.URGENT_LOW, timedelta(minutes=30))
    assert not family.sound.playing


def test_a_name_with_markup_is_shown_as_written_in_the_status_window(qtbot: QtBot) -> None:
    clock = ManualClock(NOW)
    with quiet_alarm() as sound:
        notifier = Notifier(tray=None, status_sink=lambda _r: None, sound=sound)
        jo = Watched(PersonTag("p-jo", "<i>Jo</i> & Co"), clock, notifier)
        try:
            jo.urgent_low()
            assert jo.window.message.startswith("<b>&lt;i&gt;Jo&lt;/i&gt; &amp; Co · Urgent low")
        finally:
            jo.controller.stop()
            notifier.shutdown()
