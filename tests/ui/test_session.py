"""How the app starts: welcome window, the password asked when no keyring works, the demo; the
account id kept in the keyring across restarts."""

from __future__ import annotations

import argparse
import contextlib
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from tests.support.dialogs import type_into, visible_settings_dialog
from tests.support.fake_share import PASSWORD, USER, running_fake
from tests.support.refused_account_id import (
    STALE_ACCOUNT_ID,
    Refusal,
    RefusingTransport,
    client_factory,
)

from cgmtray.domain.clock import ManualClock, shared_clock
from cgmtray.domain.display import Severity
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage.credentials import SERVICE
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import Settings, one_person_settings, save_settings
from cgmtray.ui import session as session_module
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.controller import Controller
from cgmtray.ui.history_window import HistoryWindow
from cgmtray.ui.password_choice import PasswordChoice
from cgmtray.ui.session import AppSession
from cgmtray.ui.settings_dialog import SettingsDialog
from cgmtray.ui.settings_model import SettingsModel
from cgmtray.ui.tray import TrayPresenter

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
#: Virtual seconds per real second where the schedule's waits would otherwise take minutes.
FAST = 600.0


class DictKeyring(keyring.backend.KeyringBackend):
    """The test's own keyring: the app under test never reaches the real one."""

    priority = -10  # never chosen by keyring's auto-detection

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}
        self.threads: set[int] = set()

    def get_password(self, service: str, username: str) -> str | None:
        self.threads.add(threading.get_ident())
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.threads.add(threading.get_ident())
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.threads.add(threading.get_ident())
        if (service, username) not in self.entries:
            raise PasswordDeleteError("not found")
        del self.entries[(service, username)]

    def account_id(self, region: str = "us", username: str = USER) -> str | None:
        return self.entries.get((SERVICE, f"account-id:{region}:{username}"))


@pytest.fixture(autouse=True)
def backend(monkeypatch: pytest.MonkeyPatch) -> DictKeyring:
    """Every keyring the app picks in these tests is this one."""
    test_keyring = DictKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: test_keyring)
    return test_keyring


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "demo": False,
        "share_url": None,
        "password_stdin": False,
        "speed": 1.0,
        "clock_epoch": None,
        "status_window": True,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture
def paths(tmp_path: Path) -> app_paths.AppPaths:
    return app_paths.ensure(app_paths.app_paths(tmp_path))


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


def _session(
    args: argparse.Namespace, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> AppSession:
    return AppSession(args, paths, stack)


def test_no_account_opens_the_welcome_window(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> None:
    session = _session(_args(), paths, stack)
    session.begin()
    from cgmtray.ui.first_run import WelcomeWindow

    welcomes = [w for w in QApplication.topLevelWidgets() if isinstance(w, WelcomeWindow)]
    assert any(w.isVisible() for w in welcomes)
    with qtbot.waitSignal(session.quit_requested, timeout=30_000):
        for window in welcomes:
            window.close()  # closing it without a choice: nothing to run, the app quits
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=60_000)
    assert session.stop()


def test_without_a_keyring_the_password_is_asked_not_stored(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())  # type: ignore[no-untyped-call]
    save_settings(
        one_person_settings(region="us", username="fiona@example.com"), paths.settings_file
    )
    session = _session(_args(), paths, stack)
    session.begin()
    from cgmtray.ui.settings_dialog import Page, SettingsDialog

    def dialog_shown() -> SettingsDialog | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, SettingsDialog) and widget.isVisible():
                return widget
        return None

    qtbot.waitUntil(lambda: dialog_shown() is not None, timeout=60_000)
    dialog = dialog_shown()
    assert dialog is not None
    assert dialog.tabs.currentIndex() == int(Page.ACCOUNT)
    assert "memory" in dialog.notice_label.text()
    dialog.reject()
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=60_000)
    assert session.stop()


