"""History benchmark: the window drawn on 24 h and on 30 days; a year inserted; 30 days queried.

Every figure is the median of several runs; the last line is JSON:
{"open_24h_ms": ..., "open_30d_ms": ..., "insert_year_s": ..., "query_30d_ms": ...}

"Open" is what a click costs once the app runs: constructing the window, its first query of the
store (a read-only connection, as the app has) and its first paint, on Qt's offscreen platform.
The first window of the process pays pyqtgraph's one-time set-up; it is reported in the table as
"first open" and left out of the medians.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.storage.history import HistoryStore

if TYPE_CHECKING:  # mypy names the helpers by their path; running the script puts bench/ first
    from bench.benchlib import median, print_json, print_table
else:
    from benchlib import median, print_json, print_table

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

END = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=5)
YEAR_READINGS = 365 * 288
MAX_WAIT_S = 5.0


def year_of_readings(end: datetime = END) -> list[Reading]:
    """A year of 5-minute readings up to `end`: daily swings, a few LOW and HIGH, some gaps."""
    readings: list[Reading] = []
    trends = (Trend.FLAT, Trend.FORTY_FIVE_UP, Trend.SINGLE_UP, Trend.FORTY_FIVE_DOWN)
    for k in range(YEAR_READINGS):
        if k % 4000 < 12:  # an hour's gap now and then
            continue
        value = 140 + 70 * math.sin(k / 45.0) + 40 * math.sin(k / 7.3)
        if k % 1999 == 0:
            mgdl = LOW_MGDL
        elif k % 2503 == 0:
            mgdl = HIGH_MGDL
        else:
            mgdl = max(40, min(400, round(value)))
        readings.append(Reading(end - k * INTERVAL, mgdl, trends[k % len(trends)]))
    return readings


def time_insert(readings: list[Reading], folder: Path, runs: int) -> list[float]:
    """Seconds to add a year of readings to a fresh file store, one call (one transaction)."""
    seconds: list[float] = []
    for run in range(runs):
        with HistoryStore(folder / f"insert-{run}.sqlite3") as store:
            started = time.perf_counter()
            store.add(readings)
            seconds.append(time.perf_counter() - started)
    return seconds


def time_query(store: HistoryStore, runs: int) -> list[float]:
    """Milliseconds for the 30-day range query the window makes."""
    timings: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        found = store.range(END - timedelta(days=30), END + timedelta(milliseconds=1))
        timings.append((time.perf_counter() - started) * 1000)
        assert len(found) > 8000
    return timings


def time_open(
    store: HistoryStore, range_key: str, runs: int, process_events: Callable[[], None]
) -> list[float]:
    """Milliseconds from constructing the window to its first paint with `range_key` shown."""
    from PySide6.QtCore import QSettings

    from cgmtray.ui.history_window import HistoryWindow

    timings: list[float] = []
    with tempfile.TemporaryDirectory() as state_dir:
        for _ in range(runs):
            window_state = QSettings(
                str(Path(state_dir) / "window.ini"), QSettings.Format.IniFormat
            )
            window_state.setValue("history/range", range_key)
            started = time.perf_counter()
            window = HistoryWindow(store, clock=ManualClock(END), settings_store=window_state)
            window.present()
            deadline = started + MAX_WAIT_S
            while window.chart.paint_count == 0 and time.perf_counter() < deadline:
                process_events()
            timings.append((time.perf_counter() - started) * 1000)
            assert window.chart.paint_count > 0, "the window was never painted"
            assert window.range_key == range_key
            window.close()
            window.deleteLater()
            process_events()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per window figure")
    args = parser.parse_args()
    runs = max(1, args.runs)

    readings = year_of_readings()
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)
        insert_s = time_insert(readings, folder_path, runs=3)
        db_path = folder_path / "insert-0.sqlite3"
        with HistoryStore(db_path, read_only=True) as store:
            query_ms = time_query(store, runs=25)

            started = time.perf_counter()
            from PySide6.QtWidgets import QApplication

            import cgmtray.ui.history_window  # noqa: F401 - the import is what is timed

            import_ms = (time.perf_counter() - started) * 1000
            app = QApplication.instance() or QApplication(sys.argv[:1])
            first_open_ms = time_open(store, "24h", 1, app.processEvents)[0]
            open_24h = time_open(store, "24h", runs, app.processEvents)
            open_30d = time_open(store, "30d", runs, app.processEvents)

    print_table(
        ("figure", "median", "min", "max", "runs"),
        [
            ("insert a year (105,120 readings), s", *_figures(insert_s, 3)),
            ("30-day query (8,640 readings), ms", *_figures(query_ms, 2)),
            ("window open + drawn, 24 h, ms", *_figures(open_24h, 1)),
            ("window open + drawn, 30 d, ms", *_figures(open_30d, 1)),
            ("first open of the process (24 h), ms", f"{first_open_ms:.1f}", "", "", 1),
            ("import ui.history_window + pyqtgraph, ms", f"{import_ms:.1f}", "", "", 1),
        ],
    )
    print_json(
        {
            "open_24h_ms": round(median(open_24h), 1),
            "open_30d_ms": round(median(open_30d), 1),
            "insert_year_s": round(median(insert_s), 3),
            "query_30d_ms": round(median(query_ms), 2),
        }
    )
    return 0


def _figures(values: list[float], decimals: int) -> tuple[str, str, str, int]:
    return (
        f"{median(values):.{decimals}f}",
        f"{min(values):.{decimals}f}",
        f"{max(values):.{decimals}f}",
        len(values),
    )


if __name__ == "__main__":
    sys.exit(main())
