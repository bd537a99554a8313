"""The settings dialog driven as a person would: validation, units, keyring, test sign-in, save."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring.backend
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyring.backends import fail
from PySide6.QtCore import Qt, QUrl
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot
from tests.support.fake_share import PASSWORD, USER, running_fake

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, Region
from cgmtray.storage.autostart import XdgAutostart
from cgmtray.storage.credentials import SERVICE, CredentialStore, MemoryCredentialStore
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import Settings, load_settings, one_person_settings, save_settings
from cgmtray.ui.alerts_page import glucose_text
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import Notifier
from cgmtray.ui.settings_dialog import AccountChange, Page, SettingsDialog
from cgmtray.ui.sign_in_test import OutcomeKind, SignInOutcome
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
COMMAND = ["/usr/bin/cgm-tray"]


class DictKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring of this test module that notes the thread of every call."""

    priority = -10  # never chosen by keyring's auto-detection

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}
        self.threads: list[int] = []
        self.fail_writes = False
        #: When set, reads wait for it (a slow keyring, e.g. one asking to be unlocked).
        self.gate: threading.Event | None = None

    def get_password(self, service: str, username: str) -> str | None:
        self.threads.append(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(WAIT_MS / 1000)
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.threads.append(threading.get_ident())
        if self.fail_writes:
            raise keyring.errors.PasswordSetError("the keyring is locked")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.threads.append(threading.get_ident())
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.entries[(service, username)]


@pytest.fixture
def backend() -> DictKeyring:
    return DictKeyring()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with running_fake(clock) as server:
        yield server


class Harness:
    """Opens dialogs on one settings file, a keyring of the test's own and a temp autostart."""

    def __init__(self, qtbot: QtBot, tmp_path: Path, backend: DictKeyring, clock: ManualClock):
        self.qtbot = qtbot
        self.path = tmp_path / "config" / "settings.toml"
        self.backend = backend
        self.store: CredentialStore | MemoryCredentialStore = CredentialStore(backend)
        self.autostart = XdgAutostart(tmp_path / "xdg")
        self.history = tmp_path / "data" / "history.sqlite3"
        self.log_dir = tmp_path / "log"
        self.clock = clock
        self.share_urls: dict[Region, str] = {}
        self.opened: list[QUrl] = []

    def open(self, settings: Settings | None = None, **extra: object) -> SettingsDialog:
        """A dialog on screen, once its keyring check is done."""
        dialog = self.make(settings, **extra)
        with self.qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
            dialog.show()
        return dialog

    def make(self, settings: Settings | None = None, **extra: object) -> SettingsDialog:
        """A dialog not yet shown (its keyring check starts when made)."""
        if settings is None:
            settings = load_settings(self.path).settings
        dialog = SettingsDialog(
            settings,
            settings_path=self.path,
            password_store=self.store,
            clock=self.clock,
            autostart=self.autostart,
            launch_command=COMMAND,
            history_path=self.history,
            log_dir=self.log_dir,
            share_urls=self.share_urls,
            open_url=self.opened.append,
            **extra,  # type: ignore[arg-type]
        )
        self.qtbot.addWidget(dialog)
        return dialog

    def save(self, dialog: SettingsDialog) -> Settings:
        assert dialog.save_button.isEnabled(), dialog.problems_label.text()
        with self.qtbot.waitSignal(dialog.settings_saved, timeout=WAIT_MS) as blocker:
            QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        saved = blocker.args[0]
        assert isinstance(saved, Settings)
        assert dialog.result() == SettingsDialog.DialogCode.Accepted
        return saved


@pytest.fixture
def harness(qtbot: QtBot, tmp_path: Path, backend: DictKeyring, clock: ManualClock) -> Harness:
    return Harness(qtbot, tmp_path, backend, clock)


def _account(harness: Harness, settings: Settings | None = None) -> Settings:
    """A saved account with its password in the test keyring."""
    saved = settings or one_person_settings(region="us", username=USER)
    save_settings(saved, harness.path)
    harness.backend.entries[
        (SERVICE, f"{saved.first_person.source.region}:{saved.first_person.source.username}")
    ] = PASSWORD
    return saved


def _type(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    edit.del_()
    QTest.keyClicks(edit, text)


def _threshold(dialog: SettingsDialog, kind: AlertKind) -> QLineEdit:
    edit = dialog.kind_rows[kind].threshold
    assert edit is not None
    return edit


# --- validation --------------------------------------------------------------------------------


def test_a_fresh_dialog_asks_for_the_account_and_keeps_save_disabled(
    qtbot: QtBot, harness: Harness
) -> None:
    dialog = harness.open()
    assert not dialog.save_button.isEnabled()
    assert dialog.problems_label.isVisible()
    assert "Enter the Dexcom username" in dialog.problems_label.text()
    _type(qtbot, dialog.username_edit, USER)
    assert "Enter the password" in dialog.problems_label.text()
    assert not dialog.save_button.isEnabled()
    _type(qtbot, dialog.password_edit, PASSWORD)
    assert dialog.save_button.isEnabled()
    assert not dialog.problems_label.isVisible()


@pytest.mark.parametrize(
    ("unit", "kind", "text", "message"),
    [
        (Unit.MGDL, AlertKind.LOW, "260", "Low must be below high."),
        (Unit.MGDL, AlertKind.URGENT_LOW, "75", "Urgent low must be below low."),
        (Unit.MGDL, AlertKind.HIGH, "310", "High must be below urgent high."),
        (Unit.MGDL, AlertKind.URGENT_LOW, "35", "between 40 and 400 mg/dL"),
        (Unit.MGDL, AlertKind.URGENT_HIGH, "450", "between 40 and 400 mg/dL"),
        (Unit.MMOL, AlertKind.URGENT_LOW, "2.0", "between 2.2 and 22.2 mmol/L"),
        (Unit.MMOL, AlertKind.LOW, "14,5", "Low must be below high."),
        (Unit.MGDL, AlertKind.LOW, "seventy", "Low: enter a number."),
        (Unit.MGDL, AlertKind.URGENT_LOW_SOON, "30", "Urgent low soon must be between 40"),
        (Unit.MGDL, AlertKind.FALLING_FAST, "0.5", "Falling fast must be a rate between 1 and 10"),
        (
            Unit.MMOL,
            AlertKind.RISING_FAST,
            "0.6",
            "Rising fast must be a rate between 0.06 and 0.55 mmol/L per minute.",
        ),
        (Unit.MMOL, AlertKind.FALLING_FAST, "fast", "Falling fast: enter a number."),
        (Unit.MGDL, AlertKind.NO_DATA, "5", "No data must be between 10 and 1440 minutes"),
    ],
)
def test_invalid_thresholds_keep_save_disabled_with_a_plain_message(
    qtbot: QtBot, harness: Harness, unit: Unit, kind: AlertKind, text: str, message: str
) -> None:
    # Urgent high on, so high is held below it (only enabled thresholds are held in order).
    urgent_high = dataclasses.replace(AlertSettings()[AlertKind.URGENT_HIGH], enabled=True)
    alerts = AlertSettings().with_kind(AlertKind.URGENT_HIGH, urgent_high)
    _account(harness, one_person_settings(username=USER, unit=unit, alerts=alerts))
    dialog = harness.open()
    assert dialog.save_button.isEnabled()
    _type(qtbot, _threshold(dialog, kind), text)
    assert not dialog.save_button.isEnabled()
    assert dialog.problems_label.isVisible()
    assert message in dialog.problems_label.text()
    QTest.keyClick(dialog.username_edit, Qt.Key.Key_Return)  # Enter does nothing while invalid
    assert dialog.isVisible()


def test_a_new_account_needs_its_password(qtbot: QtBot, harness: Harness) -> None:
    _account(harness)
    dialog = harness.open()
    assert dialog.save_button.isEnabled()  # the saved password is in the keyring
    _type(qtbot, dialog.username_edit, "someone-else")
    assert not dialog.save_button.isEnabled()
    assert "Enter the password of this Dexcom account." in dialog.problems_label.text()
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData("us"))
    _type(qtbot, dialog.username_edit, USER)
    assert dialog.save_button.isEnabled()
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData("ous"))
    assert not dialog.save_button.isEnabled()


