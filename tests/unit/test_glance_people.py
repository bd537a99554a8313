"""`cgm-tray now --person NAME` and `--all`: two people on one fake over loopback."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest
from tests.support.memory_keyring import MemoryKeyring as DictKeyring

from cgmtray import cli, glance
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.fakeshare.service import account_key
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage.credentials import SERVICE, credential_key
from cgmtray.storage.people import ShareSource, new_person
from cgmtray.storage.settings import Settings, save_settings

NOW = datetime(2026, 11, 21, 12, 0, 7, tzinfo=UTC)
SAM, SAM_PASSWORD = "sam@example.com", "sam's long passphrase"
MIA, MIA_PASSWORD = "mia.parent", "mia's other passphrase"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The fake's clock is `now`'s too: the shared sign-in budget counts on it."""
    manual = ManualClock(NOW)
    monkeypatch.setattr(glance, "SystemClock", lambda: manual)
    return manual


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    """Sam in the US and Mia outside it, each with two readings five minutes apart."""
    with FakeShare(clock, lockout_after=2) as server:
        server.add_account(Region.US, SAM, SAM_PASSWORD)
        server.add_account(Region.OUS, MIA, MIA_PASSWORD)
        for minutes, sam, mia in ((7, 139, 104), (2, 142, 98)):
            at = NOW - timedelta(minutes=minutes, seconds=3)
            server.publish(Region.US, SAM, Reading(at, sam, Trend.FLAT))
            server.publish(Region.OUS, MIA, Reading(at, mia, Trend.FORTY_FIVE_DOWN))
        yield server


