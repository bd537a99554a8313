"""`cgm-tray now`: every outcome a script or status bar sees, against the in-process fake."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.errors import PasswordDeleteError, PasswordSetError
from tests.support.refused_account_id import (
    STALE_ACCOUNT_ID,
    Refusal,
    RefusingTransport,
    client_factory,
)

from cgmtray import cli, glance
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage.credentials import SERVICE
from cgmtray.storage.settings import one_person_settings, save_settings

NOW = datetime(2026, 11, 21, 12, 0, 7, tzinfo=UTC)
USER = "carol@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The fake's clock is `now`'s too: the shared sign-in budget counts on it."""
    manual = ManualClock(NOW)
    monkeypatch.setattr(glance, "SystemClock", lambda: manual)
    return manual


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock, lockout_after=2) as server:
        server.add_account(Region.US, USER, PASSWORD)
        yield server


def _now(
    args: list[str], password: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("" if password is None else password + "\n"))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = cli.main(["now", "--basedir", str(tmp_path), *args])
    return code, out.getvalue(), err.getvalue()


def _account_args(fake: FakeShare, region: str = "us") -> list[str]:
    return [
        "--share-url",
        fake.base_url(Region(region)),
        "--region",
        region,
        "--username",
        USER,
        "--password-stdin",
    ]


def test_prints_one_line_with_value_arrow_and_age(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=7, seconds=3), 139, Trend.FLAT))
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=2, seconds=3), 142, Trend.FLAT))
    code, out, err = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert out == "142 mg/dL → steady (+3), 2 min ago\n"


