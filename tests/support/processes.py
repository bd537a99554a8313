"""Child processes for tests and benchmarks: starting, reading and stopping them, and the real
fake-share and tray processes on one virtual clock with their logs (tests/e2e, the desktop and
package tiers, bench/)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

import requests

from cgmtray.storage.paths import app_paths
from cgmtray.storage.settings import one_person_settings, save_settings

CGM_TRAY: Final = [sys.executable, "-m", "cgmtray"]
USERNAME: Final = "e2e.person@example.com"
PASSWORD: Final = "Corr3ct-h0rse:battery"
#: Virtual seconds per real second: 15 virtual minutes pass in under 4 real seconds.
SPEED: Final = 240.0
#: How long a process may take to print its first lines (real seconds; Qt starts in ~1 s).
START_TIMEOUT_S: Final = 60.0
#: Every HTTP call to the control channel is bounded by this (real seconds).
CONTROL_TIMEOUT_S: Final = 30.0
READING_INTERVAL: Final = timedelta(minutes=5)

Event = dict[str, Any]


def read_line(stream: Any, timeout: float) -> str:
    """One line from a child's pipe, or TimeoutError: a stuck child never hangs the caller."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no output within {timeout} s")
    return str(stream.readline())


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Terminates a child we started (SIGTERM, then SIGKILL), reaps it, returns its status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return int(process.returncode)


def poll_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.01, what: str = "condition"
) -> None:
    """Calls `check` until it is true; TimeoutError after `timeout` seconds (a bound on a hang,
    not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s")
        time.sleep(interval)


class NotSeenError(AssertionError):
    """An awaited log event did not come in time (a test failure, not an error of the rig)."""


@dataclass(frozen=True)
class VirtualClock:
    """The clock both processes run on (`shared_clock(speed, epoch)`), seen from the test."""

    speed: float
    epoch: datetime

    def at(self, real: datetime) -> datetime:
        """The virtual time at a real (wall-clock) moment."""
        return self.epoch + (real - self.epoch) * self.speed

    def now(self) -> datetime:
        return self.at(datetime.now(UTC))

    def of_event(self, event: Event) -> datetime:
        """The virtual time at which a JSON log line was written (from its real `ts`)."""
        return self.at(datetime.fromisoformat(str(event["ts"])))

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds() / self.speed


class LogLines:
    """Reads one stream of a process on a thread; keeps every line and every JSON object.

    Waiters block on a condition that each new line (or the stream's end) wakes: no polling.
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        self._condition = threading.Condition()
        self._lines: list[str] = []
        self._events: list[Event] = []
        self._arrivals: list[float] = []  # time.perf_counter() when each event was read
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), name=name, daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                arrived = time.perf_counter()
                text = line.rstrip("\n")
                event = _json_object(text)
                with self._condition:
                    self._lines.append(text)
                    if event is not None:
                        self._events.append(event)
                        self._arrivals.append(arrived)
                    self._condition.notify_all()
        except (OSError, ValueError):
            pass  # the stream was closed under us at teardown
        finally:
            with self._condition:
                self._ended = True
                self._condition.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._condition:
            return list(self._lines)

    @property
    def events(self) -> list[Event]:
        with self._condition:
            return list(self._events)

    def timed_events(self) -> list[tuple[float, Event]]:
        """Each JSON object with the time.perf_counter() at which it was read (benchmarks)."""
        with self._condition:
            return list(zip(self._arrivals, self._events, strict=True))

    @property
    def other_lines(self) -> list[str]:
        """The lines that are not JSON objects (a traceback, a fatal message)."""
        with self._condition:
            return [line for line in self._lines if _json_object(line) is None]

    @property
    def ended(self) -> bool:
        with self._condition:
            return self._ended

    def wait_for(
        self,
        predicate: Callable[[Event], bool],
        *,
        timeout: float,
        start: int = 0,
        what: str = "",
    ) -> tuple[int, Event]:
        """The first event from index `start` on that matches, and its index; waits at most
        `timeout` real seconds (fails with the last events shown)."""
        found: list[tuple[int, Event]] = []

        def matched() -> bool:
            for index in range(start, len(self._events)):
                if predicate(self._events[index]):
                    found.append((index, self._events[index]))
                    return True
            return self._ended

        with self._condition:
            self._condition.wait_for(matched, timeout)
            tail = [e.get("event") for e in self._events[-15:]]
        if not found:
            raise NotSeenError(
                f"no {what or 'matching event'} within {timeout:.1f} s; last: {tail}"
            )
        return found[0]

    def wait_event(
        self,
        name: str,
        *,
        timeout: float,
        start: int = 0,
        where: Callable[[Event], bool] | None = None,
        **fields: object,
    ) -> tuple[int, Event]:
        """The first `name` event from index `start` on with `fields` (and `where`, if given)."""
        wanted = is_event(name, **fields)

        def matches(event: Event) -> bool:
            return wanted(event) and (where is None or where(event))

        described = name + "".join(f" {k}={v}" for k, v in fields.items())
        return self.wait_for(matches, timeout=timeout, start=start, what=described)

    def wait_lines(self, count: int, *, timeout: float) -> list[str]:
        with self._condition:
            self._condition.wait_for(lambda: len(self._lines) >= count or self._ended, timeout)
            return list(self._lines)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Waits at most `timeout` real seconds for `condition`, checked whenever a line arrives
        and every 10 ms (it may depend on other things than this stream); returns it."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.01))
            return True

    def pass_time(self, seconds: float) -> None:
        """Lets `seconds` of real time pass while lines keep arriving (ends early only if the
        stream ends): how a test waits for the virtual clock to reach a moment."""
        with self._condition:
            self._condition.wait_for(lambda: self._ended, max(0.0, seconds))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _json_object(text: str) -> Event | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def is_event(name: str, **fields: object) -> Callable[[Event], bool]:
    """A predicate: the event is `name` and has each of `fields` at that value."""

    def matches(event: Event) -> bool:
        return event.get("event") == name and all(event.get(k) == v for k, v in fields.items())

    return matches


