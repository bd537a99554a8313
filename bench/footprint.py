"""Footprint of the real app in a real XEmbed tray (Xvfb + trayer): memory at start and after a
simulated day of polls, CPU time and wake-ups in an idle minute.

1. A simulated day: the app runs `--speed 1440` (one virtual day = 60 s) on a clock it shares
   with a fake Share service in this process, whose simulated sensor publishes a reading every
   5 virtual minutes. VmRSS / VmHWM after the first reading, and after the day.
2. An idle minute at real speed: after a poll, a full minute in which no poll is due is measured
   (not an average that includes a poll). CPU is the sum of every thread's on-CPU time
   (/proc/PID/task/*/schedstat, ns); wake-ups are the voluntary + involuntary context switches of
   all the process's threads (/proc/PID/task/*/status). A table per thread shows who woke.

`--people 1 3 10` runs both for each number of people (accounts on the one fake, each with its own
sensor; in the idle minute their readings come at the same times, so a minute with nobody's poll
in it exists) and prints them side by side with the cost of each added person, from the smallest
number on: (figure at N - figure at the smallest) / (N - smallest). Each idle figure is the median
of `--minutes M` minutes in a row (default 3, all between two rounds of polls) of each of
`--repeat R` app runs (default 1).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain.clock import Clock, SystemClock, shared_clock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_READ, Region
from cgmtray.storage import people as people_list
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.paths import app_paths, ensure
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.settings import Settings, save_settings

if TYPE_CHECKING:  # mypy names the helpers by their path; bench/ is on sys.path at run time
    from bench.appproc import AppProcess, LogEvent, running_app
    from bench.benchlib import median, print_json, print_table
    from bench.xsession import Desktop
else:
    from appproc import AppProcess, LogEvent, running_app
    from benchlib import median, print_json, print_table
    from xsession import Desktop

#: The repository root: the app's children take the test keyring (tests.support.env_keyring).
ROOT = Path(__file__).resolve().parents[1]

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
#: Per-person targets of issue 14: what each added person may cost.
TARGET_RSS_PER_PERSON_MB = 3.0
TARGET_CPU_PER_PERSON_MS = 1.0


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


def username(index: int) -> str:
    """The account of the bench's person number `index` (0 is the one-person bench's)."""
    return USERNAME if index == 0 else f"bench.person{index + 1}@example.com"


def serving(clock: Clock, people: int = 1, *, steady: bool = False) -> FakeShare:
    """A fake Share with `people` accounts. Each account's readings come every 5 minutes from its
    own simulated sensor with 24 h of history (a day with lows, highs and their alerts), or,
    `steady`, stay in range with no alert due (3 h back and 45 min ahead, each visible 20 s after
    its time, at the same times for everyone)."""
    fake = FakeShare(clock, regions=(Region.US,))
    now = clock.now().replace(microsecond=0)
    for index in range(people):
        name = username(index)
        fake.add_account(Region.US, name, PASSWORD)
        if not steady:
            sensor = SimulatedSensor(seed=1 + index, start=now - timedelta(hours=24))
            fake.attach_sensor(Region.US, name, sensor)
            continue
        for k in range(-36, 10):
            when = now + timedelta(minutes=5 * k, seconds=7)
            reading = Reading(when, 120 + (k + index) % 5, Trend.FLAT)
            fake.publish(Region.US, name, reading, available_at=when + timedelta(seconds=20))
    return fake


def prepare_people(basedir: Path, people: int, share_url: str) -> dict[str, str]:
    """Settings following `people` accounts on the fake at `share_url` (the app's own list, as
    Settings > People makes it); the environment that gives the app their passwords from a
    read-only keyring in memory (tests/support/env_keyring.py)."""
    from tests.support.env_keyring import entries_environment

    paths = ensure(app_paths(basedir))
    chosen: list[Person] = []
    for index in range(people):
        source = ShareSource("us", username(index), share_url)
        chosen.append(people_list.new_person(chosen, source, name=f"Person {index + 1}"))
    save_settings(Settings(people=tuple(chosen)), paths.settings_file)
    with HistoryStore(paths.history_db):
        pass
    entries = {f"us:{username(index)}": PASSWORD for index in range(people)}
    path = os.pathsep.join(
        filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])
    )
    return {**entries_environment(entries), "PYTHONPATH": path}


def nth(app: AppProcess, match: Callable[[LogEvent], bool], count: int, after: int) -> int:
    """The index of the `count`-th event from `after` on that matches (waiting for it)."""
    index = after - 1
    for _ in range(count):
        index, _ = app.wait_for(match, 60, after=index + 1)
    return index


def first_reading(app: AppProcess, people: int = 1) -> int:
    """Waits for everyone's first reading fetched and shown; returns the first read's index."""
    first, _ = app.wait_for(is_read_request, 60)
    nth(app, is_read_request, people, 0)
    nth(app, is_range_update, people, 0)
    return first


def simulated_day(
    desktop: Desktop, seconds: float, python: str, people: int = 1
) -> tuple[dict[str, float], str | None]:
    """Memory figures, and why the app died if it did not live through the day."""
    epoch = datetime.now(UTC)
    clock = shared_clock(DAY_SPEED, epoch)
    with serving(clock, people) as fake:
        basedir = desktop.home / f"day-{people}"
        keyring = prepare_people(basedir, people, fake.base_url(Region.US))
        args = ["--basedir", str(basedir)]
        args += ["--speed", str(DAY_SPEED), "--clock-epoch", epoch.isoformat()]
        env = desktop.env(QT_QPA_PLATFORM="xcb", **keyring)
        with running_app(args, env, python=python) as app:
            first_reading(app, people)
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


def idle_minute(
    desktop: Desktop, python: str, people: int = 1, run: int = 0, minutes: int = 1
) -> tuple[dict[str, float], list[list[object]], str]:
    """Figures of `minutes` idle minutes in a row (each figure the median of the minutes), a
    row per thread (over all of them, per minute), and the app's log events in them."""
    clock = SystemClock()
    with serving(clock, people, steady=True) as fake:
        basedir = desktop.home / f"idle-{people}-{run}"
        keyring = prepare_people(basedir, people, fake.base_url(Region.US))
        args = ["--basedir", str(basedir)]
        env = desktop.env(QT_QPA_PLATFORM="xcb", **keyring)
        with running_app(args, env, python=python) as app:
            read_index = first_reading(app, people)
            window_start = wait_for_idle_window(app, read_index, people, minutes)
            time.sleep(max(0.0, window_start - time.perf_counter()))
            events_before = len(app.events())
            samples = [(sample_threads(app.pid), cpu_ticks_ms(app.pid), time.time())]
            for _ in range(minutes):
                time.sleep(IDLE_S)
                samples.append((sample_threads(app.pid), cpu_ticks_ms(app.pid), time.time()))
            during = [e.name for e in app.events()[events_before:]]
            died = app.death()
            memory = app.memory_kib() if died is None else {"VmRSS": 0, "VmHWM": 0}
            sound = multimedia_loaded(app.pid) if died is None else False
        if died is not None:
            raise RuntimeError(f"the app died during the idle minutes ({died})")
        per_minute: list[dict[str, float]] = []
        for (before, ticks_before, t0), (after, ticks_after, t1) in itertools.pairwise(samples):
            scale = 60.0 / (t1 - t0)
            cpu_ns, voluntary, involuntary = _totals(before, after)
            per_minute.append(
                {
                    "cpu_ms_per_idle_min": cpu_ns / 1e6 * scale,
                    "cpu_ticks_ms_per_idle_min": (ticks_after - ticks_before) * scale,
                    "wakeups_per_idle_min": (voluntary + involuntary) * scale,
                    "voluntary_per_idle_min": voluntary * scale,
                    "involuntary_per_idle_min": involuntary * scale,
                }
            )
        first, last = samples[0][0], samples[-1][0]
        whole_scale = 60.0 / (samples[-1][2] - samples[0][2])
        rows: list[list[object]] = []
        for tid in sorted(set(first) | set(last)):
            old, new = first.get(tid), last.get(tid)
            if old is None or new is None:
                known = old or new
                state = "ended" if new is None else "started"
                rows.append([known.name if known else "?", tid, "", "", "", state])
                continue
            d_cpu = (new.cpu_ns - old.cpu_ns) / 1e6 * whole_scale
            d_vol = (new.voluntary - old.voluntary) * whole_scale
            d_inv = (new.involuntary - old.involuntary) * whole_scale
            rows.append([new.name, tid, f"{d_cpu:.2f}", f"{d_vol:.0f}", f"{d_inv:.0f}", ""])
        figures = {key: median([m[key] for m in per_minute]) for key in per_minute[0]}
        figures |= {
            "polls_in_window": float(sum(1 for e in during if e == "share.request")),
            "rss_mb": mib(memory["VmRSS"]),
            "hwm_mb": mib(memory["VmHWM"]),
            "multimedia": float(sound),
            "log_lines_in_window": float(len(during)),
            "threads": float(len(last)),
        }
        logged = Counter(during)
        return figures, rows, ", ".join(f"{name} x{n}" for name, n in logged.items()) or "none"


