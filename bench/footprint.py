"""Footprint of the real app in a real XEmbed tray (Xvfb + trayer): memory at start and after a
simulated day of polls, CPU time and wake-ups in an idle minute.

1. A simulated day: the app runs `--speed 1440` (one virtual day = 60 s) on a clock it shares
   with a fake Share service in this process, whose simulated sensor publishes a reading every
   5 virtual minutes. VmRSS / VmHWM after the first reading, and after the day.
2. An idle minute at real speed: after a poll, a full minute in which no poll is due is measured
   (not an average that includes a poll). CPU is the sum of every thread's on-CPU time
   (/proc/PID/task/*/schedstat, ns); wake-ups are the voluntary + involuntary context switches of
   all the process's threads (/proc/PID/task/*/status). A table per thread shows who woke.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain.clock import Clock, SystemClock, shared_clock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_READ, Region

if TYPE_CHECKING:  # mypy names the helpers by their path; bench/ is on sys.path at run time
    from bench.appproc import AppProcess, LogEvent, prepare_account, running_app
    from bench.benchlib import print_json, print_table
    from bench.xsession import Desktop
else:
    from appproc import AppProcess, LogEvent, prepare_account, running_app
    from benchlib import print_json, print_table
    from xsession import Desktop

USERNAME = "bench.person@example.com"
PASSWORD = "bench-password-1"  # noqa: S105 - the fake service's account
DAY_SPEED = 1440.0
TARGET_RSS_MB = 120.0
TARGET_CPU_MS = 10.0
#: After a poll, this long passes before the idle minute starts (the poll's work is done).
SETTLE_S = 3.0
IDLE_S = 60.0
#: Up to one reading interval (5 min) plus margin may pass before an idle minute is found.
FIND_IDLE_TIMEOUT_S = 420.0


@dataclass(frozen=True)
class ThreadSample:
    name: str
    cpu_ns: int
    voluntary: int
    involuntary: int


def sample_threads(pid: int) -> dict[int, ThreadSample]:
    """Every thread's name, on-CPU time and context switches, now."""
    samples: dict[int, ThreadSample] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            cpu_ns = int((task / "schedstat").read_text().split()[0])
            status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
        samples[int(task.name)] = ThreadSample(
            name,
            cpu_ns,
            int(status["voluntary_ctxt_switches"]),
            int(status["nonvoluntary_ctxt_switches"]),
        )
    return samples


def cpu_ticks_ms(pid: int) -> float:
    """utime + stime of the whole process from /proc/PID/stat, in ms (clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def multimedia_loaded(pid: int) -> bool:
    """Whether Qt Multimedia (loaded when the first alert sound plays) is in the process."""
    return "libQt6Multimedia" in Path(f"/proc/{pid}/maps").read_text()


def mib(kib: int) -> float:
    return kib / 1024.0


def is_read_request(event: LogEvent) -> bool:
    return event.name == "share.request" and event.fields.get("endpoint") == ENDPOINT_READ


def is_range_update(event: LogEvent) -> bool:
    return event.name == "tray.updated" and event.fields.get("severity") not in (
        "no_data",
        "stale",
        "error",
    )


def serving(clock: Clock, *, steady: bool = False) -> FakeShare:
    """A fake Share with our account. Its readings come every 5 minutes from a simulated sensor
    with 24 h of history (a day with lows, highs and their alerts), or, `steady`, stay in range
    with no alert due (3 h back and 45 min ahead, each visible 20 s after its time)."""
    fake = FakeShare(clock, regions=(Region.US,))
    fake.add_account(Region.US, USERNAME, PASSWORD)
    now = clock.now().replace(microsecond=0)
    if not steady:
        sensor = SimulatedSensor(seed=1, start=now - timedelta(hours=24))
        fake.attach_sensor(Region.US, USERNAME, sensor)
        return fake
    for k in range(-36, 10):
        when = now + timedelta(minutes=5 * k, seconds=7)
        reading = Reading(when, 120 + (k % 5), Trend.FLAT)
        fake.publish(Region.US, USERNAME, reading, available_at=when + timedelta(seconds=20))
    return fake


def first_reading(app: AppProcess) -> int:
    """Waits for the first reading fetched and shown; returns the read request's index."""
    index, _ = app.wait_for(is_read_request, 60)
    app.wait_for(is_range_update, 60, after=index)
    return index