def test_the_demo_shows_a_reading_in_the_tray(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> None:
    session = _session(_args(demo=True), paths, stack)
    session.begin()
    controller = session._controller
    assert controller is not None
    tray = controller._tray
    range_looks = {
        Severity.URGENT_LOW,
        Severity.LOW,
        Severity.IN_RANGE,
        Severity.HIGH,
        Severity.URGENT_HIGH,
    }
    qtbot.waitUntil(
        lambda: tray.model is not None and tray.model.severity in range_looks, timeout=60_000
    )
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=60_000)
    assert session.stop()
    stack.close()
    assert not list(paths.config_dir.glob("settings.toml"))


# --- the account id across restarts --------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    with running_fake(ManualClock(T0)) as server:
        server.publish(Region.US, USER, Reading(T0 - timedelta(minutes=2), 142, Trend.FLAT))
        yield server


def _saved_account(paths: app_paths.AppPaths, backend: DictKeyring, username: str = USER) -> None:
    save_settings(one_person_settings(region="us", username=username), paths.settings_file)
    backend.entries[(SERVICE, f"us:{username}")] = PASSWORD


def _run_args(fake: FakeShare, **overrides: object) -> argparse.Namespace:
    return _args(share_url=fake.base_url(Region.US), clock_epoch=T0, **overrides)


