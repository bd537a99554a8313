"""The real app as a child process (its JSON log events timed as they arrive), and a saved
account for it against a fake Share service; shared by the benchmarks and the screenshots."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Run as a script, only bench/ is on sys.path: the repository root holds tests.support, the one
# home of the process helpers that tests and benchmarks share (docs/testing.md).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from tests.support.processes import poll_until, spawn, stop_process  # noqa: E402

if TYPE_CHECKING:
    from cgmtray.domain.readings import Reading

__all__ = ["AppProcess", "LogEvent", "poll_until", "prepare_account", "running_app", "stop_process"]


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One JSON log line of the app and when (perf_counter) we read it."""

    at: float
    fields: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.fields.get("event", ""))


def interpreter_env(python: str) -> dict[str, str]:
    """For another Python than ours (e.g. `--python python3.12`): PYTHONPATH to this checkout's
    src and this virtualenv's packages, so it runs the same code with the same libraries."""
    if python == sys.executable:
        return {}
    src = Path(__file__).resolve().parents[1] / "src"
    return {"PYTHONPATH": f"{src}:{sysconfig.get_paths()['purelib']}"}


class AppProcess:
    """`python -m cgmtray ARGS --log-json`, its JSON log events collected (and timed) as they
    arrive: a tests.support.processes child seen as the benchmarks need it."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        *,
        stdin_text: str = "",
        python: str = sys.executable,
    ) -> None:
        self.started = time.perf_counter()
        argv = [python, "-m", "cgmtray", *args, "--log-json"]
        self._child = spawn("cgm-tray", argv, {**env, **interpreter_env(python)}, stdin_text)
        self.process = self._child.popen

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def other_lines(self) -> list[str]:
        return self._child.stderr.other_lines

    def events(self) -> list[LogEvent]:
        return [LogEvent(at, fields) for at, fields in self._child.stderr.timed_events()]

    def wait_for(
        self, match: Callable[[LogEvent], bool], timeout: float, *, after: int = 0
    ) -> tuple[int, LogEvent]:
        """The first event from index `after` on that matches, and its index; TimeoutError."""
        log = self._child.stderr
        found: list[tuple[int, LogEvent]] = []

        def seen() -> bool:
            events = self.events()
            found.extend((i, e) for i, e in enumerate(events) if i >= after and match(e))
            return bool(found) or log.ended

        log.wait_until(seen, timeout)
        if not found:
            tail = [e.fields for e in self.events()[-8:]]
            state = "exited" if log.ended else "timed out"
            raise TimeoutError(f"app {state} before the awaited event; last: {tail}")
        return found[0]

    def death(self) -> str | None:
        """Why the app is no longer running (exit status and its first non-JSON output line),
        or None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        fatal = next((line for line in self.other_lines if line.strip()), "")
        return f"exit status {code}" + (f": {fatal}" if fatal else "")

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM of the process, in KiB."""
        reason = self.death()
        if reason is not None:
            raise RuntimeError(f"the app is not running ({reason})")
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (the app quits cleanly), then its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        code = stop_process(self.process)
        self._child.stdout.join(timeout)
        self._child.stderr.join(timeout)
        return code


@contextlib.contextmanager
def running_app(
    args: list[str], env: Mapping[str, str], *, stdin_text: str = "", python: str = sys.executable
) -> Iterator[AppProcess]:
    """An AppProcess that is stopped however the block ends."""
    app = AppProcess(args, env, stdin_text=stdin_text, python=python)
    try:
        yield app
    finally:
        app.stop()


def prepare_account(
    basedir: Path, *, username: str, share_url: str, stored: Iterable[Reading] = ()
) -> None:
    """Settings for `username` on the fake service at `share_url`, and a history store holding
    `stored` (what the app shows at start, before its first fetch)."""
    from cgmtray.storage import paths as app_paths
    from cgmtray.storage.history import HistoryStore
    from cgmtray.storage.settings import one_person_settings, save_settings

    paths = app_paths.ensure(app_paths.app_paths(basedir))
    save_settings(
        one_person_settings(region="us", username=username, share_url=share_url),
        paths.settings_file,
    )
    with HistoryStore(paths.history_db) as store:
        store.add(stored)
