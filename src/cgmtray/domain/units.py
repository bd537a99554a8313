"""Glucose units: mg/dL <-> mmol/L with one pinned factor, and how values and deltas are written.

Conversion contract (pinned by tests/unit/test_domain_units.py):

- mg/dL -> mmol/L divides by ``MGDL_PER_MMOL`` (18.01559, Nightscout's factor) and rounds HALF-UP
  to one decimal, in ``decimal`` arithmetic so no binary-float tie goes the wrong way.
- mmol/L -> mg/dL multiplies by the same factor and rounds HALF-UP to a whole number.
- Every value shown in mmol/L comes back unchanged: ``mgdl_to_mmol(mmol_to_mgdl(m)) == m`` for every
  one-decimal m from 2.2 to 22.2.
- The other way a value may move by at most 1 mg/dL (one decimal of mmol/L is ~1.8 mg/dL wide), so
  ``threshold_from_display`` keeps the stored mg/dL when the user leaves the shown mmol/L untouched.
- LOW (39) and HIGH (401) are words, never numbers: they are never converted.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, MAX_REAL_MGDL, MIN_REAL_MGDL, Reading

#: mg/dL per mmol/L of glucose (Nightscout's ``lib/constants.json``).
MGDL_PER_MMOL = 18.01559

_FACTOR = Decimal("18.01559")
_ONE_DECIMAL = Decimal("0.1")
_WHOLE = Decimal(1)

LOW_TEXT = "LOW"
HIGH_TEXT = "HIGH"


class Unit(enum.Enum):
    """The unit glucose is shown in; the value is the label printed after a number."""

    MGDL = "mg/dL"
    MMOL = "mmol/L"

    @property
    def label(self) -> str:
        """The short label: "mg/dL" or "mmol/L"."""
        return self.value

    @property
    def spoken(self) -> str:
        """The unit in words, for screen readers."""
        return "milligrams per decilitre" if self is Unit.MGDL else "millimoles per litre"


def _to_decimal(value: Decimal | float | int | str) -> Decimal:
    """A finite Decimal from a number or text; floats go through their shortest repr."""
    text = value if isinstance(value, str) else str(value)
    try:
        number = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return number


def _mmol_from_mgdl_amount(mgdl: Decimal) -> Decimal:
    """Any mg/dL amount (value, delta, mean, SD) in mmol/L, rounded half-up to one decimal."""
    return (mgdl / _FACTOR).quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)


def mgdl_to_mmol(mgdl: int) -> Decimal:
    """A real glucose value (40..400 mg/dL) in mmol/L, one decimal, rounded half-up.

    Raises ValueError for anything else, including LOW (39) and HIGH (401), which are shown as
    words and must never be converted.
    """
    if not MIN_REAL_MGDL <= mgdl <= MAX_REAL_MGDL:
        raise ValueError(
            f"{mgdl} mg/dL is not a real glucose value ({MIN_REAL_MGDL}..{MAX_REAL_MGDL})"
        )
    return _mmol_from_mgdl_amount(Decimal(mgdl))


def mmol_to_mgdl(mmol: Decimal | float | str) -> int:
    """A value in mmol/L as whole mg/dL, rounded half-up. Range checks are the caller's."""
    mgdl = _to_decimal(mmol) * _FACTOR
    return int(mgdl.quantize(_WHOLE, rounding=ROUND_HALF_UP))


def threshold_from_display(
    shown: Decimal | float | int | str, unit: Unit, previous_mgdl: int | None
) -> int:
    """The mg/dL to store for a threshold the user sees (and maybe edited) in `unit`.

    If the shown value is exactly what `previous_mgdl` displays as, the previous value is kept,
    so opening and closing a settings dialog in mmol/L never moves a threshold by 1 mg/dL.
    Text may use a decimal comma ("3,9"). Raises ValueError for text that is not a number.
    Range validation (40..400 mg/dL) is the settings' job.
    """
    number = _to_decimal(shown)
    if previous_mgdl is not None and MIN_REAL_MGDL <= previous_mgdl <= MAX_REAL_MGDL:
        previous_shown = (
            Decimal(previous_mgdl) if unit is Unit.MGDL else mgdl_to_mmol(previous_mgdl)
        )
        if number == previous_shown:
            return previous_mgdl
    if unit is Unit.MGDL:
        return int(number.quantize(_WHOLE, rounding=ROUND_HALF_UP))
    return mmol_to_mgdl(number)


def _mgdl_of(value: Reading | int) -> int:
    return value.mgdl if isinstance(value, Reading) else value


