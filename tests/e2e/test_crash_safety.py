"""Crash safety: the app, the settings store and the history store killed with SIGKILL mid-write,
again and again; afterwards the files are intact and nothing committed is lost."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from tests.support.processes import Event, FakeShareProcess, Process, Rig, TrayProcess, spawn

from cgmtray.domain.alert_config import AlertKind, AlertSettings, KindConfig
from cgmtray.domain.units import Unit
from cgmtray.share.regions import ENDPOINT_READ
from cgmtray.storage.history import HistoryStore, from_epoch_ms
from cgmtray.storage.paths import app_paths
from cgmtray.storage.settings import (
    LoadResult,
    Settings,
    load_settings,
    one_person_settings,
    save_settings,
)

pytestmark = pytest.mark.e2e

INTERVAL: Final = timedelta(minutes=5)
UPLOAD_LAG: Final = timedelta(seconds=30)
#: Real seconds: a process's start to the moment awaited, and a killed process's end.
MOMENT_S: Final = 30.0
DEAD_S: Final = 10.0
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------------


def _kill(process: Process) -> None:
    """SIGKILL: no handler, no cleanup, no flush; then its output to the end."""
    process.popen.send_signal(signal.SIGKILL)
    assert process.popen.wait(timeout=DEAD_S) == -signal.SIGKILL
    process.stdout.join(DEAD_S)
    process.stderr.join(DEAD_S)
    assert process.stdout.ended
    assert process.stderr.ended


def _child(name: str, script: str, *args: str, env: dict[str, str]) -> Process:
    return spawn(name, [sys.executable, "-c", script, *args], env)


# --- the settings file ---------------------------------------------------------------------------

#: Saves three settings files' contents in turn, forever, saying so after each save returns.
SETTINGS_WRITER: Final = r"""
import sys
from pathlib import Path
from cgmtray.storage.settings import load_settings, save_settings

target, *sources = (Path(arg) for arg in sys.argv[1:])
choices = [load_settings(source).settings for source in sources]
count = 0
while True:
    save_settings(choices[count % len(choices)], target)
    print(f"saved {count} {count % len(choices)}", flush=True)
    count += 1
"""


def _three_settings() -> list[Settings]:
    low = KindConfig(True, 75, timedelta(minutes=10), True, timedelta(minutes=30))
    return [
        one_person_settings(region="us", username="first@example.com", retention_days=30),
        one_person_settings(
            region="ous",
            username="+441234567890",
            unit=Unit.MMOL,
            alerts=AlertSettings().with_kind(AlertKind.LOW, low),
            start_at_login=True,
            retention_days=90,
        ),
        one_person_settings(region="jp", username="third", retention_days=3650),
    ]


@pytest.mark.parametrize("saves_before_kill", [0, 1, 2, 7, 40, 150])
def test_settings_saved_in_a_loop_and_killed_load_as_the_last_or_the_next_save(
    tmp_path: Path, saves_before_kill: int
) -> None:
    choices = _three_settings()
    sources = [tmp_path / f"choice-{k}.toml" for k in range(len(choices))]
    for settings, source in zip(choices, sources, strict=True):
        save_settings(settings, source)
    target = tmp_path / "config" / "settings.toml"
    env = {"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    writer = _child("settings-writer", SETTINGS_WRITER, str(target), *map(str, sources), env=env)
    try:
        lines = writer.stdout.wait_lines(saves_before_kill + 1, timeout=MOMENT_S)
        assert len(lines) > saves_before_kill, writer.stderr.lines
        _kill(writer)
    finally:
        writer.cleanup()

    last = int(writer.stdout.lines[-1].split()[1])
    # The last save that returned, or the one under way when the kill came (if its rename was
    # done): never an older one, never a mix, never an unreadable file.
    allowed = [choices[last % 3], choices[(last + 1) % 3]]
    loaded = load_settings(target)
    assert loaded.problem is None
    assert loaded.backup is None
    assert loaded.settings in allowed
    assert loaded == LoadResult(loaded.settings)
    # A temp file left by the kill is never read as the settings, nor kept as a backup.
    leftovers = [p.name for p in target.parent.iterdir() if p != target]
    assert all(name.startswith(".settings.toml.") and name.endswith(".tmp") for name in leftovers)


# --- the history store ---------------------------------------------------------------------------

#: Adds a day of readings per transaction after the newest stored, forever, saying what it
#: committed after each `add` returns (each batch is new: 288 readings, 5 minutes apart).
HISTORY_WRITER: Final = r"""
import sys
from datetime import UTC, datetime, timedelta
from cgmtray.domain.readings import Reading, Trend
from cgmtray.storage.history import HistoryStore, to_epoch_ms

