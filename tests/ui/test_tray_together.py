"""One icon for everyone: who the icon shows, everyone in the menu, each person's asks their own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu
from pytestqt.qtbot import QtBot
from tests.support.notifications import quiet_alarm
from tests.ui.test_mnemonics import mnemonic

from cgmtray.domain import display
from cgmtray.domain.alert_config import (
    AlertControl,
    AlertKind,
    AlertSettings,
    ControlAction,
    ControlSource,
)
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.display import DisplayModel
from cgmtray.domain.person_tag import PersonTag
from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.share.client import ShareClient
from cgmtray.storage.people import Person
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.icon import PersonBadge
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import MenuState, TrayPresenter
from cgmtray.ui.tray_like import TrayLike
from cgmtray.ui.tray_together import TogetherTray, TrayPort
from cgmtray.ui.worker import ShareWorker, WorkerThread

NOW = datetime(2026, 12, 4, 3, 0, 4, tzinfo=UTC)
SAM = Person(id="a1a1a1a1a1a1", name="Sam", label="S", colour="#1e88e5")
MIA = Person(id="b2b2b2b2b2b2", name="Mia", label="Mi", colour="#d81b60")
ALEX = Person(id="c3c3c3c3c3c3", name="Alex", label="A", colour="#fdd835")
FAMILY = (SAM, MIA, ALEX)


@pytest.fixture(autouse=True)
def no_session_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """No notification server: alerts go to the status window."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)


def model(
    *values: int, trend: Trend = Trend.FLAT, age: timedelta = timedelta(minutes=2)
) -> DisplayModel:
    """The display of readings 5 min apart, the newest `age` old (values oldest first)."""
    newest = NOW - age
    readings = [
        Reading(newest - timedelta(minutes=5 * (len(values) - 1 - i)), value, trend)
        for i, value in enumerate(values)
    ]
    return display.model(readings, NOW, unit=Unit.MGDL, thresholds=AlertSettings().thresholds())


def alerting(*kinds: AlertKind) -> MenuState:
    return MenuState(
        history_available=True,
        settings_available=True,
        alerts=AlertSettings(),
        connection=ConnectionStatus(LinkState.OK),
        open_alerts=kinds,
    )


class Asks:
    """Every ask each port emits, by person name."""

    def __init__(self, ports: dict[str, TrayPort]) -> None:
        self.seen: dict[str, list[object]] = defaultdict(list)
        for name, port in ports.items():
            for signal in (
                "open_history_requested",
                "refresh_requested",
                "settings_requested",
                "about_requested",
                "quit_requested",
                "sign_in_requested",
            ):
                getattr(port, signal).connect(
                    lambda *_args, n=name, s=signal: self.seen[n].append(s)
                )
            port.control_requested.connect(lambda control, n=name: self.seen[n].append(control))

    def of(self, name: str) -> list[object]:
        return self.seen.get(name, [])

    def everyone(self) -> dict[str, list[object]]:
        return {name: asks for name, asks in self.seen.items() if asks}


@pytest.fixture
def together(qtbot: QtBot) -> Iterator[TogetherTray]:
    tray = TogetherTray(force_status_window=True, clock=ManualClock(NOW))
    try:
        yield tray
    finally:
        tray.shutdown()
        tray.deleteLater()


def three(together: TogetherTray) -> dict[str, TrayPort]:
    """Sam high, Mia and Alex in range; everyone's menu state without alerts."""
    ports = {person.name: together.port_for(person) for person in FAMILY}
    ports["Sam"].show_model(model(240, 252, 262, trend=Trend.FORTY_FIVE_UP))
    ports["Mia"].show_model(model(120, 118, 117))
    ports["Alex"].show_model(model(101, 99, 98, trend=Trend.FORTY_FIVE_DOWN))
    for port in ports.values():
        port.set_menu_state(alerting())
    return ports


def opened(menu: QMenu) -> list[QAction]:
    """The menu's items as a person sees them when it opens."""
    menu.aboutToShow.emit()
    return [action for action in menu.actions() if not action.isSeparator()]