def test_an_account_with_no_saved_password_asks_for_it(qtbot: QtBot, harness: Harness) -> None:
    save_settings(one_person_settings(username=USER), harness.path)
    dialog = harness.open()
    assert not dialog.save_button.isEnabled()
    assert "none is saved for this account" in dialog.problems_label.text()


# --- units -------------------------------------------------------------------------------------


def test_thresholds_show_in_the_chosen_unit_and_switch_with_it(
    qtbot: QtBot, harness: Harness
) -> None:
    _account(harness)
    dialog = harness.open()
    assert _threshold(dialog, AlertKind.LOW).text() == "70"
    assert dialog.kind_rows[AlertKind.LOW].unit_label.text() == "mg/dL"
    dialog.unit_mmol.click()
    assert _threshold(dialog, AlertKind.URGENT_LOW).text() == "3.1"
    assert _threshold(dialog, AlertKind.LOW).text() == "3.9"
    assert _threshold(dialog, AlertKind.HIGH).text() == "13.9"
    assert _threshold(dialog, AlertKind.URGENT_HIGH).text() == "16.7"
    assert dialog.kind_rows[AlertKind.LOW].unit_label.text() == "mmol/L"
    assert _threshold(dialog, AlertKind.FALLING_FAST).text() == "0.17"  # 3 mg/dL/min
    assert dialog.kind_rows[AlertKind.FALLING_FAST].unit_label.text() == "mmol/L/min"
    dialog.unit_mgdl.click()
    assert _threshold(dialog, AlertKind.LOW).text() == "70"
    saved = harness.save(dialog)
    assert saved.unit is Unit.MGDL
    assert saved.first_person.alerts == AlertSettings()


