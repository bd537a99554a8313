"""How the app starts: welcome window, the password asked when no keyring works, the demo."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from cgmtray.domain.display import Severity
from cgmtray.storage import paths as app_paths
from cgmtray.storage.settings import Settings, save_settings
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.session import AppSession


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
    with qtbot.waitSignal(session.quit_requested, timeout=2000):
        for window in welcomes:
            window.close()  # closing it without a choice: nothing to run, the app quits
    assert session.stop()


def test_without_a_keyring_the_password_is_asked_not_stored(
    qtbot: QtBot,
    paths: app_paths.AppPaths,
    stack: contextlib.ExitStack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    save_settings(Settings(region="us", username="fiona@example.com"), paths.settings_file)
    session = _session(_args(), paths, stack)
    session.begin()
    from cgmtray.ui.settings_dialog import Page, SettingsDialog

    def dialog_shown() -> SettingsDialog | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, SettingsDialog) and widget.isVisible():
                return widget
        return None

    qtbot.waitUntil(lambda: dialog_shown() is not None, timeout=10_000)
    dialog = dialog_shown()
    assert dialog is not None
    assert dialog.tabs.currentIndex() == int(Page.ACCOUNT)
    assert "memory" in dialog.notice_label.text()
    dialog.reject()
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=10_000)
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
        lambda: tray.model is not None and tray.model.severity in range_looks, timeout=15_000
    )
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=10_000)
    assert session.stop()
    stack.close()
    assert not list(paths.config_dir.glob("settings.toml"))
