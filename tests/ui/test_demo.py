"""The demo says it is one (tooltip, menu, status window, notifications), and its menu's "Sign in
with your own account…" switches the running app to the person's account without quitting."""

from __future__ import annotations

import argparse
import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from tests.support.dialogs import type_into, visible_settings_dialog
from tests.support.fake_share import PASSWORD, USER, running_fake

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ShareClient
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.ui import session as session_module
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.session import AppSession
from cgmtray.ui.settings_dialog import SettingsDialog
from cgmtray.ui.tray import DEMO_LINE, TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
#: Bounds a hang only: generous for a busy machine.
WAIT_MS = 30_000


def _menu_actions(tray: TrayPresenter) -> dict[str, QAction]:
    """The menu as it is when the person opens it, by object name (first of each)."""
    tray.menu.aboutToShow.emit()
    found: dict[str, QAction] = {}
    for action in tray.menu.actions():
        found.setdefault(action.objectName(), action)
    return found


def _menu_texts(tray: TrayPresenter) -> list[str]:
    tray.menu.aboutToShow.emit()
    return [a.text() for a in tray.menu.actions() if not a.isSeparator()]


# --- the labels ---------------------------------------------------------------------------------


@pytest.fixture
def demo_rig(qtbot: QtBot) -> Iterator[tuple[Controller, TrayPresenter, list[NotificationRequest]]]:
    """A controller showing the demo: a real tray presenter (status window) and notifier, and a
    worker never started (the test emits what it would deliver)."""
    clock = ManualClock(T0)
    shown: list[NotificationRequest] = []
    tray = TrayPresenter(force_status_window=True, clock=clock, demo=True)
    notifier = Notifier(
        tray=None,
        status_sink=shown.append,
        sound=None,
        bus_address="unix:path=/nonexistent/cgm-tray-test-bus",
    )

    def factory() -> ShareClient:
        raise AssertionError("the worker is not started in these tests")

    worker = WorkerThread(ShareWorker(factory, clock=clock, store_path=None))
    controller = Controller(
        clock=clock, tray=tray, notifier=notifier, worker=worker, view=ViewSettings()
    )
    yield controller, tray, shown
    controller.stop()


def test_the_demo_says_so_in_the_tooltip_the_menu_and_the_status_window(
    demo_rig: tuple[Controller, TrayPresenter, list[NotificationRequest]],
) -> None:
    _controller, tray, _shown = demo_rig
    reading = Reading(T0 - timedelta(minutes=1), 142, Trend.FLAT)
    _controller._worker.worker.readings_received.emit((reading,))
    model = tray.model
    assert model is not None
    assert tray.tooltip_of(model).splitlines()[0] == DEMO_LINE
    assert "142 mg/dL" in tray.tooltip_of(model)
    texts = _menu_texts(tray)
    actions = _menu_actions(tray)
    assert texts[0] == DEMO_LINE  # the first line, before the reading
    assert not actions["demo-line"].isEnabled()  # a label, not a command
    assert texts[1].startswith("142 mg/dL")
    assert "Sign &in with your own account…" in texts
    window = tray.status_window
    assert window is not None
    assert DEMO_LINE in window.toolTip()
    assert "demo" in window.windowTitle()


def test_a_demo_alert_says_it_is_the_demos(
    demo_rig: tuple[Controller, TrayPresenter, list[NotificationRequest]], qtbot: QtBot
) -> None:
    controller, _tray, shown = demo_rig
    worker = controller._worker.worker
    worker.status_changed.emit(ConnectionStatus(LinkState.OK))
    readings = (
        Reading(T0 - timedelta(minutes=1), 52, Trend.FLAT),
        Reading(T0 - timedelta(minutes=6), 60, Trend.FLAT),
    )
    worker.readings_received.emit(readings)
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
    assert shown[0].title.startswith("Demo: Urgent low")
    assert "52 mg/dL" in shown[0].title
    assert all(request.title.startswith("Demo: ") for request in shown)


