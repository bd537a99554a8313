"""A settings file and history store made by the release before people open as one person."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support import env_keyring
from tests.support.processes import isolated_env

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.clock import SystemClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage import people
from cgmtray.storage.credentials import credential_key
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.settings import SETTINGS_VERSION, LoadResult, load_settings

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "v1"
USERNAME = "sam.parent@example.com"  # tests/fixtures/make_v1_fixture.py
PASSWORD = "fixture-pa55-word!"
READINGS = 400

#: Hang bounds only: a child that neither finishes nor dies within them is a failure.
CHILD_TIMEOUT_S = 120


def _copy_fixture(base: Path) -> app_paths.AppPaths:
    paths = app_paths.ensure(app_paths.app_paths(base))
    shutil.copyfile(FIXTURE / "settings.toml", paths.settings_file)
    shutil.copyfile(FIXTURE / "history.sqlite3", paths.history_db)
    return paths


def _readings(path: Path) -> int:
    with HistoryStore(path, read_only=True) as store:
        return store.count()


def test_cgm_tray_now_reads_the_migrated_person_without_asking_a_password(
    tmp_path: Path,
) -> None:
    paths = _copy_fixture(tmp_path / "base")
    with FakeShare(SystemClock()) as fake:
        fake.add_account(Region.OUS, USERNAME, PASSWORD)
        fake.publish(
            Region.OUS, USERNAME, Reading(datetime.now(UTC) - timedelta(minutes=2), 123, Trend.FLAT)
        )
        env = isolated_env(tmp_path / "home")
        # The keyring holds the password under the key the release before people used.
        env.update(env_keyring.environment(credential_key("ous", USERNAME), PASSWORD))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cgmtray",
                "now",
                "--json",
                "--basedir",
                str(tmp_path / "base"),
                "--share-url",
                fake.base_url(Region.OUS),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    assert result.returncode == 0, result.stderr  # signed in with the keyring's password
    assert json.loads(result.stdout)["value_mgdl"] == 123
    assert PASSWORD not in result.stdout + result.stderr
    assert _readings(paths.history_db) == READINGS


#: Where the child stops itself with SIGKILL during the migration's save.
KILL_POINTS = ("temp-written", "before-rename", "after-rename", "after-save")

_CHILD = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    from cgmtray.storage import people

    point, settings_file = sys.argv[1], pathlib.Path(sys.argv[2])

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_fsync, real_replace = os.fsync, pathlib.Path.replace

    def fsync(fd):
        real_fsync(fd)
        if point == "temp-written":
            die()

    def replace(self, target):
        if point == "before-rename":
            die()
        moved = real_replace(self, target)
        if point == "after-rename":
            die()
        return moved

    os.fsync = fsync
    pathlib.Path.replace = replace
    loaded = people.load(settings_file)
    assert loaded.should_save
    people.save(loaded.settings, settings_file)
    if point == "after-save":
        die()
    """
)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_during_the_migration_loses_nothing(tmp_path: Path, point: str) -> None:
    paths = _copy_fixture(tmp_path / "base")
    v1_bytes = paths.settings_file.read_bytes()
    before = load_settings(paths.settings_file).settings
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, point, str(paths.settings_file)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    after = paths.settings_file.read_bytes()
    reloaded = load_settings(paths.settings_file)
    if after == v1_bytes:  # killed before the rename: the version-1 file, whole
        assert reloaded.should_save  # (migrated again at the next start)
    else:  # the complete version-2 file
        assert f"version = {SETTINGS_VERSION}".encode() in after
        assert reloaded == LoadResult(reloaded.settings)
    assert reloaded.problem is None  # never half a file
    person = reloaded.settings.first_person
    assert len(reloaded.settings.people) == 1
    assert (person.source.region, person.source.username) == ("ous", USERNAME)
    assert person.alerts == before.first_person.alerts
    assert person.history_file == app_paths.HISTORY_DB_NAME
    assert _readings(paths.data_dir / person.history_file) == READINGS

    # The next start finishes the migration.
    people.save(reloaded.settings, paths.settings_file)
    final = load_settings(paths.settings_file)
    assert final == LoadResult(reloaded.settings)
    assert final.settings.first_person.alerts[AlertKind.LOW].threshold == 75
