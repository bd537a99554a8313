"""Hostile disks, with the real tray app: a read-only data folder, a damaged history store, a
history store that is a symlink to another program's database, and the log file's mode after a
rotation. The app keeps showing readings and alerting, and says what it could not do."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from tests.support.processes import Event, FakeShareProcess, Rig, TrayProcess, VirtualClock

from cgmtray.logging_setup import LOG_MAX_BYTES_ENV
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.paths import app_paths
from cgmtray.ui.app import EXIT_UNSAFE_LOCK
from cgmtray.ui.single_instance import LOCK_FILE_NAME

pytestmark = pytest.mark.e2e

INTERVAL: Final = timedelta(minutes=5)
UPLOAD_LAG: Final = timedelta(seconds=30)
IN_RANGE_MGDL: Final = 110
LOW_MGDL: Final = 64
#: Real seconds: process start to the first reading on screen, and the bound of every other wait
#: (each only bounds a hang: the awaited thing comes in virtual minutes, real seconds).
MOMENT_S: Final = 30.0
QUIT_S: Final = 10.0
IS_ROOT: Final = hasattr(os, "geteuid") and os.geteuid() == 0


# --- helpers -------------------------------------------------------------------------------------


def slot_times(clock: VirtualClock, before: timedelta, after: timedelta) -> list[datetime]:
    first = (clock.epoch - before).replace(microsecond=0) + timedelta(seconds=37, milliseconds=250)
    return [first + k * INTERVAL for k in range(int((before + after) / INTERVAL))]


def start_with_readings(rig: Rig) -> tuple[FakeShareProcess, TrayProcess]:
    """The fake with 3 h of in-range history and 2 h still to come, then the tray app; returns
    once it shows a reading."""
    fake = rig.start_fake()
    times = slot_times(rig.clock, before=timedelta(hours=3), after=timedelta(hours=2))
    fake.publish([(when, IN_RANGE_MGDL, when + UPLOAD_LAG) for when in times])
    tray = rig.start_tray(fake)
    tray.log.wait_event("tray.updated", severity="in_range", timeout=MOMENT_S)
    return fake, tray


def publish_lows(rig: Rig, fake: FakeShareProcess) -> None:
    now = fake.now()
    coming = [t for t in slot_times(rig.clock, timedelta(hours=3), timedelta(hours=2)) if t > now]
    fake.publish([(when, LOW_MGDL, when + UPLOAD_LAG) for when in coming])


def notice_containing(text: str) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return event.get("event") == "files.notice" and text in str(event.get("msg", ""))

    return matches


def quit_cleanly(tray: TrayProcess) -> None:
    code, took = tray.process.terminate(timeout=QUIT_S)
    assert code == 0, f"exit status {code} after {took:.1f} s: {tray.process.stderr.lines[-5:]}"
    assert "Traceback" not in tray.process.everything_printed


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[str]:
    """`folder` made read-only for real: a read-only tmpfs mounted there (as root, where chmod
    stops nothing); for anyone else its permission bits. Yields how; undone afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    if not IS_ROOT:
        folder.chmod(0o500)
        try:
            yield "chmod"
        finally:
            folder.chmod(0o700)
        return
    mount = shutil.which("mount")
    umount = shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("running as root, but mount/umount are missing: no real read-only folder")
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"a read-only tmpfs cannot be mounted here: {made.stderr.strip()}")
    try:
        yield "mount"
    finally:
        # Lazily: a process that still has the folder open cannot keep the mount behind.
        subprocess.run([umount, "-l", str(folder)], capture_output=True, timeout=30, check=False)


# --- the tests -----------------------------------------------------------------------------------


def test_a_read_only_data_folder_still_shows_readings_alerts_and_says_history_is_not_kept(
    rig: Rig,
) -> None:
    data_dir = app_paths(rig.basedir).data_dir
    with read_only_folder(data_dir):
        fake, tray = start_with_readings(rig)
        # Said before the window (stderr) and again under the status line (files.notice).
        _index, early = tray.log.wait_event("files.folder_unusable", timeout=MOMENT_S)
        assert str(early["msg"]).startswith(f"The folder {data_dir} is read-only")
        tray.log.wait_for(
            notice_containing(f"The folder {data_dir} is read-only; history is not kept"),
            timeout=MOMENT_S,
            what="the notice",
        )
        publish_lows(rig, fake)
        _index, raised = tray.log.wait_event("alert.raised", kind="low", timeout=MOMENT_S)
        assert raised["action"] == "raise"
        tray.log.wait_event("notify.sent", kind="low", timeout=MOMENT_S)
        quit_cleanly(tray)
        assert list(data_dir.iterdir()) == []  # nothing could be written, nothing was
    events = [e.get("event") for e in tray.log.events]
    assert "history.stored" not in events
    notices = [str(e.get("msg")) for e in tray.log.events if e.get("event") == "files.notice"]
    assert len(notices) == 1, notices  # the folder's notice says it; no second one for the store