def format_value(value: Reading | int, unit: Unit) -> str:
    """A reading or mg/dL value as shown: "142", "7.9", "LOW", "HIGH" (no unit label).

    LOW and HIGH stay words in both units. Raises ValueError outside 39..401.
    """
    mgdl = _mgdl_of(value)
    if mgdl == LOW_MGDL:
        return LOW_TEXT
    if mgdl == HIGH_MGDL:
        return HIGH_TEXT
    if unit is Unit.MMOL:
        return str(mgdl_to_mmol(mgdl))
    if not MIN_REAL_MGDL <= mgdl <= MAX_REAL_MGDL:
        raise ValueError(f"{mgdl} mg/dL is not a glucose value")
    return str(mgdl)


def _signed(amount: Decimal, zero: str) -> str:
    if amount == 0:
        return zero
    return f"+{amount}" if amount > 0 else f"-{-amount}"


def format_delta(delta_mgdl: int | None, unit: Unit) -> str:
    """A change between readings: "+3", "-12", "±0"; mmol/L "+0.2", "-0.7", "±0.0"; "" for None.

    Any non-zero mg/dL change is at least 0.1 mmol/L, so "±0.0" only ever means no change.
    """
    if delta_mgdl is None:
        return ""
    if unit is Unit.MGDL:
        return _signed(Decimal(delta_mgdl), "±0")
    return _signed(_mmol_from_mgdl_amount(Decimal(delta_mgdl)), "±0.0")


def format_amount(mgdl: float, unit: Unit) -> str:
    """A computed amount in mg/dL (a mean, an SD) in `unit`: whole mg/dL or one-decimal mmol/L."""
    amount = _to_decimal(mgdl)
    if unit is Unit.MGDL:
        return str(amount.quantize(_WHOLE, rounding=ROUND_HALF_UP))
    return str(_mmol_from_mgdl_amount(amount))


# Rates of change (falling/rising fast thresholds): stored in mg/dL per minute, shown and typed in
# the chosen unit per minute. mg/dL/min has one decimal ("3", "2.5"); mmol/L/min two ("0.17"),
# since the useful range (1..10 mg/dL/min) is only 0.06..0.55 mmol/L/min.

_RATE_STEP: dict[Unit, Decimal] = {Unit.MGDL: Decimal("0.1"), Unit.MMOL: Decimal("0.01")}


def _rate_shown(mgdl_per_minute: Decimal | float, unit: Unit) -> Decimal:
    amount = _to_decimal(mgdl_per_minute)
    if unit is Unit.MMOL:
        amount = amount / _FACTOR
    return amount.quantize(_RATE_STEP[unit], rounding=ROUND_HALF_UP)


def _plain(number: Decimal) -> str:
    """A decimal without trailing zeros after the point: "3", "2.5", "0.17"."""
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_rate(mgdl_per_minute: float, unit: Unit) -> str:
    """A rate threshold as shown in a field (no label): "3", "2.5" mg/dL/min; "0.17" mmol/L/min."""
    return _plain(_rate_shown(mgdl_per_minute, unit))


def rate_from_display(shown: Decimal | float | str, unit: Unit, previous: float | None) -> float:
    """The mg/dL per minute to store for a rate the user sees (and maybe edited) in `unit`.

    If the shown value is exactly what `previous` displays as, `previous` is kept, so opening and
    closing the settings in mmol/L never moves a rate. Otherwise the typed value is converted and
    kept to 0.1 mg/dL/min. Raises ValueError for text that is not a number; range checks are the
    settings' job.
    """
    number = _to_decimal(shown)
    if previous is not None and _rate_shown(previous, unit) == number:
        return previous
    mgdl = number * _FACTOR if unit is Unit.MMOL else number
    return float(mgdl.quantize(_RATE_STEP[Unit.MGDL], rounding=ROUND_HALF_UP))


def rate_label(unit: Unit) -> str:
    """The unit of a rate threshold: "mg/dL/min" or "mmol/L/min"."""
    return f"{unit.label}/min"


def rate_range_text(low_mgdl: float, high_mgdl: float, unit: Unit) -> str:
    """The allowed rates in words: "between 1 and 10 mg/dL per minute", "between 0.06 and 0.55
    mmol/L per minute" (the ends shown are ones that convert back inside the range)."""
    step = _RATE_STEP[unit]
    factor = _FACTOR if unit is Unit.MMOL else Decimal(1)
    low = (_to_decimal(low_mgdl) / factor).quantize(step, rounding=ROUND_CEILING)
    high = (_to_decimal(high_mgdl) / factor).quantize(step, rounding=ROUND_FLOOR)
    return f"between {_plain(low)} and {_plain(high)} {unit.label} per minute"