@pytest.fixture
def backend(fake: FakeShare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DictKeyring:
    """Settings with Sam then Mia (label "MB"), each password in the keyring under its account."""
    sam = new_person((), ShareSource("us", SAM, fake.base_url(Region.US)), name="Sam")
    mia = new_person((sam,), ShareSource("ous", MIA, fake.base_url(Region.OUS)), name="Mia")
    mia = replace(mia, label="MB")
    paths = app_paths.ensure(app_paths.app_paths(tmp_path))
    save_settings(Settings(people=(sam, mia)), paths.settings_file)
    keys = DictKeyring()
    keys.entries[(SERVICE, credential_key("us", SAM))] = SAM_PASSWORD
    keys.entries[(SERVICE, credential_key("ous", MIA))] = MIA_PASSWORD
    monkeypatch.setattr(keyring, "get_keyring", lambda: keys)
    return keys


def _now(args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = cli.main(["now", "--basedir", str(tmp_path), *args])
    return code, out.getvalue(), err.getvalue()


def _requests(fake: FakeShare, region: Region, username: str) -> int:
    return fake.counters.sign_ins(region, account=account_key(username)) + fake.counters.reads(
        region, account=account_key(username)
    )


def _no_secret(text: str, fake: FakeShare) -> None:
    for secret in (
        SAM_PASSWORD,
        MIA_PASSWORD,
        SAM,
        MIA,
        fake.account_id(Region.US, SAM),
        fake.account_id(Region.OUS, MIA),
    ):
        assert secret not in text


SAM_LINE = "142 mg/dL → steady (+3), 2 min ago"
MIA_LINE = "98 mg/dL ↘ falling slightly (-6), 2 min ago"


def test_without_an_option_the_first_person_is_read_as_before(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _now([], monkeypatch, tmp_path) == (0, SAM_LINE + "\n", "")
    assert _requests(fake, Region.OUS, MIA) == 0


@pytest.mark.parametrize("name", ["Mia", "mIA", " mia "])
def test_person_by_name_reads_only_their_account(
    name: str,
    fake: FakeShare,
    backend: DictKeyring,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    code, out, err = _now(["--person", name], monkeypatch, tmp_path)
    assert (code, out, err) == (0, MIA_LINE + "\n", "")
    assert _requests(fake, Region.US, SAM) == 0
    assert fake.counters.reads(Region.OUS, account=account_key(MIA)) == 1


def test_person_by_label_as_json(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(["--person", "mb", "--json"], monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["value_mgdl"], data["arrow"], data["delta_mgdl"]) == (98, "↘", -6)
    assert _requests(fake, Region.US, SAM) == 0


def test_an_unknown_person_is_a_usage_error_naming_everyone(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(["--person", "Zoe"], monkeypatch, tmp_path)
    assert (code, out) == (glance.EXIT_USAGE, "")
    assert err.count("\n") == 1
    assert "Zoe" in err
    assert "Sam, Mia" in err
    assert fake.counters.sign_ins() + fake.counters.reads() == 0
    code, _, err = _now(["--person", "Sa"], monkeypatch, tmp_path)  # a whole name, not a part
    assert code == glance.EXIT_USAGE


def test_person_with_the_options_of_another_account_is_refused(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(
        ["--person", "Sam", "--username", MIA, "--password-stdin"], monkeypatch, tmp_path
    )
    assert (code, out) == (glance.EXIT_USAGE, "")
    assert "--person" in err
    assert fake.counters.sign_ins() == 0


def test_all_prints_one_line_per_person_in_order(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(["--all"], monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert out == f"Sam · {SAM_LINE}\nMia · {MIA_LINE}\n"


def test_all_as_json_with_one_account_locked_reads_the_other_and_exits_4(
    fake: FakeShare,
    backend: DictKeyring,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fake.lock_account(Region.OUS, MIA)
    code, out, err = _now(["--all", "--json"], monkeypatch, tmp_path)
    assert code == glance.EXIT_LOCKED
    sam, mia = json.loads(out)
    assert (sam["name"], sam["label"], sam["exit_code"]) == ("Sam", "S", 0)
    assert (sam["value_mgdl"], sam["mmol"], sam["trend"], sam["age_s"]) == (142, 7.9, "Flat", 123)
    assert "error" not in sam
    assert (mia["name"], mia["label"], mia["exit_code"]) == ("Mia", "MB", glance.EXIT_LOCKED)
    assert "Dexcom locked the account: try again after" in mia["error"]
    assert "value_mgdl" not in mia
    _no_secret(out + err, fake)

    # The lock is remembered for Mia alone: the next run asks nothing of her account.
    mia_requests = _requests(fake, Region.OUS, MIA)
    clock.advance(timedelta(minutes=5))
    code, out, _ = _now(["--all"], monkeypatch, tmp_path)
    assert code == glance.EXIT_LOCKED
    sam_line, mia_line = out.splitlines()
    assert sam_line.startswith("Sam · 142 mg/dL")
    assert mia_line.startswith("Mia · Dexcom locked the account: try again after")
    assert _requests(fake, Region.OUS, MIA) == mia_requests
    assert fake.counters.reads(Region.US, account=account_key(SAM)) == 2


def test_all_reports_a_rejected_password_before_a_lock_and_never_the_password(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend.entries[(SERVICE, credential_key("us", SAM))] = "sam's old passphrase"
    fake.lock_account(Region.OUS, MIA)
    code, out, err = _now(["--all"], monkeypatch, tmp_path)
    assert code == glance.EXIT_CREDENTIALS  # the worst: only a new password fixes it
    sam_line, mia_line = out.splitlines()
    assert sam_line.startswith("Sam · ")
    assert "change it in Settings" in sam_line
    assert mia_line.startswith("Mia · Dexcom locked the account")
    assert "sam's old passphrase" not in out + err
    _no_secret(out + err, fake)


def test_all_with_no_password_saved_for_one_person_reads_the_other(
    fake: FakeShare, backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    del backend.entries[(SERVICE, credential_key("us", SAM))]
    code, out, _ = _now(["--all"], monkeypatch, tmp_path)
    assert code == glance.EXIT_USAGE
    sam_line, mia_line = out.splitlines()
    assert sam_line.startswith("Sam · no password is saved in the system keyring")
    assert mia_line == f"Mia · {MIA_LINE}"
    assert _requests(fake, Region.US, SAM) == 0


@pytest.mark.parametrize(
    "extra", [["--username", SAM, "--password-stdin"], ["--region", "us"], ["--person", "Sam"]]
)
def test_all_refuses_the_options_of_one_account(
    extra: list[str], backend: DictKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    try:
        code, out, _ = _now(["--all", *extra], monkeypatch, tmp_path)
    except SystemExit as stopped:  # argparse: --all and --person exclude each other
        code, out = int(str(stopped.code)), ""
    assert (code, out) == (glance.EXIT_USAGE, "")


def test_all_with_nobody_set_up_is_a_usage_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(["--all"], monkeypatch, tmp_path)
    assert (code, out) == (glance.EXIT_USAGE, "")
    assert "no Dexcom account is set up" in err


def test_the_demo_family_with_all_and_one_of_them_by_label(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _now(["--demo", "--all", "--json"], monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    family = json.loads(out)
    assert [(p["name"], p["label"]) for p in family] == [("Sam", "S"), ("Mia", "M"), ("Alex", "A")]
    assert all(p["age_s"] < 6 * 60 for p in family)
    code, out, err = _now(["--demo", "--person", "a"], monkeypatch, tmp_path)
    assert (code, err) == (0, "")
    assert "mg/dL" in out or "LOW" in out or "HIGH" in out
