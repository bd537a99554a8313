"""What each alert kind's rule says about the current readings: on, keep, off or frozen.

Every text a verdict carries is in the person's chosen unit (mg/dL or mmol/L): values, alert
levels, forecasts and rates alike, so someone who reads mmol/L never meets a mg/dL number. LOW and
HIGH are never converted as numbers: they are written as "below 40 mg/dL (LOW)" / "below 2.2
mmol/L (LOW)", the sensor's range edge in the chosen unit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cgmtray.domain.alert_config import (
    HIGH_CLEAR_MARGIN_MGDL,
    LOW_CLEAR_MARGIN_MGDL,
    LOW_SOON_HORIZON,
    AlertKind,
    AlertSettings,
)
from cgmtray.domain.prediction import predicted_mgdl, recent_slope
from cgmtray.domain.readings import MAX_DELTA_GAP, MAX_REAL_MGDL, MIN_REAL_MGDL, Reading, Trend
from cgmtray.domain.units import Unit, format_amount, format_value

#: Glucose rules only look at a newest reading younger than this. A healthy 5-minute stream with
#: upload lag and one missed reading is at most ~13 min old; beyond 15 min two or more readings are
#: missing, the value is no longer known, and the no-data alert (20 min) takes over.
GLUCOSE_MAX_AGE = timedelta(minutes=15)
#: Falling/rising fast ends once the rate is this much (mg/dL per minute) below its threshold.
RATE_CLEAR_MARGIN = 1.0
#: Consecutive readings further apart than this break a "continuously above/below" run.
RUN_MAX_GAP = MAX_DELTA_GAP


class Zone(enum.Enum):
    """Where a kind's condition stands at one evaluation."""

    #: The condition holds: open an episode, or keep the open one.
    ON = "on"
    #: Between the raise and the clear line (hysteresis), or not yet for long enough: keep an open
    #: episode but open none.
    KEEP = "keep"
    #: The condition is over: close the episode.
    OFF = "off"
    #: Nothing trustworthy to judge by (the newest reading is too old): change nothing.
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's answer and the text a notification would carry right now."""

    zone: Zone
    reading: Reading | None = None
    title: str = ""
    message: str = ""
    #: The content a notification shows; an open episode is UPDATEd when this changes.
    signature: object = None
    #: The time an episode opened now is named after (the reading's time for glucose kinds).
    start: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConditionRun:
    """A stretch of consecutive readings on the raising side of a kind's threshold."""

    kind: AlertKind
    #: The value of the run nearest to normal (the highest of a low run, the lowest of a high
    #: run): the run holds for any threshold this value still crosses.
    weakest: int
    since: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything the rules read: readings newest first (de-duplicated), time, settings, links."""

    known: tuple[Reading, ...]
    now: datetime
    settings: AlertSettings
    reachable: bool
    sign_in_problem: str | None
    runs: tuple[ConditionRun, ...]
    watching_since: datetime
    #: The unit every text is written in.
    unit: Unit


@dataclass(frozen=True, slots=True)
class _ThresholdRule:
    below: bool
    clear_margin: int


_THRESHOLD_RULES: dict[AlertKind, _ThresholdRule] = {
    AlertKind.URGENT_LOW: _ThresholdRule(True, LOW_CLEAR_MARGIN_MGDL),
    AlertKind.LOW: _ThresholdRule(True, LOW_CLEAR_MARGIN_MGDL),
    AlertKind.URGENT_HIGH: _ThresholdRule(False, HIGH_CLEAR_MARGIN_MGDL),
    AlertKind.HIGH: _ThresholdRule(False, HIGH_CLEAR_MARGIN_MGDL),
}

#: The kinds whose rule needs a current glucose value.
GLUCOSE_KINDS = frozenset(
    {
        AlertKind.URGENT_LOW,
        AlertKind.URGENT_LOW_SOON,
        AlertKind.LOW,
        AlertKind.URGENT_HIGH,
        AlertKind.HIGH,
        AlertKind.FALLING_FAST,
        AlertKind.RISING_FAST,
    }
)


def _with_label(mgdl: int, unit: Unit) -> str:
    return f"{format_value(mgdl, unit)} {unit.label}"


def value_text(reading: Reading, unit: Unit) -> str:
    """The value in words for a sentence: "64 mg/dL", "3.6 mmol/L", "below 2.2 mmol/L (LOW)"."""
    if reading.is_low:
        return f"below {_with_label(MIN_REAL_MGDL, unit)} (LOW)"
    if reading.is_high:
        return f"above {_with_label(MAX_REAL_MGDL, unit)} (HIGH)"
    return _with_label(reading.mgdl, unit)


def _short_value(reading: Reading, unit: Unit) -> str:
    if reading.is_numeric:
        return _with_label(reading.mgdl, unit)
    return format_value(reading, unit)  # the word LOW or HIGH


def glucose_title(kind: AlertKind, reading: Reading, unit: Unit) -> str:
    """The notification title: "Low: 64 mg/dL ↘", "Low: 3.6 mmol/L ↘", "Urgent low: LOW".

    The arrow only when there is a direction; the unit label after a number, none after a word.
    """
    arrow = f" {reading.trend.arrow}" if reading.trend.arrow else ""
    return f"{kind.title}: {_short_value(reading, unit)}{arrow}"


def _glucose_sentence(reading: Reading, unit: Unit) -> str:
    if reading.trend.arrow:
        return f"Glucose is {value_text(reading, unit)}, {reading.trend.description}."
    return f"Glucose is {value_text(reading, unit)}."


def _level_text(mgdl: float, unit: Unit) -> str:
    """An alert level or forecast (mg/dL, maybe fractional) in `unit`: "70 mg/dL", "3.9 mmol/L".

    mg/dL keeps a set fraction ("70.5 mg/dL"); mmol/L is rounded half-up to one decimal.
    """
    if unit is Unit.MGDL:
        return f"{mgdl:g} {unit.label}"
    return f"{format_amount(mgdl, unit)} {unit.label}"


def rate_text(mgdl_per_minute: float, unit: Unit) -> str:
    """A rate of change in `unit` per minute, signed, one decimal rounded half away from zero.

    "-3.0 mg/dL", "+0.2 mmol/L"; a rate that rounds to nothing is "±0.0" (never "-0.0").
    """
    magnitude = abs(mgdl_per_minute)
    if unit is Unit.MMOL:
        shown = format_amount(magnitude, unit)
    else:
        shown = str(Decimal(str(magnitude)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    if Decimal(shown) == 0:
        return f"±{shown} {unit.label}"
    sign = "-" if mgdl_per_minute < 0 else "+"
    return f"{sign}{shown} {unit.label}"


def duration_text(age: timedelta) -> str:
    """Whole minutes, with hours past the first hour: "25 min", "1 h", "3 h 5 min"."""
    minutes = max(0, int(age.total_seconds() // 60))
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"{rest} min"
    if rest == 0:
        return f"{hours} h"
    return f"{hours} h {rest} min"


def _raises(kind: AlertKind, threshold: float, mgdl: int) -> bool:
    if _THRESHOLD_RULES[kind].below:
        return mgdl <= threshold
    return mgdl >= threshold


def _clears(kind: AlertKind, threshold: float, mgdl: int) -> bool:
    rule = _THRESHOLD_RULES[kind]
    if rule.below:
        return mgdl >= threshold + rule.clear_margin
    return mgdl <= threshold - rule.clear_margin


def track_runs(
    previous: tuple[ConditionRun, ...], known: tuple[Reading, ...], settings: AlertSettings
) -> tuple[ConditionRun, ...]:
    """The current run of every threshold kind with a persistence time, newest readings first.

    A run is extended back into the previous evaluation's run only when the readings at hand run
    out while still on the raising side (a batch of new readings does not show the past) and the
    previous run crosses the current threshold too; a reading on the other side, or a gap longer
    than RUN_MAX_GAP, starts the run afresh.
    """
    remembered = {run.kind: run for run in previous}
    runs: list[ConditionRun] = []
    for kind in _THRESHOLD_RULES:
        config = settings[kind]
        if config.persistence <= timedelta(0) or not known:
            continue
        if not _raises(kind, config.threshold, known[0].mgdl):
            continue
        count = 1
        while (
            count < len(known)
            and known[count - 1].time - known[count].time <= RUN_MAX_GAP
            and _raises(kind, config.threshold, known[count].mgdl)
        ):
            count += 1
        weakest_of = max if _THRESHOLD_RULES[kind].below else min
        since = known[count - 1].time
        weakest = weakest_of(r.mgdl for r in known[:count])
        before = remembered.get(kind)
        if (
            count == len(known)
            and before is not None
            and _raises(kind, config.threshold, before.weakest)
            and since - before.last <= RUN_MAX_GAP
        ):
            since = min(since, before.since)
            weakest = weakest_of(weakest, before.weakest)
        runs.append(ConditionRun(kind, weakest, since, known[0].time))
    return tuple(runs)


def verdict_for(kind: AlertKind, context: RuleContext) -> Verdict:
    """The rule of `kind` applied to the context (subsumption is the engine's business)."""
    if kind is AlertKind.NO_DATA:
        return _no_data(context)
    if kind is AlertKind.SIGN_IN_PROBLEM:
        return _sign_in_problem(context)
    if not context.known:
        return Verdict(Zone.OFF)
    newest = context.known[0]
    if context.now - newest.time >= GLUCOSE_MAX_AGE:
        return Verdict(Zone.FROZEN, reading=newest)
    if kind in _THRESHOLD_RULES:
        return _threshold(kind, newest, context)
    if kind is AlertKind.URGENT_LOW_SOON:
        return _low_soon(newest, context)
    return _fast(kind, newest, context)


def _glucose_verdict(
    zone: Zone, kind: AlertKind, reading: Reading, message: str, unit: Unit
) -> Verdict:
    # The unit is part of the signature: switching units mid-episode UPDATEs the text once.
    return Verdict(
        zone,
        reading=reading,
        title=glucose_title(kind, reading, unit),
        message=message,
        signature=(reading, unit),
        start=reading.time,
    )


def _threshold(kind: AlertKind, newest: Reading, context: RuleContext) -> Verdict:
    config = context.settings[kind]
    level = _level_text(config.threshold, context.unit)
    message = f"{_glucose_sentence(newest, context.unit)} {kind.title} alert level: {level}."
    if _raises(kind, config.threshold, newest.mgdl):
        zone = Zone.ON
        if config.persistence > timedelta(0):
            run = next(r for r in context.runs if r.kind is kind)
            if run.last - run.since < config.persistence:
                zone = Zone.KEEP
    elif _clears(kind, config.threshold, newest.mgdl):
        zone = Zone.OFF
    else:
        zone = Zone.KEEP
    return _glucose_verdict(zone, kind, newest, message, context.unit)


def _low_soon(newest: Reading, context: RuleContext) -> Verdict:
    unit = context.unit
    threshold = context.settings[AlertKind.URGENT_LOW_SOON].threshold
    forecast = predicted_mgdl(context.known, LOW_SOON_HORIZON)
    if forecast is None:
        return _glucose_verdict(Zone.OFF, AlertKind.URGENT_LOW_SOON, newest, "", unit)
    minutes = duration_text(LOW_SOON_HORIZON)
    if forecast < MIN_REAL_MGDL:
        outlook = f"it may fall below {_with_label(MIN_REAL_MGDL, unit)} within {minutes}"
    else:
        # A whole mg/dL like a reading, then shown as that reading would be in `unit`.
        outlook = f"it may reach {_level_text(round(forecast), unit)} within {minutes}"
    message = f"{_glucose_sentence(newest, unit)} At this rate {outlook}."
    if forecast <= threshold:
        zone = Zone.ON
    elif forecast >= threshold + LOW_CLEAR_MARGIN_MGDL:
        zone = Zone.OFF
    else:
        zone = Zone.KEEP
    return _glucose_verdict(zone, AlertKind.URGENT_LOW_SOON, newest, message, unit)


def _fast(kind: AlertKind, newest: Reading, context: RuleContext) -> Verdict:
    falling = kind is AlertKind.FALLING_FAST
    direction = -1 if falling else 1
    fast_trend = Trend.DOUBLE_DOWN if falling else Trend.DOUBLE_UP
    threshold = context.settings[kind].threshold
    slope = recent_slope(context.known)
    rate = None if slope is None else slope * direction
    sentence = _glucose_sentence(newest, context.unit)
    if slope is None:
        message = sentence
    else:
        message = f"{sentence} It is changing {rate_text(slope, context.unit)} per minute."
    if newest.trend is fast_trend or (rate is not None and rate >= threshold):
        zone = Zone.ON
    elif rate is None or rate < threshold - RATE_CLEAR_MARGIN:
        zone = Zone.OFF
    else:
        zone = Zone.KEEP
    return _glucose_verdict(zone, kind, newest, message, context.unit)


def _no_data(context: RuleContext) -> Verdict:
    threshold = timedelta(minutes=context.settings[AlertKind.NO_DATA].threshold)
    newest = context.known[0] if context.known else None
    since = newest.time if newest is not None else context.watching_since
    age = context.now - since
    if age < threshold:
        return Verdict(Zone.OFF, reading=newest)
    span = duration_text(age)
    if not context.reachable:
        message = f"Can't reach Dexcom Share for {span}."
    elif newest is None:
        message = f"No readings for {span}."
    else:
        message = f"No new readings for {span}."
    return Verdict(
        Zone.ON,
        reading=newest,
        title=f"{AlertKind.NO_DATA.title}: {span}",
        message=message,
        signature=(context.reachable, newest),
        start=context.now,
    )


def _sign_in_problem(context: RuleContext) -> Verdict:
    if context.sign_in_problem is None:
        return Verdict(Zone.OFF)
    return Verdict(
        Zone.ON,
        title=AlertKind.SIGN_IN_PROBLEM.title,
        message=context.sign_in_problem,
        signature=context.sign_in_problem,
        start=context.now,
    )
