"""The settings dialog handles the password and the ids Share hands out without writing any down:
not in the settings folder, not in a log line, not on screen."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QWidget
from pytestqt.qtbot import QtBot
from tests.support.secrets import assert_no_secrets

from cgmtray import logging_setup
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region
from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.settings import Settings, load_settings, one_person_settings, save_settings
from cgmtray.ui.settings_dialog import AccountChange, SettingsDialog
from cgmtray.ui.sign_in_test import OutcomeKind, SignInOutcome

T0: Final = datetime(2026, 3, 4, 7, 30, tzinfo=UTC)
USERNAME: Final = "keeper@example.com"
PASSWORD: Final = "Sêcret \"pass\" 'word' 99% \\ ☃"
WRONG_PASSWORD: Final = "not 'the' \"one\" 1% ñ"
WAIT_MS: Final = 60_000  # a bound on a hang, never a measure of speed


class RawRecords(logging.Handler):
    """Every record as the code logged it, before any redaction: message, args and extras."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {vars(record)!r}")


@dataclass
class AppLogs:
    """The app's own handlers (as logging_setup.configure makes them) plus a raw capture."""

    raw: RawRecords
    console: io.StringIO
    log_file: Path

    def texts(self) -> dict[str, str]:
        return {"log records": "\n".join(self.raw.lines), "console": self.console.getvalue()}


@pytest.fixture
def app_logs(tmp_path: Path) -> Iterator[AppLogs]:
    """Like `logging_setup.configure(json_lines=True, debug=True, log_file=...)`, added next to
    pytest's own handlers instead of replacing them, and removed afterwards."""
    root = logging.getLogger()
    level = root.level
    urllib3 = logging.getLogger("urllib3")
    urllib3_level = urllib3.level
    logs = AppLogs(RawRecords(), io.StringIO(), tmp_path / "log" / "cgm-tray.log")
    logs.log_file.parent.mkdir(parents=True)
    redaction = logging_setup.RedactionFilter(debug=True)
    console = logging.StreamHandler(logs.console)
    console.setFormatter(logging_setup.JsonFormatter())
    to_file = logging.FileHandler(logs.log_file, encoding="utf-8")
    to_file.setFormatter(logging_setup.HumanFormatter())
    handlers: list[logging.Handler] = [logs.raw, console, to_file]
    for handler in handlers[1:]:
        handler.addFilter(redaction)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    urllib3.setLevel(logging.WARNING)  # as configure() does: its debug lines carry request URLs
    try:
        yield logs
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        urllib3.setLevel(urllib3_level)


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    clock = ManualClock(T0)
    with FakeShare(clock) as server:
        server.add_account(Region.US, USERNAME, PASSWORD)
        server.publish(Region.US, USERNAME, Reading(T0 - timedelta(minutes=2), 104, Trend.FLAT))
        yield server
    for thread in threading.enumerate():  # a handler that untracked itself may still be closing
        if "process_request_thread" in thread.name:
            thread.join(5)


def _type(edit: QLineEdit, text: str) -> None:
    """Types `text` key by key; QTest has no keys for non-ASCII, so those arrive as a person's
    input method would deliver them (inserted at the cursor)."""
    edit.selectAll()
    edit.del_()
    for char in text:
        if char.isascii():
            QTest.keyClicks(edit, char)
        else:
            edit.insert(char)
    assert edit.text() == text


def _test_sign_in(qtbot: QtBot, dialog: SettingsDialog) -> SignInOutcome:
    with qtbot.waitSignal(dialog.test_finished, timeout=WAIT_MS) as blocker:
        QTest.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    outcome = blocker.args[0]
    assert isinstance(outcome, SignInOutcome)
    return outcome


def _grab(widget: QWidget) -> QImage:
    return widget.grab().toImage()


def _save_png(image: QImage, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(path))