def person_menus(together: TogetherTray) -> list[QMenu]:
    return [sub for action in opened(together.menu) if isinstance(sub := action.menu(), QMenu)]


def item(menu: QMenu, text: str) -> QAction:
    """The item whose text, without its mnemonic, is `text`, or else starts with it."""
    texts = [(a, a.text().replace("&", "")) for a in menu.actions()]
    found = [a for a, shown in texts if shown == text] or [
        a for a, shown in texts if shown.startswith(text)
    ]
    assert len(found) == 1, [a.text() for a in menu.actions()]
    return found[0]


def submenu(menu: QMenu, text: str) -> QMenu:
    sub = item(menu, text).menu()
    assert isinstance(sub, QMenu)
    return sub


# --- the icon follows the person who needs attention first ---------------------------------


def test_an_urgent_low_of_the_third_person_beats_a_high_of_the_first(
    together: TogetherTray,
) -> None:
    ports = three(together)
    ports["Sam"].set_menu_state(alerting(AlertKind.HIGH))
    assert together.shown is ports["Sam"]
    assert together.badge == PersonBadge("S", SAM.colour)

    ports["Alex"].show_model(model(70, 60, 52, trend=Trend.SINGLE_DOWN))
    ports["Alex"].set_menu_state(alerting(AlertKind.URGENT_LOW))

    assert together.shown is ports["Alex"]
    assert together.badge == PersonBadge("A", ALEX.colour)
    shown = together.model
    assert shown is not None
    assert shown.text == "52"
    assert shown.range is GlucoseRange.URGENT_LOW
    window = together.status_window
    assert window is not None
    assert window.toolTip().splitlines() == [
        "Sam · 262 mg/dL ↗ rising slightly · +10 · 2 min ago",
        "Mia · 117 mg/dL → steady · -1 · 2 min ago",
        "Alex · 52 mg/dL ↓ falling · -8 · 2 min ago",
    ]

    # Alex's low ends: the icon goes back to Sam's high.
    ports["Alex"].show_model(model(60, 70, 80, trend=Trend.SINGLE_UP))
    ports["Alex"].set_menu_state(alerting())
    assert together.shown is ports["Sam"]


def test_ties_keep_the_list_order_and_everyone_fine_shows_the_first(
    together: TogetherTray,
) -> None:
    ports = three(together)
    assert together.shown is ports["Sam"]  # a high value but no alert: fine

    ports["Alex"].set_menu_state(alerting(AlertKind.HIGH))
    ports["Mia"].set_menu_state(alerting(AlertKind.LOW))
    assert together.shown is ports["Mia"]  # both alert, Mia comes first in the list

    ports["Sam"].set_menu_state(alerting(AlertKind.RISING_FAST))
    assert together.shown is ports["Sam"]

    for port in ports.values():
        port.set_menu_state(alerting())
    ports["Alex"].show_model(model(101, 99, 98, age=timedelta(minutes=12)))  # stale
    assert together.shown is ports["Alex"]  # no current reading beats fine

    ports["Alex"].show_model(model(101, 99, 98))
    assert together.shown is ports["Sam"]


def test_a_single_person_has_no_label_on_the_badge(together: TogetherTray) -> None:
    port = together.port_for(SAM)
    port.show_model(model(120, 118, 117))
    assert together.shown is port
    assert together.badge is None
    shown = together.model
    assert shown is not None
    assert shown.tooltip == "117 mg/dL → steady · -1 · 2 min ago"  # as a single person's today


# --- the menu ---------------------------------------------------------------------------------