def test_editing_in_mmol_stores_mgdl_and_untouched_values_keep_theirs(
    qtbot: QtBot, harness: Harness
) -> None:
    odd = AlertSettings().with_kind(
        AlertKind.HIGH, dataclasses.replace(AlertSettings()[AlertKind.HIGH], threshold=181)
    )
    _account(harness, one_person_settings(username=USER, unit=Unit.MMOL, alerts=odd))
    dialog = harness.open()
    assert _threshold(dialog, AlertKind.HIGH).text() == "10.0"  # 181 mg/dL; 10.0 is 180
    _type(qtbot, _threshold(dialog, AlertKind.LOW), "4,4")
    saved = harness.save(dialog)
    kinds = saved.first_person.alerts.kinds
    assert kinds[AlertKind.LOW].threshold == 79  # 4.4 mmol/L
    assert kinds[AlertKind.HIGH].threshold == 181  # untouched: not moved to 180
    assert kinds[AlertKind.URGENT_LOW].threshold == 55
    assert kinds[AlertKind.URGENT_HIGH].threshold == 300
    assert load_settings(harness.path).settings == saved


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.integers(40, 400), min_size=5, max_size=5, unique=True).map(sorted),
    st.booleans(),
)
def test_opening_in_mmol_and_saving_keeps_every_mgdl_threshold(
    qtbot: QtBot, harness: Harness, values: list[int], switch_twice: bool
) -> None:
    urgent_low, low, soon, high, urgent_high = values[0], values[1], values[0], values[3], values[4]
    defaults = AlertSettings().kinds
    chosen = {
        AlertKind.URGENT_LOW: urgent_low,
        AlertKind.LOW: low,
        AlertKind.URGENT_LOW_SOON: soon,
        AlertKind.HIGH: high,
        AlertKind.URGENT_HIGH: urgent_high,
    }
    alerts = AlertSettings(
        {
            kind: dataclasses.replace(config, threshold=chosen.get(kind, config.threshold))
            for kind, config in defaults.items()
        }
    )
    original = _account(harness, one_person_settings(username=USER, unit=Unit.MMOL, alerts=alerts))
    dialog = harness.open()
    if switch_twice:
        dialog.unit_mgdl.click()
        dialog.unit_mmol.click()
    saved = harness.save(dialog)
    assert saved.first_person.alerts == original.first_person.alerts
    assert saved == original


def test_glucose_text_shows_values_as_a_person_reads_them() -> None:
    assert glucose_text(70, Unit.MGDL) == "70"
    assert glucose_text(70, Unit.MMOL) == "3.9"
    assert glucose_text(30, Unit.MMOL) == "1.7"  # out of range still shows (to be corrected)


# --- cancel, keyboard, save ----------------------------------------------------------------------


def test_cancel_and_escape_leave_the_file_and_keyring_untouched(
    qtbot: QtBot, harness: Harness
) -> None:
    _account(harness)
    before = harness.path.read_bytes()
    keyring_before = dict(harness.backend.entries)
    for close in ("cancel", "escape"):
        dialog = harness.open()
        saved: list[object] = []
        dialog.settings_saved.connect(saved.append)
        dialog.account_changed.connect(saved.append)
        dialog.unit_mmol.click()
        _type(qtbot, dialog.username_edit, "other-person")
        _type(qtbot, dialog.password_edit, "new-password")
        dialog.start_at_login_box.setChecked(True)
        if close == "cancel":
            QTest.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        else:
            QTest.keyClick(dialog.username_edit, Qt.Key.Key_Escape)
        assert not dialog.isVisible()
        assert dialog.result() == SettingsDialog.DialogCode.Rejected
        assert saved == []
    assert harness.path.read_bytes() == before
    assert harness.backend.entries == keyring_before
    assert not harness.autostart.is_enabled()


