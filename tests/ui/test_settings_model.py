"""The settings model: `changed` only when something changed, and the one history window owner
following it (made on first open with the latest unit, redrawn when the unit changes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytestqt.qtbot import QtBot

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import Settings, one_person_settings
from cgmtray.ui.history_access import history_opener
from cgmtray.ui.settings_model import SettingsModel

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WAIT_MS = 30_000  # bounds a hang only


def test_an_update_to_equal_settings_emits_nothing() -> None:
    model = SettingsModel(one_person_settings(username="sam@example.com", person_id="5a5a5a5a5a5a"))
    changes: list[Settings] = []
    model.changed.connect(changes.append)
    assert not model.update(
        one_person_settings(username="sam@example.com", person_id="5a5a5a5a5a5a")
    )
    assert changes == []


def test_an_update_that_changes_something_emits_the_new_settings_once() -> None:
    model = SettingsModel(Settings())
    changes: list[Settings] = []
    model.changed.connect(changes.append)
    new = replace(model.settings, unit=Unit.MMOL, retention_days=90)
    assert model.update(new)
    assert model.update(new) is False  # the same again: nothing more
    assert changes == [new]
    assert model.settings == new


def test_the_history_window_follows_the_model_from_before_it_is_made(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "history.sqlite3"
    with HistoryStore(path) as store:
        store.add([Reading(NOW - i * timedelta(minutes=5), 150, Trend.FLAT) for i in range(12)])
    model = SettingsModel(Settings())
    opener = history_opener(path, ManualClock(NOW), model.settings, tmp_path / "window-state.ini")
    model.changed.connect(opener.apply_settings)
    try:
        model.update(replace(model.settings, unit=Unit.MMOL))
        assert opener.window is None  # nothing is made before the person opens it
        window = opener.open()
        qtbot.waitUntil(
            lambda: window.isVisible() and window.shown_span is not None, timeout=WAIT_MS
        )
        assert window.stats_panel.texts()["mean"] == "8.3 mmol/L"
        model.update(replace(model.settings, unit=Unit.MGDL))
        assert window.stats_panel.texts()["mean"] == "150 mg/dL"
        assert "250" in window.chart.axis_labels()
    finally:
        opener.close()
    assert opener.window is None