store = HistoryStore(sys.argv[1])
step = timedelta(minutes=5)
newest = store.newest_time() or datetime(2020, 1, 1, tzinfo=UTC)
print("open", flush=True)
while True:
    batch = [Reading(newest + k * step, 40 + (k * 7) % 361, Trend(k % 10)) for k in range(1, 289)]
    assert store.add(batch) == len(batch)
    newest = batch[-1].time
    print(f"committed {to_epoch_ms(batch[0].time)} {to_epoch_ms(newest)}", flush=True)
"""


def test_history_inserts_killed_again_and_again_keep_every_committed_reading(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "history.sqlite3"
    db.parent.mkdir()
    env = {"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    committed: list[tuple[datetime, datetime]] = []
    for round_number, commits_before_kill in enumerate([0, 1, 3, 12, 60, 250]):
        writer = _child(f"history-writer-{round_number}", HISTORY_WRITER, str(db), env=env)
        try:
            lines = writer.stdout.wait_lines(commits_before_kill + 1, timeout=MOMENT_S)
            assert len(lines) > commits_before_kill, writer.stderr.lines
            _kill(writer)
        finally:
            writer.cleanup()
        assert writer.stdout.lines[0] == "open", writer.stderr.lines
        for line in writer.stdout.lines[1:]:
            _word, first_ms, last_ms = line.split()
            committed.append((from_epoch_ms(int(first_ms)), from_epoch_ms(int(last_ms))))

        with HistoryStore(db) as store:  # as the app would reopen it
            assert store.integrity_ok(), f"round {round_number}"
            for first, last in committed:
                assert len(store.range(first, last + timedelta(milliseconds=1))) == 288
            # At most the one batch under way when the kill came is there beyond those.
            extra = store.count() - 288 * len(committed)
            assert extra in (0, 288), f"round {round_number}: {extra} readings unaccounted for"
    assert len(committed) >= 1 + 3 + 12 + 60 + 250


# --- the app -------------------------------------------------------------------------------------


def _is_read_answered(event: Event) -> bool:
    return (
        event.get("event") == "share.request"
        and event.get("endpoint") == ENDPOINT_READ
        and event.get("status") == 200
    )


def _is(name: str) -> Callable[[Event], bool]:
    return lambda event: event.get("event") == name


def _nth(predicate: Callable[[Event], bool], n: int) -> Callable[[list[Event]], int | None]:
    """The index of the n-th (1-based) event that matches, once there is one."""

    def find(events: list[Event]) -> int | None:
        seen = 0
        for index, event in enumerate(events):
            if predicate(event):
                seen += 1
                if seen == n:
                    return index
        return None

    return find


def _after(
    first: Callable[[list[Event]], int | None], then: Callable[[Event], bool]
) -> Callable[[list[Event]], int | None]:
    """The index of the first `then` event after the event `first` finds."""

    def find(events: list[Event]) -> int | None:
        start = first(events)
        if start is None:
            return None
        return next((i for i in range(start + 1, len(events)) if then(events[i])), None)

    return find


@dataclass(frozen=True)
class Moment:
    """When to kill the app: a description and a finder over its log events."""

    what: str
    find: Callable[[list[Event]], int | None]


#: Six kills, each at another point of the app's life; the first on an empty history (its first
#: read is the 24 h backfill: the kill lands while the 288 readings are being written).
MOMENTS: Final = [
    Moment("the 24 h backfill was just answered", _nth(_is_read_answered, 1)),
    Moment("a backfill was just committed", _nth(_is("history.stored"), 1)),
    Moment("the app has just started", _nth(_is("app.started"), 1)),
    Moment("the sign-in has just succeeded", _nth(_is("share.login"), 1)),
    Moment("a live read was just answered", _nth(_is_read_answered, 2)),
    Moment(
        "a live reading was just shown",
        _after(_nth(_is("history.stored"), 2), _is("tray.updated")),
    ),
]


class History:
    """What the app reported as committed, checked against its store after every kill."""

    def __init__(self, fake: FakeShareProcess, tray_history: Path) -> None:
        self._fake = fake
        self._path = tray_history
        self.committed: set[datetime] = set()

    def check(self, tray: TrayProcess, when: str) -> None:
        for event in tray.log.events:
            if event.get("event") != "history.stored":
                continue
            oldest = datetime.fromisoformat(event["oldest"])
            newest = datetime.fromisoformat(event["newest"])
            rows = self._fake.held_readings(oldest, newest)
            held = {datetime.fromisoformat(r["time"]) for r in rows}
            assert len(held) == event["received"], when
            self.committed |= held
        with HistoryStore(self._path) as store:  # as the app's next start opens it
            assert store.integrity_ok(), when
            kept = {r.time for r in store.range(EARLIEST, LATEST)}
        missing = self.committed - kept
        assert not missing, f"{when}: {len(missing)} committed readings lost"


def _seen(tray: TrayProcess, moment: Moment) -> Callable[[], bool]:
    return lambda: moment.find(tray.log.events) is not None


def test_the_app_killed_at_six_moments_keeps_its_history_and_settings(rig: Rig) -> None:
    clock = rig.clock
    fake = rig.start_fake()
    first = (clock.epoch - timedelta(hours=24)).replace(microsecond=0)
    times = [first + k * INTERVAL for k in range(27 * 12)]  # 24 h past, 3 h to come
    fake.publish([(t, 60 + (k * 11) % 300, t + UPLOAD_LAG) for k, t in enumerate(times)])
    paths = app_paths(rig.basedir)
    saved = one_person_settings(
        region="us", username=rig.username, unit=Unit.MMOL, retention_days=400
    )
    save_settings(saved, paths.settings_file)
    history = History(fake, paths.history_db)

    for number, moment in enumerate(MOMENTS, start=1):
        tray = rig.start_tray(fake, name=f"tray-{number}")
        found = tray.log.wait_until(_seen(tray, moment), MOMENT_S)
        assert found, f"kill {number}: never saw {moment.what}; last: {tray.log.events[-5:]}"
        _kill(tray.process)
        when = f"after kill {number} ({moment.what})"
        history.check(tray, when)
        assert load_settings(paths.settings_file) == LoadResult(saved), when

    tray = rig.start_tray(fake, name="tray-after")
    tray.log.wait_event("history.stored", timeout=MOMENT_S)
    code, took = tray.process.terminate(timeout=30)  # a bound on a hang only
    assert code == 0, f"exit {code} after {took:.1f} s"
    history.check(tray, "after the last, clean run")
    assert load_settings(paths.settings_file) == LoadResult(saved)
    # The kills left no gap: every reading from the first to the last one stored is there.
    oldest, newest = min(history.committed), max(history.committed)
    span = fake.held_readings(oldest, newest)
    with HistoryStore(paths.history_db, read_only=True) as store:
        kept = {r.time for r in store.range(oldest, newest + INTERVAL)}
    assert {datetime.fromisoformat(r["time"]) for r in span} == kept
    assert len(kept) >= 24 * 12
