"""A glucose reading as the app knows it: value (with LOW/HIGH), aware UTC time and trend."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from cgmtray.domain.clock import require_aware_utc

#: Share's value for "below the sensor's range" (< 40 mg/dL): shown as LOW, never as a number.
LOW_MGDL = 39
#: Share's value for "above the sensor's range" (> 400 mg/dL): shown as HIGH, never as a number.
HIGH_MGDL = 401
#: The lowest and highest real numeric values a sensor reports.
MIN_REAL_MGDL = 40
MAX_REAL_MGDL = 400

#: No delta is computed across a gap longer than this.
MAX_DELTA_GAP = timedelta(minutes=15)


class Trend(enum.IntEnum):
    """The Dexcom trend arrow; the integer is the receiver's enum, the name Share's wire name."""

    NONE = 0
    DOUBLE_UP = 1
    SINGLE_UP = 2
    FORTY_FIVE_UP = 3
    FLAT = 4
    FORTY_FIVE_DOWN = 5
    SINGLE_DOWN = 6
    DOUBLE_DOWN = 7
    NOT_COMPUTABLE = 8
    RATE_OUT_OF_RANGE = 9

    @property
    def wire_name(self) -> str:
        """The name Share sends since late 2021 (e.g. "FortyFiveUp")."""
        return _WIRE_NAMES[self]

    @property
    def arrow(self) -> str:
        """The arrow shown next to the value; empty when there is no direction."""
        return _ARROWS[self]

    @property
    def description(self) -> str:
        """A few plain words for tooltips and screen readers."""
        return _DESCRIPTIONS[self]


_WIRE_NAMES: dict[Trend, str] = {
    Trend.NONE: "None",
    Trend.DOUBLE_UP: "DoubleUp",
    Trend.SINGLE_UP: "SingleUp",
    Trend.FORTY_FIVE_UP: "FortyFiveUp",
    Trend.FLAT: "Flat",
    Trend.FORTY_FIVE_DOWN: "FortyFiveDown",
    Trend.SINGLE_DOWN: "SingleDown",
    Trend.DOUBLE_DOWN: "DoubleDown",
    Trend.NOT_COMPUTABLE: "NotComputable",
    Trend.RATE_OUT_OF_RANGE: "RateOutOfRange",
}

_ARROWS: dict[Trend, str] = {
    Trend.NONE: "",
    Trend.DOUBLE_UP: "⇈",
    Trend.SINGLE_UP: "↑",
    Trend.FORTY_FIVE_UP: "↗",
    Trend.FLAT: "→",
    Trend.FORTY_FIVE_DOWN: "↘",
    Trend.SINGLE_DOWN: "↓",
    Trend.DOUBLE_DOWN: "⇊",
    Trend.NOT_COMPUTABLE: "",
    Trend.RATE_OUT_OF_RANGE: "",
}

_DESCRIPTIONS: dict[Trend, str] = {
    Trend.NONE: "no trend",
    Trend.DOUBLE_UP: "rising quickly",
    Trend.SINGLE_UP: "rising",
    Trend.FORTY_FIVE_UP: "rising slightly",
    Trend.FLAT: "steady",
    Trend.FORTY_FIVE_DOWN: "falling slightly",
    Trend.SINGLE_DOWN: "falling",
    Trend.DOUBLE_DOWN: "falling quickly",
    Trend.NOT_COMPUTABLE: "trend not computable",
    Trend.RATE_OUT_OF_RANGE: "trend unavailable",
}


@dataclass(frozen=True, slots=True, order=True)
class Reading:
    """One sensor reading. Ordered by time; `mgdl` is 40..400, or LOW_MGDL / HIGH_MGDL."""

    time: datetime
    mgdl: int
    trend: Trend = Trend.NONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", require_aware_utc(self.time))
        if not LOW_MGDL <= self.mgdl <= HIGH_MGDL:
            raise ValueError(f"glucose value {self.mgdl} is outside {LOW_MGDL}..{HIGH_MGDL}")

    @property
    def is_low(self) -> bool:
        """Below the sensor's range: show "LOW"."""
        return self.mgdl == LOW_MGDL

    @property
    def is_high(self) -> bool:
        """Above the sensor's range: show "HIGH"."""
        return self.mgdl == HIGH_MGDL

    @property
    def is_numeric(self) -> bool:
        """A real number that may be shown, converted and charted."""
        return MIN_REAL_MGDL <= self.mgdl <= MAX_REAL_MGDL


def newest_first(readings: tuple[Reading, ...] | list[Reading]) -> tuple[Reading, ...]:
    """The readings de-duplicated by time and sorted newest first."""
    unique = {r.time: r for r in readings}
    return tuple(sorted(unique.values(), key=lambda r: r.time, reverse=True))


def delta_mgdl(newer: Reading, older: Reading) -> int | None:
    """The change between two consecutive readings, or None across a gap or a LOW/HIGH value."""
    if not (newer.is_numeric and older.is_numeric):
        return None
    gap = newer.time - older.time
    if gap <= timedelta(0) or gap > MAX_DELTA_GAP:
        return None
    return newer.mgdl - older.mgdl