def test_the_menu_lists_everyone_with_their_values_then_the_app_once(
    together: TogetherTray,
) -> None:
    three(together)
    texts = [action.text() for action in opened(together.menu)]
    assert texts == [
        "&1 Sam · 262 mg/dL ↗ rising slightly · +10 · 2 min ago",
        "&2 Mia · 117 mg/dL → steady · -1 · 2 min ago",
        "&3 Alex · 98 mg/dL ↘ falling slightly · -1 · 2 min ago",
        "S&ettings…",
        "A&dd a person…",
        "&About",
        "&Quit",
    ]
    lines = opened(together.menu)[:3]
    assert all(not line.icon().isNull() for line in lines)  # each with their labelled badge
    assert lines[0].font().bold()  # whom the icon shows
    assert not lines[1].font().bold()
    for sub in person_menus(together):
        names = [a.text() for a in sub.actions() if not a.isSeparator()]
        assert names[1:] == ["Open &history…", "&Refresh now", "&Snooze alerts"]


def test_every_menu_level_has_unique_mnemonics(together: TogetherTray) -> None:
    ports = three(together)
    ports["Mia"].set_menu_state(
        MenuState(
            history_available=True,
            settings_available=True,
            snoozed_until={AlertKind.LOW: NOW + timedelta(minutes=20)},
        )
    )

    def walk(menu: QMenu, where: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
        menu.aboutToShow.emit()
        taken: dict[str, list[str]] = defaultdict(list)
        for action in menu.actions():
            letter = mnemonic(action.text())
            if letter is not None:
                taken[letter].append(action.text())
            sub = action.menu()
            if isinstance(sub, QMenu):
                yield from walk(sub, f"{where} > {action.text()}")
        yield where, {k: v for k, v in taken.items() if len(v) > 1}

    levels = list(walk(together.menu, "menu"))
    assert len(levels) > 3 * 3  # every person's submenu and their snooze menus were walked
    assert [(where, clash) for where, clash in levels if clash] == []


def test_each_persons_items_reach_only_their_port(together: TogetherTray) -> None:
    ports = three(together)
    asks = Asks(ports)
    sam, mia, alex = person_menus(together)

    item(mia, "Refresh now").trigger()
    assert asks.everyone() == {"Mia": ["refresh_requested"]}

    item(alex, "Open history").trigger()
    assert asks.of("Alex") == ["open_history_requested"]

    snooze = submenu(submenu(sam, "Snooze alerts"), "High")
    item(snooze, "1 h").trigger()
    assert asks.of("Sam") == [
        AlertControl(
            ControlAction.SNOOZE, (AlertKind.HIGH,), ControlSource.MENU, timedelta(hours=1)
        )
    ]
    status = next(a for a in alex.actions() if a.objectName() == "status-line")
    status.trigger()  # the status line opens their history too
    assert asks.everyone() == {
        "Mia": ["refresh_requested"],
        "Alex": ["open_history_requested", "open_history_requested"],
        "Sam": [
            AlertControl(
                ControlAction.SNOOZE, (AlertKind.HIGH,), ControlSource.MENU, timedelta(hours=1)
            )
        ],
    }


def test_settings_about_and_quit_ask_once_and_add_a_person_asks_the_tray(
    together: TogetherTray,
) -> None:
    ports = three(together)
    asks = Asks(ports)
    added: list[bool] = []
    together.add_person_requested.connect(lambda: added.append(True))
    items = opened(together.menu)
    for text in ("Settings", "Add a person", "About", "Quit"):
        item(together.menu, text).trigger()
    assert len(items) == 7
    assert asks.everyone() == {"Sam": ["settings_requested", "about_requested", "quit_requested"]}
    assert added == [True]


def test_the_status_window_shows_the_most_urgent_alert_and_answers_for_that_person(
    together: TogetherTray,
) -> None:
    ports = three(together)
    asks = Asks(ports)
    window = together.status_window
    assert window is not None
    cap = timedelta(minutes=30)
    ports["Sam"].show_status_alert(AlertKind.HIGH, "Sam · High: 262 mg/dL", "High.", cap)
    ports["Alex"].show_status_alert(AlertKind.URGENT_LOW, "Alex · Urgent low: 52", "Eat.", cap)
    assert "Alex · Urgent low" in window.message

    window.snooze_button.click()
    assert asks.everyone() == {
        "Alex": [
            AlertControl(
                ControlAction.SNOOZE,
                (AlertKind.URGENT_LOW,),
                ControlSource.WINDOW,
                timedelta(minutes=30),
            )
        ]
    }
    ports["Alex"].clear_status_alert(AlertKind.URGENT_LOW)
    assert "Sam · High" in window.message
    window.acknowledge_button.click()
    assert asks.of("Sam") == [
        AlertControl(ControlAction.ACKNOWLEDGE, (AlertKind.HIGH,), ControlSource.WINDOW)
    ]
    ports["Sam"].clear_status_alert(AlertKind.HIGH)
    assert window.message == ""


def test_a_stopped_person_leaves_the_menu_and_the_icon(
    together: TogetherTray, qtbot: QtBot
) -> None:
    ports = three(together)
    ports["Mia"].set_menu_state(alerting(AlertKind.LOW))
    assert together.shown is ports["Mia"]
    ports["Mia"].shutdown()
    assert together.shown is ports["Sam"]
    assert [a.text().split(" · ")[0] for a in opened(together.menu)][:2] == ["&1 Sam", "&2 Alex"]
    window = together.status_window
    assert window is not None
    assert window.isVisible()
    ports["Sam"].shutdown()
    ports["Alex"].shutdown()
    # Everyone stopped: the icon (here its window) goes.
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)


