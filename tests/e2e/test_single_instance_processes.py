"""One tray app per data folder, with real processes: a second start hands over and exits 0, a
killed instance leaves nothing that stops the next, a hung one is not doubled, and two data
folders run side by side."""

from __future__ import annotations

import signal
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from tests.support.processes import FakeShareProcess, Process, Rig, TrayProcess

from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID
from cgmtray.storage.paths import app_paths
from cgmtray.ui.app import EXIT_INSTANCE_NOT_ANSWERING
from cgmtray.ui.single_instance import LOCK_FILE_NAME, server_name

pytestmark = pytest.mark.e2e

INTERVAL: Final = timedelta(minutes=5)
UPLOAD_LAG: Final = timedelta(seconds=30)
IN_RANGE_MGDL: Final = 110
#: Real seconds: process start to the first reading on screen; a second start's whole life (it
#: waits at most 5 s for an answer, plus Qt's start on a busy machine); a clean quit.
FIRST_READING_S: Final = 30.0
SECOND_START_S: Final = 40.0
QUIT_S: Final = 30.0  # a bound on a hang only


def _publish(rig: Rig, fake: FakeShareProcess) -> None:
    """3 h of in-range history and 2 h still to come, each visible UPLOAD_LAG after its time."""
    first = (rig.clock.epoch - timedelta(hours=3)).replace(microsecond=0)
    times = [first + k * INTERVAL for k in range(5 * 12)]
    fake.publish([(when, IN_RANGE_MGDL, when + UPLOAD_LAG) for when in times])


def _showing(tray: TrayProcess) -> None:
    tray.log.wait_event("tray.updated", severity="in_range", timeout=FIRST_READING_S)


def _sign_ins(fake: FakeShareProcess) -> int:
    endpoints: dict[str, Any] = fake.counters()["endpoints"]
    return int(endpoints.get(ENDPOINT_AUTHENTICATE, 0)) + int(
        endpoints.get(ENDPOINT_LOGIN_BY_ID, 0)
    )


def _exit_of(process: Process) -> int:
    code = process.popen.wait(timeout=SECOND_START_S)
    process.stderr.join(QUIT_S)
    return code


def _names(process: Process) -> list[str]:
    return [str(e.get("event")) for e in process.stderr.events]


def _quit(tray: TrayProcess) -> None:
    code, took = tray.process.terminate(timeout=QUIT_S)
    assert code == 0, f"exit status {code} after {took:.1f} s: {tray.process.stderr.lines[-5:]}"


def test_a_second_start_shows_the_first_and_exits_without_signing_in(rig: Rig) -> None:
    fake = rig.start_fake()
    _publish(rig, fake)
    first = rig.start_tray(fake, name="first")
    _showing(first)
    sign_ins = _sign_ins(fake)
    asked_from = len(first.log.events)

    second = rig.start_tray(fake, name="second")
    assert _exit_of(second.process) == 0, second.process.everything_printed
    first.log.wait_event("app.presented", start=asked_from, timeout=SECOND_START_S)
    presented = [e for e in first.log.events[asked_from:] if e.get("event") == "app.presented"]
    assert len(presented) == 1
    assert presented[0]["asker_pid"] == second.process.popen.pid
    # Without a tray (offscreen), the status window is what a person sees.
    assert presented[0]["shown"] == "status_window"

    # The second made no sign-in, no request, no tray: it only handed over.
    said = _names(second.process)
    assert "app.handover" in said
    for never in ("app.starting", "app.started", "share.request", "tray.updated"):
        assert never not in said, said
    assert _sign_ins(fake) == sign_ins
    # The first runs on: still the instance, and still answering.
    assert first.process.exited() is None
    third = rig.start_tray(fake, name="third")
    assert _exit_of(third.process) == 0
    first.log.wait_event(
        "app.presented", start=asked_from, timeout=SECOND_START_S, asker_pid=third.process.popen.pid
    )
    _quit(first)


