"""The choice offered when the start-up password prompt is cancelled: enter it, or quit."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from cgmtray import APP_NAME


class PasswordChoice(QMessageBox):
    """Says why the password is needed and lets the person enter it or quit; never quits alone.

    Escape or closing the window means "Enter password" (the choice that keeps alerts possible);
    only the Quit button quits.

    Signals: enter_chosen() — open the password prompt again; quit_chosen() — quit the app.
    """

    enter_chosen = Signal()
    quit_chosen = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("password-choice")
        self.setWindowTitle(APP_NAME)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setText(f"{APP_NAME} needs the Dexcom password to follow the account in Settings.")
        self.setInformativeText(
            "Without it there are no readings and no alerts. Enter it now, or quit "
            f"{APP_NAME} and start it again when you have it."
        )
        self.enter_button = self.addButton("&Enter password", QMessageBox.ButtonRole.AcceptRole)
        self.quit_button = self.addButton(
            f"&Quit {APP_NAME}", QMessageBox.ButtonRole.DestructiveRole
        )
        self.setDefaultButton(self.enter_button)
        self.setEscapeButton(self.enter_button)
        self.buttonClicked.connect(self._on_button_clicked)

    def _on_button_clicked(self, button: object) -> None:
        if button is self.quit_button:
            self.quit_chosen.emit()
        else:
            self.enter_chosen.emit()