def test_people_restarted_keep_the_icon_and_arrange_follows_the_list(
    together: TogetherTray, qtbot: QtBot
) -> None:
    ports = three(together)
    for port in ports.values():
        port.shutdown()
    # The runtime starts everyone again before the event loop turns: the icon stays.
    again = {person.name: together.port_for(person) for person in FAMILY}
    assert all(again[name] is not ports[name] for name in again)
    window = together.status_window
    assert window is not None
    # The queued "everyone stopped" call runs: the event loop turns (nothing is timed).
    QCoreApplication.sendPostedEvents()
    QCoreApplication.processEvents()
    assert window.isVisible()

    renamed = replace(MIA, name="Mia Rose", label="MR")
    together.arrange((renamed, ALEX, SAM))
    again["Sam"].show_model(model(120, 118, 117))
    again["Mia"].show_model(model(120, 118, 117))
    again["Alex"].show_model(model(120, 118, 117))
    assert together.shown is again["Mia"]  # everyone fine: the first in the new order
    assert together.badge == PersonBadge("MR", MIA.colour)
    names = [a.text().split(" · ")[0] for a in opened(together.menu)][:3]
    assert names == ["&1 Mia Rose", "&2 Alex", "&3 Sam"]


def test_a_port_and_a_presenter_are_both_what_a_controller_takes(together: TogetherTray) -> None:
    trays: list[TrayLike] = [together.port_for(SAM), TrayPresenter(force_status_window=True)]
    assert [tray.demo for tray in trays] == [False, False]
    for tray in trays:
        tray.shutdown()


# --- real Controllers -------------------------------------------------------------------------


class Watched:
    """A person's real Controller on their port; its worker is never started (the test emits
    its signals, as the worker thread would)."""

    def __init__(self, person: Person, port: TrayPort, clock: ManualClock, notifier: Notifier):
        self.clock = clock
        self.port = port

        def factory() -> ShareClient:
            raise AssertionError("the worker is not started in these tests")

        self.worker = WorkerThread(ShareWorker(factory, clock=clock, store_path=None))
        self.controller = Controller(
            clock=clock,
            tray=port,
            notifier=notifier,
            worker=self.worker,
            view=ViewSettings(),
            person=PersonTag(person.id, person.name),
        )

    def readings(self, *values: int, trend: Trend) -> None:
        """A fetch brings `values` (oldest first), the newest 1 min old."""
        self.worker.worker.status_changed.emit(ConnectionStatus(LinkState.OK))
        newest = self.clock.now() - timedelta(minutes=1)
        batch = tuple(
            Reading(newest - timedelta(minutes=5 * (len(values) - 1 - i)), value, trend)
            for i, value in enumerate(values)
        )
        self.worker.worker.readings_received.emit(batch)