def test_after_kill_9_the_next_start_becomes_the_instance(rig: Rig) -> None:
    fake = rig.start_fake()
    _publish(rig, fake)
    first = rig.start_tray(fake, name="killed")
    _showing(first)
    first.process.popen.send_signal(signal.SIGKILL)
    assert first.process.popen.wait(timeout=QUIT_S) == -signal.SIGKILL
    data_dir = app_paths(rig.basedir).data_dir
    assert (data_dir / LOCK_FILE_NAME).exists()  # left behind, naming a dead process

    heir = rig.start_tray(fake, name="heir")
    _showing(heir)
    assert heir.process.exited() is None
    # It is the instance now: the next start hands over to it.
    mark = len(heir.log.events)
    late = rig.start_tray(fake, name="late")
    assert _exit_of(late.process) == 0, late.process.everything_printed
    heir.log.wait_event("app.presented", start=mark, timeout=SECOND_START_S)
    # A clean quit takes the lock and the socket away with it.
    _quit(heir)
    assert not (data_dir / LOCK_FILE_NAME).exists()
    name = server_name(data_dir, {"XDG_RUNTIME_DIR": rig.env["XDG_RUNTIME_DIR"]})
    # A bare name (a runtime dir too deep for a socket address) lives in the temporary folder.
    socket_file = Path(name) if name.startswith("/") else Path(tempfile.gettempdir()) / name
    assert not socket_file.exists()


def test_a_hung_instance_is_not_doubled_and_the_second_start_says_why(rig: Rig) -> None:
    fake = rig.start_fake()
    _publish(rig, fake)
    first = rig.start_tray(fake, name="hung")
    _showing(first)
    sign_ins = _sign_ins(fake)
    first.process.popen.send_signal(signal.SIGSTOP)
    try:
        second = rig.start_tray(fake, name="second")
        assert _exit_of(second.process) == EXIT_INSTANCE_NOT_ANSWERING
        second.process.stdout.join(QUIT_S)
        printed = second.process.everything_printed
        assert "already running" in printed
        assert "does not answer" in printed
        said = _names(second.process)
        assert "app.instance_not_answering" in said
        for never in ("app.starting", "app.started", "share.request", "tray.updated"):
            assert never not in said, said
        assert _sign_ins(fake) == sign_ins
    finally:
        first.process.popen.send_signal(signal.SIGCONT)
    _quit(first)


def test_two_data_folders_run_side_by_side(rig: Rig) -> None:
    fake = rig.start_fake()
    _publish(rig, fake)
    one = rig.start_tray(fake, name="one")
    _showing(one)
    rig.basedir = rig.tmp_path / "other-base"
    other = rig.start_tray(fake, name="other")
    _showing(other)
    assert one.process.exited() is None
    assert other.process.exited() is None
    assert "app.handover" not in _names(one.process) + _names(other.process)
    _quit(other)
    _quit(one)


def test_two_starts_at_the_same_moment_give_one_instance(rig: Rig) -> None:
    """Start at login and a click on the launcher at once: one tray, one hand-over."""
    fake = rig.start_fake()
    _publish(rig, fake)
    starts = [rig.start_tray(fake, name="login"), rig.start_tray(fake, name="launcher")]

    def one_ended() -> bool:
        return any(s.process.exited() is not None for s in starts)

    assert starts[0].log.wait_until(one_ended, SECOND_START_S), "neither start handed over"
    gone = [s for s in starts if s.process.exited() is not None]
    assert len(gone) == 1
    (second,) = gone
    (first,) = [s for s in starts if s is not second]
    assert _exit_of(second.process) == 0, second.process.everything_printed
    assert "app.handover" in _names(second.process)
    assert "app.started" not in _names(second.process)
    _showing(first)
    first.log.wait_event("app.presented", timeout=SECOND_START_S)
    assert first.process.exited() is None
    _quit(first)