def test_enter_saves_when_valid(qtbot: QtBot, harness: Harness) -> None:
    _account(harness)
    dialog = harness.open()
    dialog.retention_spin.setValue(90)
    with qtbot.waitSignal(dialog.settings_saved, timeout=WAIT_MS):
        QTest.keyClick(dialog.username_edit, Qt.Key.Key_Return)
    assert load_settings(harness.path).settings.retention_days == 90


def test_the_password_is_typed_as_dots_and_has_mnemonics(harness: Harness) -> None:
    dialog = harness.open()
    assert dialog.password_edit.echoMode() is QLineEdit.EchoMode.Password
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert tabs == ["&Account", "P&eople", "&Display", "A&lerts", "&General"]
    assert dialog.save_button.text() == "&Save"
    assert dialog.save_button.isDefault()


def test_saving_a_new_account_stores_the_password_off_the_gui_thread(
    qtbot: QtBot, harness: Harness
) -> None:
    dialog = harness.open()
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData("ous"))
    _type(qtbot, dialog.username_edit, "+447700900123")
    _type(qtbot, dialog.password_edit, PASSWORD)
    saved = harness.save(dialog)
    assert (saved.first_person.source.region, saved.first_person.source.username) == (
        "ous",
        "+447700900123",
    )
    assert harness.backend.entries == {(SERVICE, "ous:+447700900123"): PASSWORD}
    assert harness.backend.threads
    assert threading.get_ident() not in harness.backend.threads
    assert len(changes) == 1
    change = changes[0]
    assert change.settings == saved
    assert change.password == PASSWORD
    assert change.remembered
    assert PASSWORD not in repr(change)
    assert PASSWORD not in harness.path.read_text(encoding="utf-8")


def test_changing_only_the_unit_applies_without_a_new_sign_in(
    qtbot: QtBot, harness: Harness
) -> None:
    _account(harness)
    dialog = harness.open()
    changes: list[object] = []
    dialog.account_changed.connect(changes.append)
    dialog.unit_mmol.click()
    saved = harness.save(dialog)
    assert saved.unit is Unit.MMOL
    assert changes == []


def test_switching_accounts_forgets_the_old_password(qtbot: QtBot, harness: Harness) -> None:
    _account(harness)
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, "dave")
    _type(qtbot, dialog.password_edit, "daves-password")
    harness.save(dialog)
    assert harness.backend.entries == {(SERVICE, "us:dave"): "daves-password"}