def _totals(
    before: dict[int, ThreadSample], after: dict[int, ThreadSample]
) -> tuple[int, int, int]:
    """On-CPU ns, voluntary and involuntary switches of the threads alive at both samples."""
    cpu_ns = voluntary = involuntary = 0
    for tid in set(before) & set(after):
        cpu_ns += after[tid].cpu_ns - before[tid].cpu_ns
        voluntary += after[tid].voluntary - before[tid].voluntary
        involuntary += after[tid].involuntary - before[tid].involuntary
    return cpu_ns, voluntary, involuntary


def wait_for_idle_window(
    app: AppProcess, read_index: int, people: int = 1, minutes: int = 1
) -> float:
    """When (perf_counter) `minutes` with nobody's poll in them begin: SETTLE_S after a round of
    polls (a read per person, from `read_index` on) whose plans (the last one per person made
    since) are all far enough ahead; otherwise the next round is awaited and checked."""
    deadline = time.perf_counter() + FIND_IDLE_TIMEOUT_S
    while time.perf_counter() < deadline:
        last_read = nth(app, is_read_request, people, read_index)
        nth(app, is_plan, people, read_index)
        time.sleep(SETTLE_S)
        plans = [e for e in app.events()[read_index:] if is_plan(e)][-people:]
        start = max(max(plan.at for plan in plans), time.perf_counter()) + SETTLE_S
        next_polls = [
            plan.at + float(plan.fields["in_s"])
            for plan in plans
            if plan.fields.get("in_s") is not None
        ]
        if all(at - start > minutes * IDLE_S + SETTLE_S for at in next_polls):
            return start
        read_index, _ = app.wait_for(is_read_request, FIND_IDLE_TIMEOUT_S, after=last_read + 1)
    raise TimeoutError("no idle minute found")


