"""`cgm-tray now`: every outcome a script or status bar sees, against the in-process fake."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cgmtray import cli, glance
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region

NOW = datetime(2026, 11, 21, 12, 0, 7, tzinfo=UTC)
USER = "carol@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    clock = ManualClock(NOW)
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
    code, _, err = _now(args, PASSWORD, monkeypatch, tmp_path)
    assert code == glance.EXIT_USAGE
    assert "loopback" in err


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