def test_without_a_keyring_the_dialog_says_so_and_the_password_stays_in_memory(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.store = CredentialStore(fail.Keyring())  # type: ignore[no-untyped-call]
    dialog = harness.open()
    assert "No system keyring is available" in dialog.keyring_label.text()
    assert "asked again next time" in dialog.keyring_label.text()
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    harness.save(dialog)
    assert changes[0].password == PASSWORD
    assert not changes[0].remembered


def test_the_apps_memory_store_counts_as_a_saved_password_for_this_session(
    qtbot: QtBot, harness: Harness
) -> None:
    memory = MemoryCredentialStore()
    memory.set("us", USER, PASSWORD)
    harness.store = memory
    save_settings(one_person_settings(username=USER), harness.path)
    dialog = harness.open()
    assert "kept only while CGM Tray runs" in dialog.keyring_label.text()
    assert dialog.save_button.isEnabled()


def test_a_keyring_that_refuses_the_password_saves_nothing_until_asked_again(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.backend.fail_writes = True
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "nothing was saved" in dialog.problems_label.text(), timeout=WAIT_MS)
    assert dialog.isVisible()
    assert not harness.path.exists()
    assert "could not be saved in the system keyring" in dialog.keyring_label.text()
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    harness.save(dialog)  # the second Save keeps it for this session only
    assert harness.path.exists()
    assert not changes[0].remembered


# --- general page ---------------------------------------------------------------------------


def test_start_at_login_writes_and_removes_the_autostart_entry(
    qtbot: QtBot, harness: Harness
) -> None:
    _account(harness)
    dialog = harness.open()
    dialog.show_page(Page.GENERAL)
    dialog.start_at_login_box.setChecked(True)
    assert harness.save(dialog).start_at_login
    assert harness.autostart.is_enabled()
    assert "Exec=/usr/bin/cgm-tray" in harness.autostart.path.read_text(encoding="utf-8")
    dialog = harness.open()
    assert dialog.start_at_login_box.isChecked()
    dialog.start_at_login_box.setChecked(False)
    assert not harness.save(dialog).start_at_login
    assert not harness.autostart.path.exists()


def test_an_autostart_that_cannot_be_written_keeps_the_dialog_open(
    qtbot: QtBot, harness: Harness, tmp_path: Path
) -> None:
    _account(harness)
    (tmp_path / "blocked").write_text("not a folder", encoding="utf-8")
    harness.autostart = XdgAutostart(tmp_path / "blocked")
    before = harness.path.read_bytes()
    dialog = harness.open()
    dialog.start_at_login_box.setChecked(True)
    QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "Start at login could not be changed" in dialog.problems_label.text()
    assert harness.path.read_bytes() == before


def test_export_writes_the_history_as_csv(qtbot: QtBot, harness: Harness, tmp_path: Path) -> None:
    harness.history.parent.mkdir(parents=True)
    with HistoryStore(harness.history) as store:
        store.add(Reading(T0 - timedelta(minutes=5 * i), 120 + i, Trend.FLAT) for i in range(12))
    dialog = harness.open()
    target = tmp_path / "export.csv"
    with qtbot.waitSignal(dialog.export_finished, timeout=WAIT_MS) as blocker:
        dialog.export_history_to(target)
    assert "Exported 12 readings" in blocker.args[0]
    assert len(target.read_text(encoding="utf-8").splitlines()) == 13


def test_export_failure_is_reported(qtbot: QtBot, harness: Harness, tmp_path: Path) -> None:
    dialog = harness.open()  # no history file yet
    with qtbot.waitSignal(dialog.export_finished, timeout=WAIT_MS) as blocker:
        dialog.export_history_to(tmp_path / "export.csv")
    assert "failed" in blocker.args[0]


def test_open_log_folder_opens_the_log_directory(qtbot: QtBot, harness: Harness) -> None:
    dialog = harness.open()
    QTest.mouseClick(dialog.log_button, Qt.MouseButton.LeftButton)
    assert harness.opened == [QUrl.fromLocalFile(str(harness.log_dir))]


# --- test sign-in in the dialog ----------------------------------------------------------------


def _test_click(qtbot: QtBot, dialog: SettingsDialog) -> SignInOutcome:
    assert dialog.test_button.isEnabled()
    with qtbot.waitSignal(dialog.test_finished, timeout=WAIT_MS) as blocker:
        QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert not dialog.test_button.isEnabled()
        assert dialog.test_button.text() == "Testing…"
    outcome = blocker.args[0]
    assert isinstance(outcome, SignInOutcome)
    assert dialog.test_headline.text() == outcome.headline
    assert dialog.test_message.text() == outcome.message
    return outcome


def test_test_sign_in_shows_the_latest_reading_and_the_saved_account_id(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    fake.publish(Region.US, USER, Reading(T0 - timedelta(minutes=3), 97, Trend.FORTY_FIVE_DOWN))
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    dialog.unit_mmol.click()
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.OK
    assert "5.4 mmol/L ↘" in dialog.test_message.text()
    assert "3 min ago" in dialog.test_message.text()
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    harness.save(dialog)
    assert changes[0].account_id == fake.account_id(Region.US, USER)


def test_a_rejected_sign_in_is_not_repeated_until_something_changes(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, "wrong-password")
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert "check" in dialog.test_message.text().lower()
    assert "region" in dialog.test_message.text()
    assert not dialog.test_button.isEnabled()  # the same credentials again would only hurt
    assert fake.counters.sign_ins() == 1
    _type(qtbot, dialog.password_edit, PASSWORD)
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData("ous"))
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert "Dexcom Share (Outside the US)" in outcome.message
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData("us"))
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.NO_READINGS
    assert "Share is turned on" in dialog.test_message.text()
    assert fake.counters.failed_sign_ins() == 2
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 3  # one per click