def is_plan(event: LogEvent) -> bool:
    return event.name == "poll.scheduled"


def yes_no(day: dict[str, float]) -> str:
    def word(flag: float) -> str:
        return "yes" if flag else "no"

    return f"{word(day['multimedia_at_start'])} / {word(day['multimedia_at_end'])}"


@dataclass(frozen=True)
class Measured:
    """One number of people: the day's figures, the idle minutes' medians, the last minute's
    threads and log events."""

    people: int
    day: dict[str, float]
    died: str | None
    idle: dict[str, float]
    threads: list[list[object]]
    logged: str


def measure(desktop: Desktop, args: argparse.Namespace, people: int) -> Measured:
    day, died = simulated_day(desktop, args.day_seconds, args.python, people)
    runs = [
        idle_minute(desktop, args.python, people, run, args.minutes) for run in range(args.repeat)
    ]
    idle = {key: median([figures[key] for figures, _, _ in runs]) for key in runs[0][0]}
    _, threads, logged = runs[-1]
    return Measured(people, day, died, idle, threads, logged)


def print_one(measured: Measured, samples: int) -> None:
    day, died, idle = measured.day, measured.died, measured.idle
    print(f"== {measured.people} {'person' if measured.people == 1 else 'people'}")
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
        [f"idle minute (no poll in it), all threads, median of {samples}", "per minute"],
        [
            ["CPU ms (schedstat)", f"{idle['cpu_ms_per_idle_min']:.2f}"],
            ["CPU ms (utime+stime, 10 ms ticks)", f"{idle['cpu_ticks_ms_per_idle_min']:.0f}"],
            ["wake-ups (context switches)", f"{idle['wakeups_per_idle_min']:.0f}"],
            ["  voluntary", f"{idle['voluntary_per_idle_min']:.0f}"],
            ["  involuntary", f"{idle['involuntary_per_idle_min']:.0f}"],
            ["threads", f"{idle['threads']:.0f}"],
            ["share requests in the window", int(idle["polls_in_window"])],
            ["app log events in the (last) window", measured.logged],
        ],
    )
    print()
    print_table(["thread", "tid", "CPU ms/min", "voluntary", "involuntary", ""], measured.threads)
    rss_ok = not died and day["rss_after_day_mb"] <= TARGET_RSS_MB
    cpu_ok = idle["cpu_ms_per_idle_min"] < TARGET_CPU_MS
    print(
        f"RSS after a day {'meets' if rss_ok else 'MISSES'} <= {TARGET_RSS_MB:.0f} MB; "
        f"idle CPU {'meets' if cpu_ok else 'MISSES'} < {TARGET_CPU_MS:.0f} ms per minute"
    )
    print()


