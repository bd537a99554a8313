"""No secret is ever written down: the real app through every path that handles one, then a search
of every file it wrote and everything it printed for the password and every id the fake issued."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

import pytest
from tests.support import env_keyring
from tests.support.processes import (
    CGM_TRAY,
    Event,
    FakeShareProcess,
    Process,
    VirtualClock,
    isolated_env,
    spawn,
)
from tests.support.secrets import assert_no_secrets, find_secrets

from cgmtray.domain.sign_in_gate import Reason
from cgmtray.share.regions import ENDPOINT_READ
from cgmtray.storage.paths import app_paths
from cgmtray.storage.settings import load_settings, one_person_settings, save_settings
from cgmtray.storage.sign_in_state import PersistedSignInGate

pytestmark = pytest.mark.e2e

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
USERNAME: Final = "secret.keeper+e2e@example.com"
#: Spaces, both quotes, a backslash, %, a colon and non-ASCII: every escaping has work to do.
PASSWORD: Final = "Tr0ub4dor & \"3\" 100% sûr ☃ 'q' \\n: é"
WRONG_PASSWORD: Final = 'Wr0ng "guess" 50% ñ \\ ok'
INTERVAL: Final = timedelta(minutes=5)
UPLOAD_LAG: Final = timedelta(seconds=30)
#: Bounds on a hang only (real seconds): a stalled machine must not fail a test.
START_S: Final = 60.0
QUIT_S: Final = 30.0
NOW_TIMEOUT_S: Final = 60.0


@dataclass
class Runs:
    """Starts the fake and the app's processes on one HOME; keeps everything they printed."""

    tmp_path: Path
    clock: VirtualClock
    home: Path = field(init=False)
    basedir: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    printed: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = self.tmp_path / "home"
        self.basedir = self.tmp_path / "base"
        self.env = isolated_env(self.home)
        # The tray and `now` find the password in a keyring that is not a file (the child's
        # environment), so the keyring path at start-up is exercised too.
        self.env.update(env_keyring.environment(f"us:{USERNAME}", PASSWORD))
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), self.env.get("PYTHONPATH", "")) if p
        )

    def _clock_args(self) -> list[str]:
        return ["--speed", str(self.clock.speed), "--clock-epoch", self.clock.epoch.isoformat()]

    def spawn(self, name: str, argv: list[str], stdin_text: str | None = None) -> Process:
        process = spawn(name, [*CGM_TRAY, *argv], self.env, stdin_text)
        self.processes.append(process)
        return process

    def start_fake(self) -> FakeShareProcess:
        argv = ["fake-share", "--account", f"{USERNAME}:{PASSWORD}", "--no-sensor"]
        process = self.spawn("fake-share", [*argv, *self._clock_args()])
        lines = process.stdout.wait_lines(2, timeout=START_S)
        assert len(lines) >= 2, f"fake-share printed {lines!r}; stderr: {process.stderr.lines}"
        return FakeShareProcess(process, lines[0], lines[1].removeprefix("control: "))

    def tray(self, name: str, fake: FakeShareProcess, *flags: str, stdin: str | None) -> Process:
        argv = ["--basedir", str(self.basedir), "--share-url", fake.base_url, "--log-json"]
        return self.spawn(name, [*argv, *flags, *self._clock_args()], stdin)

    def quit(self, process: Process) -> None:
        code, took = process.terminate(timeout=QUIT_S)
        assert code == 0, f"{process.name}: exit {code} after {took:.1f} s"
        process.stdout.join(5)
        process.stderr.join(5)
        self.keep(process)

    def keep(self, process: Process) -> None:
        self.printed[f"{process.name} stdout"] = "\n".join(process.stdout.lines)
        self.printed[f"{process.name} stderr"] = "\n".join(process.stderr.lines)

    def now(
        self, name: str, *flags: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            # On the tray's clock: they share the sign-in state (storage/sign_in_state.py).
            [*CGM_TRAY, *self._clock_args(), "now", "--basedir", str(self.basedir), *flags],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=NOW_TIMEOUT_S,
            check=False,
        )
        self.printed[f"{name} stdout"] = result.stdout
        self.printed[f"{name} stderr"] = result.stderr
        return result

    def wait_for_sign_in_room(self, fake: FakeShareProcess) -> None:
        """Waits (virtual time runs fast) until the shared sign-in budget allows one more sign-in:
        every process of this basedir spends the same 1 per 5 min and 3 per hour."""
        gate = PersistedSignInGate(
            app_paths(self.basedir).data_dir,
            region="us",
            username=USERNAME,
            base_url=fake.base_url,
            credentials_changed=True,  # only the budget matters here, not a rejection
        )

        def room() -> bool:
            return gate.check(self.clock.now(), asked=True).reason is not Reason.BUDGET

        timeout = self.clock.real_seconds(timedelta(hours=1)) + START_S
        assert fake.process.stderr.wait_until(room, timeout), "no room for a sign-in"

    def close(self) -> None:
        for process in reversed(self.processes):
            process.cleanup()


@pytest.fixture
def runs(tmp_path: Path, clock: VirtualClock) -> Iterator[Runs]:
    started = Runs(tmp_path, clock)
    try:
        yield started
    finally:
        started.close()


def _publish_day(fake: FakeShareProcess, clock: VirtualClock) -> None:
    """3 h of readings before the epoch and 2 h still to come, each visible UPLOAD_LAG late."""
    first = (clock.epoch - timedelta(hours=3)).replace(microsecond=0)
    times = [first + k * INTERVAL for k in range(5 * 12)]
    items = [
        {
            "time": t.isoformat(),
            "mgdl": 120,
            "trend": "Flat",
            "available_at": (t + UPLOAD_LAG).isoformat(),
        }
        for t in times
    ]
    assert fake.post("publish", {"username": USERNAME, "readings": items}) == {
        "published": len(items)
    }


