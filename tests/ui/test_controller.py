"""Controller wiring: readings reach the tray, alerts the notifier, asks the worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtGui import QFontMetrics
from PySide6.QtNetwork import QNetworkInformation
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from tests.support.virtual_time import VirtualTime

from cgmtray.domain import alerts
from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.display import Severity
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.share.client import ShareClient
from cgmtray.ui.controller import TICK_MS, Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.timers import REAL_TIMERS, Timers
from cgmtray.ui.tray import MENU_LINE_CHARS, WRAP_SLACK, TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

NOW = datetime(2026, 11, 21, 15, 0, 4, tzinfo=UTC)


class Rig:
    """A controller with a real tray presenter and notifier, and a worker that is never started
    (its signals are emitted by the test, as the worker thread would)."""

    def __init__(
        self,
        unit: Unit = Unit.MGDL,
        *,
        clock: ManualClock | None = None,
        timers: Timers = REAL_TIMERS,
    ) -> None:
        self.clock = clock if clock is not None else ManualClock(NOW)
        self.shown: list[NotificationRequest] = []
        self.tray = TrayPresenter(force_status_window=True, clock=self.clock)
        self.notifier = Notifier(
            tray=None,
            status_sink=self.shown.append,
            sound=None,
            bus_address="unix:path=/nonexistent/cgm-tray-test-bus",
        )

        def factory() -> ShareClient:
            raise AssertionError("the worker is not started in these tests")

        self.worker = WorkerThread(ShareWorker(factory, clock=self.clock, store_path=None))
        self.controller = Controller(
            clock=self.clock,
            tray=self.tray,
            notifier=self.notifier,
            worker=self.worker,
            view=ViewSettings(unit=unit),
            timers=timers,
        )

    def readings(self, *values: int, trend: Trend = Trend.FLAT) -> None:
        """Readings 5 minutes apart, the newest 1 minute old, as the worker would deliver them."""
        newest = NOW - timedelta(minutes=1)
        batch = tuple(
            Reading(newest - timedelta(minutes=5 * i), value, trend)
            for i, value in enumerate(reversed(values))
        )
        self.worker.worker.readings_received.emit(batch)

    def status(self, state: LinkState = LinkState.OK) -> None:
        self.worker.worker.status_changed.emit(ConnectionStatus(state))


@pytest.fixture
def rig(qtbot: QtBot) -> Iterator[Rig]:
    made = Rig()
    yield made
    made.controller.stop()


def test_readings_reach_the_tray(rig: Rig) -> None:
    rig.readings(138, 142)
    model = rig.tray.model
    assert model is not None
    assert model.text == "142"
    assert model.severity is Severity.IN_RANGE
    assert "+4" in model.tooltip


def test_no_alert_from_stored_history_before_the_first_fetch(rig: Rig, qtbot: QtBot) -> None:
    rig.readings(50)
    with qtbot.assertNotEmitted(rig.controller.decisions_made, wait=200):
        rig.controller._on_tick_timeout()
    assert rig.shown == []


def test_an_urgent_low_reaches_the_notifier_as_urgent(rig: Rig, qtbot: QtBot) -> None:
    rig.status(LinkState.OK)
    rig.readings(60, 52)
    qtbot.waitUntil(lambda: bool(rig.shown), timeout=60_000)
    request = rig.shown[0]
    assert request.kind == "urgent_low"
    assert request.urgent
    assert request.sound == "alarm"
    assert "52 mg/dL" in request.title


def test_alerts_speak_the_chosen_unit(qtbot: QtBot) -> None:
    rig = Rig(unit=Unit.MMOL)
    try:
        rig.status(LinkState.OK)
        rig.readings(60, 52)
        qtbot.waitUntil(lambda: bool(rig.shown), timeout=60_000)
        assert "2.9 mmol/L" in rig.shown[0].title
        assert "mg/dL" not in rig.shown[0].title + rig.shown[0].body
    finally:
        rig.controller.stop()


def test_snooze_from_the_menu_is_capped_for_urgent_low(rig: Rig) -> None:
    rig.status(LinkState.OK)
    rig.readings(52)
    granted = rig.controller.snooze(AlertKind.URGENT_LOW, timedelta(minutes=120))
    assert granted == timedelta(minutes=30)

    until = alerts.snoozed_until(rig.controller.alert_state, AlertKind.URGENT_LOW)
    assert until == NOW + timedelta(minutes=30)


def test_refresh_asks_the_worker(rig: Rig, qtbot: QtBot) -> None:
    with qtbot.waitSignal(rig.worker.bridge.poll_requested, timeout=60_000):
        rig.tray.refresh_requested.emit()


def _menu_line(tray: TrayPresenter, name: str) -> str | None:
    """The words of a named menu line as the menu shows them when opened (the items it wraps
    into, joined), None if absent."""
    tray.menu.aboutToShow.emit()
    found = [action.text() for action in tray.menu.actions() if action.objectName() == name]
    return " ".join(found) if found else None


def test_the_menu_says_when_the_next_check_is_after_a_refresh(rig: Rig) -> None:
    assert _menu_line(rig.tray, "next-check") is None  # nothing planned while starting
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(LinkState.OK, next_poll=NOW + timedelta(seconds=20))
    )
    assert _menu_line(rig.tray, "next-check") == "Next check in 20 s"
    rig.clock.advance(timedelta(seconds=19))
    assert _menu_line(rig.tray, "next-check") == "Checking now…"


def test_the_menu_says_checks_wait_for_the_person_after_a_rejection(rig: Rig) -> None:
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(LinkState.SIGN_IN_REJECTED, failure=FailureClass.CREDENTIALS)
    )
    line = _menu_line(rig.tray, "next-check")
    # Refresh now cannot help a rejected password (the sign-in gate refuses it): say what does.
    assert line == "Dexcom rejected the password: change it in Settings"


def test_the_menu_says_until_when_a_lock_holds(rig: Rig) -> None:
    until = rig.clock.now() + timedelta(minutes=48)
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(LinkState.LOCKED, failure=FailureClass.LOCKED, sign_in_after=until)
    )
    line = _menu_line(rig.tray, "next-check")
    local = until.astimezone().strftime("%H:%M")
    assert line == f"Dexcom locked the account: try again after {local} (in 48 min)"


def test_the_status_line_leaves_a_lock_to_the_line_under_it(rig: Rig) -> None:
    """Share's long lock message made the bold line (and the menu) a screen wide; the line under
    it already says the account is locked and until when. The tooltip keeps the whole message."""
    rig.readings(128)
    message = "Dexcom has locked the account after too many sign-in attempts. Wait an hour."
    until = rig.clock.now() + timedelta(minutes=48)
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(
            LinkState.LOCKED, message=message, failure=FailureClass.LOCKED, sign_in_after=until
        )
    )
    line = _menu_line(rig.tray, "status-line")
    assert line is not None
    assert line.startswith("128 mg/dL")
    assert "locked" not in line
    assert (_menu_line(rig.tray, "next-check") or "").startswith("Dexcom locked the account")
    model = rig.tray.model
    assert model is not None
    assert message in model.tooltip


def test_a_long_error_wraps_the_status_line_instead_of_widening_the_menu(
    rig: Rig, qtbot: QtBot
) -> None:
    """A new user's error made the menu as wide as the screen: the bold line now wraps at word
    boundaries near MENU_LINE_CHARS characters, and every word of it is still there."""
    rig.readings(128)
    message = (
        "Can't reach Dexcom: the connection to share2.dexcom.com timed out after 20 seconds "
        "while the computer reported being online; check a proxy or firewall"
    )
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(LinkState.UNREACHABLE, message=message, failure=FailureClass.TRANSIENT)
    )
    rig.tray.menu.aboutToShow.emit()
    items = [a for a in rig.tray.menu.actions() if a.objectName() == "status-line"]
    lines = [item.text() for item in items]
    assert len(lines) >= 3, lines
    assert all(item.isEnabled() and item.font().bold() for item in items)  # one look
    assert lines[0].startswith("128 mg/dL")
    assert lines[1].startswith("Can't reach Dexcom")  # the problem starts a line of its own
    model = rig.tray.model
    assert model is not None
    assert message in model.status_line
    # Every word, in order; a break takes the place of a " · " separator.
    assert " ".join(lines).replace(" · ", " ") == model.status_line.replace(" · ", " ")
    assert not any(line.startswith("·") or line.endswith("·") for line in lines), lines
    metrics = QFontMetrics(items[0].font())
    limit = QFontMetrics(rig.tray.menu.font()).averageCharWidth() * MENU_LINE_CHARS
    limit = round(limit * (1 + WRAP_SLACK))  # a short last word may stretch its line
    assert all(metrics.horizontalAdvance(line) <= limit for line in lines), lines
    rig.tray.menu.ensurePolished()
    assert rig.tray.menu.sizeHint().width() < limit + 120  # the menu is as wide as its lines
    with qtbot.waitSignal(rig.tray.open_history_requested, timeout=30000):
        items[-1].trigger()  # any line of it opens the history, as the one line did


def test_an_ampersand_in_a_status_message_is_shown_not_taken_as_a_shortcut(rig: Rig) -> None:
    rig.readings(128)
    message = "Can't reach Dexcom: the proxy of R&D refused the connection"
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(LinkState.UNREACHABLE, message=message, failure=FailureClass.TRANSIENT)
    )
    rig.tray.menu.aboutToShow.emit()
    shown = " ".join(
        a.iconText() for a in rig.tray.menu.actions() if a.objectName() == "status-line"
    )
    assert "R&D" in shown  # Qt shows "&&" as "&"; a lone "&" would underline the D instead


def test_network_back_online_polls_at_once(rig: Rig, qtbot: QtBot) -> None:
    with qtbot.waitSignal(rig.worker.bridge.resume_requested, timeout=60_000):
        rig.controller._on_network_reachability_changed(QNetworkInformation.Reachability.Online)
    with qtbot.assertNotEmitted(rig.worker.bridge.resume_requested):
        rig.controller._on_network_reachability_changed(
            QNetworkInformation.Reachability.Disconnected
        )


def test_a_sign_in_problem_shows_on_the_icon_without_data(rig: Rig) -> None:
    rig.worker.worker.status_changed.emit(
        ConnectionStatus(
            LinkState.SIGN_IN_REJECTED,
            message="Dexcom did not accept the password.",
            failure=FailureClass.CREDENTIALS,
        )
    )
    model = rig.tray.model
    assert model is not None
    assert model.severity is Severity.ERROR
    assert "password" in model.tooltip


def test_a_reading_a_year_ahead_neither_shows_nor_hides_an_urgent_low(
    rig: Rig, qtbot: QtBot
) -> None:
    """The held window is anchored on now, not on the newest reading: a far-future reading cannot
    push the real ones out, and is never taken for the current value."""
    rig.status(LinkState.OK)
    ahead = Reading(NOW + timedelta(days=365), 250, Trend.FLAT)
    rig.worker.worker.readings_received.emit((ahead,))
    rig.readings(60, 45)
    qtbot.waitUntil(lambda: bool(rig.shown), timeout=60_000)
    assert rig.shown[0].kind == "urgent_low"
    model = rig.tray.model
    assert model is not None
    assert model.text == "45"


def test_readings_older_than_the_window_are_forgotten_as_time_passes(rig: Rig) -> None:
    rig.status(LinkState.OK)
    rig.readings(120)
    rig.clock.advance(timedelta(hours=3, minutes=1))
    rig.controller._on_tick_timeout()
    assert rig.controller.recent == ()
    model = rig.tray.model
    assert model is not None
    assert model.reading is None


def _submenu(menu: QMenu, name: str) -> QMenu:
    menu.aboutToShow.emit()
    [sub] = [a.menu() for a in menu.actions() if a.menu() and a.menu().objectName() == name]
    assert isinstance(sub, QMenu)
    return sub


def _texts(menu: QMenu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_the_snooze_menu_offers_all_non_urgent_each_kind_and_only_what_is_granted(
    rig: Rig,
) -> None:
    snooze = _submenu(rig.tray.menu, "snooze-menu")
    assert _texts(snooze) == [
        "Snooze all &non-urgent",
        "Urgent low",
        "Urgent low soon",
        "Low",
        "High",
        "Falling fast",
        "No data",
        "Sign-in problem",
    ]
    assert _texts(_submenu(snooze, "snooze-urgent_low")) == ["30 min"]  # its cap
    assert _texts(_submenu(snooze, "snooze-low")) == ["30 min", "1 h", "2 h", "4 h"]
    assert _texts(_submenu(snooze, "snooze-non-urgent")) == ["30 min", "1 h", "2 h", "4 h"]


def test_snooze_all_non_urgent_snoozes_every_kind_but_the_urgent_ones(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    snooze = _submenu(rig.tray.menu, "snooze-menu")
    [two_hours] = [a for a in _submenu(snooze, "snooze-non-urgent").actions() if a.text() == "2 h"]
    two_hours.trigger()

    state = rig.controller.alert_state
    snoozed = {kind for kind in AlertKind if alerts.snoozed_until(state, kind) is not None}
    assert snoozed == {
        AlertKind.LOW,
        AlertKind.HIGH,
        AlertKind.FALLING_FAST,
        AlertKind.NO_DATA,
        AlertKind.SIGN_IN_PROBLEM,
    }  # the enabled non-urgent kinds; urgent low, urgent low soon, urgent high keep alerting
    logged = [r for r in caplog.records if getattr(r, "event", None) == "alert.snoozed"]
    assert {(r.kind, r.minutes, r.source) for r in logged} == {  # type: ignore[attr-defined]
        (kind.value, 120, "menu") for kind in snoozed
    }
    until = (NOW + timedelta(hours=2)).astimezone().strftime("%H:%M")
    texts = _texts(_submenu(rig.tray.menu, "snooze-menu"))
    assert f"Low — snoozed until {until}" in texts
    assert "Urgent low" in texts
    assert "Cancel snooze: Low" in texts

    snooze = _submenu(rig.tray.menu, "snooze-menu")
    [cancel_all] = [a for a in snooze.actions() if a.objectName() == "cancel-all-snoozes"]
    assert cancel_all.text() == "&Cancel all snoozes"
    cancel_all.trigger()
    state = rig.controller.alert_state
    assert all(alerts.snoozed_until(state, kind) is None for kind in AlertKind)
    assert not any(t.startswith("Cancel") for t in _texts(_submenu(rig.tray.menu, "snooze-menu")))


def test_an_ended_snooze_leaves_the_menu_without_a_time(rig: Rig) -> None:
    rig.controller.snooze(AlertKind.LOW, timedelta(minutes=30))
    rig.clock.advance(timedelta(minutes=31))
    texts = _texts(_submenu(rig.tray.menu, "snooze-menu"))
    assert "Low" in texts
    assert not any("snoozed" in t or t.startswith("Cancel") for t in texts)


def test_settings_turning_a_kind_off_goes_through_the_control_path(
    rig: Rig, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig.status(LinkState.OK)
    rig.readings(72, 65)
    qtbot.waitUntil(lambda: any(r.kind == "low" for r in rig.shown), timeout=60_000)
    window = rig.tray.status_window
    assert window is not None
    assert "Low" in window.message

    off = AlertSettings().with_kind(
        AlertKind.LOW, replace(AlertSettings()[AlertKind.LOW], enabled=False)
    )
    rig.controller.apply_view(ViewSettings(alerts=off))

    assert rig.notifier.open_keys == ()
    assert window.message == ""
    assert AlertKind.LOW not in alerts.active_alerts(rig.controller.alert_state)
    [logged] = [r for r in caplog.records if getattr(r, "event", None) == "alert.turned_off"]
    assert (logged.kind, logged.source) == ("low", "settings")  # type: ignore[attr-defined]
    assert "Low" not in _texts(_submenu(rig.tray.menu, "snooze-menu"))


def test_a_low_repeats_at_the_first_evaluation_after_its_repeat_interval(qtbot: QtBot) -> None:
    """The tick in virtual time the test steps: exact, whatever the machine's speed (the e2e run
    of the real app shows the repeat comes and is never early)."""
    clock = ManualClock(NOW)
    vt = VirtualTime(clock)
    rig = Rig(clock=clock, timers=vt)
    decided: list[alerts.AlertDecision] = []
    rig.controller.decisions_made.connect(decided.extend)
    try:
        rig.status(LinkState.OK)
        rig.controller._tick.start(TICK_MS)  # what start() does, without a worker thread
        # A low reading at once, then every 5 minutes from 4:10 on (each 1 minute old): none
        # arrives at 15:00, so only the tick can evaluate the repeat on time.
        for after in (timedelta(minutes=4, seconds=10), *[timedelta(minutes=5)] * 4):
            reading = Reading(clock.now() - timedelta(minutes=1), 65, Trend.FLAT)
            rig.worker.worker.readings_received.emit((reading,))
            vt.advance(after)
    finally:
        rig.controller.stop()
    lows = [d for d in decided if d.kind is AlertKind.LOW]
    actions = [d.action for d in lows if d.action is not alerts.DecisionAction.UPDATE]
    assert actions[:2] == [alerts.DecisionAction.RAISE, alerts.DecisionAction.REPEAT]
    raised, repeated = (d for d in lows if d.action is not alerts.DecisionAction.UPDATE)
    repeat = AlertSettings()[AlertKind.LOW].repeat
    assert repeat is not None
    gap = repeated.at - raised.at
    assert repeat <= gap <= repeat + timedelta(milliseconds=TICK_MS)