def per_person(measured: list[Measured]) -> dict[str, dict[str, float]]:
    """Each figure's cost per added person, from the smallest number of people to each other."""
    base = min(measured, key=lambda m: m.people)
    costs: dict[str, dict[str, float]] = {}
    for other in measured:
        added = other.people - base.people
        if added <= 0:
            continue
        costs[str(other.people)] = {
            "rss_start_mb": (other.day["rss_start_mb"] - base.day["rss_start_mb"]) / added,
            "rss_after_day_mb": (other.day["rss_after_day_mb"] - base.day["rss_after_day_mb"])
            / added,
            "cpu_ms_per_idle_min": (
                other.idle["cpu_ms_per_idle_min"] - base.idle["cpu_ms_per_idle_min"]
            )
            / added,
            "wakeups_per_idle_min": (
                other.idle["wakeups_per_idle_min"] - base.idle["wakeups_per_idle_min"]
            )
            / added,
            "threads": (other.idle["threads"] - base.idle["threads"]) / added,
        }
    return costs


def print_side_by_side(measured: list[Measured], costs: dict[str, dict[str, float]]) -> None:
    base = min(measured, key=lambda m: m.people)
    headers = ["figure", *(f"{m.people} people" for m in measured)]
    headers += [f"per person {base.people}->{n}" for n in costs]
    rows: list[list[object]] = []
    for label, part, key, digits in (
        ("VmRSS after the first readings, MB", "day", "rss_start_mb", 1),
        ("VmRSS after the simulated day, MB", "day", "rss_after_day_mb", 1),
        ("CPU ms per idle minute", "idle", "cpu_ms_per_idle_min", 2),
        ("wake-ups per idle minute", "idle", "wakeups_per_idle_min", 0),
        ("threads", "idle", "threads", 0),
    ):
        row: list[object] = [label]
        row += [f"{getattr(m, part)[key]:.{digits}f}" for m in measured]
        row += [f"{cost[key]:+.{max(digits, 1)}f}" for cost in costs.values()]
        rows.append(row)
    print_table(headers, rows)
    for n, cost in costs.items():
        rss = max(cost["rss_start_mb"], cost["rss_after_day_mb"])
        rss_ok = rss <= TARGET_RSS_PER_PERSON_MB
        cpu_ok = cost["cpu_ms_per_idle_min"] <= TARGET_CPU_PER_PERSON_MS
        print(
            f"{base.people}->{n}: each added person {'meets' if rss_ok else 'MISSES'} "
            f"<= {TARGET_RSS_PER_PERSON_MB:.0f} MB RSS ({rss:+.1f}) and "
            f"{'meets' if cpu_ok else 'MISSES'} <= {TARGET_CPU_PER_PERSON_MS:.0f} ms CPU per "
            f"idle minute ({cost['cpu_ms_per_idle_min']:+.2f})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-seconds", type=float, default=60.0, help="real seconds of the day")
    parser.add_argument(
        "--python", default=sys.executable, help="run the app with this interpreter"
    )
    parser.add_argument(
        "--people",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="numbers of people to measure, side by side (e.g. 1 3 10)",
    )
    parser.add_argument(
        "--minutes",
        type=int,
        default=3,
        help="idle minutes in a row per app run, each measured apart (medians; at most 4)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="app runs for the idle minutes (medians)"
    )
    args = parser.parse_args()
    if any(n < 1 or n > 10 for n in args.people) or args.repeat < 1:
        parser.error("--people takes 1 to 10, --repeat at least 1")
    if not 1 <= args.minutes <= 4:
        parser.error("--minutes takes 1 to 4 (they must fit between two polls)")

    measured: list[Measured] = []
    with Desktop(800, 200, full_width_panel=False) as desktop:
        for people in args.people:
            measured.append(measure(desktop, args, people))
            print_one(measured[-1], args.repeat * args.minutes)
            sys.stdout.flush()

    costs = per_person(measured)
    if costs:
        print_side_by_side(measured, costs)
    figures: dict[str, dict[str, object]] = {
        str(m.people): {
            "rss_start_mb": round(m.day["rss_start_mb"], 1),
            "rss_after_day_mb": None if m.died else round(m.day["rss_after_day_mb"], 1),
            "cpu_ms_per_idle_min": round(m.idle["cpu_ms_per_idle_min"], 2),
            "wakeups_per_idle_min": round(m.idle["wakeups_per_idle_min"], 1),
            "threads": m.idle["threads"],
        }
        for m in measured
    }
    if len(measured) == 1:
        print_json(figures[str(measured[0].people)])
    else:
        per = {n: {k: round(v, 2) for k, v in cost.items()} for n, cost in costs.items()}
        print_json({"people": figures, "per_added_person": per})
    return 0


if __name__ == "__main__":
    sys.exit(main())