def simulated_day(
    desktop: Desktop, seconds: float, python: str
) -> tuple[dict[str, float], str | None]:
    """Memory figures, and why the app died if it did not live through the day."""
    epoch = datetime.now(UTC)
    clock = shared_clock(DAY_SPEED, epoch)
    with serving(clock) as fake:
        basedir = desktop.home / "day"
        prepare_account(basedir, username=USERNAME, share_url=fake.base_url(Region.US))
        args = ["--basedir", str(basedir), "--password-stdin"]
        args += ["--speed", str(DAY_SPEED), "--clock-epoch", epoch.isoformat()]
        env = desktop.env(QT_QPA_PLATFORM="xcb")
        with running_app(args, env, stdin_text=PASSWORD + "\n", python=python) as app:
            first_reading(app)
            start = last = app.memory_kib()
            sound_at_start = multimedia_loaded(app.pid)
            sound_at_end = sound_at_start
            started = time.monotonic()
            while (left := seconds - (time.monotonic() - started)) > 0 and app.death() is None:
                time.sleep(min(1.0, left))
                with contextlib.suppress(RuntimeError, FileNotFoundError):  # it may just have died
                    last = app.memory_kib()
                    sound_at_end = multimedia_loaded(app.pid)
            virtual_hours = (time.monotonic() - started) * DAY_SPEED / 3600
            died = app.death()
            reads = sum(1 for e in app.events() if is_read_request(e))
            shown = sum(1 for e in app.events() if e.name == "tray.updated")
        figures = {
            "rss_start_mb": mib(start["VmRSS"]),
            "hwm_start_mb": mib(start["VmHWM"]),
            "rss_after_day_mb": mib(last["VmRSS"]),
            "hwm_after_day_mb": mib(last["VmHWM"]),
            "virtual_hours": virtual_hours,
            "reads": float(reads),
            "tray_updates": float(shown),
            "exit_status": float(app.process.returncode),
            "multimedia_at_start": float(sound_at_start),
            "multimedia_at_end": float(sound_at_end),
        }
        return figures, died


def idle_minute(desktop: Desktop, python: str) -> tuple[dict[str, float], list[list[object]], str]:
    """Figures of the idle minute, a row per thread, and the app's log events in the minute."""
    clock = SystemClock()
    with serving(clock, steady=True) as fake:
        basedir = desktop.home / "idle"
        prepare_account(basedir, username=USERNAME, share_url=fake.base_url(Region.US))
        args = ["--basedir", str(basedir), "--password-stdin"]
        env = desktop.env(QT_QPA_PLATFORM="xcb")
        with running_app(args, env, stdin_text=PASSWORD + "\n", python=python) as app:
            read_index = first_reading(app)
            window_start = wait_for_idle_window(app, read_index)
            time.sleep(max(0.0, window_start - time.perf_counter()))
            events_before = len(app.events())
            before, ticks_before, t0 = sample_threads(app.pid), cpu_ticks_ms(app.pid), time.time()
            time.sleep(IDLE_S)
            after, ticks_after, t1 = sample_threads(app.pid), cpu_ticks_ms(app.pid), time.time()
            during = [e.name for e in app.events()[events_before:]]
            died = app.death()
            memory = app.memory_kib() if died is None else {"VmRSS": 0, "VmHWM": 0}
            sound = multimedia_loaded(app.pid) if died is None else False
        if died is not None:
            raise RuntimeError(f"the app died during the idle minute ({died})")
        per_minute = 60.0 / (t1 - t0)
        rows: list[list[object]] = []
        cpu_ns = voluntary = involuntary = 0
        for tid in sorted(set(before) | set(after)):
            old, new = before.get(tid), after.get(tid)
            if old is None or new is None:
                known = old or new
                state = "ended" if new is None else "started"
                rows.append([known.name if known else "?", tid, "", "", "", state])
                continue
            d_cpu = new.cpu_ns - old.cpu_ns
            d_vol = new.voluntary - old.voluntary
            d_inv = new.involuntary - old.involuntary
            cpu_ns += d_cpu
            voluntary += d_vol
            involuntary += d_inv
            rows.append([new.name, tid, f"{d_cpu / 1e6 * per_minute:.2f}", d_vol, d_inv, ""])
        figures = {
            "cpu_ms_per_idle_min": cpu_ns / 1e6 * per_minute,
            "cpu_ticks_ms_per_idle_min": (ticks_after - ticks_before) * per_minute,
            "wakeups_per_idle_min": (voluntary + involuntary) * per_minute,
            "voluntary_per_idle_min": voluntary * per_minute,
            "involuntary_per_idle_min": involuntary * per_minute,
            "polls_in_window": float(sum(1 for e in during if e == "share.request")),
            "rss_mb": mib(memory["VmRSS"]),
            "hwm_mb": mib(memory["VmHWM"]),
            "multimedia": float(sound),
            "log_lines_in_window": float(len(during)),
        }
        logged = Counter(during)
        return figures, rows, ", ".join(f"{name} x{n}" for name, n in logged.items()) or "none"


