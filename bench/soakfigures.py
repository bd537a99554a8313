"""The soak's figures from a Record: crashes, lost readings, the Share budget, sign-ins after a
rejection or lock, alerts against the script; printed as a table and one JSON line."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TextIO

from bench.soakday import Kind, episode_window
from bench.soaklib import Record

from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ

#: Share protocol 7.1: one request per 60 s (but the login and retried read after a session
#: error); sign-ins at most one per 5 min and three per hour; reads at most 60 per hour.
REQUEST_FLOOR: Final = timedelta(seconds=60)
SIGN_IN_SPACING: Final = timedelta(minutes=5)
SIGN_INS_PER_HOUR: Final = 3
READS_PER_HOUR: Final = 60
HOUR: Final = timedelta(hours=1)
#: The app may poll up to 1 s before its plan (worker), and a log time is rounded to the ms.
SPACING_TOLERANCE: Final = timedelta(seconds=2)
#: The app's own exception: a poll asked for by a resume or the user may follow the last
#: request after this much (domain/schedule.py PROMPT_FLOOR); reported apart from the budget.
PROMPT_FLOOR: Final = timedelta(seconds=20)
PROMPT_REASONS: Final = frozenset({"resume", "user"})
#: After a rejection or a lock no sign-in is automatic any more (domain/sign_in_gate.py): every
#: sign-in before the person acts counts as one after a rejection.
LOCK_CODE_PREFIX: Final = "SSO_AuthenticateMaxAttempts"
REJECTION_CODES: Final = frozenset({"AccountPasswordInvalid", "SSO_InternalError"})
SIGN_IN_ENDPOINTS: Final = frozenset({ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID})

#: The keys of the final JSON line, in order.
VERDICT_KEYS: Final = (
    "crashes",
    "lost_readings",
    "budget_exceeded",
    "signins_after_rejection",
    "missed_urgent_lows",
    "duplicate_episodes",
)


@dataclass(frozen=True)
class Request:
    """One Share request the app made (from its log), in world time."""

    at: datetime
    endpoint: str
    status: int | None
    poll: int  # which poll (numbered over all runs) it belonged to
    reason: str  # why that poll was planned


@dataclass
class Figures:
    """What the soak measured; `verdict()` is the part that must be all zeros."""

    crashes: int = 0
    lost_readings: int = 0
    budget_exceeded: int = 0
    signins_after_rejection: int = 0
    missed_urgent_lows: int = 0
    duplicate_episodes: int = 0
    notes: list[str] = field(default_factory=list)
    held_readings: int = 0
    errors_logged: int = 0
    requests: int = 0
    reads_per_hour: list[int] = field(default_factory=list)
    sign_ins_per_hour: list[int] = field(default_factory=list)
    max_reads_in_hour: int = 0
    max_sign_ins_in_hour: int = 0
    closest_sign_ins: timedelta | None = None
    closest_requests: timedelta | None = None
    prompt_polls_under_floor: int = 0
    unexpected_alerts: int = 0
    alert_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    expected_episodes: Counter[str] = field(default_factory=Counter)

    def verdict(self) -> dict[str, int]:
        return {key: int(getattr(self, key)) for key in VERDICT_KEYS}


def figures(record: Record) -> Figures:
    found = Figures()
    _crashes(record, found)
    _lost(record, found)
    requests = _requests(record)
    found.requests = len(requests)
    _budget(record, requests, found)
    _after_rejection(record, found)
    _alerts(record, found)
    for problem in record.problems:
        found.notes.append(f"driver: {problem}")
    return found


# --- crashes -------------------------------------------------------------------------------------


def _crashes(record: Record, found: Figures) -> None:
    for number, run in enumerate(record.runs, start=1):
        name = f"app run {number}"
        if run.died_early:
            found.crashes += 1
            found.notes.append(f"{name} ended before it was asked to ({run.exit_code})")
        elif run.exit_code != 0:
            found.crashes += 1
            found.notes.append(f"{name} quit with status {run.exit_code}")
        for event in run.events:
            level = event.get("level")
            if level not in ("error", "critical"):
                continue
            found.errors_logged += 1
            message = str(event.get("msg", ""))
            if message.startswith("unexpected error") or event.get("logger") == "qt":
                found.crashes += 1
                found.notes.append(f"{name}: {message.splitlines()[0] if message else level}")
        if any("Traceback" in line or "Fatal" in line for line in run.other_lines):
            found.crashes += 1
            found.notes.append(f"{name} printed a traceback or fatal error")
    if record.fake_died_early or record.fake_exit != 0:
        found.crashes += 1
        found.notes.append(f"fake-share ended with {record.fake_exit}")


# --- lost readings -------------------------------------------------------------------------------


def _lost(record: Record, found: Figures) -> None:
    found.held_readings = len(record.held)
    missing: list[str] = []
    for row in record.held:
        when = datetime.fromisoformat(row["time"])
        if record.stored.get(when) != row["mgdl"]:
            missing.append(f"{_day_clock(record, when)} {row['mgdl']}")
    found.lost_readings = len(missing)
    if missing:
        found.notes.append("never stored: " + ", ".join(missing[:12]))


# --- the budget ----------------------------------------------------------------------------------


def _requests(record: Record) -> list[Request]:
    """Every request of every run in world time, each with its poll and the poll's reason."""
    found: list[Request] = []
    poll = 0
    for run in record.runs:
        reason = "startup"
        poll += 1
        in_poll = False
        for event in run.events:
            name = event.get("event")
            if name == "poll.scheduled":
                reason = str(event.get("reason"))
                if in_poll:
                    poll += 1
                    in_poll = False
            elif name == "share.request":
                in_poll = True
                status = event.get("status")
                found.append(
                    Request(
                        record.clock.of_event(event),
                        str(event.get("endpoint")),
                        status if isinstance(status, int) else None,
                        poll,
                        reason,
                    )
                )
    found.sort(key=lambda r: r.at)
    return found


