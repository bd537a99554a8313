"""Files on hostile disks: no opener follows a symlink, a damaged store is moved aside, the log is
owner-only after rotation, an oversized settings file is refused unparsed, folders never raise."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
import stat
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

from cgmtray import logging_setup
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.sign_in_gate import Outcome
from cgmtray.storage.history import (
    HistoryDamagedError,
    HistoryStore,
    HistoryUnavailableError,
    move_aside,
    open_or_recover,
)
from cgmtray.storage.paths import app_paths, prepare
from cgmtray.storage.safe_open import (
    TooLargeError,
    UnsafeFileError,
    open_fd,
    read_capped,
)
from cgmtray.storage.settings import (
    MAX_SETTINGS_BYTES,
    Settings,
    load_settings,
    one_person_settings,
    save_settings,
)
from cgmtray.storage.sign_in_state import LOCK_FILE_NAME, STATE_FILE_NAME, PersistedSignInGate

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and symlinks")
pytestmark = posix_only

T0: Final = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPAN: Final = timedelta(hours=3)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Another program's file, 0644, that a symlink of ours will point at."""
    other = tmp_path / "other"
    other.mkdir()
    target = other / "precious.txt"
    target.write_bytes(b"another program's data\n")
    target.chmod(0o644)
    return target


def unchanged(target: Path, before: bytes) -> bool:
    return (
        target.read_bytes() == before
        and stat.S_IMODE(target.stat().st_mode) == 0o644
        and sorted(p.name for p in target.parent.iterdir()) == [target.name]
    )


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


# --- safe_open -----------------------------------------------------------------------------------


def test_open_fd_refuses_a_symlink_and_a_folder(tmp_path: Path, victim: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        open_fd(link, os.O_RDWR | os.O_CREAT)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafeFileError):
        open_fd(dangling, os.O_WRONLY | os.O_CREAT)
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        open_fd(tmp_path, os.O_RDONLY)
    assert unchanged(victim, before)


def test_open_fd_creates_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0o022):
        os.close(open_fd(tmp_path / "new", os.O_WRONLY | os.O_CREAT))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600


def test_read_capped_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(TooLargeError) as caught:
        read_capped(big, 100)
    assert (caught.value.size, caught.value.limit) == (101, 100)
    assert read_capped(big, 101) == b"x" * 101


# --- settings ------------------------------------------------------------------------------------


