"""Protocol traps (share-protocol.md section 9) that a person sees: the tray and the dialogs.

Trap 7 (LOW/HIGH shown as numbers), trap 9 (wrong region presented as a wrong password) and
trap 17 (asking for follower credentials), through the real worker, controller, tray presenter,
settings dialog and welcome window against the in-process fake Share, in virtual time the test
steps (tests.support.virtual_time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot
from tests.support.fake_share import PASSWORD, USER, running_fake
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import Region
from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.settings import Settings
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.first_run import WelcomeWindow
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.settings_dialog import SettingsDialog
from cgmtray.ui.sign_in_test import OutcomeKind, SignInOutcome
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0: Final = datetime(2026, 11, 21, 9, 0, 3, tzinfo=UTC)
#: A bound on a hang (real time), never a measure of speed.
WAIT_MS: Final = 60_000
#: How much virtual time the app may take to show what the fake answered.
WITHIN: Final = timedelta(minutes=5)


@pytest.fixture
def app_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app_fake(app_clock: ManualClock) -> Iterator[FakeShare]:
    with running_fake(app_clock) as server:
        yield server


class App:
    """The running app without its session: worker thread, controller, tray presenter."""

    def __init__(self, fake: FakeShare, clock: ManualClock, region: Region, unit: Unit) -> None:
        self.time = VirtualTime(clock)
        config = ClientConfig(region=region, username=USER, base_url=fake.base_url(region))
        self.notifications: list[NotificationRequest] = []
        self.tray = TrayPresenter(force_status_window=True, clock=clock)
        notifier = Notifier(
            tray=None,
            status_sink=self.notifications.append,
            sound=None,
            bus_address="unix:path=/nonexistent/cgm-tray-test-bus",
        )
        worker = ShareWorker(
            lambda: ShareClient(config, PASSWORD, clock=clock),
            clock=clock,
            store_path=None,
            timers=self.time,
        )
        self.worker = worker
        self.worker_thread = WorkerThread(worker)
        self.controller = Controller(
            clock=clock,
            tray=self.tray,
            notifier=notifier,
            worker=self.worker_thread,
            view=ViewSettings(unit=unit),
            timers=self.time,
        )

    def window_texts(self) -> list[str]:
        window = self.tray.status_window
        assert window is not None
        return [label.text() for label in window.findChildren(QLabel)]


AppFactory = Callable[..., App]


@pytest.fixture
def make_app(app_fake: FakeShare, app_clock: ManualClock) -> Iterator[AppFactory]:
    started: list[App] = []

    def start(region: Region = Region.US, unit: Unit = Unit.MGDL) -> App:
        app = App(app_fake, app_clock, region, unit)
        started.append(app)
        app.controller.start()
        app.time.wait_for_alarms_of(app.worker)
        return app

    yield start
    for app in started:
        app.controller.stop()
        # The controller waits 2 s for the worker; a busy machine may need longer: wait it out
        # (the bound only catches a hang).
        assert app.worker_thread.thread.wait(30_000)


# --- 7: LOW and HIGH shown as numbers ------------------------------------------------------------


@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize(
    ("mgdl", "word", "as_numbers"),
    [(LOW_MGDL, "LOW", ("39", "2.2")), (HIGH_MGDL, "HIGH", ("401", "22.3"))],
)
def test_trap_07_low_and_high_reach_the_tray_as_words(
    qtbot: QtBot,
    make_app: AppFactory,
    app_fake: FakeShare,
    app_clock: ManualClock,
    unit: Unit,
    mgdl: int,
    word: str,
    as_numbers: tuple[str, str],
) -> None:
    when = app_clock.now() - timedelta(minutes=2)
    app_fake.publish(Region.US, USER, Reading(when, mgdl, Trend.DOUBLE_DOWN))
    app = make_app(unit=unit)
    app.time.run_until(
        lambda: app.tray.model is not None and app.tray.model.reading is not None, within=WITHIN
    )
    model = app.tray.model
    assert model is not None
    assert model.text == word  # the badge on the icon
    status_line = next(t for t in app.window_texts() if t.startswith(word))
    for number in as_numbers:
        assert not status_line.startswith(number)
        assert number != model.text
    window = app.tray.status_window
    assert window is not None
    assert window.toolTip().startswith(word)


# --- 9: wrong region presented as "wrong password" -----------------------------------------------


def test_trap_09_the_tray_says_check_the_region_when_the_account_is_elsewhere(
    qtbot: QtBot, make_app: AppFactory, app_fake: FakeShare
) -> None:
    app = make_app(region=Region.OUS)  # a US account signed in outside the US
    app.time.run_until(
        lambda: app.tray.model is not None and app.tray.model.text == "!", within=WITHIN
    )
    model = app.tray.model
    assert model is not None
    assert "region" in model.tooltip
    assert "password" in model.tooltip
    assert "region" in model.accessible
    assert app_fake.counters.failed_sign_ins() == 1


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def manual_fake(manual_clock: ManualClock) -> Iterator[FakeShare]:
    with running_fake(manual_clock) as server:
        yield server


def _open_dialog(
    qtbot: QtBot, tmp_path: Path, fake: FakeShare, clock: ManualClock
) -> SettingsDialog:
    dialog = SettingsDialog(
        Settings(),
        settings_path=tmp_path / "settings.toml",
        password_store=MemoryCredentialStore(),
        clock=clock,
        share_urls={region: fake.base_url(region) for region in Region},
    )
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
        dialog.show()
    return dialog


def _type(edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    edit.del_()
    QTest.keyClicks(edit, text)


def test_trap_09_a_test_sign_in_in_the_wrong_region_names_the_other_regions(
    qtbot: QtBot, tmp_path: Path, manual_fake: FakeShare, manual_clock: ManualClock
) -> None:
    dialog = _open_dialog(qtbot, tmp_path, manual_fake, manual_clock)
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData(Region.JP.value))
    _type(dialog.username_edit, USER)
    _type(dialog.password_edit, PASSWORD)  # the right password, the wrong region
    with qtbot.waitSignal(dialog.test_finished, timeout=WAIT_MS) as finished:
        QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    outcome = finished.args[0]
    assert isinstance(outcome, SignInOutcome)
    assert outcome.kind is OutcomeKind.CREDENTIALS
    shown = dialog.test_message.text()
    assert "region" in shown
    assert "United States" in shown  # where the account may really be
    assert "Outside the US" in shown


# --- 17: follower credentials --------------------------------------------------------------------


def _texts(widget: QWidget) -> str:
    return "\n".join(label.text() for label in widget.findChildren(QLabel))


def test_trap_17_the_welcome_window_asks_for_the_wearers_login(qtbot: QtBot) -> None:
    window = WelcomeWindow()
    qtbot.addWidget(window)
    assert "login of the person who wears the sensor" in _texts(window)


def test_trap_17_the_settings_dialog_asks_for_the_publishers_not_a_followers_login(
    qtbot: QtBot, tmp_path: Path, manual_fake: FakeShare, manual_clock: ManualClock
) -> None:
    dialog = _open_dialog(qtbot, tmp_path, manual_fake, manual_clock)
    texts = _texts(dialog)
    assert "person who wears the sensor" in texts
    assert "not a follower's login" in texts
    assert "at least one follower" in texts  # Share must be on for the wearer
    _type(dialog.username_edit, USER)
    _type(dialog.password_edit, "the-follower-app-password")
    with qtbot.waitSignal(dialog.test_finished, timeout=WAIT_MS):
        QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert "not a follower's" in dialog.test_message.text()
