"""The local readings history in SQLite: de-duplicated by time, range queries, retention, CSV."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import TextIO

from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit, format_value, mgdl_to_mmol
from cgmtray.storage.safe_open import check_not_link, describe, open_fd

#: The schema this code writes; kept in PRAGMA user_version.
SCHEMA_VERSION = 1

#: How long a connection waits for another one's write lock before giving up.
BUSY_TIMEOUT_MS = 5000

CSV_HEADER = ("time_utc", "time_local", "mg_dl", "mmol_l", "trend")
#: The column an export of one of several people's history adds after CSV_HEADER's.
CSV_PERSON_COLUMN = "person"
#: Spreadsheets read a cell starting with one of these as a formula; a name written to a CSV
#: cell gets a leading apostrophe instead (OWASP's advice against CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

MEMORY = ":memory:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_TRENDS: tuple[Trend, ...] = tuple(Trend)
_PRIVATE_FILE_MODE = 0o600


class HistoryError(Exception):
    """The history file cannot be used: unreadable, not a database, or from a newer app."""


class HistoryDamagedError(HistoryError):
    """The file is not a database, a damaged one, or a database that is not CGM Tray's: it may
    be moved aside (move_aside) and a fresh store started."""


class HistoryUnavailableError(HistoryError):
    """The file cannot be used where it is (a read-only or full folder, a symlink, a newer
    app's store): left as it is, and the app runs from memory."""


#: SQLite result codes (primary) that mean the file's bytes are not a usable database.
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_COLUMNS = ("time_ms", "mgdl", "trend")
#: Files SQLite opens beside the store: none may be a symlink either.
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def to_epoch_ms(when: datetime) -> int:
    """An aware datetime as whole milliseconds since the Unix epoch (UTC); sub-ms is dropped."""
    return (require_aware_utc(when) - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime of an epoch-milliseconds value (exact, whole seconds fast)."""
    seconds, millis = divmod(ms, 1000)
    when = datetime.fromtimestamp(seconds, UTC)
    return when + timedelta(milliseconds=millis) if millis else when


def _checked_reading(ms: int, mgdl: int, trend: int) -> Reading:
    return Reading(from_epoch_ms(ms), mgdl, _TRENDS[trend])


def _trusted_reading(ms: int, mgdl: int, trend: int) -> Reading:
    # Rows passed the table's CHECK constraints on the way in, so Reading's validation is skipped:
    # it is most of the cost of a 30-day query (8640 rows). Used only while Reading's fields are
    # exactly these three (checked below), otherwise the checked constructor is used.
    reading: Reading = _new_object(Reading)
    _set_field(reading, "time", from_epoch_ms(ms))
    _set_field(reading, "mgdl", mgdl)
    _set_field(reading, "trend", _TRENDS[trend])
    return reading


_new_object = object.__new__
_set_field = object.__setattr__
_reading_from_row: Callable[[int, int, int], Reading] = (
    _trusted_reading
    if tuple(f.name for f in dataclasses.fields(Reading)) == ("time", "mgdl", "trend")
    else _checked_reading
)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS readings ("
        " time_ms INTEGER PRIMARY KEY,"
        " mgdl INTEGER NOT NULL CHECK (mgdl BETWEEN 39 AND 401),"
        " trend INTEGER NOT NULL CHECK (trend BETWEEN 0 AND 9))"
    )


#: MIGRATIONS[v] brings a database at user_version v to v + 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _migrate_0_to_1}


def _create_private_file(path: Path) -> None:
    """Creates the file owner-only if missing, and tightens an existing one (POSIX); never
    through a symlink."""
    os.close(open_fd(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE_MODE))


def _check_no_links(path: Path) -> None:
    """SQLite follows symlinks: the store and the files it keeps beside it must not be any."""
    for candidate in (path, *(path.with_name(path.name + s) for s in COMPANION_SUFFIXES)):
        check_not_link(candidate)


def _classified(path: str, error: sqlite3.DatabaseError) -> HistoryError:
    code = getattr(error, "sqlite_errorcode", None)
    damaged = code is not None and code & 0xFF in _DAMAGE_CODES
    kind = HistoryDamagedError if damaged else HistoryUnavailableError
    return kind(f"The history file {path} cannot be opened: {error}")


def _csv_text(text: str) -> str:
    """`text` for a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class HistoryStore:
    """Readings kept on disk, one connection per store object.

    Each thread opens its own store on the same file (the worker writes, the GUI reads); WAL mode
    lets reads run while a write is in progress. A store may also be handed between threads: its
    calls are serialised by a lock. Use as a context manager or call close().
    """

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self._lock = threading.Lock()
        self._read_only = read_only
        self._path = str(path)
        in_memory = self._path == MEMORY
        try:
            if in_memory:
                self._conn = self._connect(MEMORY, uri=False)
                self._migrate()
            elif read_only:
                if not self._has_current_schema(Path(path)):
                    # Let a reader open before the first write: create the empty store once.
                    HistoryStore(path).close()
                self._conn = self._connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
                self._check_version()
            else:
                _check_no_links(Path(path))
                _create_private_file(Path(path))
                self._conn = self._connect(self._path, uri=False)
                self._check_ours()  # before anything is written to a file that may not be ours
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
                self._check_schema()
        except HistoryError:
            with contextlib.suppress(AttributeError):
                self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(AttributeError):
                self._conn.close()
            raise _classified(self._path, exc) from exc
        except OSError as exc:  # a read-only or full folder, a symlink, no permission
            with contextlib.suppress(AttributeError):
                self._conn.close()
            raise HistoryUnavailableError(
                f"The history file {self._path} cannot be used: {describe(exc)}"
            ) from exc

    @staticmethod
    def _connect(target: str, *, uri: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            target,
            uri=uri,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit; writes use explicit BEGIN IMMEDIATE
            check_same_thread=False,  # guarded by the store's lock instead
        )
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    @staticmethod
    def _has_current_schema(path: Path) -> bool:
        _check_no_links(path)
        if not path.exists():
            return False
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
        return version >= SCHEMA_VERSION

    def _user_version(self) -> int:
        version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _check_version(self) -> int:
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise HistoryUnavailableError(
                f"The history file {self._path} cannot be opened: it was written by a newer "
                f"CGM Tray (schema {version} > {SCHEMA_VERSION})"
            )
        return version

    def _check_schema(self) -> None:
        """The store holds CGM Tray's readings table as this code made it, not another
        program's database."""
        columns = tuple(
            row[1] for row in self._conn.execute("PRAGMA table_info(readings)").fetchall()
        )
        if columns != _COLUMNS:
            raise HistoryDamagedError(
                f"The history file {self._path} is not CGM Tray's: its readings table is "
                f"{'missing' if not columns else 'of another shape'}"
            )

    def _check_ours(self) -> None:
        """A newer app's store or another program's database is refused before any write."""
        version = self._check_version()
        foreign = self._conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        if version == 0 and foreign:
            raise HistoryDamagedError(
                f"The history file {self._path} is not CGM Tray's: another program's database"
            )
        if version == SCHEMA_VERSION:
            self._check_schema()  # another program's database with a user_version of its own

    def _migrate(self) -> None:
        with self._write():
            version = self._check_version()
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](self._conn)
                version += 1
                self._conn.execute(f"PRAGMA user_version={version}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        if self._read_only:
            raise HistoryError("this history store was opened read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @property
    def path(self) -> str:
        return self._path

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._user_version()

    def add(self, readings: Iterable[Reading]) -> int:
        """Stores readings not yet known (by timestamp); returns how many were new."""
        rows = [(to_epoch_ms(r.time), r.mgdl, int(r.trend)) for r in readings]
        if not rows:
            return 0
        with self._lock, self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO readings (time_ms, mgdl, trend) VALUES (?, ?, ?)", rows
            )
            return conn.total_changes - before

    def _select(self, sql: str, params: tuple[int, ...]) -> list[Reading]:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_reading_from_row(ms, mgdl, trend) for ms, mgdl, trend in rows]

    def range(self, start: datetime, end: datetime) -> list[Reading]:
        """Readings with start <= time < end, oldest first."""
        return self._select(
            "SELECT time_ms, mgdl, trend FROM readings"
            " WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms",
            (to_epoch_ms(start), to_epoch_ms(end)),
        )

    def latest(self, n: int = 1) -> list[Reading]:
        """The newest `n` readings, newest first."""
        if n <= 0:
            return []
        return self._select(
            "SELECT time_ms, mgdl, trend FROM readings ORDER BY time_ms DESC LIMIT ?", (n,)
        )

    def count(self) -> int:
        with self._lock:
            total: int = self._conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        return total

    def _edge_time(self, aggregate: str) -> datetime | None:
        with self._lock:
            ms: int | None = self._conn.execute(
                f"SELECT {aggregate}(time_ms) FROM readings"  # noqa: S608 - fixed names only
            ).fetchone()[0]
        return None if ms is None else from_epoch_ms(ms)

    def oldest_time(self) -> datetime | None:
        return self._edge_time("MIN")

    def newest_time(self) -> datetime | None:
        return self._edge_time("MAX")

    def prune(self, before: datetime) -> int:
        """Deletes readings older than `before` (retention); returns how many went."""
        cutoff = to_epoch_ms(before)
        with self._lock, self._write() as conn:
            return conn.execute("DELETE FROM readings WHERE time_ms < ?", (cutoff,)).rowcount

    def export_csv(
        self,
        start: datetime,
        end: datetime,
        out: TextIO,
        *,
        local_tz: tzinfo | None = None,
        person: str | None = None,
    ) -> int:
        """Writes [start, end) as CSV, oldest first; returns the number of readings written.

        Columns: time_utc, time_local (ISO 8601; `local_tz` or the system's zone), mg_dl, mmol_l,
        trend (Share's wire name). LOW and HIGH are written as words in both value columns.
        With `person` (a name), a last column "person" holds it on every row; the columns
        before it stay as they are, so a tool reading them by position or by name still works.
        Open files with newline="" (the csv module writes its own line endings).
        """
        writer = csv.writer(out)
        extra: tuple[str, ...] = ()
        if person is not None:
            extra = (_csv_text(person),)
            writer.writerow((*CSV_HEADER, CSV_PERSON_COLUMN))
        else:
            writer.writerow(CSV_HEADER)
        readings = self.range(start, end)
        for reading in readings:
            local = reading.time.astimezone(local_tz) if local_tz else reading.time.astimezone()
            if reading.is_numeric:
                mgdl_text, mmol_text = str(reading.mgdl), str(mgdl_to_mmol(reading.mgdl))
            else:
                mgdl_text = mmol_text = format_value(reading, Unit.MGDL)  # the word
            writer.writerow(
                (
                    reading.time.isoformat(),
                    local.isoformat(),
                    mgdl_text,
                    mmol_text,
                    reading.trend.wire_name,
                    *extra,
                )
            )
        return len(readings)

    def integrity_ok(self) -> bool:
        """True when SQLite's own integrity check finds nothing wrong."""
        try:
            with self._lock:
                rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError:
            return False
        return [tuple(row) for row in rows] == [("ok",)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "read-write"
        return f"HistoryStore({self._path!r}, {mode})"


def move_aside(path: Path, now: datetime) -> Path:
    """Renames an unusable history file (and its WAL files) to <name>.corrupt-<UTC time>
    (a -N suffix if that exists), owner-only; a symlink is refused (UnsafeFileError).

    For the caller that caught HistoryDamagedError and wants to start a fresh history rather than
    lose the app; returns the new name of the main file.
    """
    _check_no_links(path)
    stamp = require_aware_utc(now).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    attempt = 1
    while target.exists() or target.is_symlink():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{attempt}")
        attempt += 1
    for suffix in COMPANION_SUFFIXES:  # a hot journal left beside it must not meet the new store
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.replace(target.with_name(target.name + suffix))
    path.replace(target)
    if os.name == "posix":
        os.close(open_fd(target, os.O_RDONLY))  # still a regular file, not a link
        target.chmod(_PRIVATE_FILE_MODE)
    return target


@dataclasses.dataclass(frozen=True)
class Opened:
    """What open_or_recover found: whether the store can be used, and what to tell the person."""

    usable: bool
    newest: datetime | None = None
    recent: tuple[Reading, ...] = ()
    #: Where a damaged store was moved (a fresh one was started), if it was.
    moved_to: Path | None = None
    #: A plain sentence for the person when history is not kept or was started anew.
    problem: str | None = None


def open_or_recover(path: Path, now: datetime, recent_span: timedelta) -> Opened:
    """Opens the store for the app's start: the readings of `recent_span` around the newest; a
    damaged store is moved aside and a fresh one started; an unusable one (read-only or full
    folder, a symlink, a newer app's) is left untouched and reported. Never raises."""
    moved_to: Path | None = None
    for _attempt in range(2):
        try:
            with HistoryStore(path) as store:
                try:
                    newest = store.newest_time()
                    recent = (
                        tuple(store.range(newest - recent_span, newest + recent_span))
                        if newest is not None
                        else ()
                    )
                except sqlite3.DatabaseError as exc:  # a damaged page behind a sound header
                    raise _classified(str(path), exc) from exc
                except (IndexError, OverflowError, ValueError) as exc:  # rows no CHECK allows
                    raise HistoryDamagedError(
                        f"The history file {path} holds readings CGM Tray never writes"
                    ) from exc
        except HistoryDamagedError as error:
            if moved_to is not None:
                break
            try:
                moved_to = move_aside(path, now)
            except OSError as move_error:
                return Opened(
                    usable=False,
                    problem=f"History is not being kept: the history file is damaged ({error}) "
                    f"and could not be moved aside ({describe(move_error)}).",
                )
            continue
        except HistoryError as error:
            return Opened(usable=False, problem=f"History is not being kept: {error}.")
        problem = None
        if moved_to is not None:
            problem = (
                f"The history store was damaged; it was moved aside to {moved_to} "
                "and a new one was started."
            )
        return Opened(True, newest, recent, moved_to, problem)
    return Opened(usable=False, problem="History is not being kept: the history file is damaged.")