def _is_read(status: int) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return (
            event.get("event") == "share.request"
            and event.get("endpoint") == ENDPOINT_READ
            and event.get("status") == status
        )

    return matches


def _login(outcome_ok: bool) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return event.get("event") == "share.login" and (event.get("outcome") == "ok") == outcome_ok

    return matches


def _files_except(roots: list[Path], excluded: set[Path]) -> list[Path]:
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and path not in excluded
    ]


def test_no_password_session_id_or_account_id_is_written_anywhere(
    runs: Runs, clock: VirtualClock
) -> None:
    fake = runs.start_fake()
    _publish_day(fake, clock)
    paths = app_paths(runs.basedir)
    paths.config_dir.mkdir(parents=True)
    save_settings(one_person_settings(region="us", username=USERNAME), paths.settings_file)

    # 1. First sign-in from the keyring, reads, a forced session expiry, all at --debug.
    first = runs.tray("tray-debug", fake, "--debug", stdin=None)
    first.stderr.wait_event("tray.updated", severity="in_range", timeout=START_S)
    first.stderr.wait_for(_is_read(200), timeout=START_S, what="a read answered 200")
    mark = len(first.stderr.events)
    fake.post("expire-sessions")
    relogin, _ = first.stderr.wait_for(
        _login(True),
        start=mark,
        timeout=clock.real_seconds(2 * INTERVAL) + START_S,
        what="the sign-in after the expiry",
    )
    first.stderr.wait_for(_is_read(200), start=relogin, timeout=START_S, what="a read after it")
    runs.quit(first)

    # 2. The glance, from the saved settings and the keyring, as a line and as JSON, at --debug.
    runs.wait_for_sign_in_room(fake)
    line = runs.now("now", "--share-url", fake.base_url, "--debug")
    assert line.returncode == 0, line.stderr
    assert "mg/dL" in line.stdout
    runs.wait_for_sign_in_room(fake)
    as_json = runs.now("now-json", "--share-url", fake.base_url, "--json", "--log-json", "--debug")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["value_mgdl"] == 120
    # ... and with the account on the command line.
    runs.wait_for_sign_in_room(fake)
    given = runs.now(
        "now-stdin",
        *("--share-url", fake.base_url, "--username", USERNAME, "--password-stdin", "--json"),
        stdin=PASSWORD + "\n",
    )
    assert given.returncode == 0, given.stderr

    # 3. A quit and restart on the same basedir.
    runs.wait_for_sign_in_room(fake)
    second = runs.tray("tray-again", fake, stdin=None)
    second.stderr.wait_for(_is_read(200), timeout=START_S, what="a read answered 200")
    runs.quit(second)

    # 4. A wrong password: rejected, said so, logged, at --debug; from the glance too.
    runs.wait_for_sign_in_room(fake)
    wrong = runs.tray(
        "tray-wrong", fake, "--password-stdin", "--debug", stdin=WRONG_PASSWORD + "\n"
    )
    rejected, _ = wrong.stderr.wait_for(_login(False), timeout=START_S, what="a rejected sign-in")
    wrong.stderr.wait_event("tray.updated", start=rejected, timeout=START_S)
    runs.quit(wrong)
    runs.wait_for_sign_in_room(fake)  # a password on stdin is a change: tried once
    refused = runs.now(
        "now-wrong",
        *("--share-url", fake.base_url, "--username", USERNAME, "--password-stdin", "--debug"),
        stdin=WRONG_PASSWORD + "\n",
    )
    assert refused.returncode == 3
    assert "password" in refused.stderr.lower()

    issued = fake.get("issued")
    account_ids: list[str] = issued["account_ids"]
    session_ids: list[str] = issued["session_ids"]
    # Sign-ins: the first run twice, three glances, the restart: six sessions, one account.
    assert len(account_ids) == 1
    assert len(session_ids) >= 6
    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD}
    secrets |= {f"account id #{k}": v for k, v in enumerate(account_ids, 1)}
    secrets |= {f"session id #{k}": v for k, v in enumerate(session_ids, 1)}

    # The search can find each of them where they really are: the fake's answer and argv.
    ids_found = find_secrets(secrets, texts={"issued": json.dumps(issued)})
    assert {f.label for f in ids_found} == set(secrets) - {"password", "wrong password"}
    fake_argv = fake.process.popen.args
    assert isinstance(fake_argv, list)
    assert find_secrets({"password": PASSWORD}, texts={"fake argv": " ".join(fake_argv)})

    roots = [runs.basedir, runs.home]
    searched = assert_no_secrets(secrets, roots=roots, texts=runs.printed)
    names = {Path(p).name for p in searched.searched}
    assert {"settings.toml", "history.sqlite3", "cgm-tray.log"} <= names
    assert len(runs.printed) == 14

    # The username is no secret in the settings file, where it belongs, but the log policy keeps
    # it out of every log line, everything printed and every other file.
    assert find_secrets(
        {"username": USERNAME}, texts={"fake stdout": "\n".join(fake.process.stdout.lines)}
    )
    elsewhere = _files_except(roots, {paths.settings_file})
    assert_no_secrets({"username": USERNAME}, roots=elsewhere, texts=runs.printed)
    assert load_settings(paths.settings_file).settings.first_person.source.username == USERNAME
