"""Runs a scripted day (bench/soakday.py) against the real `cgm-tray` and `cgm-tray fake-share`
processes on one accelerated clock, and records what happened for the figures
(bench/soakfigures.py). Shared by tests/e2e/test_soak.py and bench/soak.py."""

from __future__ import annotations

import bisect
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from bench.soakday import HISTORY, Act, Day, PlannedReading, Step, readings
from tests.support.processes import (
    PASSWORD,
    START_TIMEOUT_S,
    USERNAME,
    Event,
    FakeShareProcess,
    Rig,
    TrayProcess,
    VirtualClock,
)

from cgmtray.domain.clock import write_offset_file
from cgmtray.share.regions import ENDPOINT_READ
from cgmtray.storage.history import HistoryStore

#: Virtual seconds per real second: the app's 60 s request floor is 0.2 s of real time.
DEFAULT_SPEED: Final = 300.0
#: World time between publishing the day and its start (the app starts and signs in meanwhile).
LEAD: Final = timedelta(minutes=10)
#: Real seconds a quit may take (the app's own bound is 2 s; a loaded machine gets more).
QUIT_TIMEOUT_S: Final = 15.0
#: After the last reading is on Share, the app must have read it within this much world time.
CATCH_UP: Final = timedelta(minutes=20)
#: Real seconds of slack added to every wait derived from world time.
SLACK_S: Final = 20.0

Say = Callable[[str], None]


class WorldClock:
    """World time (the fake's clock: the shared accelerated clock plus the sleeps' jumps) and
    the computer's clock (the tray's: world time plus its own offset, set back by the user).

    Both are kept in offset files the processes re-read (`--clock-file`); the history of
    offsets turns any real moment (a log line's `ts`) into world and computer time.
    """

    def __init__(self, speed: float, epoch: datetime, folder: Path) -> None:
        self.speed = speed
        self.epoch = epoch
        self.world_file = folder / "world-clock.json"
        self.tray_file = folder / "tray-clock.json"
        self._lock = threading.Lock()
        #: (real moment, world offset) and (real moment, computer minus world), oldest first.
        self._world: list[tuple[datetime, timedelta]] = [(epoch - timedelta(days=1), ZERO)]
        self._computer: list[tuple[datetime, timedelta]] = [(epoch - timedelta(days=1), ZERO)]
        self._write()

    @property
    def shared(self) -> VirtualClock:
        return VirtualClock(self.speed, self.epoch)

    def world_at(self, real: datetime) -> datetime:
        return self.epoch + (real - self.epoch) * self.speed + _offset_at(self._world, real)

    def now(self) -> datetime:
        return self.world_at(datetime.now(UTC))

    def of_event(self, event: Event) -> datetime:
        """World time when a log line was written."""
        return self.world_at(_real_ts(event))

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds() / self.speed

    def jump(self, span: timedelta) -> None:
        """World time (and the computer's with it) leaps forward by `span`, from now on."""
        with self._lock:
            self._world.append((datetime.now(UTC), self._world[-1][1] + span))
            self._write()

    def set_computer_back(self, span: timedelta) -> None:
        """The computer's clock is set back by `span` (ahead, for a negative one); the world's
        is not."""
        with self._lock:
            self._computer.append((datetime.now(UTC), self._computer[-1][1] - span))
            self._write()

    def _write(self) -> None:
        world = self._world[-1][1]
        write_offset_file(self.world_file, world)
        write_offset_file(self.tray_file, world + self._computer[-1][1])


ZERO: Final = timedelta(0)


def _offset_at(history: list[tuple[datetime, timedelta]], real: datetime) -> timedelta:
    index = bisect.bisect_right([moment for moment, _offset in history], real) - 1
    return history[max(0, index)][1]


def _real_ts(event: Event) -> datetime:
    return datetime.fromisoformat(str(event["ts"]))


@dataclass
class TrayRun:
    """One start of the tray app, from start to quit (or death)."""

    events: list[Event]
    other_lines: list[str]
    exit_code: int | None
    died_early: bool
    #: Everything it wrote to stdout and stderr (for the secrets search).
    printed: str = ""