def test_a_100_mb_settings_file_is_refused_without_being_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config" / "settings.toml"
    path.parent.mkdir()
    with path.open("wb") as out:  # a valid TOML array of 100 MB
        out.write(b'version = 1\nregion = "jp"\nusername = "kept-aside"\nnoise = [')
        chunk = b"1," * (1024 * 1024 // 2)
        for _ in range(100):
            out.write(chunk)
        out.write(b"1]\n")
    size = path.stat().st_size
    parsed: list[str] = []

    def parse(text: str) -> dict[str, object]:
        parsed.append(text)
        return {}

    monkeypatch.setattr(tomllib, "loads", parse)

    result = load_settings(path, now=T0)

    assert parsed == []  # refused before any parsing (not even to recover the username)
    assert result.settings == Settings()
    assert result.problem is not None
    assert "is 100 MB; the limit is 1 MB" in result.problem
    assert result.backup is not None
    assert str(result.backup) in result.problem
    assert result.backup.stat().st_size == size
    assert not path.exists()
    assert size > MAX_SETTINGS_BYTES


def test_a_settings_file_at_the_limit_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    save_settings(one_person_settings(region="jp", username="someone"), path)
    padding = MAX_SETTINGS_BYTES - path.stat().st_size
    with path.open("ab") as out:
        out.write(b"#" * (padding - 1) + b"\n")
    assert path.stat().st_size == MAX_SETTINGS_BYTES
    result = load_settings(path, now=T0)
    assert result.problem is None
    assert result.settings.first_person.source.username == "someone"


def test_a_symlinked_settings_file_is_neither_read_nor_saved_over(
    tmp_path: Path, victim: Path
) -> None:
    path = tmp_path / "settings.toml"
    path.symlink_to(victim)
    before = victim.read_bytes()

    result = load_settings(path, now=T0)
    assert result.settings == Settings()
    assert result.problem is not None
    assert "symbolic link" in result.problem
    assert "cannot be saved" in result.problem
    assert result.backup is None
    assert not result.should_save
    with pytest.raises(UnsafeFileError):
        save_settings(one_person_settings(username="x"), path)

    assert path.is_symlink()
    assert unchanged(victim, before)


# --- history -------------------------------------------------------------------------------------


def _reading(minutes: int) -> Reading:
    return Reading(T0 + timedelta(minutes=minutes), 120, Trend.FLAT)


def test_a_symlinked_store_is_refused_and_its_target_untouched(
    tmp_path: Path, victim: Path
) -> None:
    path = tmp_path / "history.sqlite3"
    path.symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(HistoryUnavailableError, match="symbolic link"):
        HistoryStore(path)
    with pytest.raises(HistoryUnavailableError, match="symbolic link"):
        HistoryStore(path, read_only=True)
    with pytest.raises(UnsafeFileError):
        move_aside(path, T0)
    opened = open_or_recover(path, T0, SPAN)
    assert not opened.usable
    assert opened.moved_to is None
    assert opened.problem is not None
    assert "symbolic link" in opened.problem
    assert path.is_symlink()
    assert unchanged(victim, before)


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_symlink_beside_the_store_is_refused(tmp_path: Path, victim: Path, suffix: str) -> None:
    path = tmp_path / "history.sqlite3"
    HistoryStore(path).close()
    companion = path.with_name(path.name + suffix)
    companion.unlink(missing_ok=True)
    companion.symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(HistoryUnavailableError, match="symbolic link"):
        HistoryStore(path)
    assert unchanged(victim, before)


def test_a_damaged_store_is_moved_aside_owner_only_and_a_fresh_one_started(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    damaged = b"not a database at all\n" * 100
    path.write_bytes(damaged)
    path.chmod(0o644)
    with pytest.raises(HistoryDamagedError):
        HistoryStore(path)

    opened = open_or_recover(path, T0, SPAN)

    assert opened.usable
    assert opened.moved_to == path.with_name("history.sqlite3.corrupt-20260301T120000Z")
    assert opened.problem is not None
    assert f"moved aside to {opened.moved_to}" in opened.problem
    assert opened.moved_to.read_bytes() == damaged
    assert stat.S_IMODE(opened.moved_to.stat().st_mode) == 0o600
    with HistoryStore(path) as fresh:
        assert fresh.add([_reading(0)]) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_another_programs_database_at_the_stores_path_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()
    with pytest.raises(HistoryDamagedError, match="not CGM Tray's"):
        HistoryStore(path)
    opened = open_or_recover(path, T0, SPAN)
    assert opened.usable
    assert opened.moved_to is not None
    with contextlib.closing(sqlite3.connect(opened.moved_to)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]  # kept as it was, not given our table


def test_a_second_damaged_store_in_the_same_second_is_kept_too(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    for n in range(2):
        path.write_bytes(b"damaged %d\n" % n * 50)
        assert open_or_recover(path, T0, SPAN).usable
    kept = sorted(p.name for p in tmp_path.glob("history.sqlite3.corrupt-*"))
    assert kept == [
        "history.sqlite3.corrupt-20260301T120000Z",
        "history.sqlite3.corrupt-20260301T120000Z-1",
    ]


def test_a_good_store_opens_with_its_recent_readings(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with HistoryStore(path) as store:
        store.add([_reading(-600), _reading(-5), _reading(0)])
    opened = open_or_recover(path, T0, SPAN)
    assert opened.usable
    assert opened.problem is None
    assert opened.newest == T0
    assert [r.time for r in opened.recent] == [T0 - timedelta(minutes=5), T0]


def test_a_newer_apps_store_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version=99")
    before = path.read_bytes()
    opened = open_or_recover(path, T0, SPAN)
    assert not opened.usable
    assert opened.problem is not None
    assert "newer" in opened.problem
    assert path.read_bytes() == before
    assert list(tmp_path.glob("*.corrupt-*")) == []


# --- the log -------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_the_log_file_and_each_file_after_rotation_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logging_setup.LOG_MAX_BYTES_ENV, "300")
    log_file = tmp_path / "log" / "cgm-tray.log"
    with umask(0o022):  # what a desktop session usually has
        problem = logging_setup.configure(log_file=log_file, stream=io.StringIO())
        assert problem is None
        for n in range(40):
            logging.getLogger("test").info("line %d of a log that rotates", n)
    files = sorted(log_file.parent.iterdir())
    assert [p.name for p in files] == [
        "cgm-tray.log",
        "cgm-tray.log.1",
        "cgm-tray.log.2",
        "cgm-tray.log.3",
    ]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700


@pytest.mark.usefixtures("restore_logging")
def test_a_symlinked_log_file_is_refused_and_logging_goes_to_stderr_only(
    tmp_path: Path, victim: Path
) -> None:
    log_file = tmp_path / "cgm-tray.log"
    log_file.symlink_to(victim)
    before = victim.read_bytes()
    problem = logging_setup.configure(log_file=log_file, stream=io.StringIO())
    assert problem is not None
    assert "standard error only" in problem
    logging.getLogger("test").warning("this must not reach the other program's file")
    assert unchanged(victim, before)


@pytest.mark.usefixtures("restore_logging")
def test_a_symlink_planted_as_a_backup_is_not_renamed_over(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logging_setup.LOG_MAX_BYTES_ENV, "200")
    log_file = tmp_path / "cgm-tray.log"
    planted = tmp_path / "cgm-tray.log.3"
    planted.symlink_to(victim)
    before = victim.read_bytes()
    logging_setup.configure(log_file=log_file, stream=io.StringIO())
    for n in range(40):
        logging.getLogger("test").info("line %d of a log that rotates", n)
    assert unchanged(victim, before)


# --- folders -------------------------------------------------------------------------------------


def test_folders_that_cannot_be_made_are_reported_not_raised(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "data").write_text("a file where the data folder should be")
    problems = prepare(app_paths(base))
    assert len(problems) == 1
    assert problems[0].startswith(f"The folder {base / 'data'} cannot be used")
    assert "history is not kept" in problems[0]
    assert stat.S_IMODE((base / "config").stat().st_mode) == 0o700


def test_a_symlinked_folder_is_used(tmp_path: Path) -> None:
    """Dotfiles managers link whole folders: accepted (the files inside are what is checked)."""
    real = tmp_path / "dotfiles" / "config"
    real.mkdir(parents=True)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config").symlink_to(real)
    assert prepare(app_paths(base)) == []
    save_settings(one_person_settings(username="linked"), app_paths(base).settings_file)
    assert load_settings(real / "settings.toml").settings.first_person.source.username == "linked"


# --- the shared sign-in state ------------------------------------------------------------------


@pytest.mark.parametrize("name", [LOCK_FILE_NAME, STATE_FILE_NAME])
def test_a_symlinked_sign_in_state_file_is_not_followed(
    tmp_path: Path, victim: Path, name: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / name).symlink_to(victim)
    before = victim.read_bytes()
    gate = PersistedSignInGate(folder, region="us", username="someone")
    assert gate.reserve(T0).allowed  # signing in still works: the state is kept in memory
    gate.record(T0, Outcome.REJECTED)
    assert gate.state().block is not None
    assert unchanged(victim, before)


def test_a_store_with_damaged_pages_behind_a_sound_header_is_moved_aside_at_start(
    tmp_path: Path,
) -> None:
    """The commonest damage (a crash on a bad disk): the header and schema read fine, the pages
    of readings do not. The start must not die on the first query."""
    path = tmp_path / "history.sqlite3"
    with HistoryStore(path) as store:
        store.add([_reading(minutes) for minutes in range(0, 3000 * 5, 5)])
    size = path.stat().st_size
    page = 4096
    with path.open("r+b") as raw:  # every page after the schema's overwritten with noise
        for offset in range(2 * page, size, page):
            raw.seek(offset)
            raw.write(bytes((offset // page * 37 + i) % 251 for i in range(page)))

    opened = open_or_recover(path, T0, SPAN)

    assert opened.usable
    assert opened.moved_to is not None
    assert opened.problem is not None
    assert "moved aside" in opened.problem
    with HistoryStore(path) as fresh:
        assert fresh.newest_time() is None


def test_another_programs_database_with_a_user_version_is_refused_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    before = path.read_bytes()
    with pytest.raises(HistoryDamagedError, match="not CGM Tray's"):
        HistoryStore(path)
    assert path.read_bytes() == before  # not switched to WAL, nothing written


def test_a_journal_left_beside_a_damaged_store_goes_aside_with_it(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"not a database\n" * 100)
    journal = path.with_name("history.sqlite3-journal")
    journal.write_bytes(b"a hot journal of the damaged store")
    moved_to = move_aside(path, T0)
    kept = moved_to.with_name(moved_to.name + "-journal")
    assert kept.read_bytes() == b"a hot journal of the damaged store"
    assert not journal.exists()  # never replayed into the fresh store


def test_a_settings_file_that_was_not_used_at_all_is_marked_for_the_person(
    tmp_path: Path,
) -> None:
    """Defaults in place of the person's thresholds must reach the status line, not only the
    log: a folder, a symlink, garbage and an oversized file all say `ignored`."""
    folder = tmp_path / "a" / "settings.toml"
    folder.mkdir(parents=True)
    target = tmp_path / "elsewhere.toml"
    target.write_text("version = 2\n")
    link = tmp_path / "b" / "settings.toml"
    link.parent.mkdir()
    link.symlink_to(target)
    garbage = tmp_path / "c" / "settings.toml"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\xff\xfe not toml [[[")
    for path in (folder, link, garbage):
        loaded = load_settings(path, now=T0)
        assert loaded.ignored, path
        assert loaded.problem is not None
    fine = tmp_path / "d" / "settings.toml"
    assert not load_settings(fine, now=T0).ignored  # no file yet: a first run, nothing to say


def test_a_fifo_where_the_settings_file_should_be_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.toml"
    os.mkfifo(path)  # nobody ever writes to it: a blocking open would wait for ever
    loaded = load_settings(path, now=T0)
    assert loaded.ignored
    assert loaded.problem is not None
    assert "could not be read" in loaded.problem
