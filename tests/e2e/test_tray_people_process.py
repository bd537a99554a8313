"""The real tray app following three people on one real fake Share (two regions): each account's
budget holds (the fake counts reads and sign-ins per account), and locking one account through the
control channel stops only that person's requests."""

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
from cgmtray.fakeshare.service import account_key
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID
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

    def per_account(self, since: datetime) -> dict[tuple[str, str], dict[str, int]]:
        """(region, username key) -> that account's reads, sign-ins and requests since `since`."""
        found: dict[str, dict[str, dict[str, int]]] = self.get("counters", since=since.isoformat())[
            "accounts"
        ]
        return {
            (region, key): figures
            for region, accounts in found.items()
            for key, figures in accounts.items()
        }

    def readings_between(self, region: str, username: str, since: datetime, until: datetime) -> int:
        found = self.get(
            "readings",
            username=username,
            region=region,
            since=since.isoformat(),
            until=until.isoformat(),
        )
        return len(found["readings"])


#: An account no request was for.
NOTHING: Final = {"reads": 0, "sign_ins": 0, "failed_sign_ins": 0, "total": 0}


def _count(log: list[dict[str, Any]], region: str, account: str, *endpoints: str) -> int:
    """Requests of the log for one account (region and username key) to `endpoints`."""
    return sum(
        1
        for r in log
        if r["region"] == region and r["account"] == account and r["endpoint"] in endpoints
    )


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
        counted = fake.per_account(phase)
        whole_log = fake.requests_since(started)
        whole = fake.per_account(started)
        for member in DEMO_FAMILY:
            region, key = member.region.value, account_key(member.username)
            readings = fake.readings_between(region, member.username, phase, now)
            reads = counted.get((region, key), NOTHING)["reads"]
            assert readings >= 20, (member.name, readings)
            assert 0 < reads <= 1.3 * readings, (member.name, reads, readings)
            # One sign-in (by name, then by id) per account in the whole run: far under two a
            # simulated day.
            assert _count(whole_log, region, key, ENDPOINT_AUTHENTICATE) <= 1, member.name
            assert _count(whole_log, region, key, ENDPOINT_LOGIN_BY_ID) <= 2, member.name
            assert whole[(region, key)]["sign_ins"] <= 3, (member.name, whole[(region, key)])
        assert not any(r["account"] is None for r in whole_log), "a request for nobody"

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
        # Per account after the lock: Mia tried to sign in once at most (refused, not retried),
        # then her count stays flat; Sam and Alex read about once per reading, no sign-in.
        mia = ("us", account_key("demo-mia"))
        assert fake.per_account(locked_at).get(mia, NOTHING)["sign_ins"] <= 1
        quiet = locked_at + SETTLE
        counted = fake.per_account(quiet)
        assert counted.get(mia, NOTHING)["total"] == 0, counted.get(mia)
        for member in DEMO_FAMILY:
            if member.username == "demo-mia":
                continue
            region, key = member.region.value, account_key(member.username)
            readings = fake.readings_between(region, member.username, quiet, now)
            figures = counted.get((region, key), NOTHING)
            assert 0 < figures["reads"] <= 1.3 * readings, (member.name, figures, readings)
            assert figures["sign_ins"] == 0, (member.name, figures)
        assert app.exited() is None
    finally:
        for process in reversed(processes):
            process.cleanup()
    complaints = [event for process in processes for event in qt_complaints(process)]
    assert complaints == []


def basedir_path(data_dir: Path, person: Person) -> Path:
    """Where the app keeps `person`'s history."""
    return data_dir / person.history_file