def _app_on_the_fakes_clock(fake: FakeShare, monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The app runs on the fake's clock, so a test can let the sign-in spacing pass."""
    clock = fake.clock
    assert isinstance(clock, ManualClock)
    monkeypatch.setattr(session_module, "shared_clock", lambda *_args: clock)
    return clock


def _wait_for_reading(qtbot: QtBot, session: AppSession, text: str = "142") -> None:
    def shown() -> bool:
        controller = session._controller
        model = controller._tray.model if controller is not None else None
        return model is not None and model.text == text

    qtbot.waitUntil(shown, timeout=WAIT_MS)


def _stop(qtbot: QtBot, session: AppSession) -> None:
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
    assert session.stop()


def _files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_restart_signs_in_with_the_account_id_from_the_keyring_only(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _app_on_the_fakes_clock(fake, monkeypatch)
    _saved_account(paths, backend)
    first = _session(_run_args(fake), paths, stack)
    first.begin()
    _wait_for_reading(qtbot, first)
    account_id = fake.account_id(Region.US, USER)
    qtbot.waitUntil(lambda: backend.account_id() == account_id, timeout=WAIT_MS)
    assert threading.get_ident() not in backend.threads  # the keyring only off the GUI thread
    _stop(qtbot, first)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1

    clock.advance(timedelta(minutes=5))  # the shared sign-in budget: one per 5 minutes
    again = _session(_run_args(fake), paths, stack)
    again.begin()
    _wait_for_reading(qtbot, again)
    # On the fake's clock the stored reading shows at once: wait for the restart's own poll.
    qtbot.waitUntil(lambda: fake.counters.reads() == 2, timeout=WAIT_MS)
    _stop(qtbot, again)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1  # no sign-in by name after the restart
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 2
    assert account_id.encode() not in paths.settings_file.read_bytes()
    assert _files_holding(tmp_path, account_id) == []


@pytest.mark.parametrize("refusal", list(Refusal), ids=[r.value for r in Refusal])
def test_an_account_id_refused_by_share_leaves_the_keyring_and_the_next_start_signs_in_by_name(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
    refusal: Refusal,
) -> None:
    _saved_account(paths, backend)
    backend.entries[(SERVICE, f"account-id:us:{USER}")] = STALE_ACCOUNT_ID
    transport = RefusingTransport(STALE_ACCOUNT_ID, refusal)
    make_client, http = client_factory(transport)
    stack.callback(http.close)
    monkeypatch.setattr(session_module, "ShareClient", make_client)
    clock = _app_on_the_fakes_clock(fake, monkeypatch)
    # The sign-in by name right after the refusal meets an outage: no id is known any more.
    fake.inject_fault(Fault.BAD_GATEWAY_HTML, endpoint=ENDPOINT_AUTHENTICATE)
    first = _session(_run_args(fake), paths, stack)
    first.begin()
    qtbot.waitUntil(lambda: backend.account_id() is None, timeout=WAIT_MS)
    _stop(qtbot, first)
    assert transport.refused == 1
    assert backend.entries == {(SERVICE, f"us:{USER}"): PASSWORD}  # the password stays

    clock.advance(timedelta(minutes=5))  # the shared sign-in budget: one per 5 minutes
    again = _session(_run_args(fake), paths, stack)
    again.begin()
    _wait_for_reading(qtbot, again)
    qtbot.waitUntil(
        lambda: backend.account_id() == fake.account_id(Region.US, USER), timeout=WAIT_MS
    )
    _stop(qtbot, again)
    assert transport.refused == 1  # the refused id was never sent again
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # the outage, then the sign-in by name


def test_a_password_on_standard_input_keeps_the_account_id_in_memory_only(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _app_on_the_fakes_clock(fake, monkeypatch)  # the reading of T0 is current, not weeks old
    save_settings(one_person_settings(region="us", username=USER), paths.settings_file)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    session = _session(_run_args(fake, password_stdin=True), paths, stack)
    session.begin()
    _wait_for_reading(qtbot, session)
    account_id = fake.account_id(Region.US, USER)
    # The running app knows it (a later sign-in goes by id), and nothing else does.
    qtbot.waitUntil(
        lambda: session._account is not None and session._account.config.account_id == account_id,
        timeout=WAIT_MS,
    )
    _stop(qtbot, session)
    assert backend.entries == {}
    assert _files_holding(tmp_path, fake.account_id(Region.US, USER)) == []


def _save(qtbot: QtBot, dialog: SettingsDialog) -> None:
    # Saved once the dialog has looked at the keyring (it says so), as a person would.
    qtbot.waitUntil(lambda: "Checking" not in dialog.keyring_label.text(), timeout=WAIT_MS)
    qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
        QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)


def test_switching_to_another_account_forgets_the_old_id_and_keeps_the_new_one(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    backend: DictKeyring,
) -> None:
    # Fast shared time: the sign-in budget (one per 5 minutes) passes in half a second.
    epoch = datetime.now(UTC)
    fake = stack.enter_context(running_fake(shared_clock(FAST, epoch)))
    other, other_password = "frank@example.com", "franks-pa55word"
    fake.add_account(Region.US, other, other_password)
    for seed, username in enumerate((USER, other), 1):
        sensor = SimulatedSensor(seed=seed, start=epoch - timedelta(hours=3), lag_s=20.0)
        fake.attach_sensor(Region.US, username, sensor)
    _saved_account(paths, backend)
    args = _args(share_url=fake.base_url(Region.US), clock_epoch=epoch, speed=FAST)
    session = _session(args, paths, stack)
    session.begin()
    qtbot.waitUntil(lambda: backend.account_id() is not None, timeout=WAIT_MS)

    session.open_settings(page_account=True)
    dialog = visible_settings_dialog()
    assert dialog is not None
    type_into(dialog.username_edit, other)
    type_into(dialog.password_edit, other_password)
    _save(qtbot, dialog)
    other_id = fake.account_id(Region.US, other)
    qtbot.waitUntil(lambda: backend.account_id(username=other) == other_id, timeout=WAIT_MS)
    _stop(qtbot, session)
    assert backend.entries == {
        (SERVICE, f"us:{other}"): other_password,
        (SERVICE, f"account-id:us:{other}"): other_id,
    }
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # each account signed in by name once


def test_the_first_run_keeps_the_password_and_the_account_id_in_the_keyring(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _app_on_the_fakes_clock(fake, monkeypatch)  # the reading of T0 is current, not weeks old
    session = _session(_run_args(fake), paths, stack)
    session.begin()
    from cgmtray.ui.first_run import FirstRunFlow

    flow = session._first_run
    assert isinstance(flow, FirstRunFlow)
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)  # keyring picked
    QTest.mouseClick(flow.welcome.sign_in_button, Qt.MouseButton.LeftButton)
    dialog = flow.settings_dialog
    assert dialog is not None
    type_into(dialog.username_edit, USER)
    type_into(dialog.password_edit, PASSWORD)
    _save(qtbot, dialog)
    _wait_for_reading(qtbot, session)
    account_id = fake.account_id(Region.US, USER)
    qtbot.waitUntil(lambda: backend.account_id() == account_id, timeout=WAIT_MS)
    _stop(qtbot, session)
    assert backend.entries[(SERVICE, f"us:{USER}")] == PASSWORD


def _visible_choice() -> PasswordChoice | None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, PasswordChoice) and widget.isVisible():
            return widget
    return None


def _cancel_the_password_prompt(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> tuple[AppSession, PasswordChoice]:
    """Starts without a keyring and presses Cancel in the password prompt, as a person would."""
    save_settings(
        one_person_settings(region="us", username="fiona@example.com"), paths.settings_file
    )
    session = _session(_args(), paths, stack)
    session.begin()
    qtbot.waitUntil(lambda: visible_settings_dialog() is not None, timeout=WAIT_MS)
    dialog = visible_settings_dialog()
    assert dialog is not None
    QTest.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _visible_choice() is not None, timeout=WAIT_MS)
    choice = _visible_choice()
    assert choice is not None
    return session, choice


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())  # type: ignore[no-untyped-call]


