"""The readings history: de-duplication, ranges, retention, CSV, concurrency, files on disk."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.storage.history import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    from_epoch_ms,
    move_aside,
    to_epoch_ms,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def series(count: int, start: datetime = T0, step: timedelta = FIVE_MIN) -> list[Reading]:
    return [
        Reading(start + i * step, 40 + (i * 7) % 361, Trend(i % len(Trend))) for i in range(count)
    ]


@pytest.fixture
def store() -> HistoryStore:
    return HistoryStore(":memory:")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


def test_new_store_is_empty(store: HistoryStore) -> None:
    assert store.count() == 0
    assert store.latest() == []
    assert store.oldest_time() is None
    assert store.newest_time() is None
    assert store.range(T0 - timedelta(days=1), T0 + timedelta(days=1)) == []


def test_readings_come_back_exactly(store: HistoryStore) -> None:
    readings = series(12)
    assert store.add(readings) == 12
    assert store.range(T0, T0 + timedelta(hours=1)) == readings


def test_adding_the_same_readings_again_adds_nothing(store: HistoryStore) -> None:
    readings = series(10)
    assert store.add(readings) == 10
    assert store.add(readings) == 0
    assert store.add(series(15)) == 5  # overlapping fetch: only the 5 new ones count
    assert store.count() == 15


def test_one_reading_per_timestamp_first_kept(store: HistoryStore) -> None:
    store.add([Reading(T0, 120, Trend.FLAT)])
    assert store.add([Reading(T0, 130, Trend.SINGLE_UP), Reading(T0, 140, Trend.FLAT)]) == 0
    assert store.latest() == [Reading(T0, 120, Trend.FLAT)]


def test_duplicates_inside_one_batch_count_once(store: HistoryStore) -> None:
    reading = Reading(T0, 100, Trend.FLAT)
    assert store.add([reading, reading, reading]) == 1


def test_add_nothing(store: HistoryStore) -> None:
    assert store.add([]) == 0
    assert store.add(iter(())) == 0


def test_range_is_start_inclusive_end_exclusive_oldest_first(store: HistoryStore) -> None:
    readings = series(10)
    store.add(reversed(readings))
    got = store.range(readings[2].time, readings[5].time)
    assert got == readings[2:5]
    assert store.range(readings[5].time, readings[5].time) == []
    assert store.range(readings[5].time, readings[2].time) == []


def test_range_accepts_any_timezone(store: HistoryStore) -> None:
    readings = series(6)
    store.add(readings)
    berlin_winter = timezone(timedelta(hours=1))
    got = store.range(readings[1].time.astimezone(berlin_winter), readings[4].time)
    assert got == readings[1:4]
    assert all(r.time.tzinfo is UTC for r in got)


def test_naive_datetimes_are_refused(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.range(datetime(2024, 1, 1), T0)


def test_latest_is_newest_first(store: HistoryStore) -> None:
    readings = series(20)
    store.add(readings)
    assert store.latest() == [readings[-1]]
    assert store.latest(3) == readings[:-4:-1]
    assert store.latest(100) == readings[::-1]
    assert store.latest(0) == []


def test_oldest_and_newest_time(store: HistoryStore) -> None:
    readings = series(7)
    store.add(readings[3:] + readings[:3])
    assert store.oldest_time() == readings[0].time
    assert store.newest_time() == readings[-1].time


def test_low_and_high_are_kept_as_such(store: HistoryStore) -> None:
    low = Reading(T0, LOW_MGDL, Trend.DOUBLE_DOWN)
    high = Reading(T0 + FIVE_MIN, HIGH_MGDL, Trend.NOT_COMPUTABLE)
    store.add([low, high])
    got = store.range(T0, T0 + timedelta(hours=1))
    assert got == [low, high]
    assert got[0].is_low
    assert got[1].is_high


def test_prune_removes_only_older_readings(store: HistoryStore) -> None:
    readings = series(10)
    store.add(readings)
    assert store.prune(readings[4].time) == 4
    assert store.oldest_time() == readings[4].time
    assert store.count() == 6
    assert store.prune(readings[4].time) == 0


def test_millisecond_times_survive(store: HistoryStore) -> None:
    odd = Reading(T0 + timedelta(milliseconds=1234), 99, Trend.FLAT)
    store.add([odd])
    assert store.latest() == [odd]


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_epoch_ms_round_trip(ms: int) -> None:
    assert to_epoch_ms(from_epoch_ms(ms)) == ms
    assert from_epoch_ms(ms).tzinfo is UTC


@settings(max_examples=50, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    window=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
)
def test_range_matches_a_plain_filter(offsets: list[int], window: tuple[int, int]) -> None:
    readings = [Reading(T0 + timedelta(minutes=m), 100, Trend.FLAT) for m in offsets]
    start, end = (T0 + timedelta(minutes=m) for m in window)
    with HistoryStore(":memory:") as store:
        assert store.add(readings) == len({r.time for r in readings})
        expected = sorted({r.time: r for r in readings if start <= r.time < end}.values())
        assert store.range(start, end) == expected


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_export_round_trips(store: HistoryStore) -> None:
    readings = series(8)
    store.add(readings)
    out = io.StringIO(newline="")
    tokyo = timezone(timedelta(hours=9))
    written = store.export_csv(T0, T0 + timedelta(days=1), out, local_tz=tokyo)
    assert written == 8
    rows = read_csv(out.getvalue())
    assert list(rows[0]) == ["time_utc", "time_local", "mg_dl", "mmol_l", "trend"]
    back = [
        Reading(datetime.fromisoformat(row["time_utc"]), int(row["mg_dl"]), Trend.FLAT)
        for row in rows
    ]
    assert [(r.time, r.mgdl) for r in back] == [(r.time, r.mgdl) for r in readings]
    assert [row["trend"] for row in rows] == [r.trend.wire_name for r in readings]
    for row in rows:
        local = datetime.fromisoformat(row["time_local"])
        assert local.utcoffset() == timedelta(hours=9)
        assert local == datetime.fromisoformat(row["time_utc"])


def test_csv_mmol_column_uses_the_pinned_conversion(store: HistoryStore) -> None:
    store.add([Reading(T0, 100, Trend.FLAT), Reading(T0 + FIVE_MIN, 180, Trend.FLAT)])
    out = io.StringIO(newline="")
    store.export_csv(T0, T0 + timedelta(hours=1), out, local_tz=UTC)
    rows = read_csv(out.getvalue())
    assert [(row["mg_dl"], row["mmol_l"]) for row in rows] == [("100", "5.6"), ("180", "10.0")]
    assert rows[0]["time_utc"] == "2024-03-01T12:00:00+00:00"


def test_csv_writes_low_and_high_as_words_never_numbers(store: HistoryStore) -> None:
    store.add([Reading(T0, LOW_MGDL, Trend.DOUBLE_DOWN), Reading(T0 + FIVE_MIN, HIGH_MGDL)])
    out = io.StringIO(newline="")
    store.export_csv(T0, T0 + timedelta(hours=1), out, local_tz=UTC)
    rows = read_csv(out.getvalue())
    assert [(r["mg_dl"], r["mmol_l"], r["trend"]) for r in rows] == [
        ("LOW", "LOW", "DoubleDown"),
        ("HIGH", "HIGH", "None"),
    ]


def test_csv_export_of_an_empty_range_is_just_the_header(store: HistoryStore) -> None:
    out = io.StringIO(newline="")
    assert store.export_csv(T0, T0 + FIVE_MIN, out) == 0
    assert out.getvalue().strip() == "time_utc,time_local,mg_dl,mmol_l,trend"


def test_csv_export_defaults_to_the_system_zone(store: HistoryStore) -> None:
    store.add(series(1))
    out = io.StringIO(newline="")
    store.export_csv(T0, T0 + FIVE_MIN, out)
    row = read_csv(out.getvalue())[0]
    assert datetime.fromisoformat(row["time_local"]) == T0
    assert datetime.fromisoformat(row["time_local"]).utcoffset() == T0.astimezone().utcoffset()


def test_csv_export_to_a_file(store: HistoryStore, tmp_path: Path) -> None:
    store.add(series(3))
    target = tmp_path / "export.csv"
    with target.open("w", newline="", encoding="utf-8") as out:
        store.export_csv(T0, T0 + timedelta(hours=1), out, local_tz=UTC)
    with target.open(newline="", encoding="utf-8") as back:
        assert len(list(csv.DictReader(back))) == 3


def test_reopening_keeps_the_data(db_path: Path) -> None:
    readings = series(50)
    with HistoryStore(db_path) as first:
        first.add(readings)
    with HistoryStore(db_path) as second:
        assert second.count() == 50
        assert second.latest() == [readings[-1]]
        assert second.add(readings) == 0


def test_schema_version_is_recorded(db_path: Path) -> None:
    HistoryStore(db_path).close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    with HistoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_ok()


def test_a_history_from_a_newer_app_is_refused(db_path: Path) -> None:
    HistoryStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer"):
        HistoryStore(db_path)
    with pytest.raises(HistoryError, match="newer"):
        HistoryStore(db_path, read_only=True)


def test_a_file_that_is_not_a_database_is_reported_and_can_be_set_aside(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot be opened"):
        HistoryStore(db_path)
    kept = move_aside(db_path, T0)
    assert kept.name == "history.sqlite3.corrupt-20240301T120000Z"
    assert kept.read_bytes().startswith(b"this is not sqlite")
    with HistoryStore(db_path) as fresh:
        assert fresh.count() == 0


@posix_only
def test_history_file_is_owner_only(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        store.add(series(3))
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
        wal = db_path.with_name(db_path.name + "-wal")
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600


@posix_only
def test_existing_loose_file_is_tightened(db_path: Path) -> None:
    HistoryStore(db_path).close()
    db_path.chmod(0o644)
    HistoryStore(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_read_only_store_reads_and_refuses_writes(db_path: Path) -> None:
    with HistoryStore(db_path) as writer:
        writer.add(series(5))
        with HistoryStore(db_path, read_only=True) as reader:
            assert reader.count() == 5
            with pytest.raises(HistoryError, match="read-only"):
                reader.add(series(6))
            writer.add(series(8))
            assert reader.count() == 8  # sees the other connection's writes


def test_read_only_store_may_open_before_the_first_write(db_path: Path) -> None:
    with HistoryStore(db_path, read_only=True) as reader:
        assert reader.count() == 0
        with HistoryStore(db_path) as writer:
            writer.add(series(2))
        assert reader.latest() == [series(2)[-1]]


def test_concurrent_writer_thread_and_reader(db_path: Path) -> None:
    """The worker thread writes while the GUI thread reads: no "database is locked"."""
    batches = [series(12, start=T0 + timedelta(hours=i)) for i in range(150)]
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            with HistoryStore(db_path) as worker_store:
                for batch in batches:
                    worker_store.add(batch)
                    worker_store.prune(T0 - timedelta(days=1))
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
        finally:
            done.set()

    HistoryStore(db_path).close()
    with HistoryStore(db_path) as gui_store:
        writer = threading.Thread(target=write, name="history-writer")
        writer.start()
        reads = 0
        seen: list[int] = []
        try:
            while not done.is_set() or reads < 5:
                seen.append(gui_store.count())
                gui_store.range(T0, T0 + timedelta(days=10))
                gui_store.latest(12)
                reads += 1
        finally:
            writer.join(timeout=60)
        assert not writer.is_alive()
        assert errors == []
        assert seen == sorted(seen)  # a reader never sees rows vanish or half a batch undone
        assert gui_store.count() == len({r.time for b in batches for r in b})
        assert gui_store.integrity_ok()


def test_one_store_shared_between_threads_is_safe(db_path: Path) -> None:
    with HistoryStore(db_path) as shared:
        threads = [
            threading.Thread(target=shared.add, args=(series(100, start=T0 + timedelta(days=i)),))
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert shared.count() == 400


def test_a_year_of_readings_goes_in_and_a_month_comes_back(db_path: Path) -> None:
    year = series(105_120)
    with HistoryStore(db_path) as store:
        assert store.add(year) == 105_120
        month_start = T0 + timedelta(days=200)
        assert len(store.range(month_start, month_start + timedelta(days=30))) == 8640


def test_integrity_check_reports_damage(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        store.add(series(2000))
    size = db_path.stat().st_size
    with db_path.open("r+b") as raw:
        raw.seek(size // 2)
        raw.write(b"\xff" * 4096)
    try:
        damaged = HistoryStore(db_path)
    except HistoryError:
        return  # refusing to open is also an honest answer
    with damaged:
        assert not damaged.integrity_ok()


def test_repr_names_the_file_and_mode(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        assert "read-write" in repr(store)
        assert str(db_path) in repr(store)


def test_csv_export_of_a_persons_history_adds_their_name_as_the_last_column(
    store: HistoryStore,
) -> None:
    store.add(series(3))
    out = io.StringIO(newline="")
    assert store.export_csv(T0, T0 + timedelta(hours=1), out, local_tz=UTC, person="Mia, 7") == 3
    rows = read_csv(out.getvalue())
    assert list(rows[0]) == ["time_utc", "time_local", "mg_dl", "mmol_l", "trend", "person"]
    assert [row["person"] for row in rows] == ["Mia, 7"] * 3
    plain = io.StringIO(newline="")
    store.export_csv(T0, T0 + timedelta(hours=1), plain, local_tz=UTC)
    # The five columns are the same, value for value, as an export without a person.
    assert [list(row.values())[:5] for row in rows] == [
        list(r.values()) for r in read_csv(plain.getvalue())
    ]


def test_a_name_that_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    store: HistoryStore,
) -> None:
    store.add(series(1))
    for name in ('=HYPERLINK("x")', "+1", "-Sam", "@Sam"):
        out = io.StringIO(newline="")
        store.export_csv(T0, T0 + FIVE_MIN, out, local_tz=UTC, person=name)
        assert read_csv(out.getvalue())[0]["person"] == "'" + name
