"""The persisted sign-in gate: one JSON file per data folder, shared, private, corrupt-tolerant."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cgmtray.domain.sign_in_gate import BlockKind, Outcome, Reason
from cgmtray.storage.sign_in_state import (
    STATE_FILE_NAME,
    PersistedSignInGate,
    account_key,
)

T0 = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)
USER = "frank@example.com"


def gate(
    folder: Path, *, asked: bool = False, credentials_changed: bool = False
) -> PersistedSignInGate:
    return PersistedSignInGate(
        folder,
        region="us",
        username=USER,
        asked=asked,
        credentials_changed=credentials_changed,
    )


def test_a_rejection_seen_by_one_process_holds_for_the_next(tmp_path: Path) -> None:
    first = gate(tmp_path)
    assert first.reserve(T0).allowed
    first.record(T0, Outcome.REJECTED)
    later = gate(tmp_path, asked=True)
    assert later.reserve(T0 + timedelta(hours=2)).reason is Reason.REJECTED
    assert gate(tmp_path, credentials_changed=True).reserve(T0 + timedelta(hours=2)).allowed


def test_saving_new_credentials_lifts_a_rejection_for_every_process(tmp_path: Path) -> None:
    first = gate(tmp_path)
    first.reserve(T0)
    first.record(T0, Outcome.REJECTED)
    first.user_acted(credentials_changed=True)
    assert gate(tmp_path).state().block is None
    assert gate(tmp_path).check(T0 + timedelta(minutes=5)).allowed


def test_a_lock_needs_its_hour_and_an_ask(tmp_path: Path) -> None:
    tray = gate(tmp_path)
    tray.reserve(T0)
    tray.record(T0, Outcome.LOCKED)
    tray.user_acted()  # Refresh now during the lock
    assert tray.reserve(T0 + timedelta(minutes=30)).not_before == T0 + timedelta(hours=1)
    later = T0 + timedelta(hours=1)
    tray2 = gate(tmp_path)
    assert tray2.reserve(later).reason is Reason.LOCK_OVER_ASK
    tray2.user_acted()
    assert tray2.check(later).allowed
    assert tray2.reserve(later).allowed
    tray2.record(later, Outcome.OK)
    assert gate(tmp_path).state().block is None


def test_the_file_is_private_names_no_one_and_keeps_accounts_apart(tmp_path: Path) -> None:
    gate(tmp_path).reserve(T0)
    other = PersistedSignInGate(tmp_path, region="ous", username=USER)
    assert other.check(T0).allowed  # another account's budget is its own
    path = tmp_path / STATE_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    assert USER not in text
    assert account_key("us", USER) in text
    assert account_key("us", " Frank@Example.com ") == account_key("us", USER)
    assert account_key("us", USER, "http://127.0.0.1:1/x/") != account_key("us", USER)
    assert list(tmp_path.glob(".sign-in-state.*")) == []  # no temporary file left behind


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 99, "accounts": {}}',
        '{"version": 1, "accounts": []}',
        '{"version": 1, "accounts": {"k": 3}}',
        '{"version": 1, "accounts": {"k": {"block": "??"}}}',
        '{"version": 1, "accounts": {"k": {"since": 5}}}',
        '{"version": 1, "accounts": {"k": {"since": "2026-11-21T21:00:00"}}}',
        '{"version": 1, "accounts": {"k": {"lock_count": "x"}}}',
    ],
)
def test_a_corrupt_file_reads_as_empty_and_is_logged(
    content: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STATE_FILE_NAME).write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert gate(tmp_path).reserve(T0).allowed
    assert "unreadable" in caplog.text
    data = json.loads((tmp_path / STATE_FILE_NAME).read_text(encoding="utf-8"))
    assert data["version"] == 1


def test_a_lock_stored_without_an_end_keeps_a_first_locks_wait(tmp_path: Path) -> None:
    key = account_key("us", USER)
    entry = {"block": "locked", "since": T0.isoformat(), "lock_count": 1}
    (tmp_path / STATE_FILE_NAME).write_text(
        json.dumps({"version": 1, "accounts": {key: entry}}), encoding="utf-8"
    )
    state = gate(tmp_path).state()
    assert (state.block, state.until) == (BlockKind.LOCKED, T0 + timedelta(hours=1))


def test_an_unreadable_file_is_no_reason_to_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STATE_FILE_NAME).mkdir()  # reading it fails with an OSError
    with caplog.at_level(logging.WARNING):
        assert gate(tmp_path).check(T0).allowed
    assert "could not be read" in caplog.text


def test_a_folder_that_cannot_be_used_keeps_the_state_in_the_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be", encoding="utf-8")
    tray = gate(blocked / "data")
    with caplog.at_level(logging.WARNING):
        assert tray.reserve(T0).allowed  # a broken folder must not stop the app signing in
        tray.record(T0, Outcome.REJECTED)
        assert tray.reserve(T0 + timedelta(hours=1)).reason is Reason.REJECTED
    assert caplog.text.count("kept in this process only") == 1