def test_a_damaged_store_is_moved_aside_a_fresh_one_started_and_a_notification_shown(
    rig: Rig,
) -> None:
    history = app_paths(rig.basedir).history_db
    history.parent.mkdir(parents=True, mode=0o700)
    damaged = b"this is not a database, it is a shopping list\n" * 200
    history.write_bytes(damaged)
    history.chmod(0o644)

    _fake, tray = start_with_readings(rig)
    _index, moved = tray.log.wait_event("history.moved_aside", timeout=MOMENT_S)
    tray.log.wait_event("notify.sent", kind="files", timeout=MOMENT_S)
    tray.log.wait_event("history.stored", timeout=MOMENT_S)
    quit_cleanly(tray)

    kept = Path(str(moved["moved_to"]))
    assert kept.parent == history.parent
    assert kept.name.startswith("history.sqlite3.corrupt-")
    assert kept.read_bytes() == damaged
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    with HistoryStore(history, read_only=True) as store:
        assert store.count() > 0


def test_a_symlinked_store_is_not_followed_and_the_app_runs_from_memory(rig: Rig) -> None:
    other = rig.tmp_path / "another-program"
    other.mkdir()
    target = other / "their.db"
    with contextlib.closing(sqlite3.connect(target)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
        conn.commit()
    target.chmod(0o644)
    before_bytes = target.read_bytes()
    before_listing = sorted(p.name for p in other.iterdir())
    history = app_paths(rig.basedir).history_db
    history.parent.mkdir(parents=True, mode=0o700)
    history.symlink_to(target)

    _fake, tray = start_with_readings(rig)
    tray.log.wait_for(
        notice_containing("symbolic link"), timeout=MOMENT_S, what="the symlink notice"
    )
    quit_cleanly(tray)

    assert history.is_symlink()
    assert target.read_bytes() == before_bytes
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in other.iterdir()) == before_listing  # no -wal, -shm, -journal
    with contextlib.closing(sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    events = [e.get("event") for e in tray.log.events]
    assert "history.stored" not in events


def test_the_log_file_is_owner_only_also_after_a_rotation(rig: Rig) -> None:
    rig.env[LOG_MAX_BYTES_ENV] = "1500"  # a few lines: the first minutes rotate it
    _fake, tray = start_with_readings(rig)
    rotated = tray.log_file.with_name(tray.log_file.name + ".1")
    assert tray.log.wait_until(rotated.exists, timeout=MOMENT_S), "the log never rotated"
    quit_cleanly(tray)
    for path in (tray.log_file, rotated):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(tray.log_file.parent.stat().st_mode) == 0o700


@contextlib.contextmanager
def small_folder(folder: Path) -> Iterator[None]:
    """`folder` on a 512 KiB tmpfs of its own (root only), so the test can fill it."""
    if not IS_ROOT:
        pytest.skip("a full disk needs a small tmpfs mount, which needs root")
    folder.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30, check=False)


def fill(folder: Path) -> None:
    """Writes a file into `folder` until the disk is full (unbuffered: every byte that fits)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0"):
                pass
    finally:
        os.close(fd)


def test_a_full_disk_is_said_and_readings_and_alerts_go_on(rig: Rig) -> None:
    data_dir = app_paths(rig.basedir).data_dir
    with small_folder(data_dir):
        fake, tray = start_with_readings(rig)
        index, _stored = tray.log.wait_event("history.stored", timeout=MOMENT_S)
        fill(data_dir)
        publish_lows(rig, fake)
        tray.log.wait_event("history.write_failed", start=index, timeout=MOMENT_S)
        tray.log.wait_for(
            notice_containing("Readings are not being saved to history"),
            timeout=MOMENT_S,
            what="the disk-full notice",
        )
        tray.log.wait_event("alert.raised", kind="low", timeout=MOMENT_S)
        tray.log.wait_event("tray.updated", severity="low", timeout=MOMENT_S)
        quit_cleanly(tray)


def test_a_symlinked_instance_lock_stops_the_start_with_a_message(rig: Rig) -> None:
    target = rig.tmp_path / "someone-elses-file"
    target.write_bytes(b"leave me be\n")
    target.chmod(0o644)
    data_dir = app_paths(rig.basedir).data_dir
    data_dir.mkdir(parents=True, mode=0o700)
    (data_dir / LOCK_FILE_NAME).symlink_to(target)
    fake = rig.start_fake()

    tray = rig.start_tray(fake)

    assert tray.process.popen.wait(timeout=MOMENT_S) == EXIT_UNSAFE_LOCK
    tray.process.stderr.join(QUIT_S)
    printed = tray.process.everything_printed
    assert "is a symbolic link; CGM Tray does not follow it" in printed
    assert "Traceback" not in printed
    assert target.read_bytes() == b"leave me be\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