def test_test_sign_in_and_save_leave_no_password_or_id_in_files_logs_or_screenshots(
    qtbot: QtBot, tmp_path: Path, fake: FakeShare, app_logs: AppLogs
) -> None:
    settings_file = tmp_path / "config" / "settings.toml"
    dialog = SettingsDialog(
        Settings(),
        settings_path=settings_file,
        password_store=MemoryCredentialStore(),
        clock=ManualClock(T0),
        history_path=tmp_path / "data" / "history.sqlite3",
        log_dir=app_logs.log_file.parent,
        share_urls={region: fake.base_url(region) for region in Region},
        open_url=lambda _url: None,
    )
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
        dialog.show()
    _type(dialog.username_edit, USERNAME)

    _type(dialog.password_edit, WRONG_PASSWORD)
    rejected = _test_sign_in(qtbot, dialog)
    assert rejected.kind is OutcomeKind.CREDENTIALS
    assert "password" in dialog.test_message.text().lower()
    shown = {"rejection on screen": dialog.test_headline.text() + dialog.test_message.text()}

    _type(dialog.password_edit, PASSWORD)
    accepted = _test_sign_in(qtbot, dialog)
    assert accepted.kind is OutcomeKind.OK
    shown["success on screen"] = dialog.test_headline.text() + dialog.test_message.text()

    # On screen the field shows one dot per character: a grab of it with the password looks
    # exactly like one with any other text of that length, and unlike the password in clear.
    field = dialog.password_edit
    field.clearFocus()  # no blinking cursor in the grabs
    assert field.echoMode() is QLineEdit.EchoMode.Password
    masked = _grab(field)
    field.setText("x" * len(PASSWORD))
    assert _grab(field) == masked
    field.setText(PASSWORD)
    field.setEchoMode(QLineEdit.EchoMode.Normal)
    assert _grab(field) != masked  # the grab does show what the field draws
    field.setEchoMode(QLineEdit.EchoMode.Password)
    _save_png(_grab(dialog), tmp_path / "screenshots" / "dialog.png")
    _save_png(masked, tmp_path / "screenshots" / "password-field.png")

    assert dialog.save_button.isEnabled(), dialog.problems_label.text()
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    with qtbot.waitSignal(dialog.settings_saved, timeout=WAIT_MS) as saved_signal:
        QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    saved = saved_signal.args[0]
    assert isinstance(saved, Settings)
    account_ids, session_ids = fake.issued_ids()
    assert changes[0].account_id == account_ids[0]  # learned, and used while the app runs ...
    assert load_settings(settings_file).settings == saved  # ... but not written
    assert saved.first_person.source.username == USERNAME

    assert len(account_ids) == 1
    assert len(session_ids) == 1
    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD}
    secrets |= {"account id": account_ids[0], "session id": session_ids[0]}
    searched = assert_no_secrets(
        secrets,
        roots=[tmp_path / name for name in ("config", "data", "log", "screenshots")],
        texts={**app_logs.texts(), **shown},
    )
    assert str(settings_file) in searched.searched
    assert str(app_logs.log_file) in searched.searched
    assert app_logs.raw.lines, "the dialog logged nothing: the log search proved nothing"


def test_adding_a_person_leaves_no_password_or_id_in_files_logs_or_screenshots(
    qtbot: QtBot, tmp_path: Path, fake: FakeShare, app_logs: AppLogs
) -> None:
    settings_file = tmp_path / "config" / "settings.toml"
    store = MemoryCredentialStore()
    first = one_person_settings(username="first@example.com", name="First")
    store.set("us", "first@example.com", "first's password")
    save_settings(first, settings_file)
    dialog = SettingsDialog(
        first,
        settings_path=settings_file,
        password_store=store,
        clock=ManualClock(T0),
        history_path=tmp_path / "data" / "history.sqlite3",
        log_dir=app_logs.log_file.parent,
        share_urls={region: fake.base_url(region) for region in Region},
        open_url=lambda _url: None,
    )
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
        dialog.show()
    dialog.show_add_person()
    add = dialog.people_page.add_dialog
    assert add is not None
    _type(add.name_edit, "Keeper")
    _type(add.username_edit, USERNAME)
    shown: dict[str, str] = {}
    for number, password in enumerate((WRONG_PASSWORD, PASSWORD)):
        _type(add.password_edit, password)
        with qtbot.waitSignal(add.test_finished, timeout=WAIT_MS):
            QTest.mouseClick(add.test_button, Qt.MouseButton.LeftButton)
        shown[f"test {number} on screen"] = add.test_headline.text() + add.test_message.text()
    assert "Signed in" in add.test_headline.text()
    add.password_edit.clearFocus()
    _save_png(_grab(add), tmp_path / "screenshots" / "add-person.png")
    QTest.mouseClick(add.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.people_page.add_dialog is None, timeout=WAIT_MS)
    _save_png(_grab(dialog), tmp_path / "screenshots" / "people.png")
    with qtbot.waitSignal(dialog.settings_saved, timeout=WAIT_MS):
        QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.wait_for_background(WAIT_MS)

    saved = load_settings(settings_file).settings
    assert [person.source.username for person in saved.people] == [
        "first@example.com",
        USERNAME,
    ]
    assert store.get("us", USERNAME) == PASSWORD  # the app's store, never a file
    account_ids, session_ids = fake.issued_ids()
    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD}
    secrets |= {"account id": account_ids[0], "session id": session_ids[0]}
    assert_no_secrets(
        secrets,
        roots=[tmp_path / name for name in ("config", "data", "log", "screenshots")],
        texts={**app_logs.texts(), **shown},
    )
    assert app_logs.raw.lines, "the dialog logged nothing: the log search proved nothing"
