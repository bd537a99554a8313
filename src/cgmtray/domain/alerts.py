"""The alert engine: readings, time and settings in; episodes and notification decisions out.

Pure and immutable: `evaluate` takes the whole state as a value and returns the next one with the
decisions to act on. Rules of the engine, beyond the per-kind rules in `alert_rules`:

- Each kind has at most one open episode, named by a key that stays the same from RAISE through
  UPDATE and REPEAT to CLEAR; a new episode always gets a new key.
- Urgent low subsumes low and urgent low soon, urgent high subsumes high: while the urgent episode
  is open the lesser one is closed (CLEARed if it was showing), so two notifications never stack
  for one low. When the urgent episode ends and the lesser condition still holds, it opens anew.
- Glucose kinds are judged only from a newest reading younger than `GLUCOSE_MAX_AGE` (15 min).
  While the newest reading is older, glucose episodes are frozen: no RAISE, REPEAT, UPDATE or
  CLEAR, since the current value is unknown; the no-data alert speaks instead. A failed fetch
  therefore never raises a glucose alert.
- The engine remembers the newest readings (the last 15 min), so a caller may pass a whole
  history or only what is new, and an empty tuple means "nothing new", not "no glucose".
- A snoozed kind keeps its episode up to date silently. When the snooze ends and the episode is
  still open, it REPEATs once (or RAISEs, if it opened during the snooze). CLEAR is never held
  back. Repeats that fell due while the computer slept produce a single REPEAT.
- `sound` on a decision means "start the alarm": only RAISE and REPEAT carry it (from the kind's
  sound setting); UPDATE leaves a playing alarm alone; CLEAR of a key stops its alarm.
- `urgent` on a decision means critical urgency (and the looping alarm when it sounds): always
  for the urgent kinds, and for the no-data alert from its second REPEAT on (the same episode's
  third showing: the gap has gone on for long). `resident` means the notification never expires
  by itself and stays until acknowledged: urgent kinds and no data, from the first RAISE.
- Every title and message is written in the `unit` passed to `evaluate` (mg/dL or mmol/L); the
  engine judges in mg/dL whatever the unit. The unit is not part of an episode's key, so switching
  it never opens, closes or re-raises anything: each open, shown glucose episode gets exactly one
  silent UPDATE carrying the new text at the next evaluation that judges it (a REPEAT falling due
  at the same time carries it instead; while frozen or snoozed the new text waits for the next
  decision). No data and sign-in problem texts hold no glucose value and do not change.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cgmtray.domain.alert_config import (
    NO_DATA_CRITICAL_FROM_REPEAT,
    URGENT_LOW_SNOOZE_CAP,
    AlertKind,
    AlertSettings,
)
from cgmtray.domain.alert_rules import (
    GLUCOSE_MAX_AGE,
    ConditionRun,
    RuleContext,
    Verdict,
    Zone,
    track_runs,
    value_text,
    verdict_for,
)
from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.prediction import SLOPE_WINDOW
from cgmtray.domain.readings import Reading, newest_first
from cgmtray.domain.units import Unit

__all__ = [
    "GLUCOSE_MAX_AGE",
    "AlertDecision",
    "AlertState",
    "ConnectionState",
    "DecisionAction",
    "Episode",
    "acknowledge",
    "active_alerts",
    "cancel_snooze",
    "evaluate",
    "initial_state",
    "snooze",
    "snoozed_until",
    "withdraw",
]

#: While the key kind's episode is open, the value kind is closed (it says less, less urgently).
_SUBSUMED_BY: dict[AlertKind, AlertKind] = {
    AlertKind.LOW: AlertKind.URGENT_LOW,
    AlertKind.URGENT_LOW_SOON: AlertKind.URGENT_LOW,
    AlertKind.HIGH: AlertKind.URGENT_HIGH,
}


class DecisionAction(enum.Enum):
    """What the notifier does with a decision."""

    #: A new episode: show a notification (and start the alarm when `sound`).
    RAISE = "raise"
    #: The open episode's value changed: replace the notification's text in place, silently.
    UPDATE = "update"
    #: The repeat interval elapsed and the episode is still open: show it again.
    REPEAT = "repeat"
    #: The episode ended: withdraw the notification and stop its alarm.
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """One thing to tell the person about one episode; `key` names the episode."""

    kind: AlertKind
    action: DecisionAction
    key: str
    title: str
    message: str
    reading: Reading | None
    sound: bool
    #: Critical urgency (and the alarm rather than the chime when it sounds).
    urgent: bool
    at: datetime
    #: The notification stays until acknowledged (never expires by itself).
    resident: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """What the worker knows about fetching, passed in by the caller."""

    #: False when Dexcom Share cannot be reached (the no-data message says so).
    reachable: bool = True
    #: A message for the person while sign-in is blocked (credentials rejected, account locked).
    sign_in_problem: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """One open alert of one kind, from its start until its condition ends."""

    kind: AlertKind
    key: str
    #: False while it opened during a snooze and nothing has been shown yet.
    announced: bool
    #: When the next REPEAT falls due (None: no repeat).
    next_due: datetime | None
    #: The kind's repeat interval when last shown (acknowledge restarts it).
    repeat: timedelta | None
    #: The content last shown (see Verdict.signature).
    signature: object
    #: The newest reading seen while the episode was open.
    reading: Reading | None
    #: How many times the episode has been REPEATed.
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class AlertState:
    """The whole engine state, a value: open episodes, snoozes, recent readings, runs."""

    episodes: tuple[Episode, ...] = ()
    snoozes: tuple[tuple[AlertKind, datetime], ...] = ()
    recent: tuple[Reading, ...] = ()
    runs: tuple[ConditionRun, ...] = ()
    #: The first evaluation's time: "no readings for N min" counts from it until one arrives.
    watching_since: datetime | None = None
    #: How many episodes have been opened (makes every key unique).
    serial: int = 0


def initial_state() -> AlertState:
    """No episodes, no snoozes, nothing seen yet."""
    return AlertState()


def carried_over(state: AlertState) -> AlertState:
    """What a person's next engine keeps of `state` when their controller is rebuilt (the tray
    changed mode): the snoozes, and the episode count so keys stay unique. Open episodes are not
    kept: their notifications closed with the old controller, so a condition still on alerts
    anew (a snoozed kind stays quiet until its snooze ends)."""
    return AlertState(snoozes=state.snoozes, serial=state.serial)


def active_alerts(state: AlertState) -> tuple[AlertKind, ...]:
    """The kinds with an open episode (snoozed ones included), most urgent first."""
    return tuple(sorted((e.kind for e in state.episodes), key=lambda kind: kind.rank))


def snoozed_until(state: AlertState, kind: AlertKind) -> datetime | None:
    """When the kind's snooze ends, or None. An ended snooze is forgotten at the next evaluate."""
    return dict(state.snoozes).get(kind)