@dataclass
class Process:
    """A started child process with its stdout and stderr being read."""

    name: str
    popen: subprocess.Popen[str]
    stdout: LogLines
    stderr: LogLines

    @property
    def everything_printed(self) -> str:
        return "\n".join(self.stdout.lines + self.stderr.lines)

    def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM, then a bounded wait: the exit status (None: still running) and the real
        seconds it took."""
        began = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - began

    def exited(self) -> int | None:
        """The exit status if the process has ended (negative: killed by that signal)."""
        return self.popen.poll()

    def cleanup(self) -> None:
        """Whatever happened, the process is gone and its pipes closed afterwards."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        self.stdout.join(5)
        self.stderr.join(5)


def spawn(
    name: str, argv: list[str], env: dict[str, str], stdin_text: str | None = None
) -> Process:
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # a Ctrl-C of the test run does not reach it twice
    )
    assert popen.stdout is not None
    assert popen.stderr is not None
    process = Process(
        name,
        popen,
        LogLines(popen.stdout, f"{name}-stdout"),
        LogLines(popen.stderr, f"{name}-stderr"),
    )
    if stdin_text is not None:
        assert popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it may die before reading
            popen.stdin.write(stdin_text)
            popen.stdin.close()
    return process


def isolated_env(home: Path) -> dict[str, str]:
    """No display, no session bus, no real home, no real keyring; Qt offscreen."""
    dropped = {"DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "QT_QPA_PLATFORM"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_RUNTIME_DIR": str(home / "runtime"),
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "PYTHONUNBUFFERED": "1",
        }
    )
    (home / "runtime").mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