class Family:
    """Three people's Controllers on one TogetherTray, one notifier and one alarm."""

    def __init__(self, sound: AlarmSound) -> None:
        self.clock = ManualClock(NOW)
        self.sound = sound
        self.tray = TogetherTray(force_status_window=True, clock=self.clock)
        self.notifier = Notifier(tray=None, status_sink=lambda _r: None, sound=sound)
        self.people = {
            p.name: Watched(p, self.tray.port_for(p), self.clock, self.notifier) for p in FAMILY
        }

    def open_requests(self) -> dict[str | None, NotificationRequest]:
        requests = [self.notifier.request_for(key) for key in self.notifier.open_keys]
        return {request.person: request for request in requests if request is not None}

    def stop(self) -> None:
        for watched in self.people.values():
            watched.controller.stop()
        self.notifier.shutdown()
        self.tray.shutdown()
        self.tray.deleteLater()


@pytest.fixture
def family(qtbot: QtBot) -> Iterator[Family]:
    with quiet_alarm() as sound:
        made = Family(sound)
        try:
            yield made
        finally:
            made.stop()


def test_real_controllers_move_the_icon_and_a_menu_snooze_silences_only_that_person(
    family: Family,
) -> None:
    sam, mia, alex = (family.people[name] for name in ("Sam", "Mia", "Alex"))
    sam.readings(118, 120, 122, trend=Trend.FLAT)
    mia.readings(110, 108, 107, trend=Trend.FLAT)
    alex.readings(100, 99, 98, trend=Trend.FLAT)
    assert family.tray.shown is sam.port  # everyone fine: the first

    alex.readings(70, 60, 52, trend=Trend.SINGLE_DOWN)
    assert family.tray.shown is alex.port  # Alex's urgent low, from his Controller
    assert family.tray.badge == PersonBadge("A", ALEX.colour)
    mia.readings(70, 61, 53, trend=Trend.SINGLE_DOWN)
    assert set(family.open_requests()) == {ALEX.id, MIA.id}
    assert family.sound.current == "alarm"
    assert family.tray.shown is mia.port  # both urgent: Mia is higher in the list

    # Mia's submenu > Snooze alerts > Urgent low > 30 min.
    mias = person_menus(family.tray)[1]
    snooze = submenu(submenu(mias, "Snooze alerts"), "Urgent low")
    item(snooze, "30 min").trigger()

    assert set(family.open_requests()) == {ALEX.id}  # Alex's alert stays open
    assert family.sound.current == "alarm"  # and keeps sounding
    assert alex.controller.alert_state.snoozes == ()
    assert [kind for kind, _until in mia.controller.alert_state.snoozes] == [AlertKind.URGENT_LOW]
    window = family.tray.status_window
    assert window is not None
    assert "Alex · Urgent low" in window.message

    # Alex's own Snooze, from his submenu this time: the alarm stops.
    alexs = person_menus(family.tray)[2]
    item(submenu(submenu(alexs, "Snooze alerts"), "Urgent low"), "30 min").trigger()
    assert family.open_requests() == {}
    assert not family.sound.playing


def test_a_name_with_markup_and_an_ampersand_is_shown_as_written(together: TogetherTray) -> None:
    odd = replace(SAM, name="<b>Sam</b> & Co")
    together.port_for(odd).show_model(model(120, 118, 117))
    together.port_for(MIA).show_model(model(120, 118, 117))
    assert opened(together.menu)[0].text().startswith("&1 <b>Sam</b> && Co · 117 mg/dL")
    window = together.status_window
    assert window is not None
    line = next(label for label in window.findChildren(QLabel) if "117 mg/dL" in label.text())
    assert line.text().startswith("<b>Sam</b> & Co · 117 mg/dL")
    assert line.textFormat() is Qt.TextFormat.PlainText