def snooze(
    state: AlertState, kind: AlertKind, duration: timedelta, now: datetime, settings: AlertSettings
) -> tuple[AlertState, timedelta]:
    """Silences one kind for `duration`, capped by its snooze cap; returns the state and the grant.

    Urgent low is never snoozed for more than 30 min. Other kinds, more urgent ones included, keep
    alerting. An open episode of the kind REPEATs once when the snooze ends, if still open.
    """
    if duration <= timedelta(0):
        raise ValueError("a snooze lasts a positive time")
    now = require_aware_utc(now)
    cap = settings[kind].snooze_cap
    if kind is AlertKind.URGENT_LOW:
        cap = min(cap, URGENT_LOW_SNOOZE_CAP)
    granted = min(duration, cap)
    if granted <= timedelta(0):
        return state, timedelta(0)
    until = now + granted
    snoozes = dict(state.snoozes)
    snoozes[kind] = until
    episodes = tuple(
        replace(e, next_due=until) if e.kind is kind and e.announced else e for e in state.episodes
    )
    return replace(state, episodes=episodes, snoozes=_sorted_snoozes(snoozes)), granted


def acknowledge(state: AlertState, kind: AlertKind, now: datetime) -> AlertState:
    """The person saw the kind's alert: its alarm stops and its repeat interval restarts now.

    The episode stays open, so the alert still REPEATs one repeat interval after this (an urgent
    low acknowledged at 10:03 sounds again at 10:08 if still urgent low).
    """
    now = require_aware_utc(now)
    episodes = tuple(
        replace(e, next_due=None if e.repeat is None else now + e.repeat) if e.kind is kind else e
        for e in state.episodes
    )
    return replace(state, episodes=episodes)


def cancel_snooze(state: AlertState, kind: AlertKind, now: datetime) -> AlertState:
    """Ends the kind's snooze now: an open, shown episode REPEATs at the next evaluation (one
    opened during the snooze RAISEs). A kind that is not snoozed is left as it is."""
    now = require_aware_utc(now)
    snoozes = dict(state.snoozes)
    if snoozes.pop(kind, None) is None:
        return state
    episodes = tuple(
        replace(e, next_due=now) if e.kind is kind and e.announced else e for e in state.episodes
    )
    return replace(state, episodes=episodes, snoozes=_sorted_snoozes(snoozes))


def withdraw(state: AlertState, kind: AlertKind) -> AlertState:
    """The kind was turned off: its episode and snooze are forgotten without a CLEAR decision
    (the caller closes what it showed). If it is turned on again, a new episode starts."""
    return replace(
        state,
        episodes=tuple(e for e in state.episodes if e.kind is not kind),
        snoozes=tuple(item for item in state.snoozes if item[0] is not kind),
    )