@dataclass
class FakeShareProcess:
    """`cgm-tray fake-share` as a process: its Share base URL and its control channel."""

    process: Process
    base_url: str
    control_url: str
    http: requests.Session = field(default_factory=requests.Session)

    def get(self, name: str, **params: str) -> Any:
        response = self.http.get(self.control_url + name, params=params, timeout=CONTROL_TIMEOUT_S)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, name: str, body: dict[str, object] | None = None) -> Any:
        response = self.http.post(
            self.control_url + name, json=body or {}, timeout=CONTROL_TIMEOUT_S
        )
        assert response.status_code == 200, response.text
        return response.json()

    def now(self) -> datetime:
        """The fake's virtual time."""
        return datetime.fromisoformat(self.get("now")["now"])

    def publish(self, readings: list[tuple[datetime, int, datetime]]) -> None:
        """Readings (time, mg/dL, available at), trend Flat, for the test account."""
        items = [
            {
                "time": when.isoformat(),
                "mgdl": mgdl,
                "trend": "Flat",
                "available_at": available.isoformat(),
            }
            for when, mgdl, available in readings
        ]
        assert self.post("publish", {"username": USERNAME, "readings": items}) == {
            "published": len(items)
        }

    def counters(self) -> Any:
        return self.get("counters")

    def held_readings(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every reading the account holds with a time in [since, until], available or not."""
        found = self.get(
            "readings", username=USERNAME, since=since.isoformat(), until=until.isoformat()
        )
        rows: list[dict[str, Any]] = found["readings"]
        return rows


@dataclass
class TrayProcess:
    """The `cgm-tray` tray app as a process, with its --basedir."""

    process: Process
    basedir: Path

    @property
    def log(self) -> LogLines:
        """Its stderr: one JSON object per line (--log-json)."""
        return self.process.stderr

    @property
    def history_path(self) -> Path:
        return app_paths(self.basedir).history_db

    @property
    def log_file(self) -> Path:
        return app_paths(self.basedir).log_file


class Rig:
    """Starts the fake and the tray on one virtual clock; stops whatever it started."""

    username: Final = USERNAME
    password: Final = PASSWORD

    def __init__(self, tmp_path: Path, clock: VirtualClock) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        self.env = isolated_env(tmp_path / "home")
        self.basedir = tmp_path / "base"
        self._processes: list[Process] = []
        self._fake: FakeShareProcess | None = None

    def _clock_args(self) -> list[str]:
        return ["--speed", str(self.clock.speed), "--clock-epoch", self.clock.epoch.isoformat()]

    def start_fake(self, extra_args: Sequence[str] = ()) -> FakeShareProcess:
        argv = [
            *CGM_TRAY,
            "fake-share",
            "--account",
            f"{USERNAME}:{PASSWORD}",
            "--no-sensor",
            *self._clock_args(),
            *extra_args,
        ]
        process = spawn("fake-share", argv, self.env)
        self._processes.append(process)
        lines = process.stdout.wait_lines(2, timeout=START_TIMEOUT_S)
        assert len(lines) >= 2, f"fake-share printed {lines!r}; stderr: {process.stderr.lines}"
        assert lines[1].startswith("control: ")
        self._fake = FakeShareProcess(process, lines[0], lines[1].removeprefix("control: "))
        return self._fake

    def start_tray(
        self,
        fake: FakeShareProcess,
        *,
        password: str = PASSWORD,
        extra_args: Sequence[str] = (),
        name: str = "cgm-tray",
    ) -> TrayProcess:
        """The tray app signed in as the test account (password on stdin), on `self.basedir`:
        a second start finds the first one's settings and history."""
        basedir = self.basedir
        settings_file = app_paths(basedir).settings_file
        if not settings_file.exists():
            settings_file.parent.mkdir(parents=True, exist_ok=True)
            save_settings(one_person_settings(region="us", username=USERNAME), settings_file)
        argv = [
            *CGM_TRAY,
            "--basedir",
            str(basedir),
            "--password-stdin",
            "--share-url",
            fake.base_url,
            "--log-json",
            *self._clock_args(),
            *extra_args,
        ]
        process = spawn(name, argv, self.env, stdin_text=password + "\n")
        self._processes.append(process)
        return TrayProcess(process, basedir)

    def close(self) -> None:
        for process in reversed(self._processes):
            process.cleanup()
        if self._fake is not None:
            self._fake.http.close()
        complaints = [event for process in self._processes for event in qt_complaints(process)]
        assert complaints == [], f"Qt complained in a process of this test: {complaints}"


def qt_complaints(process: Process) -> list[Event]:
    """The Qt messages a process logged at warning or above (the app's Qt message handler logs
    Qt's criticals and fatals there, through the "qt" logger): each is a test failure."""
    return [
        event
        for event in process.stderr.events
        if event.get("logger") == "qt" and event.get("level") in ("warning", "error", "critical")
    ]


# --- a clean quit --------------------------------------------------------------------------------

#: Real seconds SIGTERM may take to end the app: only bounds a hang (a stalled machine must not
#: fail a test); the app's own bounded waits at quit are proven in the ui tier.
QUIT_S: Final = 30.0
#: Session ids and account ids are UUIDs: none may appear in anything the app prints.
UUID_SHAPE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def quit_and_check(rig: Rig, tray: TrayProcess) -> None:
    """SIGTERM ends the app with status 0 (QUIT_S only bounds a hang: the app's own bounded waits
    are the ui tier's), saying app.stopping; nothing it printed or logged holds the password, a
    session id or an account id."""
    code, took = tray.process.terminate(timeout=QUIT_S)
    assert code is not None, f"still running {took:.1f} s after SIGTERM"
    assert code == 0, f"exit status {code} after {took:.1f} s: {tray.process.stderr.lines[-5:]}"
    assert any(e.get("event") == "app.stopping" for e in tray.log.events)
    printed = tray.process.everything_printed
    logged = tray.log_file.read_text(encoding="utf-8") if tray.log_file.exists() else ""
    for text in (printed, logged):
        assert rig.password not in text
        assert rig.username not in text
        assert UUID_SHAPE.search(text) is None, UUID_SHAPE.search(text)
