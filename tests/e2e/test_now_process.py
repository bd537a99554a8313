"""The real `cgm-tray` processes: `now --demo --json` headless, and `now` against `fake-share`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CGM_TRAY = [sys.executable, "-m", "cgmtray"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def _headless_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / ".local" / "share")
    return env


@pytest.fixture
def fake_share_process(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    process = subprocess.Popen(
        [*CGM_TRAY, "fake-share", "--account", "dave:pa55-word!"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_headless_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_now_demo_json_on_a_machine_with_no_display(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CGM_TRAY, "now", "--demo", "--json", "--basedir", str(tmp_path / "base")],
        capture_output=True,
        text=True,
        env=_headless_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"value_mgdl", "mmol", "trend", "arrow", "time", "age_s"}
    assert "PySide6" not in result.stderr


def test_fake_share_prints_its_url_first_and_now_reads_from_it(
    fake_share_process: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, _ = fake_share_process
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/ShareWebServices/Services/")
    result = subprocess.run(
        [
            *CGM_TRAY,
            "now",
            "--basedir",
            str(tmp_path / "base"),
            "--share-url",
            url,
            "--username",
            "dave",
            "--password-stdin",
            "--log-json",
        ],
        input="pa55-word!\n",
        capture_output=True,
        text=True,
        env=_headless_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "mg/dL" in result.stdout or "LOW" in result.stdout or "HIGH" in result.stdout
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"share.request", "share.login"} <= {e["event"] for e in events}
    assert all("ts" in e for e in events)
    assert "pa55-word!" not in result.stderr
    assert "dave" not in result.stderr


def test_two_now_processes_at_the_same_instant_make_at_most_one_sign_in(tmp_path: Path) -> None:
    # A real cross-process check of the shared sign-in ledger (storage/sign_in_state.py): both
    # runs use one data folder; the check-and-reserve is under an exclusive file lock.
    from cgmtray.domain.clock import SystemClock
    from cgmtray.fakeshare.server import FakeShare
    from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region

    with FakeShare(SystemClock()) as fake:
        fake.add_account(Region.US, "erin", "pa55-word!")
        command = [
            *CGM_TRAY,
            "now",
            "--basedir",
            str(tmp_path / "base"),
            "--share-url",
            fake.base_url(Region.US),
            "--username",
            "erin",
            "--password-stdin",
        ]
        runs = [
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_headless_env(tmp_path),
            )
            for _ in range(2)
        ]
        results = [run.communicate("pa55-word!\n", timeout=60) for run in runs]
        codes = sorted(run.returncode for run in runs)
        authenticated = fake.counters.count(ENDPOINT_AUTHENTICATE)
        logged_in = fake.counters.count(ENDPOINT_LOGIN_BY_ID)
    assert (authenticated, logged_in) == (1, 1), results
    assert codes == [6, 7], results  # the winner finds no readings; the other waits its turn
    deferred = next(err for run, (_, err) in zip(runs, results, strict=True) if run.returncode == 7)
    assert "try again after" in deferred


def test_now_all_reads_each_person_on_their_own_account_and_reports_a_rejection_on_its_line(
    tmp_path: Path,
) -> None:
    # Two people in the settings, each with their own keyring entry (the environment keyring of
    # the tests): Sam's password is right, Mia's keyring holds an old one.
    from datetime import UTC, datetime, timedelta

    from tests.support.env_keyring import entries_environment

    from cgmtray.domain.clock import SystemClock
    from cgmtray.domain.readings import Reading, Trend
    from cgmtray.fakeshare.server import FakeShare
    from cgmtray.fakeshare.service import account_key
    from cgmtray.share.regions import Region
    from cgmtray.storage import paths as app_paths
    from cgmtray.storage.credentials import credential_key
    from cgmtray.storage.people import ShareSource, new_person
    from cgmtray.storage.settings import Settings, save_settings

    with FakeShare(SystemClock()) as fake:
        fake.add_account(Region.US, "sam", "sam-pa55-word!")
        fake.add_account(Region.OUS, "mia", "mia-pa55-word!")
        fake.publish(
            Region.US, "sam", Reading(datetime.now(UTC) - timedelta(minutes=2), 142, Trend.FLAT)
        )
        sam = new_person((), ShareSource("us", "sam", fake.base_url(Region.US)), name="Sam")
        mia = new_person((sam,), ShareSource("ous", "mia", fake.base_url(Region.OUS)), name="Mia")
        paths = app_paths.ensure(app_paths.app_paths(tmp_path / "base"))
        save_settings(Settings(people=(sam, mia)), paths.settings_file)
        env = _headless_env(tmp_path)
        env.update(
            entries_environment(
                {
                    credential_key("us", "sam"): "sam-pa55-word!",
                    credential_key("ous", "mia"): "mia-old-pa55-word!",
                }
            )
        )
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        result = subprocess.run(
            [*CGM_TRAY, "now", "--all", "--basedir", str(tmp_path / "base"), "--debug"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        sam_reads = fake.counters.reads(Region.US, account=account_key("sam"))
        mia_sign_ins = fake.counters.sign_ins(Region.OUS, account=account_key("mia"))
    assert result.returncode == 3, result.stderr  # credentials rejected: the worst of the two
    sam_line, mia_line = result.stdout.splitlines()
    assert sam_line.startswith("Sam · 142 mg/dL → steady, ")
    assert mia_line.startswith("Mia · ")
    assert "change it in Settings" in mia_line
    assert (sam_reads, mia_sign_ins) == (1, 1)
    for secret in ("sam-pa55-word!", "mia-old-pa55-word!", fake.account_id(Region.US, "sam")):
        assert secret not in result.stdout + result.stderr
