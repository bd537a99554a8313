"""Every window's Alt+letter shortcuts are explicit and unique: one letter, one thing per window."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QTabWidget, QWidget
from pytestqt.qtbot import QtBot

from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.units import Unit
from cgmtray.storage.autostart import XdgAutostart
from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import one_person_settings
from cgmtray.ui.first_run import WelcomeWindow
from cgmtray.ui.history_window import HistoryWindow
from cgmtray.ui.password_choice import PasswordChoice
from cgmtray.ui.person_dialogs import AddPersonDialog, EditPersonDialog
from cgmtray.ui.settings_dialog import SettingsDialog
from cgmtray.ui.tray import TrayPresenter

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS = 15_000
_MNEMONIC = re.compile(r"&(&|.)", re.DOTALL)


def mnemonic(text: str) -> str | None:
    """The letter after the first single "&" in `text` ("&&" is a literal ampersand), lowercase."""
    for match in _MNEMONIC.finditer(text):
        if match.group(1) != "&":
            return match.group(1).lower()
    return None


def labelled(window: QWidget) -> Iterator[tuple[str, str]]:
    """(what it is, its text) for everything in `window` that can carry a mnemonic: buttons,
    check boxes, radio buttons, labels with a buddy, group boxes and tabs."""
    widgets = [window, *window.findChildren(QWidget)]
    for widget in widgets:
        if isinstance(widget, QAbstractButton):
            yield f"button {widget.text()!r}", widget.text()
        elif isinstance(widget, QLabel) and widget.buddy() is not None:
            yield f"label {widget.text()!r}", widget.text()
        elif isinstance(widget, QGroupBox):
            yield f"group {widget.title()!r}", widget.title()
        elif isinstance(widget, QTabWidget):
            for index in range(widget.count()):
                yield f"tab {widget.tabText(index)!r}", widget.tabText(index)


def clashes(window: QWidget) -> dict[str, list[str]]:
    """The letters taken more than once in `window`, with what takes them."""
    taken: dict[str, list[str]] = defaultdict(list)
    for name, text in labelled(window):
        letter = mnemonic(text)
        if letter is not None:
            taken[letter].append(name)
    return {letter: names for letter, names in taken.items() if len(names) > 1}


def test_the_mnemonic_reader() -> None:
    assert mnemonic("&Save") == "s"
    assert mnemonic("mm&ol/L") == "o"
    assert mnemonic("Fish && &Chips") == "c"
    assert mnemonic("Fish && Chips") is None
    assert mnemonic("Plain") is None


def test_a_clash_is_found(qtbot: QtBot) -> None:
    window = PasswordChoice()
    qtbot.addWidget(window)
    window.addButton("&Quite another", PasswordChoice.ButtonRole.ActionRole)
    assert set(clashes(window)) == {"q"}


def _settings_dialog(tmp_path: Path) -> SettingsDialog:
    return SettingsDialog(
        one_person_settings(username="fiona@example.com"),
        settings_path=tmp_path / "settings.toml",
        password_store=MemoryCredentialStore(),
        autostart=XdgAutostart(tmp_path / "xdg"),
        history_path=tmp_path / "history.sqlite3",
        log_dir=tmp_path / "log",
    )


def _history_window(tmp_path: Path) -> HistoryWindow:
    store = HistoryStore(tmp_path / "history.sqlite3")
    return HistoryWindow(
        store,
        clock=ManualClock(T0),
        alerts=AlertSettings(),
        settings_store=QSettings(str(tmp_path / "qsettings.ini"), QSettings.Format.IniFormat),
    )


@pytest.mark.parametrize(
    "window_name",
    ["settings", "welcome", "password", "status", "history", "add-person", "edit-person"],
)
def test_every_window_has_unique_mnemonics(qtbot: QtBot, tmp_path: Path, window_name: str) -> None:
    window: QWidget
    if window_name == "settings":
        window = _settings_dialog(tmp_path)
    elif window_name == "welcome":
        window = WelcomeWindow()
    elif window_name == "password":
        window = PasswordChoice()
    elif window_name == "status":
        tray = TrayPresenter(force_status_window=True, clock=ManualClock(T0))
        status = tray.status_window
        assert status is not None
        window = status
    elif window_name == "add-person":
        window = AddPersonDialog(
            one_person_settings(username="fiona@example.com"),
            password_store=MemoryCredentialStore(),
            clock=ManualClock(T0),
            share_urls={},
            state_dir=None,
            unit=Unit.MGDL,
            thresholds=Thresholds(),
        )
    elif window_name == "edit-person":
        window = EditPersonDialog(one_person_settings(username="fiona@example.com").first_person)
    else:
        window = _history_window(tmp_path)
    qtbot.addWidget(window)
    window.show()
    names = [name for name, text in labelled(window) if mnemonic(text) is not None]
    assert names, "the window has no mnemonics at all: the walk found nothing"
    assert clashes(window) == {}
    # Every text that can carry one does, so no desktop assigns its own (KDE's automatic
    # accelerators would give a group box "Glucose unit" the G of the General tab).
    assert [name for name, text in labelled(window) if text and mnemonic(text) is None] == []
    if isinstance(window, SettingsDialog):
        window.wait_for_background(WAIT_MS)