def test_a_locked_account_is_not_tested_again_from_the_dialog(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    fake.lock_account(Region.US, USER)
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.LOCKED
    assert "Wait at least an hour" in dialog.test_message.text()
    _type(qtbot, dialog.password_edit, "another-password")
    assert not dialog.test_button.isEnabled()  # a new password does not lift Dexcom's lock
    assert fake.counters.sign_ins() == 1


def test_with_a_lock_on_record_test_and_save_sign_in_nowhere_and_say_until_when(
    qtbot: QtBot, harness: Harness, fake: FakeShare, tmp_path: Path
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    state_dir = tmp_path / "data"
    fake.lock_account(Region.US, USER)
    dialog = harness.open(sign_in_state_dir=state_dir)
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    assert _test_click(qtbot, dialog).kind is OutcomeKind.LOCKED
    assert fake.counters.sign_ins() == 1
    until = (T0 + timedelta(hours=1)).astimezone().strftime("%H:%M")
    # Another dialog (the first one remembers the lock itself): the shared gate refuses at once.
    again = harness.open(sign_in_state_dir=state_dir)
    _type(qtbot, again.username_edit, USER)
    _type(qtbot, again.password_edit, "another-password")
    outcome = _test_click(qtbot, again)
    assert outcome.kind is OutcomeKind.LOCKED
    assert f"try again after {until} (in 60 min)" in again.test_message.text()
    with qtbot.waitSignal(again.settings_saved, timeout=WAIT_MS):
        QTest.mouseClick(again.save_button, Qt.MouseButton.LeftButton)
    assert again.isVisible()  # saved, but it stays open to say why nothing signs in
    assert again.notice_label.isVisible()
    assert f"Dexcom locked the account: try again after {until}" in again.notice_label.text()
    assert fake.counters.sign_ins() == 1


def test_test_sign_in_uses_the_saved_password_read_off_the_gui_thread(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    _account(harness)
    dialog = harness.open()
    assert dialog.password_edit.text() == ""
    assert dialog.password_edit.placeholderText() == "saved — type to replace"
    harness.backend.threads.clear()
    outcome = _test_click(qtbot, dialog)
    assert outcome.kind is OutcomeKind.NO_READINGS
    assert harness.backend.threads
    assert threading.get_ident() not in harness.backend.threads


# --- the running app ----------------------------------------------------------------------------


def test_a_saved_change_reaches_the_running_controller(
    qtbot: QtBot, harness: Harness, clock: ManualClock
) -> None:
    _account(harness)
    tray = TrayPresenter(force_status_window=True)
    notifier = Notifier(tray=None, status_sink=None, sound=None)
    worker = WorkerThread(
        ShareWorker(lambda: pytest.fail("no client"), clock=clock, store_path=None)
    )
    reading = Reading(T0 - timedelta(minutes=2), 142, Trend.FLAT)
    controller = Controller(
        clock=clock,
        tray=tray,
        notifier=notifier,
        worker=worker,
        view=ViewSettings(),
        stored=[reading],
    )
    try:
        controller.apply_view(ViewSettings())
        assert tray.model is not None
        assert tray.model.text == "142"
        dialog = harness.open()
        # What the app does with the signal (see the report): apply the view at once.
        dialog.settings_saved.connect(
            lambda s: controller.apply_view(ViewSettings(unit=s.unit, alerts=s.first_person.alerts))
        )
        dialog.unit_mmol.click()
        _type(qtbot, _threshold(dialog, AlertKind.HIGH), "7,5")
        harness.save(dialog)
        assert tray.model.unit is Unit.MMOL
        assert tray.model.text == "7.9"
        assert "7.9 mmol/L" in tray.model.tooltip
        assert tray.model.severity.value == "high"  # 142 mg/dL is above the new 7.5 mmol/L
    finally:
        assert controller.stop()


# --- the account id ------------------------------------------------------------------------------

ACCOUNT_ID = "2b7e151c-28ae-4d2a-8f6b-abf7158809cf"


def _id_entry(settings: Settings) -> tuple[str, str]:
    return (
        SERVICE,
        f"account-id:{settings.first_person.source.region}:{settings.first_person.source.username}",
    )


def _no_file_holds(root: Path, secret: str) -> None:
    holding = [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert holding == []


def test_an_account_id_learned_by_test_sign_in_is_saved_in_the_keyring_not_the_file(
    qtbot: QtBot, harness: Harness, fake: FakeShare, tmp_path: Path
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    assert _test_click(qtbot, dialog).signed_in
    saved = harness.save(dialog)
    account_id = fake.account_id(Region.US, USER)
    assert harness.backend.entries == {
        (SERVICE, f"us:{USER}"): PASSWORD,
        _id_entry(saved): account_id,
    }
    assert threading.get_ident() not in harness.backend.threads
    assert account_id.encode() not in harness.path.read_bytes()
    _no_file_holds(tmp_path, account_id)


def test_a_test_with_the_saved_password_keeps_its_account_id_when_saved(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    saved = _account(harness)
    dialog = harness.open()
    assert _test_click(qtbot, dialog).signed_in
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    harness.save(dialog)
    qtbot.waitUntil(lambda: _id_entry(saved) in harness.backend.entries, timeout=WAIT_MS)
    assert harness.backend.entries[_id_entry(saved)] == fake.account_id(Region.US, USER)
    assert changes == []  # no new sign-in: the running client already has its id
    assert threading.get_ident() not in harness.backend.threads


@pytest.mark.parametrize(
    ("region", "username"), [("us", "dave"), ("ous", USER)], ids=["username", "region"]
)
def test_changing_the_account_drops_the_old_account_id(
    qtbot: QtBot, harness: Harness, region: str, username: str
) -> None:
    old = _account(harness, one_person_settings(region="us", username=USER))
    harness.backend.entries[_id_entry(old)] = ACCOUNT_ID
    dialog = harness.open(old)
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData(region))
    _type(qtbot, dialog.username_edit, username)
    _type(qtbot, dialog.password_edit, "another-password")
    harness.save(dialog)
    assert harness.backend.entries == {(SERVICE, f"{region}:{username}"): "another-password"}
    assert changes[0].account_id is None  # the new account signs in by name


def test_a_new_password_for_the_same_account_keeps_its_account_id(
    qtbot: QtBot, harness: Harness
) -> None:
    old = _account(harness, one_person_settings(region="us", username=USER))
    harness.backend.entries[_id_entry(old)] = ACCOUNT_ID  # the keyring holds the account id
    dialog = harness.open(old)
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    _type(qtbot, dialog.password_edit, "a-new-password")
    harness.save(dialog)
    assert harness.backend.entries[_id_entry(old)] == ACCOUNT_ID
    assert changes[0].account_id == ACCOUNT_ID
    assert ACCOUNT_ID.encode() not in harness.path.read_bytes()


def test_without_a_keyring_the_learned_account_id_stays_in_memory(
    qtbot: QtBot, harness: Harness, fake: FakeShare, tmp_path: Path
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    memory = MemoryCredentialStore()
    harness.store = memory
    dialog = harness.open()
    _type(qtbot, dialog.username_edit, USER)
    _type(qtbot, dialog.password_edit, PASSWORD)
    assert _test_click(qtbot, dialog).signed_in
    saved = harness.save(dialog)
    account_id = fake.account_id(Region.US, USER)
    assert (
        memory.get_account_id(saved.first_person.source.region, saved.first_person.source.username)
        == account_id
    )
    assert harness.backend.entries == {}
    _no_file_holds(tmp_path, account_id)


def test_save_waits_for_a_slow_keyring_so_a_new_password_is_not_left_in_memory(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.backend.gate = threading.Event()
    dialog = harness.make(Settings())
    dialog.show()
    dialog.username_edit.setText(USER)
    dialog.password_edit.setText(PASSWORD)
    assert not dialog.save_button.isEnabled()  # the keyring is still being checked
    assert dialog.problems_label.text() == ""
    with qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
        harness.backend.gate.set()
    saved = harness.save(dialog)
    assert saved.first_person.source.username == USER
    assert harness.store.get("us", USER) == PASSWORD  # in the keyring, for the next start


# --- issue 13: rates in the chosen unit; validation against enabled thresholds only ------------


def _kind_settings(**changes: tuple[bool, float]) -> AlertSettings:
    alerts = AlertSettings()
    for name, (on, threshold) in changes.items():
        kind = AlertKind(name)
        alerts = alerts.with_kind(
            kind, dataclasses.replace(alerts[kind], enabled=on, threshold=threshold)
        )
    return alerts


@pytest.mark.parametrize(
    ("unit", "shown", "typed", "stored", "label"),
    [
        (Unit.MGDL, "3", "2.5", 2.5, "mg/dL/min"),
        (Unit.MMOL, "0.17", "0,2", 3.6, "mmol/L/min"),
    ],
)
def test_rate_thresholds_are_shown_edited_and_stored_in_the_chosen_unit(
    qtbot: QtBot,
    harness: Harness,
    unit: Unit,
    shown: str,
    typed: str,
    stored: float,
    label: str,
) -> None:
    _account(harness, one_person_settings(username=USER, unit=unit))
    dialog = harness.open()
    falling, rising = (
        dialog.kind_rows[AlertKind.FALLING_FAST],
        dialog.kind_rows[AlertKind.RISING_FAST],
    )
    assert _threshold(dialog, AlertKind.FALLING_FAST).text() == shown
    assert (falling.unit_label.text(), rising.unit_label.text()) == (label, label)
    _type(qtbot, _threshold(dialog, AlertKind.FALLING_FAST), typed)
    saved = harness.save(dialog)
    assert (
        saved.first_person.alerts[AlertKind.FALLING_FAST].threshold == stored
    )  # always mg/dL per minute
    assert saved.first_person.alerts[AlertKind.RISING_FAST].threshold == 3  # untouched: not moved
    assert load_settings(harness.path).settings.first_person.alerts == saved.first_person.alerts
    reopened = harness.open()
    assert _threshold(reopened, AlertKind.FALLING_FAST).text() == typed.replace(",", ".")


def test_switching_units_converts_a_typed_rate(qtbot: QtBot, harness: Harness) -> None:
    _account(harness)
    dialog = harness.open()
    _type(qtbot, _threshold(dialog, AlertKind.RISING_FAST), "5")
    dialog.unit_mmol.click()
    assert _threshold(dialog, AlertKind.RISING_FAST).text() == "0.28"
    dialog.unit_mgdl.click()
    assert _threshold(dialog, AlertKind.RISING_FAST).text() == "5"  # kept, not re-rounded
    assert harness.save(dialog).first_person.alerts[AlertKind.RISING_FAST].threshold == 5


@pytest.mark.parametrize(
    ("alerts", "kind", "text", "stored"),
    [
        # High above a turned-off urgent high (the default: urgent high is off at 300).
        (AlertSettings(), AlertKind.HIGH, "320", 320),
        # Urgent high below high while it is off.
        (_kind_settings(urgent_high=(False, 300)), AlertKind.URGENT_HIGH, "200", 200),
        # Urgent low above a turned-off low, and low below urgent low while it is off.
        (_kind_settings(low=(False, 70)), AlertKind.URGENT_LOW, "75", 75),
        (_kind_settings(low=(False, 70)), AlertKind.LOW, "50", 50),
        # High below a turned-off low.
        (_kind_settings(low=(False, 70)), AlertKind.HIGH, "65", 65),
    ],
)
def test_a_threshold_is_only_checked_against_enabled_ones(
    qtbot: QtBot, harness: Harness, alerts: AlertSettings, kind: AlertKind, text: str, stored: int
) -> None:
    _account(harness, one_person_settings(username=USER, alerts=alerts))
    dialog = harness.open()
    _type(qtbot, _threshold(dialog, kind), text)
    assert not dialog.problems_label.isVisible(), dialog.problems_label.text()
    saved = harness.save(dialog)
    assert saved.first_person.alerts[kind].threshold == stored
    assert load_settings(harness.path).settings.first_person.alerts == saved.first_person.alerts


@pytest.mark.parametrize(
    ("kind", "text", "turn_on", "message"),
    [
        (AlertKind.HIGH, "320", AlertKind.URGENT_HIGH, "High must be below urgent high."),
        (AlertKind.URGENT_LOW, "75", AlertKind.LOW, "Urgent low must be below low."),
    ],
)
def test_turning_on_the_crossed_threshold_brings_the_check_back(
    qtbot: QtBot, harness: Harness, kind: AlertKind, text: str, turn_on: AlertKind, message: str
) -> None:
    alerts = _kind_settings(low=(False, 70), urgent_high=(False, 300))
    _account(harness, one_person_settings(username=USER, alerts=alerts))
    dialog = harness.open()
    dialog.show_page(Page.ALERTS)
    _type(qtbot, _threshold(dialog, kind), text)
    assert dialog.save_button.isEnabled()
    QTest.mouseClick(dialog.kind_rows[turn_on].enabled, Qt.MouseButton.LeftButton)
    assert dialog.kind_rows[turn_on].enabled.isChecked()
    assert not dialog.save_button.isEnabled()
    assert message in dialog.problems_label.text()
    QTest.mouseClick(dialog.kind_rows[turn_on].enabled, Qt.MouseButton.LeftButton)
    assert dialog.save_button.isEnabled()
