"""Glucose ranges (urgent low .. urgent high) and the thresholds that bound them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cgmtray.domain.readings import Reading


class GlucoseRange(enum.IntEnum):
    """Where a value sits; ordered from lowest to highest."""

    URGENT_LOW = 0
    LOW = 1
    IN_RANGE = 2
    HIGH = 3
    URGENT_HIGH = 4


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Range boundaries in mg/dL: urgent low < low < high < urgent high (design.md defaults)."""

    urgent_low: int = 55
    low: int = 70
    high: int = 250
    urgent_high: int = 300

    def __post_init__(self) -> None:
        if not 40 <= self.urgent_low < self.low < self.high < self.urgent_high <= 400:
            raise ValueError(
                "thresholds must satisfy 40 <= urgent low < low < high < urgent high <= 400 mg/dL"
            )

    def classify_mgdl(self, mgdl: int) -> GlucoseRange:
        """The range of a value; LOW (39) is below and HIGH (401) above every threshold."""
        if mgdl <= self.urgent_low:
            return GlucoseRange.URGENT_LOW
        if mgdl <= self.low:
            return GlucoseRange.LOW
        if mgdl >= self.urgent_high:
            return GlucoseRange.URGENT_HIGH
        if mgdl >= self.high:
            return GlucoseRange.HIGH
        return GlucoseRange.IN_RANGE

    def classify(self, reading: Reading) -> GlucoseRange:
        return self.classify_mgdl(reading.mgdl)
