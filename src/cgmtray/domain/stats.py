"""Summary statistics of a window of readings: time in range, mean, SD, CV, GMI, coverage.

Conventions (international consensus on CGM metrics, Battelino et al. 2019):

- The window is half-open, ``start < time <= end``: a 24 h window ending now includes a reading
  taken exactly now and excludes one taken exactly 24 h ago. Readings outside it are ignored;
  readings with the same time count once.
- Each reading stands for 5 minutes. Fractions are shares of the readings in the window, durations
  are ``readings x 5 min``.
- Time in range is ``target_low <= mg/dL <= target_high`` (70-180 by default), independent of the
  alert thresholds; below is ``< target_low`` (very low ``< 54`` is part of it), above is
  ``> target_high`` (very high ``> 250`` is part of it).
- LOW counts as 39 mg/dL and HIGH as 401 mg/dL, the sensor limits, in every figure (standard
  practice: leaving them out would flatter the mean and hide the worst lows and highs).
- Expected readings are one per 5-minute slot of the window, slots counted back from `end` (a
  partial slot at the start counts). Coverage is the share of those slots holding a reading.
- SD is the population SD; CV = SD / mean x 100 (%); GMI (%) = 3.31 + 0.02392 x mean mg/dL.
- GMI estimates a lab A1c, which reflects about three months: it is given only for a window of at
  least 14 days whose slots hold readings for at least 70 % of 14 days (the consensus minimum);
  otherwise it is None and ``gmi_needs_more_data`` says why (a 3-hour window has no GMI).
- An empty window gives counts and durations of 0 and every ratio None; nothing divides by zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import Reading, newest_first

#: The time each reading stands for (the sensor's cadence).
READING_INTERVAL = timedelta(minutes=5)
#: Standard time-in-range target.
TARGET_LOW_MGDL = 70
TARGET_HIGH_MGDL = 180
#: Level 2 hypoglycaemia / hyperglycaemia boundaries (consensus).
VERY_LOW_BELOW_MGDL = 54
VERY_HIGH_ABOVE_MGDL = 250
#: GMI needs a window this long, holding readings for at least GMI_MIN_COVERAGE of it.
GMI_MIN_WINDOW = timedelta(days=14)
GMI_MIN_COVERAGE = 0.7


@dataclass(frozen=True, slots=True)
class Portion:
    """How many of a window's readings meet a condition, as a count, a fraction and a duration."""

    count: int
    #: count / readings in the window, 0..1; None when the window holds no reading.
    fraction: float | None
    #: count x 5 min.
    duration: timedelta

    @property
    def percent(self) -> float | None:
        """The fraction as a percentage, 0..100."""
        return None if self.fraction is None else self.fraction * 100


@dataclass(frozen=True, slots=True)
class RangeBreakdown:
    """Time in each alert range (urgent low .. urgent high) of the user's thresholds."""

    urgent_low: Portion
    low: Portion
    in_range: Portion
    high: Portion
    urgent_high: Portion

    def __getitem__(self, glucose_range: GlucoseRange) -> Portion:
        portions = (self.urgent_low, self.low, self.in_range, self.high, self.urgent_high)
        return portions[glucose_range]


@dataclass(frozen=True, slots=True)
class Stats:
    """Everything the history window shows beside the chart, for one window."""

    start: datetime
    end: datetime
    count: int
    expected_count: int
    #: Share of expected 5-min slots holding a reading, 0..1; None for a zero-length window.
    coverage: float | None
    in_range: Portion
    below: Portion
    very_low: Portion
    above: Portion
    very_high: Portion
    mean_mgdl: float | None
    sd_mgdl: float | None
    #: Coefficient of variation, in percent.
    cv_percent: float | None
    #: Glucose management indicator, in percent; None for less than 14 days of data.
    gmi_percent: float | None
    #: True when the window holds readings but too few days of them for a meaningful GMI.
    gmi_needs_more_data: bool
    #: Time in each range of the alert thresholds; None when no thresholds were given.
    by_range: RangeBreakdown | None


