"""The recent rate of change (least squares) and a short linear forecast from it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from cgmtray.domain.readings import Reading, newest_first

#: The rate is fitted over the readings taken within this span before the newest one (inclusive):
#: four readings at the sensor's 5-minute cadence.
SLOPE_WINDOW = timedelta(minutes=15)
#: Fewer readings than this in the window give no rate at all.
MIN_SLOPE_READINGS = 3
#: Rates are rounded to this many decimals (mg/dL per minute), so exact inputs compare exactly.
_RATE_DECIMALS = 4


def recent_slope(readings: Iterable[Reading], window: timedelta = SLOPE_WINDOW) -> float | None:
    """The least-squares rate in mg/dL per minute over the newest readings, or None.

    Uses the readings no older than `window` before the newest one (duplicates by time removed).
    None when fewer than three readings are in the window or any of them is LOW or HIGH (a value
    outside the sensor's range has no number to fit).
    """
    ordered = newest_first(tuple(readings))
    if not ordered:
        return None
    start = ordered[0].time - window
    in_window = [r for r in ordered if r.time >= start]
    if len(in_window) < MIN_SLOPE_READINGS or not all(r.is_numeric for r in in_window):
        return None
    origin = in_window[-1].time
    minutes = [(r.time - origin).total_seconds() / 60 for r in in_window]
    values = [float(r.mgdl) for r in in_window]
    mean_minutes = sum(minutes) / len(minutes)
    mean_value = sum(values) / len(values)
    spread = sum((m - mean_minutes) ** 2 for m in minutes)
    covariance = sum(
        (m - mean_minutes) * (v - mean_value) for m, v in zip(minutes, values, strict=True)
    )
    return round(covariance / spread, _RATE_DECIMALS)


def predicted_mgdl(
    readings: Iterable[Reading], horizon: timedelta, window: timedelta = SLOPE_WINDOW
) -> float | None:
    """The value expected `horizon` after the newest reading: newest value + rate x horizon.

    The line is anchored on the newest reading (what the person sees) rather than on the fitted
    intercept, so a forecast never contradicts the value on screen at horizon zero. None when no
    rate can be computed (see `recent_slope`).
    """
    ordered = newest_first(tuple(readings))
    slope = recent_slope(ordered, window)
    if slope is None:
        return None
    return ordered[0].mgdl + slope * (horizon.total_seconds() / 60)