def _budget(record: Record, requests: Sequence[Request], found: Figures) -> None:
    polls: dict[int, list[Request]] = {}
    for request in requests:
        polls.setdefault(request.poll, []).append(request)
    sign_in_ops: list[datetime] = []
    for poll_requests in polls.values():
        reads = [r for r in poll_requests if r.endpoint == ENDPOINT_READ]
        logins = [r for r in poll_requests if r.endpoint == ENDPOINT_LOGIN_BY_ID]
        authenticates = [r for r in poll_requests if r.endpoint == ENDPOINT_AUTHENTICATE]
        operations = max(len(logins), len(authenticates))
        if operations:
            sign_in_ops.append(min(r.at for r in poll_requests if r.endpoint in SIGN_IN_ENDPOINTS))
        if len(reads) > 2 or (len(reads) == 2 and not operations) or operations > 1:
            _exceeded(found, f"one poll made {len(reads)} reads and {operations} sign-ins")
    _spacing(record, requests, found)
    read_times = [r.at for r in requests if r.endpoint == ENDPOINT_READ]
    found.max_reads_in_hour = _most_in_window(read_times, HOUR)
    if found.max_reads_in_hour > READS_PER_HOUR:
        _exceeded(found, f"{found.max_reads_in_hour} reads in one hour")
    sign_in_ops.sort()
    found.max_sign_ins_in_hour = _most_in_window(sign_in_ops, HOUR)
    for index in range(len(sign_in_ops)):
        if _count_in(sign_in_ops, sign_in_ops[index], HOUR) > SIGN_INS_PER_HOUR:
            _exceeded(found, f"more than 3 sign-ins in the hour from {sign_in_ops[index]}")
    gaps = [b - a for a, b in itertools.pairwise(sign_in_ops)]
    found.closest_sign_ins = min(gaps) if gaps else None
    for gap in gaps:
        if gap < SIGN_IN_SPACING - SPACING_TOLERANCE:
            _exceeded(found, f"two sign-ins {gap.total_seconds():.0f} s apart")
    hours = max(1, -(-record.day.length // HOUR))
    found.reads_per_hour = _per_hour(record, read_times, hours)
    found.sign_ins_per_hour = _per_hour(record, sign_in_ops, hours)


def _spacing(record: Record, requests: Sequence[Request], found: Figures) -> None:
    """Consecutive requests of different polls at least a minute apart (a prompted poll: at
    least the app's prompt floor, counted apart)."""
    closest: timedelta | None = None
    for before, after in itertools.pairwise(requests):
        if before.poll == after.poll:
            continue
        gap = after.at - before.at
        closest = gap if closest is None else min(closest, gap)
        if gap >= REQUEST_FLOOR - SPACING_TOLERANCE:
            continue
        when = _day_clock(record, after.at)
        if after.reason in PROMPT_REASONS and gap >= PROMPT_FLOOR - SPACING_TOLERANCE:
            found.prompt_polls_under_floor += 1
            found.notes.append(
                f"{when}: a {after.reason} poll {gap.total_seconds():.0f} s after the last request"
            )
        else:
            _exceeded(
                found,
                f"{when}: a {after.reason} poll {gap.total_seconds():.0f} s after the last request",
            )
    found.closest_requests = closest


def _exceeded(found: Figures, text: str) -> None:
    found.budget_exceeded += 1
    found.notes.append(f"budget: {text}")


def _most_in_window(times: Sequence[datetime], window: timedelta) -> int:
    return max((_count_in(times, start, window) for start in times), default=0)


def _count_in(times: Sequence[datetime], start: datetime, window: timedelta) -> int:
    return sum(1 for t in times if start <= t < start + window)


def _per_hour(record: Record, times: Sequence[datetime], hours: int) -> list[int]:
    counts = [0] * hours
    for when in times:
        index = min(hours - 1, max(0, (when - record.start) // HOUR))
        counts[index] += 1
    return counts


# --- sign-ins after a rejection or a lock --------------------------------------------------------


def _after_rejection(record: Record, found: Figures) -> None:
    """Sign-in attempts the fake saw after a rejection or lock and before the person acted
    (none is allowed: the old automatic retries after 15 / 60 min are gone)."""
    sign_ins = [
        (datetime.fromisoformat(r["time"]), str(r["code"]))
        for r in record.fake_log
        if r["endpoint"] in SIGN_IN_ENDPOINTS
    ]
    previous_act = record.start - timedelta(days=1)
    for act in record.user_acts:
        stops = [
            (when, code)
            for when, code in sign_ins
            if previous_act < when < act and (code in REJECTION_CODES or _is_lock(code))
        ]
        previous_act = act
        if not stops:
            continue
        first, code = stops[0]
        for when, _code in sign_ins:
            if not first < when < act:
                continue
            found.signins_after_rejection += 1
            found.notes.append(
                f"{_day_clock(record, when)}: a sign-in {_minutes(when - first)} min after "
                f"{code}, before the person acted"
            )


def _is_lock(code: str) -> bool:
    return code.startswith(LOCK_CODE_PREFIX)


# --- alerts --------------------------------------------------------------------------------------


def _alerts(record: Record, found: Figures) -> None:
    raised: list[tuple[str, datetime]] = []
    for run in record.runs:
        for event in run.events:
            if event.get("event") != "alert.raised":
                continue
            kind, action = str(event.get("kind")), str(event.get("action"))
            found.alert_counts[(kind, action)] += 1
            if action == "raise":
                # When the person was told, in world time (the log line's real moment): not the
                # app's own idea of the time, which a clock change may have moved.
                raised.append((kind, record.clock.of_event(event)))
    explained: set[int] = set()
    for episode in record.day.episodes:
        found.expected_episodes[episode.kind.value] += 1
        begin, end = episode_window(episode, record.start)
        within = [
            index
            for index, (kind, at) in enumerate(raised)
            if kind == episode.kind.value and begin <= at <= end
        ]
        explained.update(within)
        when = _day_clock(record, begin)
        if not within:
            if episode.kind is Kind.URGENT_LOW:
                found.missed_urgent_lows += 1
            found.notes.append(f"{when}: no {episode.kind.value} alert for the scripted episode")
        elif len(within) > 1:
            found.duplicate_episodes += len(within) - 1
            found.notes.append(f"{when}: {len(within)} {episode.kind.value} alerts for one episode")
    scripted = {kind.value for kind in Kind}
    for index, (kind, at) in enumerate(raised):
        if kind in scripted and index not in explained:
            found.unexpected_alerts += 1
            found.notes.append(f"{_day_clock(record, at)}: a {kind} alert the script did not make")


# --- printing ------------------------------------------------------------------------------------


def _day_clock(record: Record, when: datetime) -> str:
    elapsed = int((when - record.start).total_seconds() // 60)
    sign = "-" if elapsed < 0 else "+"
    elapsed = abs(elapsed)
    return f"{sign}{elapsed // 60:02d}:{elapsed % 60:02d}"


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.1f}"


def _seconds(span: timedelta | None) -> str:
    return "-" if span is None else f"{span.total_seconds():.0f} s"


def report(record: Record, found: Figures, out: TextIO) -> None:
    """The human table, then the verdict as the last line (JSON)."""
    day = record.day
    write = out.write
    hours, asleep = day.length / HOUR, day.asleep / HOUR
    write(
        f"soak: {day.name} day, seed {record.seed}, speed {record.speed:g}x: {hours:.1f} h "
        f"simulated ({asleep:.1f} h asleep), {record.real_seconds:.0f} s real\n"
    )
    write("hour  reads  sign-ins   hour  reads  sign-ins   hour  reads  sign-ins\n")
    rows = list(zip(found.reads_per_hour, found.sign_ins_per_hour, strict=True))
    third = -(-len(rows) // 3)
    for line in range(third):
        cells = []
        for column in range(3):
            index = line + column * third
            if index < len(rows):
                reads, sign_ins = rows[index]
                cells.append(f"{index:>4}  {reads:>5}  {sign_ins:>8}")
        write("   ".join(cells) + "\n")
    table = [
        ("reads in any hour (max)", str(found.max_reads_in_hour), f"<= {READS_PER_HOUR}"),
        ("sign-ins in any hour (max)", str(found.max_sign_ins_in_hour), f"<= {SIGN_INS_PER_HOUR}"),
        ("closest two sign-ins", _seconds(found.closest_sign_ins), ">= 300 s"),
        ("closest two polls", _seconds(found.closest_requests), ">= 60 s"),
        ("prompted polls < 60 s (app's 20 s floor)", str(found.prompt_polls_under_floor), "-"),
        ("budget exceeded", str(found.budget_exceeded), "0"),
        ("crashes", str(found.crashes), "0"),
        ("error lines logged", str(found.errors_logged), "-"),
        (
            "readings on Share never stored",
            f"{found.lost_readings} of {found.held_readings}",
            "0",
        ),
        ("sign-ins after rejection/lock", str(found.signins_after_rejection), "0"),
    ]
    for kind, expected in sorted(found.expected_episodes.items()):
        raised = found.alert_counts[(kind, "raise")]
        repeats = found.alert_counts[(kind, "repeat")]
        table.append((f"{kind} alerts: raised / repeats", f"{raised} / {repeats}", f"{expected}"))
    table += [
        ("missed urgent lows", str(found.missed_urgent_lows), "0"),
        ("duplicate episodes", str(found.duplicate_episodes), "0"),
        ("unexpected glucose alerts", str(found.unexpected_alerts), "0"),
    ]
    others = sorted(
        (kind, count)
        for (kind, action), count in found.alert_counts.items()
        if action == "raise" and kind not in found.expected_episodes
    )
    if others:
        table.append(("other alerts raised", ", ".join(f"{k} {c}" for k, c in others), "-"))
    width = max(len(name) for name, _v, _l in table)
    write(f"{'figure':<{width}}  {'measured':>10}  limit\n")
    for name, value, limit in table:
        write(f"{name:<{width}}  {value:>10}  {limit}\n")
    for note in found.notes:
        write(f"note: {note}\n")
    write(json.dumps(found.verdict()) + "\n")