def _portion(values: list[int], meets: Callable[[int], bool]) -> Portion:
    count = sum(1 for value in values if meets(value))
    fraction = count / len(values) if values else None
    return Portion(count=count, fraction=fraction, duration=count * READING_INTERVAL)


def _slot_count(window: timedelta) -> int:
    return math.ceil(window / READING_INTERVAL)


def _by_range(values: list[int], thresholds: Thresholds) -> RangeBreakdown:
    def share(glucose_range: GlucoseRange) -> Portion:
        return _portion(values, lambda value: thresholds.classify_mgdl(value) is glucose_range)

    return RangeBreakdown(
        urgent_low=share(GlucoseRange.URGENT_LOW),
        low=share(GlucoseRange.LOW),
        in_range=share(GlucoseRange.IN_RANGE),
        high=share(GlucoseRange.HIGH),
        urgent_high=share(GlucoseRange.URGENT_HIGH),
    )


def band_of(mgdl: int) -> GlucoseRange:
    """The consensus band of a value, named by the alert range whose colour it is drawn in:
    very low (< 54) URGENT_LOW, below target LOW, in target IN_RANGE, above target HIGH, very
    high (> 250) URGENT_HIGH. The chart's dots and the range bar use these bands, so a dot's
    colour always matches the row of the stats that counts it."""
    if mgdl < VERY_LOW_BELOW_MGDL:
        return GlucoseRange.URGENT_LOW
    if mgdl < TARGET_LOW_MGDL:
        return GlucoseRange.LOW
    if mgdl > VERY_HIGH_ABOVE_MGDL:
        return GlucoseRange.URGENT_HIGH
    if mgdl > TARGET_HIGH_MGDL:
        return GlucoseRange.HIGH
    return GlucoseRange.IN_RANGE


def gmi_meaningful(window: timedelta, slots_with_readings: int) -> bool:
    """Whether a GMI means anything: a window of 14 days or more, with readings in enough
    5-minute slots for 70 % of 14 days."""
    needed = math.ceil(GMI_MIN_COVERAGE * (GMI_MIN_WINDOW / READING_INTERVAL))
    return window >= GMI_MIN_WINDOW and slots_with_readings >= needed


def summarize(
    readings: Iterable[Reading],
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    target_low: int = TARGET_LOW_MGDL,
    target_high: int = TARGET_HIGH_MGDL,
) -> Stats:
    """The statistics of the readings with ``start < time <= end`` (see the module docstring)."""
    start = require_aware_utc(start)
    end = require_aware_utc(end)
    if end < start:
        raise ValueError("the window ends before it starts")
    if not target_low < target_high:
        raise ValueError("the target range's low end must be below its high end")
    in_window = [r for r in newest_first(list(readings)) if start < r.time <= end]
    values = [r.mgdl for r in in_window]
    expected = _slot_count(end - start)
    occupied = {(end - r.time) // READING_INTERVAL for r in in_window}
    mean = statistics.fmean(values) if values else None
    sd = statistics.pstdev(values) if values else None
    gmi_ok = gmi_meaningful(end - start, len(occupied))
    return Stats(
        start=start,
        end=end,
        count=len(values),
        expected_count=expected,
        coverage=len(occupied) / expected if expected else None,
        in_range=_portion(values, lambda v: target_low <= v <= target_high),
        below=_portion(values, lambda v: v < target_low),
        very_low=_portion(values, lambda v: v < VERY_LOW_BELOW_MGDL),
        above=_portion(values, lambda v: v > target_high),
        very_high=_portion(values, lambda v: v > VERY_HIGH_ABOVE_MGDL),
        mean_mgdl=mean,
        sd_mgdl=sd,
        cv_percent=None if mean is None or sd is None else sd / mean * 100,
        gmi_percent=None if mean is None or not gmi_ok else 3.31 + 0.02392 * mean,
        gmi_needs_more_data=mean is not None and not gmi_ok,
        by_range=None if thresholds is None else _by_range(values, thresholds),
    )
