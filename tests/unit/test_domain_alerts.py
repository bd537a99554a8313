"""The alert engine as the person wearing the sensor meets it: when alerts raise, repeat and end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.alert_rules import GLUCOSE_KINDS, duration_text, rate_text
from cgmtray.domain.alerts import (
    AlertDecision,
    AlertState,
    ConnectionState,
    DecisionAction,
    acknowledge,
    active_alerts,
    cancel_snooze,
    carried_over,
    evaluate,
    initial_state,
    snooze,
    snoozed_until,
    withdraw,
)
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.units import Unit

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DEFAULTS = AlertSettings()
RAISE = DecisionAction.RAISE
UPDATE = DecisionAction.UPDATE
REPEAT = DecisionAction.REPEAT
CLEAR = DecisionAction.CLEAR
Inputs = tuple[tuple[Reading, ...], ConnectionState]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def r(minutes: float, mgdl: int, trend: Trend = Trend.FLAT) -> Reading:
    """A reading taken `minutes` after T0."""
    return Reading(at(minutes), mgdl, trend)


def on_grid(minutes: float) -> int:
    """The time of the newest 5-minute reading at `minutes`."""
    return int(minutes // 5) * 5


def history(
    value_at: Callable[[int], int], minutes: float, trend: Trend = Trend.FLAT
) -> tuple[Reading, ...]:
    """The last 25 minutes of 5-minute readings known at `minutes` after T0."""
    newest = on_grid(minutes)
    return tuple(r(m, value_at(m), trend) for m in range(newest - 25, newest + 1, 5))


def enabled(kind: AlertKind, base: AlertSettings = DEFAULTS) -> AlertSettings:
    return base.with_kind(kind, replace(base[kind], enabled=True))


def disabled(kind: AlertKind, base: AlertSettings = DEFAULTS) -> AlertSettings:
    return base.with_kind(kind, replace(base[kind], enabled=False))


class Driver:
    """Feeds the engine step by step like the controller does, keeping the state."""

    def __init__(self, alert_settings: AlertSettings = DEFAULTS, unit: Unit = Unit.MGDL) -> None:
        self.state: AlertState = initial_state()
        self.settings = alert_settings
        self.unit = unit

    def at(
        self,
        minutes: float,
        readings: Sequence[Reading] = (),
        connection: ConnectionState | None = None,
    ) -> tuple[AlertDecision, ...]:
        self.state, decisions = evaluate(
            self.state,
            readings,
            at(minutes),
            self.settings,
            connection or ConnectionState(),
            unit=self.unit,
        )
        return decisions

    def snooze(self, kind: AlertKind, duration: timedelta, minutes: float) -> timedelta:
        self.state, granted = snooze(self.state, kind, duration, at(minutes), self.settings)
        return granted


def of(decisions: Sequence[AlertDecision], kind: AlertKind) -> list[AlertDecision]:
    return [d for d in decisions if d.kind is kind]


def actions(decisions: Sequence[AlertDecision]) -> list[tuple[AlertKind, DecisionAction]]:
    return [(d.kind, d.action) for d in decisions]


# ---------------------------------------------------------------------------------------------
# One scenario per kind: inputs at a given minute that keep the kind's condition on, and inputs
# that end it. Every kind is raised at minute 0.

SIGN_IN_MESSAGE = "Dexcom Share rejected the username or password."


def glucose(value_at: Callable[[int], int], trend: Trend = Trend.FLAT) -> Callable[[float], Inputs]:
    return lambda minutes: (history(value_at, minutes, trend), ConnectionState())


def steady(mgdl: int, trend: Trend = Trend.FLAT) -> Callable[[float], Inputs]:
    return glucose(lambda _m: mgdl, trend)


def no_new_readings(minutes: float) -> Inputs:
    return (r(-25, 120),), ConnectionState()


def sign_in_blocked(minutes: float) -> Inputs:
    return history(lambda _m: 120, minutes), ConnectionState(sign_in_problem=SIGN_IN_MESSAGE)


@dataclass(frozen=True)
class Scenario:
    kind: AlertKind
    active: Callable[[float], Inputs]
    inactive: Callable[[float], Inputs]
    settings: AlertSettings = DEFAULTS

    def __str__(self) -> str:
        return self.kind.value


SCENARIOS = [
    Scenario(AlertKind.URGENT_LOW, steady(50), steady(80)),
    # 68 - 0.8 mg/dL per minute: forecast 52 at minute 0, still above 55 itself at minute 15
    Scenario(AlertKind.URGENT_LOW_SOON, glucose(lambda m: max(40, 68 - 4 * m // 5)), steady(100)),
    Scenario(AlertKind.LOW, steady(65), steady(80)),
    Scenario(AlertKind.URGENT_HIGH, steady(320), steady(200), enabled(AlertKind.URGENT_HIGH)),
    Scenario(AlertKind.HIGH, steady(260), steady(200)),
    Scenario(AlertKind.FALLING_FAST, steady(150, Trend.DOUBLE_DOWN), steady(150)),
    Scenario(
        AlertKind.RISING_FAST,
        steady(150, Trend.DOUBLE_UP),
        steady(150),
        enabled(AlertKind.RISING_FAST),
    ),
    Scenario(AlertKind.NO_DATA, no_new_readings, steady(120)),
    Scenario(AlertKind.SIGN_IN_PROBLEM, sign_in_blocked, steady(120)),
]
REPEATING = [s for s in SCENARIOS if s.settings[s.kind].repeat is not None]
CAN_BE_TURNED_OFF = [s for s in SCENARIOS if s.kind is not AlertKind.URGENT_LOW]


def raised(scenario: Scenario) -> tuple[Driver, AlertDecision]:
    driver = Driver(scenario.settings)
    decisions = of(driver.at(0, *scenario.active(0)), scenario.kind)
    assert [d.action for d in decisions] == [RAISE]
    return driver, decisions[0]


def test_every_kind_has_a_scenario() -> None:
    assert {s.kind for s in SCENARIOS} == set(AlertKind)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_each_kind_raises(scenario: Scenario) -> None:
    driver, decision = raised(scenario)
    config = scenario.settings[scenario.kind]
    assert decision.key.startswith(f"{scenario.kind.value}:")
    assert decision.title.startswith(scenario.kind.title)
    assert decision.message
    assert decision.urgent is scenario.kind.is_urgent
    assert decision.sound is config.sound
    assert decision.at == T0
    assert (decision.reading is not None) or scenario.kind not in GLUCOSE_KINDS
    assert scenario.kind in active_alerts(driver.state)


@pytest.mark.parametrize("scenario", REPEATING, ids=str)
def test_a_repeat_fires_exactly_at_the_interval_not_before(scenario: Scenario) -> None:
    driver, first = raised(scenario)
    repeat = scenario.settings[scenario.kind].repeat
    assert repeat is not None
    interval = repeat.total_seconds() / 60
    before: list[AlertDecision] = []
    for minutes in [*range(5, int(interval), 5), interval - 1 / 60]:
        before += of(driver.at(minutes, *scenario.active(minutes)), scenario.kind)
    assert {d.action for d in before} <= {UPDATE}
    decisions = of(driver.at(interval, *scenario.active(interval)), scenario.kind)
    assert [(d.action, d.key) for d in decisions] == [(REPEAT, first.key)]
    assert decisions[0].sound is scenario.settings[scenario.kind].sound


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_each_kind_clears_once_its_condition_ends(scenario: Scenario) -> None:
    driver, first = raised(scenario)
    decisions = of(driver.at(5, *scenario.inactive(5)), scenario.kind)
    assert [(d.action, d.key) for d in decisions] == [(CLEAR, first.key)]
    assert decisions[0].sound is False
    assert scenario.kind not in active_alerts(driver.state)
    assert of(driver.at(10, *scenario.inactive(10)), scenario.kind) == []


@pytest.mark.parametrize("scenario", CAN_BE_TURNED_OFF, ids=str)
def test_a_disabled_kind_never_raises(scenario: Scenario) -> None:
    driver = Driver(disabled(scenario.kind, scenario.settings))
    for minutes in range(0, 120, 5):
        assert of(driver.at(minutes, *scenario.active(minutes)), scenario.kind) == []


@pytest.mark.parametrize("scenario", CAN_BE_TURNED_OFF, ids=str)
def test_disabling_a_kind_clears_its_open_episode(scenario: Scenario) -> None:
    driver, first = raised(scenario)
    driver.settings = disabled(scenario.kind, scenario.settings)
    decisions = of(driver.at(1, *scenario.active(1)), scenario.kind)
    assert [(d.action, d.key) for d in decisions] == [(CLEAR, first.key)]


def test_urgent_low_cannot_be_turned_off() -> None:
    driver = Driver(disabled(AlertKind.URGENT_LOW))
    assert actions(of(driver.at(0, history(lambda _m: 50, 0)), AlertKind.URGENT_LOW)) == [
        (AlertKind.URGENT_LOW, RAISE)
    ]


def test_sign_in_problem_does_not_repeat_and_updates_when_the_message_changes() -> None:
    driver, first = raised(SCENARIOS[-1])
    for minutes in range(5, 600, 5):
        assert of(driver.at(minutes, *sign_in_blocked(minutes)), AlertKind.SIGN_IN_PROBLEM) == []
    locked = ConnectionState(sign_in_problem="The account is locked for 10 minutes.")
    decisions = of(driver.at(600, history(lambda _m: 120, 600), locked), AlertKind.SIGN_IN_PROBLEM)
    assert [(d.action, d.key, d.message) for d in decisions] == [
        (UPDATE, first.key, "The account is locked for 10 minutes.")
    ]
    assert first.message == SIGN_IN_MESSAGE
    assert first.reading is None


# ---------------------------------------------------------------------------------------------
# The acceptance criteria, one by one.


def test_a_failed_fetch_never_raises_a_glucose_alert() -> None:
    driver = Driver()
    assert driver.at(0, history(lambda _m: 120, 0)) == ()
    unreachable = ConnectionState(reachable=False)
    seen: list[AlertDecision] = []
    for minutes in range(1, 180):
        seen += driver.at(minutes, (), unreachable)
    assert (
        actions(seen)
        == [(AlertKind.NO_DATA, RAISE), (AlertKind.NO_DATA, REPEAT)]
        + [(AlertKind.NO_DATA, REPEAT)] * 4
    )
    assert seen[0].at == at(20)
    assert seen[0].message == "Can't reach Dexcom Share for 20 min."
    assert seen[1].message == "Can't reach Dexcom Share for 50 min."
    assert seen[-1].message == "Can't reach Dexcom Share for 2 h 50 min."
    assert seen[0].reading == r(0, 120)


def test_failed_fetches_during_a_low_neither_repeat_nor_re_raise_it() -> None:
    driver = Driver()
    first = of(driver.at(0, history(lambda _m: 65, 0)), AlertKind.LOW)
    assert actions(first) == [(AlertKind.LOW, RAISE)]
    unreachable = ConnectionState(reachable=False)
    seen: list[AlertDecision] = []
    for minutes in range(1, 120):
        seen += driver.at(minutes, (), unreachable)
    glucose_decisions = [d for d in seen if d.kind in GLUCOSE_KINDS]
    assert glucose_decisions == []  # the value 15+ min old is not known to be low any more
    assert AlertKind.LOW in active_alerts(driver.state)  # but the episode is not forgotten
    back = driver.at(120, (r(120, 64),))
    assert [(d.kind, d.action, d.key) for d in of(back, AlertKind.LOW)] == [
        (AlertKind.LOW, REPEAT, first[0].key)
    ]
    assert actions(of(back, AlertKind.NO_DATA)) == [(AlertKind.NO_DATA, CLEAR)]


def test_an_empty_start_only_ever_speaks_of_missing_data() -> None:
    driver = Driver()
    seen: list[AlertDecision] = []
    for minutes in range(61):
        seen += driver.at(minutes)
    assert [(d.kind, d.action, d.message) for d in seen] == [
        (AlertKind.NO_DATA, RAISE, "No readings for 20 min."),
        (AlertKind.NO_DATA, REPEAT, "No readings for 50 min."),
    ]
    assert seen[0].reading is None


@pytest.mark.parametrize(
    ("reachable", "message"),
    [(True, "No new readings for 25 min."), (False, "Can't reach Dexcom Share for 25 min.")],
)
def test_no_data_says_whether_share_is_reachable(reachable: bool, message: str) -> None:
    driver = Driver()
    decisions = driver.at(0, (r(-25, 120),), ConnectionState(reachable=reachable))
    assert [(d.kind, d.action, d.title, d.message) for d in decisions] == [
        (AlertKind.NO_DATA, RAISE, "No data: 25 min", message)
    ]


def test_no_data_updates_when_share_becomes_unreachable() -> None:
    driver = Driver()
    first = driver.at(0, (r(-25, 120),))
    decisions = driver.at(1, (), ConnectionState(reachable=False))
    assert [(d.action, d.key, d.message) for d in decisions] == [
        (UPDATE, first[0].key, "Can't reach Dexcom Share for 26 min.")
    ]


@pytest.mark.parametrize(
    ("age", "raised_"),
    [(timedelta(minutes=19, seconds=59), False), (timedelta(minutes=20), True)],
)
def test_no_data_starts_at_twenty_minutes(age: timedelta, raised_: bool) -> None:
    driver = Driver()
    decisions = driver.at(0, (Reading(T0 - age, 120),))
    assert bool(of(decisions, AlertKind.NO_DATA)) is raised_


def test_snoozing_high_leaves_a_new_low_alerting() -> None:
    driver = Driver()
    assert actions(driver.at(0, history(lambda _m: 260, 0))) == [(AlertKind.HIGH, RAISE)]
    assert driver.snooze(AlertKind.HIGH, timedelta(hours=4), 1) == timedelta(hours=4)
    drop = driver.at(5, (r(5, 60, Trend.DOUBLE_DOWN),))
    assert (AlertKind.LOW, RAISE) in actions(drop)
    assert (AlertKind.HIGH, CLEAR) in actions(drop)  # a snooze never holds back the all-clear
    deeper = driver.at(10, (r(10, 50, Trend.DOUBLE_DOWN),))
    assert (AlertKind.URGENT_LOW, RAISE) in actions(deeper)


def test_snoozing_low_does_not_silence_urgent_low() -> None:
    driver = Driver()
    assert actions(driver.at(0, history(lambda _m: 65, 0))) == [(AlertKind.LOW, RAISE)]
    driver.snooze(AlertKind.LOW, timedelta(hours=1), 1)
    decisions = driver.at(5, (r(5, 52),))
    assert actions(decisions) == [(AlertKind.LOW, CLEAR), (AlertKind.URGENT_LOW, RAISE)]
    assert decisions[1].sound is True


def test_an_urgent_low_snooze_of_two_hours_is_capped_at_thirty_minutes() -> None:
    driver = Driver()
    first = driver.at(0, history(lambda _m: 50, 0))
    assert driver.snooze(AlertKind.URGENT_LOW, timedelta(hours=2), 1) == timedelta(minutes=30)
    assert snoozed_until(driver.state, AlertKind.URGENT_LOW) == at(31)
    for minutes in range(5, 31, 5):
        assert driver.at(minutes, history(lambda _m: 50, minutes)) == ()
    ended = driver.at(31, history(lambda _m: 50, 31))
    assert [(d.kind, d.action, d.key) for d in ended] == [
        (AlertKind.URGENT_LOW, REPEAT, first[0].key)
    ]
    assert snoozed_until(driver.state, AlertKind.URGENT_LOW) is None


@pytest.mark.parametrize(
    ("values", "threshold_kind", "clearing_value"),
    [
        ((68, 71, 69, 72, 70, 74, 66), AlertKind.LOW, 75),
        ((251, 249, 252, 241, 250, 255), AlertKind.HIGH, 240),
        ((55, 57, 54, 59, 56), AlertKind.URGENT_LOW, 60),
    ],
)
def test_a_value_oscillating_around_a_threshold_is_one_episode(
    values: tuple[int, ...], threshold_kind: AlertKind, clearing_value: int
) -> None:
    driver = Driver(replace_persistence(DEFAULTS, AlertKind.HIGH, timedelta(0)))
    seen: list[AlertDecision] = []
    for index, value in enumerate(values):
        seen += of(driver.at(5 * index, (r(5 * index, value),)), threshold_kind)
    assert seen[0].action is RAISE
    assert {d.action for d in seen[1:]} <= {UPDATE, REPEAT}  # updated and repeated, not re-raised
    assert len({d.key for d in seen}) == 1
    end = 5 * len(values)
    cleared = of(driver.at(end, (r(end, clearing_value),)), threshold_kind)
    assert [(d.action, d.key) for d in cleared] == [(CLEAR, seen[0].key)]


def replace_persistence(
    base: AlertSettings, kind: AlertKind, persistence: timedelta
) -> AlertSettings:
    return base.with_kind(kind, replace(base[kind], persistence=persistence))


def test_sleep_across_a_low_is_alerted_on_resume() -> None:
    driver = Driver()
    assert driver.at(0, history(lambda _m: 120, 0)) == ()
    # The lid opens eight hours later; the backfill shows a fall into a low that is still current.
    backfill = tuple(r(m, 120 if m < 450 else 64, Trend.FLAT) for m in range(5, 481, 5))
    decisions = driver.at(482, backfill)
    assert actions(decisions) == [(AlertKind.LOW, RAISE)]
    assert decisions[0].reading == r(480, 64)


def test_a_low_that_ended_during_sleep_is_not_alerted() -> None:
    driver = Driver()
    driver.at(0, history(lambda _m: 120, 0))
    backfill = tuple(r(m, 60 if 200 <= m < 260 else 120) for m in range(5, 481, 5))
    assert driver.at(482, backfill) == ()


def test_repeats_that_fell_due_during_sleep_repeat_once() -> None:
    driver = Driver()
    first = driver.at(0, history(lambda _m: 50, 0))
    resumed = driver.at(482, history(lambda _m: 50, 482))
    assert [(d.kind, d.action, d.key) for d in resumed] == [
        (AlertKind.URGENT_LOW, REPEAT, first[0].key)
    ]
    assert driver.at(483, history(lambda _m: 50, 482)) == ()
    later = driver.at(487, history(lambda _m: 50, 487))
    assert actions(later) == [(AlertKind.URGENT_LOW, REPEAT)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
@pytest.mark.parametrize("minutes", [0, 5, 17, 60])
def test_the_same_input_twice_decides_nothing_the_second_time(
    scenario: Scenario, minutes: float
) -> None:
    driver = Driver(scenario.settings)
    driver.at(0, *scenario.active(0))
    inputs = scenario.active(minutes)
    driver.at(minutes, *inputs)
    assert driver.at(minutes, *inputs) == ()
    inputs = scenario.inactive(minutes + 5)
    driver.at(minutes + 5, *inputs)
    assert driver.at(minutes + 5, *inputs) == ()


def test_keys_are_stable_within_an_episode_and_new_for_the_next() -> None:
    driver = Driver()
    seen: list[AlertDecision] = []
    for minutes, value in [(0, 65), (5, 64), (10, 64), (15, 63), (20, 80), (25, 65), (30, 80)]:
        seen += of(driver.at(minutes, (r(minutes, value),)), AlertKind.LOW)
    assert [d.action for d in seen] == [RAISE, UPDATE, UPDATE, REPEAT, CLEAR, RAISE, CLEAR]
    first, second = seen[:5], seen[5:]
    assert len({d.key for d in first}) == 1
    assert len({d.key for d in second}) == 1
    assert first[0].key != second[0].key
    assert first[0].key.startswith("low:2026-11-21T10:00:00+00:00")


def test_an_episode_reopened_on_the_same_reading_gets_a_new_key() -> None:
    driver = Driver()
    readings = history(lambda _m: 65, 0)
    first = driver.at(0, readings)
    driver.settings = disabled(AlertKind.LOW)
    driver.at(0, readings)
    driver.settings = DEFAULTS
    again = driver.at(0, readings)
    assert actions(again) == [(AlertKind.LOW, RAISE)]
    assert again[0].key != first[0].key


# ---------------------------------------------------------------------------------------------
# Lows and highs in detail.


def test_a_low_that_deepens_into_urgent_low_does_not_stack() -> None:
    driver = Driver()
    low = driver.at(0, (r(0, 65),))
    deeper = driver.at(5, (r(5, 54, Trend.SINGLE_DOWN),))
    assert [(d.kind, d.action) for d in deeper] == [
        (AlertKind.LOW, CLEAR),
        (AlertKind.URGENT_LOW, RAISE),
    ]
    assert deeper[0].key == low[0].key
    assert deeper[1].title == "Urgent low: 54 mg/dL ↓"
    assert active_alerts(driver.state) == (AlertKind.URGENT_LOW,)
    assert of(driver.at(10, (r(10, 58),)), AlertKind.LOW) == []  # still urgent low (hysteresis)
    recovering = driver.at(15, (r(15, 62, Trend.SINGLE_UP),))
    assert actions(recovering) == [(AlertKind.URGENT_LOW, CLEAR), (AlertKind.LOW, RAISE)]
    assert recovering[1].key != low[0].key


def test_urgent_high_subsumes_high() -> None:
    driver = Driver(enabled(AlertKind.URGENT_HIGH))
    assert actions(driver.at(0, history(lambda _m: 260, 0))) == [(AlertKind.HIGH, RAISE)]
    assert actions(driver.at(5, (r(5, HIGH_MGDL),))) == [
        (AlertKind.HIGH, CLEAR),
        (AlertKind.URGENT_HIGH, RAISE),
    ]
    assert active_alerts(driver.state) == (AlertKind.URGENT_HIGH,)
    falling = driver.at(10, (r(10, 280),))
    assert actions(falling) == [(AlertKind.URGENT_HIGH, CLEAR), (AlertKind.HIGH, RAISE)]


@pytest.mark.parametrize(
    ("reading", "kind", "title", "message"),
    [
        (
            r(0, 64, Trend.FORTY_FIVE_DOWN),
            AlertKind.LOW,
            "Low: 64 mg/dL ↘",
            "Glucose is 64 mg/dL, falling slightly. Low alert level: 70 mg/dL.",
        ),
        (
            r(0, LOW_MGDL, Trend.NOT_COMPUTABLE),
            AlertKind.URGENT_LOW,
            "Urgent low: LOW",
            "Glucose is below 40 mg/dL (LOW). Urgent low alert level: 55 mg/dL.",
        ),
        (
            r(0, HIGH_MGDL, Trend.NONE),
            AlertKind.URGENT_HIGH,
            "Urgent high: HIGH",
            "Glucose is above 400 mg/dL (HIGH). Urgent high alert level: 300 mg/dL.",
        ),
    ],
)
def test_titles_and_messages_name_the_value(
    reading: Reading, kind: AlertKind, title: str, message: str
) -> None:
    driver = Driver(enabled(AlertKind.URGENT_HIGH))
    decisions = of(driver.at(0, (reading,)), kind)
    assert [(d.title, d.message, d.reading) for d in decisions] == [(title, message, reading)]


def test_a_new_reading_updates_the_open_episode_silently() -> None:
    driver = Driver()
    first = driver.at(0, (r(0, 52),))
    update = driver.at(4, (r(4, 50, Trend.SINGLE_DOWN),))
    assert [(d.action, d.key, d.title, d.sound) for d in update] == [
        (UPDATE, first[0].key, "Urgent low: 50 mg/dL ↓", False)
    ]


@pytest.mark.parametrize(
    ("kind", "sound_setting", "expected"),
    [
        (AlertKind.URGENT_LOW, True, True),
        (AlertKind.URGENT_LOW, False, False),
        (AlertKind.LOW, False, False),
        (AlertKind.LOW, True, True),
    ],
)
def test_sound_follows_the_kind_setting(
    kind: AlertKind, sound_setting: bool, expected: bool
) -> None:
    alert_settings = DEFAULTS.with_kind(kind, replace(DEFAULTS[kind], sound=sound_setting))
    value = 50 if kind is AlertKind.URGENT_LOW else 65
    decisions = of(Driver(alert_settings).at(0, (r(0, value),)), kind)
    assert [(d.action, d.sound) for d in decisions] == [(RAISE, expected)]


@pytest.mark.parametrize(
    ("fed", "raised_at"),
    [
        ([(0, 260), (5, 260), (10, 260), (15, 260)], 15),
        ([(0, 260), (5, 260), (10, 245), (15, 260), (20, 260), (25, 260), (30, 260)], 30),
        ([(0, 260), (5, 260), (30, 260), (35, 260), (40, 260), (45, 260)], 45),  # gap restarts
        ([(0, 260), (5, 240), (10, 260)], None),
    ],
)
def test_high_waits_for_fifteen_minutes_above(
    fed: list[tuple[int, int]], raised_at: int | None
) -> None:
    """Fed one new reading at a time, as a worker that only forwards what is new would."""
    driver = Driver()
    raises = []
    for minutes, value in fed:
        if of(driver.at(minutes, (r(minutes, value),)), AlertKind.HIGH):
            raises.append(minutes)
    assert raises == ([] if raised_at is None else [raised_at])


def test_high_persistence_is_seen_in_a_backfill() -> None:
    driver = Driver()
    assert driver.at(0, (r(0, 120),)) == ()
    backfill = tuple(r(m, 120 if m < 300 else 270) for m in range(5, 481, 5))
    assert actions(driver.at(482, backfill)) == [(AlertKind.HIGH, RAISE)]


@pytest.mark.parametrize(
    ("new_threshold", "raised_at"),
    [(255, 30), (265, 60)],
)
def test_a_changed_high_threshold_keeps_the_wait_only_if_the_run_still_counts(
    new_threshold: int, raised_at: int
) -> None:
    """Half an hour above, fed one reading at a time; the threshold changes midway."""
    high = replace(DEFAULTS[AlertKind.HIGH], persistence=timedelta(minutes=30))
    driver = Driver(DEFAULTS.with_kind(AlertKind.HIGH, high))
    for minutes in range(0, 30, 5):
        assert driver.at(minutes, (r(minutes, 260),)) == ()
    driver.settings = driver.settings.with_kind(
        AlertKind.HIGH, replace(high, threshold=new_threshold)
    )
    raises = []
    for minutes in range(30, 65, 5):
        decisions = of(driver.at(minutes, (r(minutes, 270),)), AlertKind.HIGH)
        if RAISE in {d.action for d in decisions}:
            raises.append(minutes)
    assert raises == [raised_at]


@pytest.mark.parametrize(
    ("age", "alerted"),
    [
        (timedelta(minutes=14, seconds=59), True),
        (timedelta(minutes=15), False),
        (timedelta(minutes=-2), True),  # a reading "from the future" (clock skew) is current
    ],
)
def test_only_a_recent_reading_raises_a_glucose_alert(age: timedelta, alerted: bool) -> None:
    decisions = Driver().at(0, (Reading(T0 - age, 50),))
    assert bool(of(decisions, AlertKind.URGENT_LOW)) is alerted


# ---------------------------------------------------------------------------------------------
# Urgent low soon, falling and rising fast.


@pytest.mark.parametrize(
    ("values", "raised_"),
    [
        ((80, 76, 72, 68), True),  # forecast 52
        ((85, 80, 75), True),  # forecast exactly 55
        ((86, 81, 76), False),  # forecast 56
        ((70, 68), False),  # two readings: no forecast
        ((70, LOW_MGDL, 60), False),  # LOW in the window: no forecast
        ((70, 62, 54), False),  # already urgent low
    ],
)
def test_urgent_low_soon(values: tuple[int, ...], raised_: bool) -> None:
    readings = tuple(r(5 * (i - len(values) + 1), v) for i, v in enumerate(values))
    decisions = Driver().at(0, readings)
    assert bool(of(decisions, AlertKind.URGENT_LOW_SOON)) is raised_


def test_urgent_low_soon_says_where_the_value_is_heading() -> None:
    decisions = Driver().at(
        0, (r(-10, 80, Trend.SINGLE_DOWN), r(-5, 70), r(0, 60, Trend.SINGLE_DOWN))
    )
    soon = of(decisions, AlertKind.URGENT_LOW_SOON)
    assert [(d.title, d.message, d.sound, d.urgent) for d in soon] == [
        (
            "Urgent low soon: 60 mg/dL ↓",
            "Glucose is 60 mg/dL, falling. At this rate it may fall below 40 mg/dL within 20 min.",
            True,
            True,
        )
    ]
    near = of(Driver().at(0, (r(-10, 76), r(-5, 72), r(0, 68))), AlertKind.URGENT_LOW_SOON)
    assert (
        near[0].message
        == "Glucose is 68 mg/dL, steady. At this rate it may reach 52 mg/dL within 20 min."
    )


def test_urgent_low_soon_ends_with_hysteresis() -> None:
    soon = replace(DEFAULTS[AlertKind.URGENT_LOW_SOON], repeat=timedelta(hours=1))
    driver = Driver(DEFAULTS.with_kind(AlertKind.URGENT_LOW_SOON, soon))
    kind = AlertKind.URGENT_LOW_SOON
    first = of(driver.at(0, (r(-10, 76), r(-5, 72), r(0, 68))), kind)
    kept = of(driver.at(30, (r(20, 64), r(25, 63), r(30, 62))), kind)  # forecast 58
    cleared = of(driver.at(45, (r(35, 62), r(40, 62), r(45, 62))), kind)  # forecast 62
    assert [(d.action, d.key) for d in first + kept + cleared] == [
        (RAISE, first[0].key),
        (UPDATE, first[0].key),
        (CLEAR, first[0].key),
    ]


def test_urgent_low_soon_ends_when_too_few_readings_are_left() -> None:
    driver = Driver()
    kind = AlertKind.URGENT_LOW_SOON
    assert actions(of(driver.at(0, (r(-10, 76), r(-5, 72), r(0, 68))), kind)) == [(kind, RAISE)]
    assert actions(of(driver.at(30, (r(30, 66),)), kind)) == [(kind, CLEAR)]


@pytest.mark.parametrize(
    ("kind", "readings", "raised_"),
    [
        (AlertKind.FALLING_FAST, ((130, Trend.FLAT), (115, Trend.FLAT), (100, Trend.FLAT)), True),
        (AlertKind.FALLING_FAST, ((129, Trend.FLAT), (115, Trend.FLAT), (100, Trend.FLAT)), False),
        (AlertKind.FALLING_FAST, ((150, Trend.FLAT), (150, Trend.DOUBLE_DOWN)), True),
        (AlertKind.FALLING_FAST, ((130, Trend.FLAT), (115, Trend.SINGLE_DOWN)), False),
        (AlertKind.RISING_FAST, ((100, Trend.FLAT), (115, Trend.FLAT), (130, Trend.FLAT)), True),
        (AlertKind.RISING_FAST, ((100, Trend.FLAT), (114, Trend.FLAT), (129, Trend.FLAT)), False),
        (AlertKind.RISING_FAST, ((150, Trend.FLAT), (150, Trend.DOUBLE_UP)), True),
    ],
)
def test_fast_changes(
    kind: AlertKind, readings: tuple[tuple[int, Trend], ...], raised_: bool
) -> None:
    fed = tuple(r(5 * (i - len(readings) + 1), v, t) for i, (v, t) in enumerate(readings))
    decisions = Driver(enabled(AlertKind.RISING_FAST)).at(0, fed)
    assert bool(of(decisions, kind)) is raised_


def test_falling_fast_ends_with_hysteresis() -> None:
    driver = Driver()
    kind = AlertKind.FALLING_FAST
    first = of(driver.at(0, (r(-10, 330), r(-5, 315), r(0, 300))), kind)
    assert first[0].message == "Glucose is 300 mg/dL, steady. It is changing -3.0 mg/dL per minute."
    kept = of(driver.at(15, (r(5, 288), r(10, 276), r(15, 264))), kind)  # -2.4 mg/dL per minute
    cleared = of(driver.at(30, (r(20, 260), r(25, 258), r(30, 256))), kind)  # about -0.5
    assert [d.action for d in first + kept + cleared] == [RAISE, UPDATE, CLEAR]
    assert cleared[0].message == "Latest reading: 256 mg/dL."


def test_falling_fast_by_trend_alone_names_the_value() -> None:
    decisions = of(Driver().at(0, (r(0, 150, Trend.DOUBLE_DOWN),)), AlertKind.FALLING_FAST)
    assert [(d.title, d.message) for d in decisions] == [
        ("Falling fast: 150 mg/dL ⇊", "Glucose is 150 mg/dL, falling quickly.")
    ]


# ---------------------------------------------------------------------------------------------
# Snooze and acknowledge.


def test_an_episode_that_starts_during_a_snooze_raises_when_it_ends() -> None:
    driver = Driver()
    assert driver.snooze(AlertKind.LOW, timedelta(hours=1), 0) == timedelta(hours=1)
    for minutes in range(5, 60, 5):
        assert driver.at(minutes, (r(minutes, 65),)) == ()
    assert AlertKind.LOW in active_alerts(driver.state)  # tracked while snoozed
    assert actions(driver.at(60, (r(60, 65),))) == [(AlertKind.LOW, RAISE)]


def test_an_episode_that_starts_and_ends_during_a_snooze_says_nothing() -> None:
    driver = Driver()
    driver.snooze(AlertKind.LOW, timedelta(hours=1), 0)
    assert driver.at(0, (r(0, 65),)) == ()
    assert driver.at(5, (r(5, 90),)) == ()
    assert driver.at(60, (r(60, 90),)) == ()


def test_a_snooze_ending_during_an_episode_repeats_once_then_on_schedule() -> None:
    driver = Driver()
    first = driver.at(0, history(lambda _m: 260, 0))
    driver.snooze(AlertKind.HIGH, timedelta(minutes=30), 2)
    assert driver.at(31, history(lambda _m: 260, 31)) == ()
    ended = driver.at(32, history(lambda _m: 260, 32))
    assert [(d.action, d.key) for d in ended] == [(REPEAT, first[0].key)]
    assert of(driver.at(91, history(lambda _m: 260, 91)), AlertKind.HIGH)[0].action is UPDATE
    assert of(driver.at(92, history(lambda _m: 260, 92)), AlertKind.HIGH)[0].action is REPEAT


def test_a_snooze_is_capped_by_the_kind_setting() -> None:
    driver = Driver()
    assert driver.snooze(AlertKind.HIGH, timedelta(hours=9), 0) == timedelta(hours=4)
    assert snoozed_until(driver.state, AlertKind.HIGH) == at(240)
    assert snoozed_until(driver.state, AlertKind.LOW) is None


def test_a_zero_snooze_cap_grants_nothing() -> None:
    alert_settings = DEFAULTS.with_kind(
        AlertKind.LOW, replace(DEFAULTS[AlertKind.LOW], snooze_cap=timedelta(0))
    )
    driver = Driver(alert_settings)
    before = driver.state
    assert driver.snooze(AlertKind.LOW, timedelta(hours=1), 0) == timedelta(0)
    assert driver.state is before


@pytest.mark.parametrize("duration", [timedelta(0), timedelta(minutes=-5)])
def test_a_snooze_lasts_a_positive_time(duration: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        snooze(initial_state(), AlertKind.LOW, duration, T0, DEFAULTS)


def test_acknowledging_restarts_the_repeat_interval() -> None:
    driver = Driver()
    first = driver.at(0, history(lambda _m: 50, 0))
    driver.state = acknowledge(driver.state, AlertKind.URGENT_LOW, at(3))
    same = history(lambda _m: 50, 0)
    assert driver.at(5, same) == ()
    assert driver.at(7.99, same) == ()
    repeated = driver.at(8, same)
    assert [(d.action, d.key, d.sound) for d in repeated] == [(REPEAT, first[0].key, True)]


def test_acknowledging_without_an_episode_or_repeat_changes_nothing() -> None:
    state = initial_state()
    assert acknowledge(state, AlertKind.LOW, T0) == state
    driver, _ = raised(SCENARIOS[-1])
    driver.state = acknowledge(driver.state, AlertKind.SIGN_IN_PROBLEM, at(1))
    assert driver.at(600, *sign_in_blocked(600)) == ()


def test_cancelling_a_snooze_repeats_the_open_episode_at_once() -> None:
    driver = Driver()
    first = driver.at(0, history(lambda _m: 260, 0))
    driver.snooze(AlertKind.HIGH, timedelta(hours=2), 2)
    assert driver.at(10, history(lambda _m: 260, 10)) == ()
    driver.state = cancel_snooze(driver.state, AlertKind.HIGH, at(11))
    assert snoozed_until(driver.state, AlertKind.HIGH) is None
    again = driver.at(11, history(lambda _m: 260, 11))
    assert [(d.action, d.key) for d in again] == [(REPEAT, first[0].key)]


def test_cancelling_a_snooze_raises_an_episode_that_opened_during_it() -> None:
    driver = Driver()
    driver.snooze(AlertKind.LOW, timedelta(hours=1), 0)
    assert driver.at(5, (r(5, 65),)) == ()
    driver.state = cancel_snooze(driver.state, AlertKind.LOW, at(6))
    assert actions(driver.at(6, (r(5, 65),))) == [(AlertKind.LOW, RAISE)]


def test_cancelling_a_snooze_that_is_not_there_changes_nothing() -> None:
    state = initial_state()
    assert cancel_snooze(state, AlertKind.LOW, T0) is state


def test_a_withdrawn_kind_is_forgotten_without_a_clear() -> None:
    driver = Driver()
    driver.at(0, history(lambda _m: 260, 0))
    driver.snooze(AlertKind.HIGH, timedelta(hours=1), 1)
    driver.state = withdraw(driver.state, AlertKind.HIGH)
    assert AlertKind.HIGH not in active_alerts(driver.state)
    assert snoozed_until(driver.state, AlertKind.HIGH) is None
    driver.settings = disabled(AlertKind.HIGH)
    assert driver.at(5, history(lambda _m: 260, 5)) == ()


def test_active_alerts_are_listed_most_urgent_first() -> None:
    driver = Driver()
    driver.at(0, (r(-10, 120), r(-5, 90), r(0, 54, Trend.DOUBLE_DOWN)))
    assert active_alerts(driver.state) == (AlertKind.URGENT_LOW, AlertKind.FALLING_FAST)


def test_readings_in_any_order_with_duplicates_decide_the_same() -> None:
    readings = history(lambda m: 100 - 3 * m, 10)
    shuffled = (*readings[::-1], *readings[:3])
    assert Driver().at(10, readings) == Driver().at(10, shuffled)


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 11, 21, 10, 0)  # the mistake under test
    with pytest.raises(ValueError, match="naive"):
        evaluate(initial_state(), (), naive, DEFAULTS)


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(seconds=-30), "0 min"),
        (timedelta(minutes=25, seconds=59), "25 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
    ],
)
def test_durations_read_naturally(age: timedelta, text: str) -> None:
    assert duration_text(age) == text


# ---------------------------------------------------------------------------------------------
# Texts in the chosen unit: someone who reads mmol/L never meets a mg/dL number.

ALL_ON = enabled(AlertKind.RISING_FAST, enabled(AlertKind.URGENT_HIGH))


def fed_before(*values: int | tuple[int, Trend]) -> tuple[Reading, ...]:
    """Readings 5 minutes apart, the newest at minute 0 (a bare value is a steady reading)."""
    pairs = [v if isinstance(v, tuple) else (v, Trend.FLAT) for v in values]
    return tuple(r(5 * (i - len(pairs) + 1), v, t) for i, (v, t) in enumerate(pairs))


@pytest.mark.parametrize(
    ("kind", "readings", "title", "message"),
    [
        (
            AlertKind.URGENT_LOW,
            fed_before((50, Trend.SINGLE_DOWN)),
            "Urgent low: 2.8 mmol/L ↓",
            "Glucose is 2.8 mmol/L, falling. Urgent low alert level: 3.1 mmol/L.",
        ),
        (
            AlertKind.URGENT_LOW,
            fed_before((LOW_MGDL, Trend.NOT_COMPUTABLE)),
            "Urgent low: LOW",
            "Glucose is below 2.2 mmol/L (LOW). Urgent low alert level: 3.1 mmol/L.",
        ),
        (
            AlertKind.URGENT_LOW_SOON,
            fed_before(76, 72, 68),
            "Urgent low soon: 3.8 mmol/L →",
            "Glucose is 3.8 mmol/L, steady. At this rate it may reach 2.9 mmol/L within 20 min.",
        ),
        (
            AlertKind.URGENT_LOW_SOON,
            fed_before((80, Trend.SINGLE_DOWN), 70, (60, Trend.SINGLE_DOWN)),
            "Urgent low soon: 3.3 mmol/L ↓",
            "Glucose is 3.3 mmol/L, falling. At this rate it may fall below 2.2 mmol/L within"
            " 20 min.",
        ),
        (
            AlertKind.LOW,
            fed_before((64, Trend.FORTY_FIVE_DOWN)),
            "Low: 3.6 mmol/L ↘",
            "Glucose is 3.6 mmol/L, falling slightly. Low alert level: 3.9 mmol/L.",
        ),
        (
            AlertKind.URGENT_HIGH,
            fed_before((320, Trend.FORTY_FIVE_UP)),
            "Urgent high: 17.8 mmol/L ↗",
            "Glucose is 17.8 mmol/L, rising slightly. Urgent high alert level: 16.7 mmol/L.",
        ),
        (
            AlertKind.URGENT_HIGH,
            fed_before((HIGH_MGDL, Trend.NONE)),
            "Urgent high: HIGH",
            "Glucose is above 22.2 mmol/L (HIGH). Urgent high alert level: 16.7 mmol/L.",
        ),
        (
            AlertKind.HIGH,
            fed_before(260, 260, 260, 260),
            "High: 14.4 mmol/L →",
            "Glucose is 14.4 mmol/L, steady. High alert level: 13.9 mmol/L.",
        ),
        (
            AlertKind.FALLING_FAST,
            fed_before(330, 315, 300),
            "Falling fast: 16.7 mmol/L →",
            "Glucose is 16.7 mmol/L, steady. It is changing -0.2 mmol/L per minute.",
        ),
        (
            AlertKind.FALLING_FAST,
            fed_before((150, Trend.DOUBLE_DOWN)),
            "Falling fast: 8.3 mmol/L ⇊",
            "Glucose is 8.3 mmol/L, falling quickly.",
        ),
        (
            AlertKind.RISING_FAST,
            fed_before(100, 115, 130),
            "Rising fast: 7.2 mmol/L →",
            "Glucose is 7.2 mmol/L, steady. It is changing +0.2 mmol/L per minute.",
        ),
        (
            AlertKind.RISING_FAST,
            fed_before(150, 150, (150, Trend.DOUBLE_UP)),
            "Rising fast: 8.3 mmol/L ⇈",
            "Glucose is 8.3 mmol/L, rising quickly. It is changing ±0.0 mmol/L per minute.",
        ),
    ],
)
def test_mmol_titles_and_messages(
    kind: AlertKind, readings: tuple[Reading, ...], title: str, message: str
) -> None:
    decisions = of(Driver(ALL_ON, Unit.MMOL).at(0, readings), kind)
    assert [(d.action, d.title, d.message, d.reading) for d in decisions] == [
        (RAISE, title, message, readings[-1])
    ]


@pytest.mark.parametrize(
    ("kind", "opening", "ending", "message"),
    [
        (AlertKind.LOW, 65, 80, "Latest reading: 4.4 mmol/L."),
        (AlertKind.LOW, 65, LOW_MGDL, "Latest reading: below 2.2 mmol/L (LOW)."),
        (AlertKind.HIGH, 260, HIGH_MGDL, "Latest reading: above 22.2 mmol/L (HIGH)."),
        (AlertKind.URGENT_LOW, 50, 61, "Latest reading: 3.4 mmol/L."),
        (AlertKind.URGENT_HIGH, 320, 200, "Latest reading: 11.1 mmol/L."),
    ],
)
def test_mmol_clear_messages(kind: AlertKind, opening: int, ending: int, message: str) -> None:
    driver = Driver(enabled(AlertKind.URGENT_HIGH), Unit.MMOL)
    first = of(driver.at(0, history(lambda _m: opening, 0)), kind)
    assert [d.action for d in first] == [RAISE]
    cleared = of(driver.at(5, (r(5, ending),)), kind)
    assert [(d.action, d.key, d.title, d.message) for d in cleared] == [
        (CLEAR, first[0].key, f"{kind.title} ended", message)
    ]


def test_the_same_episode_in_mg_dl_names_the_sensor_range_edge() -> None:
    driver = Driver()
    driver.at(0, history(lambda _m: 65, 0))
    cleared = of(driver.at(5, (r(5, LOW_MGDL),)), AlertKind.LOW)
    assert [d.message for d in cleared] == ["Latest reading: below 40 mg/dL (LOW)."]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_the_unit_changes_only_the_words(scenario: Scenario) -> None:
    """Same inputs in both units: the same decisions, keys, sounds and readings."""
    runs: dict[Unit, list[tuple[object, ...]]] = {}
    for unit in Unit:
        driver = Driver(scenario.settings, unit)
        seen: list[tuple[object, ...]] = []
        for minutes in range(0, 125, 5):
            inputs = scenario.active(minutes) if minutes < 90 else scenario.inactive(minutes)
            seen += [
                (d.kind, d.action, d.key, d.sound, d.urgent, d.reading, d.at)
                for d in driver.at(minutes, *inputs)
            ]
        runs[unit] = seen
    assert runs[Unit.MGDL] == runs[Unit.MMOL]
    assert (scenario.kind, CLEAR) in [(kind, action) for kind, action, *_ in runs[Unit.MMOL]]


def test_switching_unit_mid_episode_updates_the_text_once() -> None:
    driver = Driver()
    low = driver.at(0, (r(0, 64, Trend.FORTY_FIVE_DOWN),))
    assert [(d.action, d.title) for d in low] == [(RAISE, "Low: 64 mg/dL ↘")]
    driver.unit = Unit.MMOL
    switched = driver.at(1)
    assert [(d.kind, d.action, d.key, d.title, d.message, d.sound) for d in switched] == [
        (
            AlertKind.LOW,
            UPDATE,
            low[0].key,
            "Low: 3.6 mmol/L ↘",
            "Glucose is 3.6 mmol/L, falling slightly. Low alert level: 3.9 mmol/L.",
            False,
        )
    ]
    assert driver.at(2) == ()
    repeated = driver.at(15, (r(15, 64, Trend.FORTY_FIVE_DOWN),))
    assert [(d.action, d.key, d.title) for d in repeated] == [
        (REPEAT, low[0].key, "Low: 3.6 mmol/L ↘")
    ]
    driver.unit = Unit.MGDL
    back = driver.at(16)
    assert [(d.action, d.key, d.title) for d in back] == [(UPDATE, low[0].key, "Low: 64 mg/dL ↘")]


def test_switching_unit_leaves_texts_without_a_value_alone() -> None:
    driver = Driver()
    assert actions(driver.at(0, (r(-25, 120),))) == [(AlertKind.NO_DATA, RAISE)]
    driver.unit = Unit.MMOL
    assert driver.at(1) == ()  # "No new readings for ..." holds no value: nothing to say again


def test_switching_unit_while_frozen_waits_for_a_current_reading() -> None:
    driver = Driver()
    first = driver.at(0, (r(0, 64),))
    driver.unit = Unit.MMOL
    frozen = driver.at(16)  # the newest reading is too old to judge by
    assert of(frozen, AlertKind.LOW) == []
    back = of(driver.at(17, (r(17, 64),)), AlertKind.LOW)
    assert [(d.action, d.key, d.title) for d in back] == [
        (REPEAT, first[0].key, "Low: 3.6 mmol/L →")
    ]


@pytest.mark.parametrize(
    ("mgdl_per_minute", "mgdl_text", "mmol_text"),
    [
        (-3.0, "-3.0 mg/dL", "-0.2 mmol/L"),
        (3.0, "+3.0 mg/dL", "+0.2 mmol/L"),
        (2.45, "+2.5 mg/dL", "+0.1 mmol/L"),  # half away from zero, not to even
        (-0.9, "-0.9 mg/dL", "±0.0 mmol/L"),  # 0.04996 mmol/L: rounds to nothing, never "-0.0"
        (0.91, "+0.9 mg/dL", "+0.1 mmol/L"),  # 0.0505 mmol/L
        (-0.04, "±0.0 mg/dL", "±0.0 mmol/L"),
        (0.0, "±0.0 mg/dL", "±0.0 mmol/L"),
        (-18.01559, "-18.0 mg/dL", "-1.0 mmol/L"),
    ],
)
def test_rates_are_written_in_the_chosen_unit(
    mgdl_per_minute: float, mgdl_text: str, mmol_text: str
) -> None:
    assert rate_text(mgdl_per_minute, Unit.MGDL) == mgdl_text
    assert rate_text(mgdl_per_minute, Unit.MMOL) == mmol_text


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (Unit.MGDL, "Glucose is 65 mg/dL, steady. Low alert level: 70.5 mg/dL."),
        (Unit.MMOL, "Glucose is 3.6 mmol/L, steady. Low alert level: 3.9 mmol/L."),
    ],
)
def test_a_fractional_alert_level_is_written_as_set(unit: Unit, message: str) -> None:
    alert_settings = DEFAULTS.with_kind(
        AlertKind.LOW, replace(DEFAULTS[AlertKind.LOW], threshold=70.5)
    )
    decisions = of(Driver(alert_settings, unit).at(0, (r(0, 65),)), AlertKind.LOW)
    assert [d.message for d in decisions] == [message]


# ---------------------------------------------------------------------------------------------
# Properties over random days: readings, outages, sign-in trouble, snoozes, acks and settings.

KINDS = list(AlertKind)

step_strategy = st.fixed_dictionaries(
    {
        "advance": st.one_of(
            st.integers(min_value=0, max_value=6), st.integers(min_value=7, max_value=600)
        ),
        "reading": st.one_of(
            st.none(),
            st.tuples(
                st.one_of(
                    st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL),
                    st.integers(min_value=45, max_value=80),
                    st.integers(min_value=240, max_value=310),
                ),
                st.sampled_from(Trend),
            ),
        ),
        "whole_history": st.booleans(),
        "reachable": st.booleans(),
        "sign_in_problem": st.sampled_from([None, None, "Sign-in was rejected.", "Locked."]),
        "action": st.one_of(
            st.none(),
            st.tuples(st.just("snooze"), st.sampled_from(KINDS), st.integers(1, 300)),
            st.tuples(st.just("ack"), st.sampled_from(KINDS), st.just(0)),
            st.tuples(st.just("toggle"), st.sampled_from(KINDS), st.just(0)),
        ),
    }
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step_strategy, min_size=1, max_size=40), unit=st.sampled_from(Unit))
def test_decisions_always_follow_the_episode_rules(
    steps: list[dict[str, object]], unit: Unit
) -> None:
    other_label = (Unit.MMOL if unit is Unit.MGDL else Unit.MGDL).label
    state = initial_state()
    alert_settings = enabled(AlertKind.RISING_FAST, enabled(AlertKind.URGENT_HIGH))
    now = T0
    everything: list[Reading] = []
    open_keys: dict[AlertKind, str] = {}
    used_keys: set[str] = set()
    for step in steps:
        advance = step["advance"]
        assert isinstance(advance, int)
        now += timedelta(minutes=advance)
        fresh: tuple[Reading, ...] = ()
        reading = step["reading"]
        if isinstance(reading, tuple):
            fresh = (Reading(now, reading[0], reading[1]),)
            everything.extend(fresh)
        fed = tuple(everything) if step["whole_history"] else fresh
        problem = step["sign_in_problem"]
        assert problem is None or isinstance(problem, str)
        connection = ConnectionState(reachable=bool(step["reachable"]), sign_in_problem=problem)
        state, decisions = evaluate(state, fed, now, alert_settings, connection, unit=unit)
        for decision in decisions:
            assert other_label not in decision.title + decision.message, "a text in the wrong unit"
            if decision.kind in GLUCOSE_KINDS:
                assert decision.reading is not None
            if decision.action is RAISE:
                assert decision.kind not in open_keys, "two RAISEs without a CLEAR"
                assert decision.key not in used_keys, "a new episode reuses a key"
                open_keys[decision.kind] = decision.key
                used_keys.add(decision.key)
            elif decision.action is CLEAR:
                assert open_keys.pop(decision.kind) == decision.key
            else:
                assert open_keys[decision.kind] == decision.key
        assert set(open_keys) <= set(active_alerts(state))
        _, again = evaluate(state, fed, now, alert_settings, connection, unit=unit)
        assert again == (), "the same input twice decided something twice"
        action = step["action"]
        if isinstance(action, tuple):
            verb, kind, amount = action
            assert isinstance(kind, AlertKind)
            if verb == "snooze":
                state, granted = snooze(
                    state, kind, timedelta(minutes=int(amount)), now, alert_settings
                )
                assert granted <= alert_settings[kind].snooze_cap
            elif verb == "ack":
                state = acknowledge(state, kind, now)
            else:
                config = alert_settings[kind]
                alert_settings = alert_settings.with_kind(
                    kind, replace(config, enabled=not config.enabled)
                )


# ---------------------------------------------------------------------------------------------
# Issue 13: the no-data alert stays until acknowledged and turns critical when the gap goes on.


def test_the_no_data_alert_stays_until_acknowledged_and_turns_critical_at_its_second_repeat() -> (
    None
):
    driver = Driver()
    assert driver.at(0, history(lambda _m: 120, 0)) == ()
    unreachable = ConnectionState(reachable=False)
    seen: list[AlertDecision] = []
    for minutes in range(1, 120):
        seen += driver.at(minutes, (), unreachable)
    shown = [(d.action, d.at, d.urgent, d.resident) for d in seen]
    assert shown == [
        (RAISE, at(20), False, True),  # stays on screen from the first showing
        (REPEAT, at(50), False, True),
        (REPEAT, at(80), True, True),  # an hour without data: critical
        (REPEAT, at(110), True, True),
    ]
    back = driver.at(120, (r(120, 118),))
    assert [(d.kind, d.action) for d in back] == [(AlertKind.NO_DATA, CLEAR)]


def test_a_new_no_data_episode_starts_at_normal_urgency_again() -> None:
    driver = Driver()
    driver.at(0, history(lambda _m: 120, 0))
    for minutes in range(1, 90):
        driver.at(minutes)
    driver.at(90, (r(90, 120),))  # data is back: the episode ends
    seen: list[AlertDecision] = []
    for minutes in range(91, 120):
        seen += driver.at(minutes)
    assert [(d.action, d.urgent) for d in seen] == [(RAISE, False)]


def test_only_urgent_kinds_and_no_data_stay_until_acknowledged() -> None:
    staying = {kind for kind in AlertKind if kind.stays_until_acknowledged}
    assert staying == {
        AlertKind.URGENT_LOW,
        AlertKind.URGENT_LOW_SOON,
        AlertKind.URGENT_HIGH,
        AlertKind.NO_DATA,
    }
    low = of(Driver().at(0, history(lambda _m: 65, 0)), AlertKind.LOW)
    assert [(d.urgent, d.resident, d.sound) for d in low] == [(False, False, True)]


def test_a_rebuilt_engine_keeps_the_snoozes_and_alerts_anew_on_open_conditions() -> None:
    """The tray changes mode: the person's next controller keeps their snoozes (a snoozed urgent
    low stays quiet) while a condition still on, not snoozed, is raised anew (its notification
    closed with the old controller)."""
    driver = Driver()
    first = driver.at(0, history(lambda _m: 50, 0))
    assert actions(first) == [(AlertKind.URGENT_LOW, RAISE)]
    driver.snooze(AlertKind.URGENT_LOW, timedelta(minutes=30), 1)
    kept = carried_over(driver.state)
    assert kept.episodes == ()
    assert snoozed_until(kept, AlertKind.URGENT_LOW) == at(31)
    driver.state = kept
    for minutes in range(5, 31, 5):
        assert driver.at(minutes, history(lambda _m: 50, minutes)) == ()
    again = driver.at(31, history(lambda _m: 50, 31))
    assert actions(again) == [(AlertKind.URGENT_LOW, RAISE)]
    assert again[0].key != first[0].key  # a new episode, never the old notification's key