@dataclass
class Record:
    """Everything the figures are computed from."""

    day: Day
    seed: int
    speed: float
    start: datetime
    clock: WorldClock
    planned: list[PlannedReading]
    runs: list[TrayRun] = field(default_factory=list)
    fake_log: list[dict[str, Any]] = field(default_factory=list)
    fake_exit: int | None = None
    fake_died_early: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[datetime, int] = field(default_factory=dict)
    #: World times at which the person acted (quit the app to start it again).
    user_acts: list[datetime] = field(default_factory=list)
    #: World times of the scripted steps as carried out, with their labels.
    done: list[tuple[datetime, str]] = field(default_factory=list)
    #: What the driver could not do (a wait that timed out, a process that died).
    problems: list[str] = field(default_factory=list)
    real_seconds: float = 0.0
    #: For the secrets search: every password the day used, every id the fake issued, the
    #: app's folder (settings, history, logs, cache).
    passwords: list[str] = field(default_factory=list)
    issued_ids: list[str] = field(default_factory=list)
    app_basedir: Path | None = None


class Driver:
    """Carries out a Day against the processes; `run()` returns the Record."""

    def __init__(
        self, day: Day, workdir: Path, *, seed: int, speed: float, say: Say | None = None
    ) -> None:
        self.day = day
        self.workdir = workdir
        self.seed = seed
        self.speed = speed
        self._say = say or (lambda _text: None)
        self.clock = WorldClock(speed, datetime.now(UTC), workdir)
        self.rig = Rig(workdir, self.clock.shared)
        self.password = PASSWORD
        self.fake: FakeShareProcess | None = None
        self.tray: TrayProcess | None = None
        self.record: Record | None = None
        self._stopped = threading.Event()

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> Record:
        began = time.monotonic()
        try:
            record = self._run()
        finally:
            self.rig.close()
        record.real_seconds = time.monotonic() - began
        return record

    def _run(self) -> Record:
        fake = self.rig.start_fake(
            ["--clock-file", str(self.clock.world_file), "--lockout-period", str(7 * 86400)]
        )
        self.fake = fake
        start = (self.clock.now() + LEAD).replace(microsecond=0)
        planned = readings(self.day, start, self.seed)
        record = Record(self.day, self.seed, self.speed, start, self.clock, planned)
        record.passwords.append(self.password)
        self.record = record
        self._publish(planned)
        self._start_tray()
        for step in sorted(self.day.steps, key=lambda s: s.at):
            if not self._wait_world(start + step.at):
                break
            self._say(f"{self._clock_text(start)}  {step.label}")
            record.done.append((self.clock.now(), step.label))
            self._carry_out(step, start)
        else:
            self._catch_up(planned)
        self._finish()
        return record

    def _clock_text(self, start: datetime) -> str:
        elapsed = self.clock.now() - start
        minutes = int(elapsed.total_seconds() // 60)
        return f"+{minutes // 60:02d}:{minutes % 60:02d}"

    def _publish(self, planned: list[PlannedReading]) -> None:
        assert self.fake is not None
        items = [
            {
                "time": p.time.isoformat(),
                "mgdl": p.mgdl,
                "trend": p.trend.wire_name,
                "available_at": p.available_at.isoformat(),
            }
            for p in planned
        ]
        published = self.fake.post("publish", {"username": USERNAME, "readings": items})
        assert published == {"published": len(items)}

    def _start_tray(self) -> None:
        assert self.fake is not None
        index = len(self.record.runs) if self.record else 0
        tray = self.rig.start_tray(
            self.fake,
            password=self.password,
            extra_args=["--clock-file", str(self.clock.tray_file)],
            name=f"cgm-tray-{index + 1}",
        )
        self.tray = tray
        tray.log.wait_event("app.started", timeout=START_TIMEOUT_S)

    # --- steps -------------------------------------------------------------------------------

    def _carry_out(self, step: Step, start: datetime) -> None:
        fake = self.fake
        assert fake is not None
        match step.act:
            case Act.EXPIRE_SESSIONS:
                fake.post("expire-sessions")
            case Act.FAULT:
                body: dict[str, object] = {"fault": step.fault, "endpoint": ENDPOINT_READ}
                if step.span:
                    body["until"] = (start + step.at + step.span).isoformat()
                fake.post("fault", body)
            case Act.OUTAGE:
                fake.post("outage", {"down": True, "refuse": True})
                self._wait_world(start + step.at + step.span)
                fake.post("outage", {"down": False})
            case Act.SLEEP:
                self._sleep(step.span)
            case Act.CLOCK_BACK:
                self.clock.set_computer_back(step.span)
            case Act.CLOCK_FORWARD:
                self.clock.set_computer_back(-step.span)
            case Act.LOCK:
                fake.post("lock", {"username": USERNAME, "locked": True})
                fake.post("expire-sessions")
            case Act.REJECT:
                self.password = self.password + "-new"
                assert self.record is not None
                self.record.passwords.append(self.password)
                fake.post("password", {"username": USERNAME, "password": self.password})
                fake.post("expire-sessions")
            case Act.USER_RESTARTS:
                fake.post("lock", {"username": USERNAME, "locked": False})
                assert self.record is not None
                self.record.user_acts.append(self.clock.now())
                self._quit_tray()
                self._start_tray()

    def _sleep(self, span: timedelta) -> None:
        """The computer sleeps: the app is frozen while the world moves on by `span`."""
        tray = self.tray
        fake = self.fake
        assert tray is not None
        assert fake is not None
        pid = tray.process.popen.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            target = self.clock.now() + span
            self.clock.jump(span)
            if not self._until(lambda: fake.now() >= target, timeout=10.0):
                self._problem("the fake's clock did not take the jump")
        finally:
            os.kill(pid, signal.SIGCONT)

    # --- waiting -----------------------------------------------------------------------------

    def _wait_world(self, target: datetime) -> bool:
        """Lets world time reach `target`; False (and the problem noted) if the app died."""
        tray = self.tray
        assert tray is not None
        while True:
            remaining = self.clock.real_seconds(target - self.clock.now())
            if remaining <= 0:
                return True
            if tray.log.ended or tray.process.exited() is not None:
                self._problem(f"the app ended before {target.isoformat()}")
                return False
            tray.log.pass_time(min(remaining, 0.5))

    def _until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Checks `condition` every 10 ms of real time, for at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self._stopped.wait(0.01)
        return True

    def _catch_up(self, planned: list[PlannedReading]) -> None:
        """Waits for a read answered after the day's last reading was on Share."""
        tray = self.tray
        assert tray is not None
        last = max(p.available_at for p in planned) + timedelta(seconds=5)
        self._wait_world(last)

        def read_after_last(event: Event) -> bool:
            return (
                event.get("event") == "share.request"
                and event.get("endpoint") == ENDPOINT_READ
                and event.get("status") == 200
                and self.clock.of_event(event) >= last
            )

        timeout = self.clock.real_seconds(CATCH_UP) + SLACK_S
        found = tray.log.wait_until(lambda: any(map(read_after_last, tray.log.events)), timeout)
        if not found:
            self._problem("no read after the day's last reading")

    def _quit_tray(self) -> None:
        tray = self.tray
        assert tray is not None
        assert self.record is not None
        died_early = tray.process.exited() is not None
        code, _took = tray.process.terminate(timeout=QUIT_TIMEOUT_S)
        tray.process.stderr.join(5)
        lines = [line for line in tray.log.lines if not line.startswith("{")]
        self.record.runs.append(
            TrayRun(tray.log.events, lines, code, died_early, tray.process.everything_printed)
        )
        # Kept beside the run for whoever investigates a figure (bench/soak.py --workdir).
        number = len(self.record.runs)
        (self.workdir / f"app-run-{number}.log").write_text(
            "\n".join(tray.log.lines) + "\n", encoding="utf-8"
        )

    def _finish(self) -> None:
        record = self.record
        fake = self.fake
        assert record is not None
        assert fake is not None
        self._quit_tray()
        day_end = record.start + self.day.length
        since = record.start - HISTORY - timedelta(minutes=10)
        record.held = [r for r in fake.held_readings(since, day_end) if r["available"]]
        record.fake_log = list(fake.counters()["log"])
        issued = fake.get("issued")
        record.issued_ids = [*issued["account_ids"], *issued["session_ids"]]
        tray = self.tray
        assert tray is not None
        record.app_basedir = tray.basedir
        with HistoryStore(tray.history_path, read_only=True) as store:
            record.stored = {r.time: r.mgdl for r in store.range(since, day_end)}
        record.fake_died_early = fake.process.exited() is not None
        code, _took = fake.process.terminate(timeout=QUIT_TIMEOUT_S)
        record.fake_exit = code

    def _problem(self, text: str) -> None:
        self._say(f"problem: {text}")
        if self.record is not None:
            self.record.problems.append(text)


def run_day(
    day: Day, workdir: Path, *, seed: int = 1, speed: float = DEFAULT_SPEED, say: Say | None = None
) -> Record:
    """Runs `day` in `workdir` (a fresh folder) and returns what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    return Driver(day, workdir, seed=seed, speed=speed, say=say).run()
