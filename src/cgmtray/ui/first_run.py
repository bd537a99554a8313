"""First run: with no saved account, a welcome window — sign in to Dexcom Share or try the demo."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from cgmtray import APP_NAME
from cgmtray.storage.settings import Settings
from cgmtray.ui.settings_dialog import AccountChange, Page, SettingsDialog


def needs_first_run(settings: Settings) -> bool:
    """True when no Dexcom account is set up yet (the first person has no username saved)."""
    return not settings.first_person.source.username.strip()


class WelcomeWindow(QDialog):
    """Two ways forward: sign in to Dexcom Share, or try the demo. Closing it is "neither".

    Signals:
        sign_in_requested(): "Sign in to Dexcom Share".
        demo_requested(): "Try the demo".
    """

    sign_in_requested = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Welcome to {APP_NAME}")
        self.setObjectName("welcome-window")

        title = QLabel(f"Welcome to {APP_NAME}")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        intro = QLabel(
            "Your Dexcom CGM reading, always in sight in the system tray, with alerts for lows "
            "and highs.\n\n"
            "It reads from Dexcom Share with the Dexcom app login of the person who wears the "
            "sensor. The password is kept in the system keyring, never in a file."
        )
        intro.setWordWrap(True)

        self.sign_in_button = QPushButton("&Sign in to Dexcom Share")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.setMinimumHeight(40)
        self.sign_in_button.clicked.connect(self._on_sign_in_button_clicked)
        self.demo_button = QPushButton("Try the &demo")
        self.demo_button.setAutoDefault(False)
        self.demo_button.setMinimumHeight(40)
        self.demo_button.clicked.connect(self._on_demo_button_clicked)
        demo_note = QLabel(
            "The demo shows a simulated sensor; no account is needed, no settings are saved, and "
            "its readings are deleted when it quits (it keeps a log, for bug reports)."
        )
        demo_note.setWordWrap(True)
        caution = QLabel(
            "Not a medical device. Readings from Dexcom Share can be late or missing: use your "
            "receiver or the Dexcom app for treatment decisions."
        )
        caution.setWordWrap(True)
        caution.setObjectName("welcome-caution")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.setSpacing(12)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(6)
        layout.addWidget(self.sign_in_button)
        layout.addWidget(self.demo_button)
        layout.addWidget(demo_note)
        layout.addSpacing(6)
        layout.addWidget(caution, alignment=Qt.AlignmentFlag.AlignBottom)
        self.setMinimumWidth(460)

    @Slot()
    def _on_sign_in_button_clicked(self) -> None:
        self.sign_in_requested.emit()

    @Slot()
    def _on_demo_button_clicked(self) -> None:
        self.demo_requested.emit()


class FirstRunFlow(QObject):
    """Welcome window -> settings (account page) until an account is saved, or the demo.

    Cancelling the settings goes back to the welcome window; closing the welcome window
    abandons the first run (the app decides: usually quit).

    Signals:
        settings_saved(Settings): the first settings were saved.
        account_ready(AccountChange): the account and password to start with.
        demo_chosen(): the person chose the demo.
        abandoned(): the welcome window was closed without a choice.
    """

    settings_saved = Signal(object)
    account_ready = Signal(object)
    demo_chosen = Signal()
    abandoned = Signal()

    def __init__(
        self, make_settings_dialog: Callable[[], SettingsDialog], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._make_settings_dialog = make_settings_dialog
        self.welcome = WelcomeWindow()
        self.welcome.sign_in_requested.connect(self._on_welcome_sign_in_requested)
        self.welcome.demo_requested.connect(self._on_welcome_demo_requested)
        self.welcome.rejected.connect(self._on_welcome_rejected)
        self.settings_dialog: SettingsDialog | None = None
        self._finished = False

    def start(self) -> None:
        """Shows the welcome window."""
        self.welcome.show()
        self.welcome.raise_()
        self.welcome.activateWindow()

    @property
    def finished(self) -> bool:
        return self._finished

    @Slot()
    def _on_welcome_sign_in_requested(self) -> None:
        dialog = self._make_settings_dialog()
        self.settings_dialog = dialog
        dialog.settings_saved.connect(self._on_dialog_settings_saved)
        dialog.account_changed.connect(self._on_dialog_account_changed)
        dialog.rejected.connect(self._on_dialog_rejected)
        self.welcome.hide()
        dialog.show_page(Page.ACCOUNT)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    @Slot()
    def _on_welcome_demo_requested(self) -> None:
        self._finish()
        self.demo_chosen.emit()

    @Slot()
    def _on_welcome_rejected(self) -> None:
        if not self._finished:
            self._finish()
            self.abandoned.emit()

    @Slot(object)
    def _on_dialog_settings_saved(self, settings: Settings) -> None:
        self.settings_saved.emit(settings)

    @Slot(object)
    def _on_dialog_account_changed(self, change: AccountChange) -> None:
        self._finish()
        self.account_ready.emit(change)

    @Slot()
    def _on_dialog_rejected(self) -> None:
        if not self._finished:
            self.welcome.show()

    def _finish(self) -> None:
        self._finished = True
        self.welcome.hide()