def wait_for_idle_window(app: AppProcess, read_index: int) -> float:
    """When (perf_counter) a minute with no poll in it begins: SETTLE_S after a poll whose next
    poll is planned far enough ahead; otherwise the next poll is awaited and checked."""
    deadline = time.perf_counter() + FIND_IDLE_TIMEOUT_S
    while time.perf_counter() < deadline:
        index, plan = app.wait_for(lambda e: e.name == "poll.scheduled", 60, after=read_index)
        in_s = plan.fields.get("in_s")
        start = max(plan.at, time.perf_counter()) + SETTLE_S
        if in_s is None or plan.at + float(in_s) - start > IDLE_S + SETTLE_S:
            return start
        read_index, _ = app.wait_for(is_read_request, FIND_IDLE_TIMEOUT_S, after=index)
    raise TimeoutError("no idle minute found")


def yes_no(day: dict[str, float]) -> str:
    def word(flag: float) -> str:
        return "yes" if flag else "no"

    return f"{word(day['multimedia_at_start'])} / {word(day['multimedia_at_end'])}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-seconds", type=float, default=60.0, help="real seconds of the day")
    parser.add_argument(
        "--python", default=sys.executable, help="run the app with this interpreter"
    )
    args = parser.parse_args()

    with Desktop(800, 200, full_width_panel=False) as desktop:
        day, died = simulated_day(desktop, args.day_seconds, args.python)
        idle, threads, logged = idle_minute(desktop, args.python)

    print_table(
        ["memory (simulated day at --speed 1440)", "MB"],
        [
            ["VmRSS after the first reading", f"{day['rss_start_mb']:.1f}"],
            ["VmHWM after the first reading", f"{day['hwm_start_mb']:.1f}"],
            [
                f"VmRSS after {day['virtual_hours']:.1f} virtual hours",
                f"{day['rss_after_day_mb']:.1f}",
            ],
            ["VmHWM then", f"{day['hwm_after_day_mb']:.1f}"],
            ["Qt Multimedia loaded at start / after (an alert sounded)", yes_no(day)],
            ["VmRSS, steady in-range run, no alert sounded", f"{idle['rss_mb']:.1f}"],
            ["read requests during the day", int(day["reads"])],
            ["tray updates during the day", int(day["tray_updates"])],
            ["exit status", "died" if died else f"{day['exit_status']:.0f} after SIGTERM"],
        ],
    )
    if died:
        print(f"THE APP DIED {day['virtual_hours']:.1f} virtual hours into the day: {died}")
    print()
    print_table(
        ["idle minute (no poll in it), all threads", "per minute"],
        [
            ["CPU ms (schedstat)", f"{idle['cpu_ms_per_idle_min']:.2f}"],
            ["CPU ms (utime+stime, 10 ms ticks)", f"{idle['cpu_ticks_ms_per_idle_min']:.0f}"],
            ["wake-ups (context switches)", f"{idle['wakeups_per_idle_min']:.0f}"],
            ["  voluntary", f"{idle['voluntary_per_idle_min']:.0f}"],
            ["  involuntary", f"{idle['involuntary_per_idle_min']:.0f}"],
            ["share requests in the window", int(idle["polls_in_window"])],
            ["app log events in the window", logged],
        ],
    )
    print()
    print_table(["thread", "tid", "CPU ms/min", "voluntary", "involuntary", ""], threads)
    rss_ok = not died and day["rss_after_day_mb"] <= TARGET_RSS_MB
    cpu_ok = idle["cpu_ms_per_idle_min"] < TARGET_CPU_MS
    print(
        f"RSS after a day {'meets' if rss_ok else 'MISSES'} <= {TARGET_RSS_MB:.0f} MB; "
        f"idle CPU {'meets' if cpu_ok else 'MISSES'} < {TARGET_CPU_MS:.0f} ms per minute"
    )
    print_json(
        {
            "rss_start_mb": round(day["rss_start_mb"], 1),
            "rss_after_day_mb": None if died else round(day["rss_after_day_mb"], 1),
            "cpu_ms_per_idle_min": round(idle["cpu_ms_per_idle_min"], 2),
            "wakeups_per_idle_min": round(idle["wakeups_per_idle_min"], 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