@pytest.mark.usefixtures("no_keyring")
def test_cancelling_the_password_prompt_offers_a_choice_instead_of_quitting(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> None:
    quits: list[None] = []
    session, choice = _cancel_the_password_prompt(qtbot, paths, stack)
    session.quit_requested.connect(lambda: quits.append(None))
    assert "needs the Dexcom password" in choice.text()
    assert "no readings and no alerts" in choice.informativeText()
    assert [choice.enter_button.text(), choice.quit_button.text()] == [
        "&Enter password",
        "&Quit CGM Tray",
    ]
    QTest.mouseClick(choice.enter_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: visible_settings_dialog() is not None, timeout=WAIT_MS)
    dialog = visible_settings_dialog()
    assert dialog is not None
    assert "memory" in dialog.notice_label.text()  # the prompt says again why it asks
    assert dialog.password_edit.isVisible()
    assert quits == []
    dialog.reject()
    qtbot.waitUntil(lambda: _visible_choice() is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=10_000)
    assert session.stop()
    assert _visible_choice() is None
    assert quits == []


@pytest.mark.usefixtures("no_keyring")
def test_quit_in_the_choice_quits(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> None:
    session, choice = _cancel_the_password_prompt(qtbot, paths, stack)
    with qtbot.waitSignal(session.quit_requested, timeout=WAIT_MS):
        QTest.mouseClick(choice.quit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=10_000)
    assert session.stop()


@pytest.mark.usefixtures("no_keyring")
def test_escape_in_the_choice_asks_for_the_password_again(
    qtbot: QtBot, paths: app_paths.AppPaths, stack: contextlib.ExitStack
) -> None:
    quits: list[None] = []
    session, choice = _cancel_the_password_prompt(qtbot, paths, stack)
    session.quit_requested.connect(lambda: quits.append(None))
    QTest.keyClick(choice, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: visible_settings_dialog() is not None, timeout=WAIT_MS)
    assert quits == []
    dialog = visible_settings_dialog()
    assert dialog is not None
    dialog.reject()
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=10_000)
    assert session.stop()


# --- settings changes through the model ----------------------------------------------------------


def _menu_texts(tray: TrayPresenter) -> list[str]:
    """The menu's lines as the person sees them when opening it."""
    tray.menu.aboutToShow.emit()
    return [a.text() for a in tray.menu.actions() if not a.isSeparator()]


def _running(session: AppSession) -> tuple[SettingsModel, Controller, TrayPresenter]:
    model, controller, tray = session._model, session._controller, session._tray
    assert model is not None
    assert controller is not None
    assert tray is not None
    return model, controller, tray


def _open_history(qtbot: QtBot, session: AppSession) -> HistoryWindow:
    assert session._history is not None
    window = session._history.open()
    qtbot.waitUntil(lambda: window.isVisible() and window.shown_span is not None, timeout=WAIT_MS)
    return window


def test_a_unit_saved_in_settings_redraws_the_tray_and_the_open_history_chart(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _app_on_the_fakes_clock(fake, monkeypatch)
    _saved_account(paths, backend)
    session = _session(_run_args(fake), paths, stack)
    session.begin()
    _wait_for_reading(qtbot, session)
    model, _controller, tray = _running(session)
    window = _open_history(qtbot, session)
    assert "250" in window.chart.axis_labels()  # mg/dL
    changes: list[Settings] = []
    model.changed.connect(changes.append)

    session.open_settings()
    dialog = visible_settings_dialog()
    assert dialog is not None
    dialog.unit_mmol.click()
    _save(qtbot, dialog)

    assert [s.unit for s in changes] == [Unit.MMOL]
    assert model.settings.unit is Unit.MMOL
    assert tray.model is not None
    assert tray.model.text == "7.9"
    assert "7.9 mmol/L" in tray.tooltip_of(tray.model)
    assert any("7.9 mmol/L" in line for line in _menu_texts(tray))
    assert window.chart.axis_labels()[1:3] == ["4", "6"]  # the open chart is in mmol/L now
    assert window.stats_panel.texts()["mean"].endswith(" mmol/L")
    _stop(qtbot, session)


def test_a_save_that_changes_nothing_redraws_nothing_and_keeps_the_worker(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _app_on_the_fakes_clock(fake, monkeypatch)
    _saved_account(paths, backend)
    session = _session(_run_args(fake), paths, stack)
    session.begin()
    _wait_for_reading(qtbot, session)
    # The learned account id is in the keyring (not the settings) before the dialog opens.
    qtbot.waitUntil(lambda: backend.account_id() is not None, timeout=WAIT_MS)
    model, controller, tray = _running(session)
    window = _open_history(qtbot, session)
    before = model.settings
    client_source = session._client_source
    changes: list[Settings] = []
    redraws: list[None] = []
    model.changed.connect(changes.append)
    controller.refreshed.connect(lambda: redraws.append(None))

    session.open_settings()
    dialog = visible_settings_dialog()
    assert dialog is not None
    qtbot.waitUntil(lambda: "Checking" not in dialog.keyring_label.text(), timeout=WAIT_MS)
    qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
    # Saving without a new password runs on the spot: whatever it redraws, it redraws here.
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()  # saved and closed

    assert changes == []
    assert redraws == []
    assert model.settings is before
    assert session._client_source is client_source  # no new client: the worker was not restarted
    assert tray.model is not None
    assert tray.model.text == "142"
    assert "250" in window.chart.axis_labels()
    _stop(qtbot, session)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1


def test_a_shorter_retention_saved_in_settings_prunes_the_history_at_once(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _app_on_the_fakes_clock(fake, monkeypatch)
    _saved_account(paths, backend)
    old = Reading(T0 - timedelta(days=100), 111, Trend.FLAT)
    with HistoryStore(paths.history_db) as store:
        store.add([old])
    session = _session(_run_args(fake), paths, stack)
    session.begin()
    _wait_for_reading(qtbot, session)
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)

    def kept_old() -> bool:
        with HistoryStore(paths.history_db, read_only=True) as store:
            return old in store.range(old.time, old.time + timedelta(minutes=1))

    assert kept_old()  # 100 days are within the 365 kept by default
    session.open_settings()
    dialog = visible_settings_dialog()
    assert dialog is not None
    dialog.retention_spin.setValue(30)
    _save(qtbot, dialog)
    qtbot.waitUntil(lambda: not kept_old(), timeout=WAIT_MS)
    _stop(qtbot, session)
