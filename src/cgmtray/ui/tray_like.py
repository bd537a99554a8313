"""What a Controller uses of its tray: a TrayPresenter, or one person's port in a shared icon."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QSystemTrayIcon

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.display import DisplayModel
from cgmtray.ui.tray import MenuState, StatusWindow

__all__ = ["TrayLike"]


class TrayLike(Protocol):
    """The tray as one person's Controller sees it (TrayPresenter, TogetherTray's TrayPort).

    Signals (the person's asks, for this person only):
        open_history_requested(), refresh_requested(), control_requested(AlertControl),
        settings_requested(), sign_in_requested(), about_requested(), quit_requested().
    """

    @property
    def open_history_requested(self) -> SignalInstance: ...

    @property
    def refresh_requested(self) -> SignalInstance: ...

    @property
    def control_requested(self) -> SignalInstance: ...

    @property
    def settings_requested(self) -> SignalInstance: ...

    @property
    def sign_in_requested(self) -> SignalInstance: ...

    @property
    def about_requested(self) -> SignalInstance: ...

    @property
    def quit_requested(self) -> SignalInstance: ...

    @property
    def tray(self) -> QSystemTrayIcon | None:
        """The icon in the tray (the notifier's balloons go there), None without a tray."""

    @property
    def status_window(self) -> StatusWindow | None:
        """The window standing in for the icon when there is no tray."""

    @property
    def demo(self) -> bool:
        """The readings are the demo's: alerts and labels say so."""

    @property
    def model(self) -> DisplayModel | None:
        """The person's model last shown (None before the first)."""

    def show_model(self, model: DisplayModel) -> None: ...

    def set_menu_state(self, state: MenuState) -> None: ...

    def show_status_alert(
        self, kind: AlertKind, title: str, body: str, snooze_cap: timedelta
    ) -> None: ...

    def clear_status_alert(self, kind: AlertKind) -> None: ...

    def show_status_message(self, title: str, body: str) -> None: ...

    def shutdown(self) -> None: ...