def evaluate(
    state: AlertState,
    readings: Sequence[Reading],
    now: datetime,
    settings: AlertSettings,
    connection: ConnectionState = ConnectionState(),
    *,
    unit: Unit = Unit.MGDL,
) -> tuple[AlertState, tuple[AlertDecision, ...]]:
    """Judges every kind once; returns the next state and the decisions, CLEARs first.

    Titles and messages are written in `unit`. No decision at all when nothing changed, so calling
    it twice with the same input is harmless.
    """
    now = require_aware_utc(now)
    known = newest_first(state.recent + tuple(readings))
    runs = track_runs(state.runs, known, settings)
    watching_since = now if state.watching_since is None else state.watching_since
    context = RuleContext(
        known=known,
        now=now,
        settings=settings,
        reachable=connection.reachable,
        sign_in_problem=connection.sign_in_problem,
        runs=runs,
        watching_since=watching_since,
        unit=unit,
    )
    snoozes = {kind: until for kind, until in state.snoozes if now < until}
    open_episodes = {e.kind: e for e in state.episodes}
    serial = state.serial
    decisions: list[AlertDecision] = []
    for kind in sorted(AlertKind, key=lambda k: k.rank):
        verdict = verdict_for(kind, context)
        subsumer = _SUBSUMED_BY.get(kind)
        if subsumer is not None and subsumer in open_episodes:
            verdict = replace(verdict, zone=Zone.OFF)
        step = _Step(kind, settings, now, kind in snoozes, unit)
        episode, decision, serial = step.run(open_episodes.get(kind), verdict, serial)
        open_episodes.pop(kind, None)
        if episode is not None:
            open_episodes[kind] = episode
        if decision is not None:
            decisions.append(decision)
    decisions.sort(key=lambda d: d.action is not DecisionAction.CLEAR)
    next_state = AlertState(
        episodes=tuple(open_episodes[k] for k in sorted(open_episodes, key=lambda k: k.rank)),
        snoozes=_sorted_snoozes(snoozes),
        recent=_remembered(known),
        runs=runs,
        watching_since=watching_since,
        serial=serial,
    )
    return next_state, tuple(decisions)


def _sorted_snoozes(snoozes: dict[AlertKind, datetime]) -> tuple[tuple[AlertKind, datetime], ...]:
    return tuple(sorted(snoozes.items(), key=lambda item: item[0].rank))


def _remembered(known: tuple[Reading, ...]) -> tuple[Reading, ...]:
    if not known:
        return ()
    start = known[0].time - SLOPE_WINDOW
    return tuple(r for r in known if r.time >= start)


@dataclass(frozen=True, slots=True)
class _Step:
    """Moves one kind's episode on by one evaluation."""

    kind: AlertKind
    settings: AlertSettings
    now: datetime
    snoozed: bool
    unit: Unit

    def run(
        self, episode: Episode | None, verdict: Verdict, serial: int
    ) -> tuple[Episode | None, AlertDecision | None, int]:
        config = self.settings[self.kind]
        if not config.enabled or verdict.zone is Zone.OFF:
            if episode is None or not episode.announced:
                return None, None, serial
            return None, self._clear(episode, verdict), serial
        if verdict.zone is Zone.FROZEN:
            return episode, None, serial
        if episode is None:
            if verdict.zone is Zone.KEEP:
                return None, None, serial
            serial += 1
            start = verdict.start if verdict.start is not None else self.now
            episode = Episode(
                kind=self.kind,
                key=f"{self.kind.value}:{start.isoformat()}#{serial}",
                announced=False,
                next_due=None,
                repeat=config.repeat,
                signature=None,
                reading=verdict.reading,
            )
        episode = replace(episode, reading=verdict.reading)
        if self.snoozed:
            return episode, None, serial
        if not episode.announced:
            action = DecisionAction.RAISE
        elif episode.next_due is not None and self.now >= episode.next_due:
            action = DecisionAction.REPEAT
        elif verdict.signature != episode.signature:
            action = DecisionAction.UPDATE
        else:
            return episode, None, serial
        shown, decision = self._show(episode, verdict, action, config.sound)
        return shown, decision, serial

    def _show(
        self, episode: Episode, verdict: Verdict, action: DecisionAction, sound: bool
    ) -> tuple[Episode, AlertDecision]:
        if action is DecisionAction.UPDATE:
            shown = replace(episode, signature=verdict.signature)
            sound = False
        else:
            repeat = self.settings[self.kind].repeat
            shown = replace(
                episode,
                announced=True,
                next_due=None if repeat is None else self.now + repeat,
                repeat=repeat,
                signature=verdict.signature,
                repeats=episode.repeats + (action is DecisionAction.REPEAT),
            )
        decision = self._decision(shown, action, verdict.title, verdict.message, sound)
        return shown, decision

    def _clear(self, episode: Episode, verdict: Verdict) -> AlertDecision:
        reading = verdict.reading if verdict.reading is not None else episode.reading
        if reading is None:
            message = "This alert has ended."
        else:
            message = f"Latest reading: {value_text(reading, self.unit)}."
        return self._decision(
            replace(episode, reading=reading),
            DecisionAction.CLEAR,
            f"{self.kind.title} ended",
            message,
            False,
        )

    def _decision(
        self, episode: Episode, action: DecisionAction, title: str, message: str, sound: bool
    ) -> AlertDecision:
        return AlertDecision(
            kind=self.kind,
            action=action,
            key=episode.key,
            title=title,
            message=message,
            reading=episode.reading,
            sound=sound,
            urgent=self.kind.is_urgent
            or (self.kind is AlertKind.NO_DATA and episode.repeats >= NO_DATA_CRITICAL_FROM_REPEAT),
            at=self.now,
            resident=self.kind.stays_until_acknowledged,
        )
