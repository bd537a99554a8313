"""A deterministic simulated CGM: a plausible glucose day at a 5-minute cadence, lazily computed."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.readings import (
    HIGH_MGDL,
    LOW_MGDL,
    MAX_REAL_MGDL,
    MIN_REAL_MGDL,
    Reading,
    Trend,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_PER_MINUTE = 60_000
_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 86_400_000
#: Standard deviation of the per-reading sensor noise, mg/dL.
_NOISE_SD_MGDL = 1.2
#: How many computed readings a sensor keeps memoised (a few days' worth).
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class PublishedReading:
    """A reading as the Share service holds it: the reading, when it becomes visible, and the
    publisher's UTC offset (used only to write the DT field)."""

    reading: Reading
    available_at: datetime
    offset_minutes: int = -240

    def __post_init__(self) -> None:
        object.__setattr__(self, "available_at", require_aware_utc(self.available_at))
        if not -14 * 60 <= self.offset_minutes <= 14 * 60:
            raise ValueError("offset_minutes must be within -14 h .. +14 h")


def trend_for_rate(mgdl_per_minute: float) -> Trend:
    """The Dexcom arrow for a rate of change: flat < 1, 45 degrees 1-2, single 2-3, double >= 3."""
    size = abs(mgdl_per_minute)
    rising = mgdl_per_minute > 0
    if size < 1.0:
        return Trend.FLAT
    if size < 2.0:
        return Trend.FORTY_FIVE_UP if rising else Trend.FORTY_FIVE_DOWN
    if size < 3.0:
        return Trend.SINGLE_UP if rising else Trend.SINGLE_DOWN
    return Trend.DOUBLE_UP if rising else Trend.DOUBLE_DOWN


def clamp_to_sensor_range(raw_mgdl: int) -> int:
    """What a sensor reports for a true value: LOW (39) below 40, HIGH (401) above 400."""
    if raw_mgdl < MIN_REAL_MGDL:
        return LOW_MGDL
    if raw_mgdl > MAX_REAL_MGDL:
        return HIGH_MGDL
    return raw_mgdl


@dataclass(frozen=True)
class MealPlan:
    """A daily meal: its local time of day (hours), how far it wanders (minutes either side), the
    range its rise is drawn from (mg/dL) and how long after the meal the rise peaks (minutes)."""

    hour: float
    spread_minutes: float
    rise_mgdl: tuple[float, float]
    peak_after_minutes: float


@dataclass(frozen=True)
class LowPlan:
    """A daily low: its local time of day (hours), how far it wanders (minutes either side), the
    range its nadir is drawn from (mg/dL, may be below 40: reported as LOW) and its width."""

    hour: float
    spread_minutes: float
    nadir_mgdl: tuple[float, float]
    width_minutes: float = 24.0


@dataclass(frozen=True)
class DayProfile:
    """The shape of a simulated person's days (the default: a dawn rise, breakfast and lunch
    rises, a dinner high above 250 mg/dL and a night low below 40 mg/dL)."""

    base_mgdl: float = 112.0
    #: Amplitudes of the two slow drifts (periods 7.7 h and 3.1 h), mg/dL.
    drift_mgdl: tuple[float, float] = (10.0, 7.0)
    dawn_rise_mgdl: float = 18.0
    meals: tuple[MealPlan, ...] = (
        MealPlan(7.25, 25, (45, 70), 55),
        MealPlan(12.5, 30, (55, 85), 65),
        MealPlan(18.75, 30, (175, 200), 85),
    )
    lows: tuple[LowPlan, ...] = (LowPlan(3.25, 40, (31.0, 35.0)),)
    #: Standard deviation of the per-reading sensor noise, mg/dL.
    noise_sd_mgdl: float = _NOISE_SD_MGDL


@dataclass(frozen=True)
class _Meal:
    onset_ms: int  # local-time epoch ms
    rise_mgdl: float
    peak_after_ms: float


@dataclass(frozen=True)
class _Low:
    center_ms: int  # local-time epoch ms
    nadir_mgdl: float
    width_minutes: float


@dataclass(frozen=True)
class _DayPlan:
    """One local day's events: a dawn rise, the profile's meals and lows."""

    dawn_center_ms: int
    meals: tuple[_Meal, ...]
    lows: tuple[_Low, ...]


