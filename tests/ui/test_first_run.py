"""First run: the welcome window leads to the account settings or the demo, and nowhere else."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.settings import Settings, load_settings, one_person_settings
from cgmtray.ui.first_run import FirstRunFlow, WelcomeWindow, needs_first_run
from cgmtray.ui.settings_dialog import AccountChange, SettingsDialog

WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
USER, PASSWORD = "+11234567890", "pa55word-Phone"


def test_only_a_missing_account_means_first_run() -> None:
    assert needs_first_run(Settings())
    assert needs_first_run(one_person_settings(username="  "))
    assert not needs_first_run(one_person_settings(username=USER))


def test_the_welcome_window_offers_sign_in_and_demo(qtbot: QtBot) -> None:
    window = WelcomeWindow()
    qtbot.addWidget(window)
    window.show()
    assert window.windowTitle() == "Welcome to CGM Tray"
    assert window.sign_in_button.text() == "&Sign in to Dexcom Share"
    assert window.demo_button.text() == "Try the &demo"
    assert window.sign_in_button.isDefault()
    with qtbot.waitSignal(window.sign_in_requested, timeout=WAIT_MS):
        QTest.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.demo_requested, timeout=WAIT_MS):
        QTest.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.sign_in_requested, timeout=WAIT_MS):
        QTest.keyClick(window, Qt.Key.Key_Return)  # Enter = the default choice, sign in


class Flow:
    def __init__(self, qtbot: QtBot, tmp_path: Path) -> None:
        self.qtbot = qtbot
        self.path = tmp_path / "settings.toml"
        self.dialogs: list[SettingsDialog] = []
        self.flow = FirstRunFlow(self.make_dialog)
        qtbot.addWidget(self.flow.welcome)

    def make_dialog(self) -> SettingsDialog:
        dialog = SettingsDialog(
            Settings(), settings_path=self.path, password_store=MemoryCredentialStore()
        )
        self.qtbot.addWidget(dialog)
        self.dialogs.append(dialog)
        return dialog

    def sign_in(self) -> SettingsDialog:
        QTest.mouseClick(self.flow.welcome.sign_in_button, Qt.MouseButton.LeftButton)
        dialog = self.dialogs[-1]
        checking = "Checking the system keyring…"
        self.qtbot.waitUntil(lambda: dialog.keyring_label.text() != checking, timeout=WAIT_MS)
        return dialog


def test_sign_in_opens_the_account_page_and_saving_ends_the_first_run(
    qtbot: QtBot, tmp_path: Path
) -> None:
    flow = Flow(qtbot, tmp_path)
    flow.flow.start()
    assert flow.flow.welcome.isVisible()
    dialog = flow.sign_in()
    assert not flow.flow.welcome.isVisible()
    assert dialog.isVisible()
    assert dialog.tabs.currentIndex() == 0
    assert dialog.focusWidget() in (dialog.username_edit, None)
    QTest.keyClicks(dialog.username_edit, USER)
    QTest.keyClicks(dialog.password_edit, PASSWORD)
    with qtbot.waitSignal(flow.flow.account_ready, timeout=WAIT_MS) as blocker:
        QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    change = blocker.args[0]
    assert isinstance(change, AccountChange)
    assert change.settings.first_person.source.username == USER
    assert change.password == PASSWORD
    assert flow.flow.finished
    assert not flow.flow.welcome.isVisible()
    assert load_settings(flow.path).settings.first_person.source.username == USER


def test_cancelling_the_settings_goes_back_to_the_welcome(qtbot: QtBot, tmp_path: Path) -> None:
    flow = Flow(qtbot, tmp_path)
    flow.flow.start()
    dialog = flow.sign_in()
    QTest.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert flow.flow.welcome.isVisible()
    assert not flow.flow.finished
    assert not flow.path.exists()


def test_the_demo_ends_the_first_run_without_saving(qtbot: QtBot, tmp_path: Path) -> None:
    flow = Flow(qtbot, tmp_path)
    flow.flow.start()
    abandoned: list[bool] = []
    flow.flow.abandoned.connect(lambda: abandoned.append(True))
    with qtbot.waitSignal(flow.flow.demo_chosen, timeout=WAIT_MS):
        QTest.mouseClick(flow.flow.welcome.demo_button, Qt.MouseButton.LeftButton)
    assert flow.flow.finished
    assert not flow.flow.welcome.isVisible()
    assert abandoned == []
    assert not flow.path.exists()


def test_closing_the_welcome_window_abandons_the_first_run(qtbot: QtBot, tmp_path: Path) -> None:
    flow = Flow(qtbot, tmp_path)
    flow.flow.start()
    with qtbot.waitSignal(flow.flow.abandoned, timeout=WAIT_MS):
        QTest.keyClick(flow.flow.welcome, Qt.Key.Key_Escape)
    assert flow.flow.finished
    assert flow.dialogs == []