def test_json_has_the_documented_fields(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(seconds=65), 100, Trend.FORTY_FIVE_DOWN))
    code, out, _ = _now([*_account_args(fake), "--json"], PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    data = json.loads(out)
    assert data["value_mgdl"] == 100
    assert data["mmol"] == 5.6
    assert data["trend"] == "FortyFiveDown"
    assert data["arrow"] == "↘"
    assert data["age_s"] == 65
    assert data["time"] == (NOW - timedelta(seconds=65)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(("value", "shown"), [(39, "LOW"), (401, "HIGH")])
def test_low_and_high_are_words_never_numbers(
    value: int, shown: str, fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), value, Trend.NONE))
    code, out, _ = _now([*_account_args(fake), "--json"], PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    data = json.loads(out)
    assert data["value_mgdl"] == shown
    assert data["mmol"] == shown


def test_wrong_password_exits_3_with_the_region_hint_and_no_secret(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(_account_args(fake), "not the password", monkeypatch, tmp_path)
    assert code == glance.EXIT_CREDENTIALS
    assert out == ""
    assert "region" in err
    assert "not the password" not in err
    assert USER not in err


def test_wrong_region_is_reported_like_a_wrong_password(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = _now(_account_args(fake, "ous"), PASSWORD, monkeypatch, tmp_path)
    assert code == glance.EXIT_CREDENTIALS
    assert "region" in err


def test_locked_account_exits_4(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.lock_account(Region.US, USER)
    code, _, err = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert code == glance.EXIT_LOCKED
    assert "locked" in err.lower()


def test_no_readings_exits_6_and_says_what_to_check(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert code == glance.EXIT_NO_READINGS
    assert "follower" in err


def test_unreachable_service_exits_5(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = fake.base_url(Region.US)
    fake.stop()
    args = ["--share-url", url, "--username", USER, "--password-stdin"]
    code, _, err = _now(args, PASSWORD, monkeypatch, tmp_path)
    assert code == glance.EXIT_NETWORK
    assert err.startswith("cgm-tray: ")


def test_share_url_must_be_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    args = [
        "--share-url",
        "http://203.0.113.5:8080/ShareWebServices/Services/",
        "--username",
        USER,
        "--password-stdin",
    ]
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(SystemExit) as stopped:  # refused as the options are read
        cli.main(["now", "--basedir", str(tmp_path), *args])
    assert stopped.value.code == glance.EXIT_USAGE
    assert "loopback" in err.getvalue()


def test_no_account_set_up_is_a_usage_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now([], None, monkeypatch, tmp_path)
    assert code == glance.EXIT_USAGE
    assert out == ""
    assert "--password-stdin" in err


def test_username_without_password_stdin_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = _now(["--username", USER], None, monkeypatch, tmp_path)
    assert code == glance.EXIT_USAGE
    assert "--password-stdin" in err


def test_one_fetch_costs_one_sign_in_pair_and_one_read(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    code, _, _ = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 1
    assert fake.counters.reads() == 1


def test_demo_works_without_any_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, err = _now(["--demo", "--json"], None, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert isinstance(data["value_mgdl"], int | str)
    assert data["age_s"] < 6 * 60
    assert list(tmp_path.rglob("settings.toml")) == []


# --- the account from the settings and the keyring -----------------------------------------------

PASSWORD_KEY = f"us:{USER}"
ACCOUNT_ID_KEY = f"account-id:us:{USER}"


class DictKeyring(keyring.backend.KeyringBackend):
    """The test's own keyring (never the real one); `read_only` refuses writes like a locked one."""

    priority = -10  # never chosen by keyring's auto-detection

    def __init__(self, *, read_only: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}
        self.read_only = read_only

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.read_only:
            raise PasswordSetError("read-only")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.read_only or (service, username) not in self.entries:
            raise PasswordDeleteError("not deleted")
        del self.entries[(service, username)]

    def stored_id(self) -> str | None:
        return self.entries.get((SERVICE, ACCOUNT_ID_KEY))


def _saved_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, read_only: bool = False
) -> DictKeyring:
    """Settings on disk and the password in a keyring of the test's own, as the app leaves them."""
    paths = app_paths.ensure(app_paths.app_paths(tmp_path))
    save_settings(one_person_settings(region="us", username=USER), paths.settings_file)
    backend = DictKeyring(read_only=read_only)
    backend.entries[(SERVICE, PASSWORD_KEY)] = PASSWORD
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    return backend


def _saved_now(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[int, str, str]:
    return _now(["--share-url", fake.base_url(Region.US)], None, monkeypatch, tmp_path)


def _files_hold(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_the_account_id_is_kept_in_the_keyring_and_the_next_run_signs_in_by_id_only(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    code, _, err = _saved_now(fake, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    account_id = fake.account_id(Region.US, USER)
    assert backend.stored_id() == account_id
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1

    clock.advance(timedelta(minutes=5))  # the shared sign-in budget: one per 5 minutes
    code, out, err = _saved_now(fake, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert out.startswith("120 mg/dL")
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1  # no second sign-in by name
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 2
    settings_file = app_paths.app_paths(tmp_path).settings_file
    assert account_id.encode() not in settings_file.read_bytes()
    assert _files_hold(tmp_path, account_id) == []


def test_a_keyring_that_cannot_store_is_skipped_silently(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch, read_only=True)
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    for _ in range(2):
        clock.advance(timedelta(minutes=5))  # the shared sign-in budget: one per 5 minutes
        code, out, err = _saved_now(fake, monkeypatch, tmp_path)
        assert (code, err) == (0, "")
        assert out.startswith("120 mg/dL")
    assert backend.stored_id() is None
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # each run had to sign in by name
    assert _files_hold(tmp_path, fake.account_id(Region.US, USER)) == []


def test_a_password_on_stdin_leaves_the_keyring_alone(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    backend.entries.clear()
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    code, _, _ = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    assert backend.entries == {}


def test_an_account_id_refused_by_share_is_dropped_from_the_keyring(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    backend.entries[(SERVICE, ACCOUNT_ID_KEY)] = STALE_ACCOUNT_ID
    transport = RefusingTransport(STALE_ACCOUNT_ID, Refusal.INVALID_ARGUMENT)
    make_client, http = client_factory(transport)
    monkeypatch.setattr(glance, "ShareClient", make_client)
    # The sign-in by name that follows fails too (an outage): nothing better to keep.
    fake.inject_fault(Fault.BAD_GATEWAY_HTML, endpoint=ENDPOINT_AUTHENTICATE)
    try:
        code, out, err = _saved_now(fake, monkeypatch, tmp_path)
    finally:
        http.close()
    assert code == glance.EXIT_NETWORK
    assert out == ""
    assert STALE_ACCOUNT_ID not in err
    assert transport.refused == 1
    assert backend.stored_id() is None
    assert backend.entries[(SERVICE, PASSWORD_KEY)] == PASSWORD


def test_an_all_zero_answer_replaces_the_stored_id_with_the_one_signed_in_by_name(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    backend.entries[(SERVICE, ACCOUNT_ID_KEY)] = STALE_ACCOUNT_ID
    transport = RefusingTransport(STALE_ACCOUNT_ID, Refusal.ZERO_ID)
    make_client, http = client_factory(transport)
    monkeypatch.setattr(glance, "ShareClient", make_client)
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    try:
        code, _, err = _saved_now(fake, monkeypatch, tmp_path)
    finally:
        http.close()
    assert code == 0
    assert "refused" in err  # the client's warning, without the id
    assert STALE_ACCOUNT_ID not in err
    assert transport.refused == 1
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    assert backend.stored_id() == fake.account_id(Region.US, USER)


def test_an_account_id_from_an_old_settings_file_moves_to_the_keyring(
    fake: FakeShare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    account_id = fake.account_id(Region.US, USER)
    settings_file = app_paths.app_paths(tmp_path).settings_file
    settings_file.write_text(
        f'version = 1\n[account]\nregion = "us"\nusername = "{USER}"\n'
        f'account_id = "{account_id}"\n',
        encoding="utf-8",
    )
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    code, _, err = _saved_now(fake, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 0
    assert backend.stored_id() == account_id


# --- the shared sign-in gate: rejections, locks and the sign-in budget across runs ------------


def _sign_ins(fake: FakeShare) -> int:
    return fake.counters.count(ENDPOINT_AUTHENTICATE) + fake.counters.count(ENDPOINT_LOGIN_BY_ID)


def test_a_rejected_saved_password_is_not_tried_again_by_twenty_runs(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = _saved_account(tmp_path, monkeypatch)
    backend.entries[(SERVICE, PASSWORD_KEY)] = "an old password"
    code, _, err = _saved_now(fake, monkeypatch, tmp_path)
    assert code == glance.EXIT_CREDENTIALS
    assert "change it in Settings" in err
    tried = _sign_ins(fake)
    assert tried == 1
    for _ in range(20):  # a status bar calling `now` every 10 minutes for over 3 hours
        clock.advance(timedelta(minutes=10))
        code, out, err = _saved_now(fake, monkeypatch, tmp_path)
        assert (code, out) == (glance.EXIT_CREDENTIALS, "")
        assert "Dexcom rejected the password: change it in Settings" in err
    assert _sign_ins(fake) == tried
    assert not fake.is_locked(Region.US, USER)
    assert _files_hold(tmp_path, "an old password") == []
    state_file = app_paths.app_paths(tmp_path).data_dir / "sign-in-state.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert USER.encode() not in state_file.read_bytes()


def test_a_new_password_on_stdin_lifts_a_rejection(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    code, _, _ = _now(_account_args(fake), "not the password", monkeypatch, tmp_path)
    assert code == glance.EXIT_CREDENTIALS
    clock.advance(timedelta(minutes=5))
    code, out, _ = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    assert out.startswith("120 mg/dL")


def test_a_lock_makes_twenty_runs_wait_then_a_run_after_the_hour_signs_in_once(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _saved_account(tmp_path, monkeypatch)
    fake.lock_account(Region.US, USER)
    code, _, err = _saved_now(fake, monkeypatch, tmp_path)
    assert code == glance.EXIT_LOCKED
    until = (NOW + timedelta(hours=1)).astimezone().strftime("%H:%M")
    assert f"Dexcom locked the account: try again after {until} (in 60 min)" in err
    tried = _sign_ins(fake)
    for _ in range(20):
        clock.advance(timedelta(minutes=2, seconds=50))  # 20 runs within the hour
        code, out, err = _saved_now(fake, monkeypatch, tmp_path)
        assert (code, out) == (glance.EXIT_LOCKED, "")
        assert f"try again after {until}" in err
    assert _sign_ins(fake) == tried
    clock.set(NOW + timedelta(hours=1))
    fake.publish(Region.US, USER, Reading(clock.now() - timedelta(minutes=1), 120, Trend.FLAT))
    code, out, err = _saved_now(fake, monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert out.startswith("120 mg/dL")
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # the one sign-in after the lock


def test_a_second_run_within_five_minutes_of_a_sign_in_exits_7_and_says_when(
    fake: FakeShare, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.publish(Region.US, USER, Reading(NOW - timedelta(minutes=1), 120, Trend.FLAT))
    assert _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)[0] == 0
    clock.advance(timedelta(minutes=1))
    code, out, err = _now(_account_args(fake), PASSWORD, monkeypatch, tmp_path)
    when = (NOW + timedelta(minutes=5)).astimezone().strftime("%H:%M:%S")
    assert (code, out) == (glance.EXIT_RATE_LIMITED, "")
    assert f"try again after {when} (in 240 s)" in err
    assert _sign_ins(fake) == 2  # the first run's Authenticate + LoginById only


class _OffsetClock:
    """The computer's clock: the fake's (Share's) plus an offset."""

    def __init__(self, share: ManualClock, offset: timedelta) -> None:
        self._share, self._offset = share, offset

    def now(self) -> datetime:
        return self._share.now() + self._offset


TIME_FAULTS = {
    "a reading a year ahead": (timedelta(0), Fault.FUTURE_READING),
    "an answer dated 2001": (timedelta(0), Fault.LYING_DATE),
    "the computer an hour behind": (timedelta(hours=-1), None),
    "the computer an hour ahead": (timedelta(hours=1), None),
}


@pytest.mark.parametrize(("offset", "fault"), TIME_FAULTS.values(), ids=TIME_FAULTS.keys())
def test_now_shows_the_real_reading_with_its_true_age_whatever_the_clocks_say(
    fake: FakeShare,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    offset: timedelta,
    fault: Fault | None,
) -> None:
    monkeypatch.setattr(glance, "SystemClock", lambda: _OffsetClock(clock, offset))
    fake.publish(Region.US, USER, Reading(NOW - timedelta(seconds=65), 45, Trend.SINGLE_DOWN))
    if fault is not None:
        fake.inject_fault(fault, count=1)  # the first answer (the read, for a future reading)
    code, out, err = _now([*_account_args(fake), "--json"], PASSWORD, monkeypatch, tmp_path)
    assert code == 0
    refused = "refused 1 reading(s) stamped up to 31536000 s after Share's now"
    assert [line for line in err.splitlines() if refused not in line] == []
    data = json.loads(out)
    assert data["value_mgdl"] == 45
    assert data["age_s"] == 65
    assert data["freshness"] == "fresh"
