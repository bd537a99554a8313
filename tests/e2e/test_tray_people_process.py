"""The real tray app following three people on one real fake Share (two regions): each account's
budget holds, and locking one account through the control channel stops only that person."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import requests
from tests.support.env_keyring import entries_environment
from tests.support.processes import (
    CGM_TRAY,
    CONTROL_TIMEOUT_S,
    START_TIMEOUT_S,
    Process,
    VirtualClock,
    is_event,
    isolated_env,
    qt_complaints,
    spawn,
)
from tests.support.xdesktop import is_range_update

from cgmtray.fakeshare.demo import DEMO_FAMILY, DEMO_PASSWORD
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ
from cgmtray.storage import people
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.paths import app_paths
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.settings import Settings, save_settings

pytestmark = pytest.mark.e2e

#: Real seconds, bounds on a hang only: the three first readings; a request to the control port.
FIRST_READINGS_S: Final = 90.0
#: Virtual time each phase lets pass (30 real seconds at the e2e clock's speed of 240).
PHASE: Final = timedelta(hours=2)
#: A reading fetched just before the lock may still land: Mia's history stops within this.
SETTLE: Final = timedelta(minutes=15)


class Fake:
    """`cgm-tray fake-share` serving the demo family (Sam and Mia on us, Alex on ous)."""

    def __init__(self, process: Process, lines: list[str]) -> None:
        self.process = process
        self.urls = {"us": lines[0]}
        self.control = next(line for line in lines if line.startswith("control: "))[9:]
        for line in lines:
            if line.startswith("ous: "):
                self.urls["ous"] = line.removeprefix("ous: ")
        self.http = requests.Session()

    def get(self, name: str, **params: str) -> Any:
        answer = self.http.get(self.control + name, params=params, timeout=CONTROL_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, name: str, body: dict[str, object]) -> Any:
        answer = self.http.post(self.control + name, json=body, timeout=CONTROL_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def now(self) -> datetime:
        return datetime.fromisoformat(self.get("now")["now"])

    def requests_since(self, since: datetime) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.get("counters", since=since.isoformat())["log"]
        return log

    def readings_between(self, region: str, username: str, since: datetime, until: datetime) -> int:
        found = self.get(
            "readings",
            username=username,
            region=region,
            since=since.isoformat(),
            until=until.isoformat(),
        )
        return len(found["readings"])


def _count(log: list[dict[str, Any]], region: str, *endpoints: str) -> int:
    return sum(1 for r in log if r["region"] == region and r["endpoint"] in endpoints)


def _family(fake: Fake) -> Settings:
    chosen: list[Person] = []
    for member in DEMO_FAMILY:
        region = member.region.value
        source = ShareSource(region, member.username, fake.urls[region])
        person = people.new_person(chosen, source, name=member.name)
        chosen.append(dataclasses.replace(person, label=member.label))
    return Settings(people=tuple(chosen))


def _newest(path: Path) -> datetime | None:
    with HistoryStore(path, read_only=True) as store:
        return store.newest_time()


def test_three_people_on_one_fake_keep_their_budgets_and_a_lock_stops_only_its_person(
    tmp_path: Path, clock: VirtualClock
) -> None:
    env = isolated_env(tmp_path / "home")
    times = ["--speed", str(clock.speed), "--clock-epoch", clock.epoch.isoformat()]
    processes: list[Process] = []
    try:
        served = spawn("fake-share", [*CGM_TRAY, "fake-share", *times], env)
        processes.append(served)
        lines = served.stdout.wait_lines(6, timeout=START_TIMEOUT_S)
        assert any(line.startswith("family: ") for line in lines), lines
        fake = Fake(served, lines)
        settings = _family(fake)
        basedir = tmp_path / "base"
        files = app_paths(basedir)
        files.settings_file.parent.mkdir(parents=True, exist_ok=True)
        save_settings(settings, files.settings_file)
        keyring = {f"{m.region.value}:{m.username}": DEMO_PASSWORD for m in DEMO_FAMILY}
        argv = [*CGM_TRAY, "--basedir", str(basedir), "--log-json", *times]
        app = spawn("cgm-tray", argv, {**env, **entries_environment(keyring)})
        processes.append(app)
        started = fake.now()
        after = 0
        for _person in DEMO_FAMILY:
            index, _event = app.stderr.wait_for(
                is_range_update, timeout=FIRST_READINGS_S, start=after
            )
            after = index + 1
        starts = [e for e in app.stderr.events if is_event("person.started")(e)]
        assert len(starts) == len(DEMO_FAMILY)
        assert not any(e.get("held") for e in starts), "a person started without a password"
        assert all("Sam" not in str(e) and "Mia" not in str(e) for e in app.stderr.events)

        # Two hours of the family's day: every account within its budget.
        phase = fake.now()
        app.stderr.pass_time(clock.real_seconds(PHASE))
        now = fake.now()
        log = fake.requests_since(phase)
        per_region = {"us": ("demo", "demo-mia"), "ous": ("demo-alex",)}
        for region, usernames in per_region.items():
            readings = sum(fake.readings_between(region, u, phase, now) for u in usernames)
            reads = _count(log, region, ENDPOINT_READ)
            assert readings >= 20 * len(usernames)
            assert reads <= 1.3 * readings, (region, reads, readings)
            whole = fake.requests_since(started)
            # One sign-in per account (by name, then by id) in the whole run: far under two a day.
            assert _count(whole, region, ENDPOINT_AUTHENTICATE) <= len(usernames)
            assert _count(whole, region, ENDPOINT_LOGIN_BY_ID) <= 2 * len(usernames)

        # Mia's account is locked (and the us sessions end, so each must sign in again).
        fake.post("lock", {"username": "demo-mia", "region": "us"})
        fake.post("expire-sessions", {"region": "us"})
        locked_at = fake.now()
        app.stderr.pass_time(clock.real_seconds(PHASE))
        now = fake.now()
        stores = {p.name: basedir_path(files.data_dir, p) for p in settings.people}
        newest = {name: _newest(path) for name, path in stores.items()}
        assert newest["Mia"] is not None
        assert newest["Mia"] < locked_at + SETTLE, "Mia's readings went on after the lock"
        for name in ("Sam", "Alex"):
            seen = newest[name]
            assert seen is not None
            assert seen > now - timedelta(minutes=20), f"{name} stopped updating"
        # After the lock, us requests are Sam's alone: about one read per reading of his.
        quiet = locked_at + SETTLE
        log = fake.requests_since(quiet)
        sams = fake.readings_between("us", "demo", quiet, now)
        assert _count(log, "us", ENDPOINT_READ) <= 1.3 * sams
        assert _count(log, "us", ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID) == 0
        assert app.exited() is None
    finally:
        for process in reversed(processes):
            process.cleanup()
    complaints = [event for process in processes for event in qt_complaints(process)]
    assert complaints == []


def basedir_path(data_dir: Path, person: Person) -> Path:
    """Where the app keeps `person`'s history."""
    return data_dir / person.history_file