class SimulatedSensor:
    """Deterministic for a seed and profile: a plausible day (meals, lows, a high, noise).

    Reading k has WT = start + phase + k * interval + jitter_k, where the phase is a non-round
    number of seconds (so timestamps are not aligned to clock minutes) and jitter_k is a small
    deterministic offset. Values follow a smooth daily curve in the publisher's local time: a dawn
    rise, breakfast and lunch rises, a large dinner rise that goes above 250 mg/dL (the high), and
    a night low that dips below 40 mg/dL (reported as LOW, 39) for a few readings. The trend is
    computed from the slope between consecutive readings. Nothing exists before `start` or
    inside a gap. That is the default `profile`; another DayProfile gives another kind of day
    (its own meals, lows, level and noise).
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        start: datetime,
        interval_s: float = 300.0,
        jitter_s: float = 1.5,
        lag_s: float | Callable[[random.Random], float] = 20.0,
        gaps: Sequence[tuple[datetime, datetime]] = (),
        offset_minutes: int = -240,
        profile: DayProfile | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if not 0 <= jitter_s < interval_s / 4:
            raise ValueError("jitter_s must be within 0 .. interval_s / 4")
        if not callable(lag_s) and lag_s < 0:
            raise ValueError("lag_s must not be negative")
        self._seed = seed
        self._start = require_aware_utc(start)
        self._start_ms = _to_ms(self._start)
        self._interval_ms = interval_s * 1000.0
        self._jitter_ms = jitter_s * 1000.0
        self._lag = lag_s
        self._offset_minutes = offset_minutes
        self._profile = profile if profile is not None else DayProfile()
        self._gaps_ms = tuple(_gap_to_ms(begin, end) for begin, end in gaps)
        phase_rng = random.Random(f"cgmtray-sensor:{seed}:phase")
        phase_ms = phase_rng.randrange(7_000, 53_000)
        if phase_ms % 1000 == 0:
            phase_ms += 137
        self._phase_ms = phase_ms
        drift_rng = random.Random(f"cgmtray-sensor:{seed}:drift")
        self._drift_phases = (drift_rng.uniform(0, math.tau), drift_rng.uniform(0, math.tau))
        self._plans: dict[int, _DayPlan] = {}
        self._low_depths: dict[tuple[int, int], float] = {}
        self._cache: dict[int, tuple[int, int, PublishedReading]] = {}

    @property
    def start(self) -> datetime:
        """When the sensor session began: no readings exist before it."""
        return self._start

    @property
    def interval(self) -> timedelta:
        return timedelta(milliseconds=self._interval_ms)

    @property
    def offset_minutes(self) -> int:
        return self._offset_minutes

    def readings_between(self, start: datetime, end: datetime) -> list[PublishedReading]:
        """Every reading whose WT is in [start, end), oldest first, none inside a gap."""
        start_ms = _to_ms_exact(require_aware_utc(start))
        end_ms = _to_ms_exact(require_aware_utc(end))
        if end_ms <= start_ms:
            return []
        base_ms = self._start_ms + self._phase_ms
        first_k = max(0, math.ceil((start_ms - base_ms - self._jitter_ms) / self._interval_ms))
        found: list[PublishedReading] = []
        k = first_k
        while base_ms + k * self._interval_ms - self._jitter_ms < end_ms:
            wt_ms, _raw, published = self._reading(k)
            if start_ms <= wt_ms < end_ms and not self._in_gap(wt_ms):
                found.append(published)
            k += 1
        return found

    def curve_mgdl(self, when: datetime) -> float:
        """The noise-free true glucose at `when` (for tests and plots; may be below 40)."""
        return self._curve(_to_ms(require_aware_utc(when)))

    # -- generation ------------------------------------------------------------------------

    def _reading(self, k: int) -> tuple[int, int, PublishedReading]:
        cached = self._cache.get(k)
        if cached is not None:
            return cached
        wt_ms, raw = self._raw(k)
        if k == 0:
            trend = Trend.NOT_COMPUTABLE
        else:
            previous_ms, previous_raw = self._raw(k - 1)
            minutes = (wt_ms - previous_ms) / _MS_PER_MINUTE
            trend = trend_for_rate((raw - previous_raw) / minutes)
        when = _EPOCH + timedelta(milliseconds=wt_ms)
        reading = Reading(time=when, mgdl=clamp_to_sensor_range(raw), trend=trend)
        lag_s = self._lag_for(k)
        published = PublishedReading(
            reading=reading,
            available_at=when + timedelta(seconds=lag_s),
            offset_minutes=self._offset_minutes,
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        entry = (wt_ms, raw, published)
        self._cache[k] = entry
        return entry

    def _raw(self, k: int) -> tuple[int, int]:
        """WT in epoch ms and the unclamped integer value of reading k."""
        rng = random.Random(f"cgmtray-sensor:{self._seed}:{k}")
        jitter = rng.uniform(-self._jitter_ms, self._jitter_ms)
        wt_ms = round(self._start_ms + self._phase_ms + k * self._interval_ms + jitter)
        noise = rng.gauss(0.0, self._profile.noise_sd_mgdl)
        return wt_ms, round(self._curve(wt_ms) + noise)

    def _lag_for(self, k: int) -> float:
        if callable(self._lag):
            lag_rng = random.Random(f"cgmtray-sensor:{self._seed}:{k}:lag")
            return max(0.0, float(self._lag(lag_rng)))
        return float(self._lag)

    def _in_gap(self, wt_ms: int) -> bool:
        return any(begin <= wt_ms < end for begin, end in self._gaps_ms)

    # -- the daily curve ---------------------------------------------------------------------

    def _curve(self, utc_ms: int) -> float:
        local_ms = utc_ms + self._offset_minutes * _MS_PER_MINUTE
        day = local_ms // _MS_PER_DAY
        value = self._without_lows(local_ms, day)
        for plan_day in (day - 1, day, day + 1):
            plan = self._plan(plan_day)
            for index, low in enumerate(plan.lows):
                depth = self._low_depth(plan_day, index)
                value -= depth * _bell(local_ms - low.center_ms, low.width_minutes)
        return value

    def _without_lows(self, local_ms: int, day: int) -> float:
        hours = local_ms / _MS_PER_HOUR
        first, second = self._drift_phases
        slow, fast = self._profile.drift_mgdl
        value = self._profile.base_mgdl
        value += slow * math.sin(math.tau * hours / 7.7 + first)
        value += fast * math.sin(math.tau * hours / 3.1 + second)
        for plan_day in (day - 1, day, day + 1):
            plan = self._plan(plan_day)
            value += self._profile.dawn_rise_mgdl * _bell(local_ms - plan.dawn_center_ms, 78.0)
            for meal in plan.meals:
                value += meal.rise_mgdl * _meal_shape(local_ms - meal.onset_ms, meal.peak_after_ms)
        return value

    def _low_depth(self, day: int, index: int) -> float:
        """How deep a low dips, so that the curve bottoms out at the plan's nadir."""
        depth = self._low_depths.get((day, index))
        if depth is None:
            low = self._plan(day).lows[index]
            rest = self._without_lows(low.center_ms, low.center_ms // _MS_PER_DAY)
            depth = max(0.0, rest - low.nadir_mgdl)
            self._low_depths[(day, index)] = depth
        return depth

    def _plan(self, day: int) -> _DayPlan:
        plan = self._plans.get(day)
        if plan is not None:
            return plan
        rng = random.Random(f"cgmtray-sensor:{self._seed}:day:{day}")
        midnight = day * _MS_PER_DAY

        def at(hours: float, spread_minutes: float) -> int:
            minutes = hours * 60 + rng.uniform(-spread_minutes, spread_minutes)
            return midnight + round(minutes * _MS_PER_MINUTE)

        # The draws keep one order (dawn, each meal's time then rise, each low's time then
        # nadir), so a seed gives the same day as long as the profile does not change.
        dawn_center_ms = at(6.5, 20)
        meals = tuple(
            _Meal(
                at(meal.hour, meal.spread_minutes),
                rng.uniform(*meal.rise_mgdl),
                meal.peak_after_minutes * _MS_PER_MINUTE,
            )
            for meal in self._profile.meals
        )
        lows = tuple(
            _Low(at(low.hour, low.spread_minutes), rng.uniform(*low.nadir_mgdl), low.width_minutes)
            for low in self._profile.lows
        )
        plan = _DayPlan(dawn_center_ms=dawn_center_ms, meals=meals, lows=lows)
        self._plans[day] = plan
        return plan


def _bell(offset_ms: float, sigma_minutes: float) -> float:
    """A Gaussian bump of height 1 centred on offset 0."""
    z = offset_ms / (sigma_minutes * _MS_PER_MINUTE)
    if abs(z) > 8:
        return 0.0
    return math.exp(-0.5 * z * z)


def _meal_shape(since_onset_ms: float, peak_after_ms: float) -> float:
    """A meal's rise and fall: 0 at onset, 1 at the peak, a long smooth tail (gamma-like)."""
    if since_onset_ms <= 0:
        return 0.0
    u = since_onset_ms / peak_after_ms
    if u > 12:
        return 0.0
    return u * u * math.exp(2.0 - 2.0 * u)


def _to_ms(when: datetime) -> int:
    """Epoch milliseconds, truncated."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _to_ms_exact(when: datetime) -> float:
    """Epoch milliseconds with the sub-millisecond part kept (for interval bounds)."""
    return (when - _EPOCH) / timedelta(milliseconds=1)


def _gap_to_ms(begin: datetime, end: datetime) -> tuple[float, float]:
    begin_ms = _to_ms_exact(require_aware_utc(begin))
    end_ms = _to_ms_exact(require_aware_utc(end))
    if end_ms <= begin_ms:
        raise ValueError("a gap must end after it begins")
    return begin_ms, end_ms
