"""Alert kinds and their settings (threshold, repeat, sound, snooze cap), design.md defaults."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from cgmtray.domain.ranges import Thresholds


class AlertKind(enum.Enum):
    """Every kind of alert, most urgent first (the order a person should read them in)."""

    URGENT_LOW = "urgent_low"
    URGENT_LOW_SOON = "urgent_low_soon"
    LOW = "low"
    URGENT_HIGH = "urgent_high"
    HIGH = "high"
    FALLING_FAST = "falling_fast"
    RISING_FAST = "rising_fast"
    NO_DATA = "no_data"
    SIGN_IN_PROBLEM = "sign_in_problem"

    @property
    def title(self) -> str:
        """The plain name shown in notifications, menus and settings."""
        return _TITLES[self]

    @property
    def is_urgent(self) -> bool:
        """Urgent kinds get critical urgency, no expiry and a looping sound."""
        return self in {AlertKind.URGENT_LOW, AlertKind.URGENT_LOW_SOON, AlertKind.URGENT_HIGH}

    @property
    def stays_until_acknowledged(self) -> bool:
        """Its notification never expires on its own (urgent kinds and no data)."""
        return self.is_urgent or self is AlertKind.NO_DATA

    @property
    def rank(self) -> int:
        """Smaller is more urgent."""
        return _RANKS[self]


_TITLES: dict[AlertKind, str] = {
    AlertKind.URGENT_LOW: "Urgent low",
    AlertKind.URGENT_LOW_SOON: "Urgent low soon",
    AlertKind.LOW: "Low",
    AlertKind.URGENT_HIGH: "Urgent high",
    AlertKind.HIGH: "High",
    AlertKind.FALLING_FAST: "Falling fast",
    AlertKind.RISING_FAST: "Rising fast",
    AlertKind.NO_DATA: "No data",
    AlertKind.SIGN_IN_PROBLEM: "Sign-in problem",
}

_RANKS: dict[AlertKind, int] = {kind: index for index, kind in enumerate(AlertKind)}

#: The no-data alert turns critical from this REPEAT of one episode on (its third showing).
NO_DATA_CRITICAL_FROM_REPEAT = 2

#: The four kinds whose thresholds bound the glucose ranges, in the order they must rise.
RANGE_KINDS: tuple[AlertKind, ...] = (
    AlertKind.URGENT_LOW,
    AlertKind.LOW,
    AlertKind.HIGH,
    AlertKind.URGENT_HIGH,
)

#: The glucose range boundaries a reading can take (mg/dL), as Thresholds allows them.
_RANGE_FLOOR, _RANGE_CEILING = 40, 400


def place_ranges(values: Sequence[int], enabled: Sequence[bool]) -> tuple[int, ...] | None:
    """The four range boundaries (urgent low, low, high, urgent high, mg/dL) for colours and bands.

    Enabled values are kept and must rise strictly (else None). A turned-off value is kept when it
    fits between its neighbours; otherwise it moves just past the enabled one it crossed (a
    turned-off urgent high of 300 under a high of 320 becomes 321), so its band nearly vanishes
    instead of the settings being refused. None when there is no whole mg/dL left for it.
    """
    placed: list[int] = []
    for index, (value, on) in enumerate(zip(values, enabled, strict=True)):
        floor = placed[-1] + 1 if placed else _RANGE_FLOOR
        if on:
            if value < floor:
                return None
            placed.append(value)
            continue
        later = [
            (position, values[position])
            for position in range(index + 1, len(values))
            if enabled[position]
        ]
        if later:
            position, upper = later[0]
            ceiling = upper - (position - index)
        else:
            ceiling = _RANGE_CEILING - (len(values) - 1 - index)
        if floor > ceiling:
            return None
        placed.append(min(max(value, floor), ceiling))
    return tuple(placed)


#: Urgent low can never be snoozed for longer than this (design.md).
URGENT_LOW_SNOOZE_CAP = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class KindConfig:
    """Settings of one alert kind.

    `threshold` is in the kind's own unit: mg/dL for glucose kinds, mg/dL per minute (a positive
    magnitude) for falling/rising fast, minutes without a reading for no data; unused otherwise.
    """

    enabled: bool
    threshold: float
    repeat: timedelta | None
    sound: bool
    snooze_cap: timedelta
    persistence: timedelta = timedelta(0)


def _defaults() -> dict[AlertKind, KindConfig]:
    m = timedelta
    return {
        AlertKind.URGENT_LOW: KindConfig(True, 55, m(minutes=5), True, URGENT_LOW_SNOOZE_CAP),
        AlertKind.URGENT_LOW_SOON: KindConfig(True, 55, m(minutes=15), True, m(hours=1)),
        AlertKind.LOW: KindConfig(True, 70, m(minutes=15), True, m(hours=4)),
        AlertKind.URGENT_HIGH: KindConfig(False, 300, m(minutes=30), True, m(hours=4)),
        AlertKind.HIGH: KindConfig(True, 250, m(minutes=60), False, m(hours=4), m(minutes=15)),
        AlertKind.FALLING_FAST: KindConfig(True, 3, m(minutes=30), False, m(hours=4)),
        AlertKind.RISING_FAST: KindConfig(False, 3, m(minutes=30), False, m(hours=4)),
        AlertKind.NO_DATA: KindConfig(True, 20, m(minutes=30), False, m(hours=4)),
        AlertKind.SIGN_IN_PROBLEM: KindConfig(True, 0, None, False, m(hours=4)),
    }


#: Prediction horizon of "urgent low soon".
LOW_SOON_HORIZON = timedelta(minutes=20)
#: A low episode ends when the value is back at or above low + this (hysteresis).
LOW_CLEAR_MARGIN_MGDL = 5
#: A high episode ends when the value is back at or below high - this (hysteresis).
HIGH_CLEAR_MARGIN_MGDL = 10


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """All alert kinds' settings. Urgent low is always on and its snooze is capped at 30 min."""

    kinds: dict[AlertKind, KindConfig] = field(default_factory=_defaults)

    def __post_init__(self) -> None:
        missing = set(AlertKind) - set(self.kinds)
        if missing:
            merged = _defaults()
            merged.update(self.kinds)
            object.__setattr__(self, "kinds", merged)
        urgent_low = self.kinds[AlertKind.URGENT_LOW]
        if not urgent_low.enabled or urgent_low.snooze_cap > URGENT_LOW_SNOOZE_CAP:
            fixed = replace(
                urgent_low,
                enabled=True,
                snooze_cap=min(urgent_low.snooze_cap, URGENT_LOW_SNOOZE_CAP),
            )
            kinds = dict(self.kinds)
            kinds[AlertKind.URGENT_LOW] = fixed
            object.__setattr__(self, "kinds", kinds)
        self.thresholds()  # validates the glucose thresholds' order and bounds

    def __getitem__(self, kind: AlertKind) -> KindConfig:
        return self.kinds[kind]

    def with_kind(self, kind: AlertKind, config: KindConfig) -> AlertSettings:
        kinds = dict(self.kinds)
        kinds[kind] = config
        return AlertSettings(kinds)

    def thresholds(self) -> Thresholds:
        """The glucose range boundaries these settings imply (also used for the display colour).

        Only enabled thresholds must rise in order; a turned-off one is placed as `place_ranges`
        says.
        """
        placed = place_ranges(
            [round(self.kinds[kind].threshold) for kind in RANGE_KINDS],
            [self.kinds[kind].enabled for kind in RANGE_KINDS],
        )
        if placed is None:
            raise ValueError(
                "enabled thresholds must satisfy urgent low < low < high < urgent high, "
                "leaving room for the turned-off ones"
            )
        return Thresholds(*placed)


#: The kinds "Snooze all non-urgent" silences: every kind but urgent low, urgent low soon and
#: urgent high.
NON_URGENT_KINDS: tuple[AlertKind, ...] = tuple(kind for kind in AlertKind if not kind.is_urgent)


class ControlAction(enum.Enum):
    """What the person did to alerts."""

    #: Silence the kinds for a while (capped per kind); their notifications close.
    SNOOZE = "snooze"
    #: "I saw it": the alarm stops, the notification closes, the repeat interval restarts.
    ACKNOWLEDGE = "acknowledge"
    #: End the kinds' snoozes now: a condition still on alerts again at once.
    CANCEL_SNOOZE = "cancel_snooze"
    #: The kinds were turned off in Settings: their episodes end without a word.
    TURN_OFF = "turn_off"


class ControlSource(enum.Enum):
    """Where a control came from (logged with it)."""

    MENU = "menu"
    NOTIFICATION = "notification"
    WINDOW = "window"
    SETTINGS = "settings"


@dataclass(frozen=True, slots=True)
class AlertControl:
    """One control over alerts, from any place the app offers it; `duration` is for SNOOZE."""

    action: ControlAction
    kinds: tuple[AlertKind, ...]
    source: ControlSource
    duration: timedelta | None = None