def test_a_real_account_shows_no_demo_label(qtbot: QtBot) -> None:
    tray = TrayPresenter(force_status_window=True, clock=ManualClock(T0))
    texts = _menu_texts(tray)
    assert DEMO_LINE not in texts
    assert not any("own account" in text for text in texts)
    tray.shutdown()


# --- from the demo to the person's account ------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    """The person's "real" Share: a fake on loopback, reached through --share-url."""
    with running_fake(ManualClock(T0)) as server:
        server.publish(Region.US, USER, Reading(T0 - timedelta(minutes=2), 142, Trend.FLAT))
        yield server


def _refuses_connections(base_url: str) -> bool:
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            return False
    except OSError:
        return True


def test_sign_in_from_the_demo_menu_switches_to_the_persons_account_without_quitting(
    qtbot: QtBot, tmp_path: Path, fake: FakeShare, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the switch the app runs on the fake's clock, so its reading of T0 is current.
    clock = fake.clock
    monkeypatch.setattr(session_module, "shared_clock", lambda *_args: clock)
    paths = app_paths.ensure(app_paths.app_paths(tmp_path))
    with contextlib.ExitStack() as stack:
        session = AppSession(_demo_args(fake), paths, stack)
        quits: list[bool] = []
        session.quit_requested.connect(lambda: quits.append(True))
        session.begin()
        demo_tray = session._tray
        demo_account = session._account
        assert demo_tray is not None
        assert demo_account is not None
        demo_url = demo_account.config.base_url
        assert demo_url is not None
        qtbot.waitUntil(lambda: demo_tray.model is not None, timeout=WAIT_MS)

        # The person opens the menu and chooses "Sign in with your own account…".
        _menu_actions(demo_tray)["demo-sign-in"].trigger()
        qtbot.waitUntil(lambda: visible_settings_dialog() is not None, timeout=WAIT_MS)
        dialog = visible_settings_dialog()
        assert dialog is not None
        assert "demo stops" in dialog.notice_label.text()
        type_into(dialog.username_edit, USER)
        type_into(dialog.password_edit, PASSWORD)
        qtbot.waitUntil(lambda: "Checking" not in dialog.keyring_label.text(), timeout=WAIT_MS)
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
            QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

        def follows_the_account() -> bool:
            tray = session._tray
            return tray is not None and tray.model is not None and tray.model.text == "142"

        qtbot.waitUntil(follows_the_account, timeout=WAIT_MS)
        tray = session._tray
        assert tray is not None
        assert tray is not demo_tray
        assert tray.model is not None
        assert DEMO_LINE not in tray.tooltip_of(tray.model)
        assert DEMO_LINE not in _menu_texts(tray)
        assert _refuses_connections(demo_url), "the demo's simulated service still runs"
        assert quits == []  # the app never quit
        assert paths.settings_file.exists()  # the account is saved for the next start
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        assert session.stop()


def _demo_args(fake: FakeShare) -> argparse.Namespace:
    """`cgm-tray --demo --status-window`, with the fake standing in for Dexcom after a switch."""
    return argparse.Namespace(
        demo=True,
        share_url=fake.base_url(Region.US),
        password_stdin=False,
        speed=1.0,
        clock_epoch=T0,
        status_window=True,
    )


def test_two_quick_clicks_on_sign_in_open_one_dialog(
    qtbot: QtBot, tmp_path: Path, fake: FakeShare
) -> None:
    paths = app_paths.ensure(app_paths.app_paths(tmp_path))
    with contextlib.ExitStack() as stack:
        session = AppSession(_demo_args(fake), paths, stack)
        session.begin()
        tray = session._tray
        assert tray is not None
        qtbot.waitUntil(lambda: tray.model is not None, timeout=WAIT_MS)
        sign_in = _menu_actions(tray)["demo-sign-in"]
        sign_in.trigger()
        sign_in.trigger()  # before the keyring has answered the first
        qtbot.waitUntil(lambda: visible_settings_dialog() is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        dialogs = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, SettingsDialog) and w.isVisible()
        ]
        assert len(dialogs) == 1
        dialogs[0].reject()
        assert session.stop()
