"""The running app and its files: a history store it cannot use is said under the status line (the
menu and the status window) and the app runs from memory; a damaged one is replaced, with a
notification."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from tests.support.fake_share import PASSWORD, USER, running_fake

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage.settings import one_person_settings, save_settings
from cgmtray.ui import session as session_module
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.controller import FILES_NOTICE_KIND
from cgmtray.ui.session import AppSession

T0: Final = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS: Final = 30_000


@pytest.fixture
def paths(tmp_path: Path) -> app_paths.AppPaths:
    return app_paths.ensure(app_paths.app_paths(tmp_path / "base"))


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    with running_fake(ManualClock(T0)) as server:
        server.publish(Region.US, USER, Reading(T0 - timedelta(minutes=2), 142, Trend.FLAT))
        yield server


@pytest.fixture
def session(
    fake: FakeShare, paths: app_paths.AppPaths, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppSession]:
    """The app signed in with a password on stdin (no keyring), on the fake's clock, showing
    the status window; not begun."""
    clock = fake.clock
    monkeypatch.setattr(session_module, "shared_clock", lambda *_args: clock)
    save_settings(one_person_settings(region="us", username=USER), paths.settings_file)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    args = argparse.Namespace(
        demo=False,
        share_url=fake.base_url(Region.US),
        password_stdin=True,
        speed=1.0,
        clock_epoch=T0,
        status_window=True,
    )
    with contextlib.ExitStack() as stack:
        yield AppSession(args, paths, stack)


def _shows_reading(session: AppSession) -> bool:
    controller = session._controller
    model = controller._tray.model if controller is not None else None
    return model is not None and model.text == "142"


def _stop(qtbot: QtBot, session: AppSession) -> None:
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
    assert session.stop()


def _menu_lines(menu: QMenu, name: str) -> list[str]:
    menu.aboutToShow.emit()  # the menu is rebuilt as it opens
    return [a.text() for a in menu.actions() if a.objectName() == name]


def test_a_symlinked_store_is_said_under_the_status_line_and_readings_still_show(
    qtbot: QtBot, session: AppSession, paths: app_paths.AppPaths, tmp_path: Path
) -> None:
    target = tmp_path / "someone-elses.db"
    target.write_bytes(b"not ours")
    paths.history_db.symlink_to(target)

    session.begin()
    qtbot.waitUntil(lambda: _shows_reading(session), timeout=WAIT_MS)

    tray = session._tray
    assert tray is not None
    window = tray.status_window
    assert window is not None
    assert "History is not being kept" in window.notices
    assert "symbolic link" in window.notices
    lines = _menu_lines(tray.menu, "files-notice")  # wrapped like the status line
    assert " ".join(lines).startswith("History is not being kept")
    assert "symbolic link" in " ".join(lines)
    [history] = [a for a in tray.menu.actions() if a.text() == "Open &history…"]
    assert not history.isEnabled()
    _stop(qtbot, session)
    assert target.read_bytes() == b"not ours"


def test_a_damaged_store_is_replaced_with_a_notification_and_no_notice(
    qtbot: QtBot, session: AppSession, paths: app_paths.AppPaths
) -> None:
    paths.history_db.write_bytes(b"garbage " * 512)

    session.begin()
    qtbot.waitUntil(lambda: _shows_reading(session), timeout=WAIT_MS)

    tray = session._tray
    assert tray is not None
    assert tray.notices == ()  # history works again: nothing stays under the status line
    window = tray.status_window
    assert window is not None
    assert "History store was damaged" in window.message
    assert "moved aside to" in window.message
    assert not window.snooze_button.isVisible()  # a notice, not an alert
    kept = list(paths.data_dir.glob("history.sqlite3.corrupt-*"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == b"garbage " * 512
    assert session._controller is not None
    assert FILES_NOTICE_KIND in {
        r.kind
        for k in session._controller._notifier.open_keys
        if (r := session._controller._notifier.request_for(k)) is not None
    }
    _stop(qtbot, session)
