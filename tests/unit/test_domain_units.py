"""mg/dL <-> mmol/L conversion (pinned table), threshold round trips, value and delta formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.units import (
    MGDL_PER_MMOL,
    Unit,
    format_amount,
    format_delta,
    format_rate,
    format_value,
    mgdl_to_mmol,
    mmol_to_mgdl,
    rate_from_display,
    rate_label,
    rate_range_text,
    threshold_from_display,
)

REAL_MGDL = range(40, 401)
SHOWN_MMOL = [Decimal(tenths) / 10 for tenths in range(22, 223)]  # 2.2 .. 22.2


def test_factor_is_nightscouts() -> None:
    assert MGDL_PER_MMOL == 18.01559


@pytest.mark.parametrize(
    ("mgdl", "mmol"),
    [
        (40, "2.2"),
        (55, "3.1"),
        (70, "3.9"),
        (100, "5.6"),  # pydexcom's x0.0555 gives 5.5
        (109, "6.1"),  # pydexcom gives 6.0
        (180, "10.0"),
        (250, "13.9"),
        (300, "16.7"),  # pydexcom gives 16.6
        (400, "22.2"),
    ],
)
def test_conversion_table_is_pinned(mgdl: int, mmol: str) -> None:
    assert mgdl_to_mmol(mgdl) == Decimal(mmol)
    assert format_value(mgdl, Unit.MMOL) == mmol


@pytest.mark.parametrize("mgdl", [LOW_MGDL, HIGH_MGDL, 0, 39, 401, -5, 1000])
def test_only_real_values_convert(mgdl: int) -> None:
    with pytest.raises(ValueError, match="not a real glucose value"):
        mgdl_to_mmol(mgdl)


def test_every_shown_mmol_value_round_trips_exactly() -> None:
    for mmol in SHOWN_MMOL:
        assert mgdl_to_mmol(mmol_to_mgdl(mmol)) == mmol


def test_mgdl_round_trip_moves_by_at_most_one() -> None:
    moved = []
    for mgdl in REAL_MGDL:
        back = mmol_to_mgdl(mgdl_to_mmol(mgdl))
        assert abs(back - mgdl) <= 1
        if back != mgdl:
            moved.append(mgdl)
    # Documented fact: one decimal of mmol/L is ~1.8 mg/dL wide, so many values do move ...
    assert 55 in moved
    assert 71 in moved
    # ... and the common defaults 70, 180 and 250 do not.
    assert {70, 180, 250}.isdisjoint(moved)


@pytest.mark.parametrize(
    ("mmol", "mgdl"),
    [
        (Decimal("3.9"), 70),
        (3.9, 70),
        ("3.9", 70),
        ("10,0", 180),  # a decimal comma, as typed in many locales
        (" 5.6 ", 101),
        (Decimal("2.5"), 45),  # 45.04 -> 45
        (Decimal("0.5"), 9),  # 9.008 -> 9; range checks are the caller's
    ],
)
def test_mmol_to_mgdl(mmol: Decimal | float | str, mgdl: int) -> None:
    assert mmol_to_mgdl(mmol) == mgdl


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf", "-Infinity", float("nan"), float("inf")])
def test_mmol_to_mgdl_refuses_what_is_not_a_number(bad: str | float) -> None:
    with pytest.raises(ValueError, match="not a"):
        mmol_to_mgdl(bad)


@pytest.mark.parametrize("previous", list(REAL_MGDL))
def test_untouched_mmol_threshold_keeps_stored_mgdl(previous: int) -> None:
    shown = format_value(previous, Unit.MMOL)
    assert threshold_from_display(shown, Unit.MMOL, previous) == previous
    assert threshold_from_display(Decimal(shown), Unit.MMOL, previous) == previous
    assert threshold_from_display(float(shown), Unit.MMOL, previous) == previous


def test_edited_mmol_threshold_is_converted() -> None:
    assert threshold_from_display("4.0", Unit.MMOL, 70) == 72
    assert threshold_from_display("3,1", Unit.MMOL, 70) == 56
    assert threshold_from_display("3.90", Unit.MMOL, 70) == 70  # same number, written longer


def test_threshold_without_usable_previous_value_is_converted() -> None:
    assert threshold_from_display("3.1", Unit.MMOL, None) == 56
    assert threshold_from_display("3.1", Unit.MMOL, LOW_MGDL) == 56


def test_mgdl_threshold_from_display() -> None:
    assert threshold_from_display("70", Unit.MGDL, 55) == 70
    assert threshold_from_display("70", Unit.MGDL, 70) == 70
    assert threshold_from_display(69.5, Unit.MGDL, None) == 70  # half-up, not half-even
    assert threshold_from_display(" 180 ", Unit.MGDL, 250) == 180


def test_threshold_from_display_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a number"):
        threshold_from_display("seventy", Unit.MGDL, 70)


@given(st.integers(min_value=40, max_value=400), st.sampled_from(Unit))
def test_untouched_threshold_never_moves(previous: int, unit: Unit) -> None:
    assert threshold_from_display(format_value(previous, unit), unit, previous) == previous


@given(st.integers(min_value=40, max_value=400), st.integers(min_value=40, max_value=400))
def test_edited_mmol_threshold_lands_within_one_mgdl(previous: int, wanted: int) -> None:
    stored = threshold_from_display(format_value(wanted, Unit.MMOL), Unit.MMOL, previous)
    assert abs(stored - wanted) <= 1
    assert format_value(stored, Unit.MMOL) == format_value(wanted, Unit.MMOL)


NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (142, Unit.MGDL, "142"),
        (40, Unit.MGDL, "40"),
        (400, Unit.MGDL, "400"),
        (142, Unit.MMOL, "7.9"),
        (180, Unit.MMOL, "10.0"),
        (LOW_MGDL, Unit.MGDL, "LOW"),
        (LOW_MGDL, Unit.MMOL, "LOW"),
        (HIGH_MGDL, Unit.MGDL, "HIGH"),
        (HIGH_MGDL, Unit.MMOL, "HIGH"),
        (Reading(NOW, 142, Trend.FLAT), Unit.MGDL, "142"),
        (Reading(NOW, 142, Trend.FLAT), Unit.MMOL, "7.9"),
        (Reading(NOW, LOW_MGDL), Unit.MMOL, "LOW"),
        (Reading(NOW, HIGH_MGDL), Unit.MMOL, "HIGH"),
    ],
)
def test_format_value(value: Reading | int, unit: Unit, shown: str) -> None:
    assert format_value(value, unit) == shown


@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize("mgdl", [0, 38, 402])
def test_format_value_refuses_non_glucose(mgdl: int, unit: Unit) -> None:
    with pytest.raises(ValueError, match="glucose value"):
        format_value(mgdl, unit)


@pytest.mark.parametrize(
    ("delta", "unit", "shown"),
    [
        (None, Unit.MGDL, ""),
        (None, Unit.MMOL, ""),
        (3, Unit.MGDL, "+3"),
        (-12, Unit.MGDL, "-12"),
        (0, Unit.MGDL, "±0"),
        (3, Unit.MMOL, "+0.2"),
        (-12, Unit.MMOL, "-0.7"),
        (1, Unit.MMOL, "+0.1"),
        (-1, Unit.MMOL, "-0.1"),
        (0, Unit.MMOL, "±0.0"),
        (18, Unit.MMOL, "+1.0"),
    ],
)
def test_format_delta(delta: int | None, unit: Unit, shown: str) -> None:
    assert format_delta(delta, unit) == shown


@given(st.integers(min_value=-361, max_value=361))
def test_mmol_delta_is_symmetric_and_never_hides_a_change(delta: int) -> None:
    up, down = format_delta(delta, Unit.MMOL), format_delta(-delta, Unit.MMOL)
    if delta == 0:
        assert up == down == "±0.0"
    else:
        assert up[1:] == down[1:]
        assert {up[0], down[0]} == {"+", "-"}
        assert Decimal(up[1:]) >= Decimal("0.1")


@pytest.mark.parametrize(
    ("amount", "unit", "shown"),
    [
        (142.5, Unit.MGDL, "143"),  # half-up
        (142.49, Unit.MGDL, "142"),
        (142.0, Unit.MMOL, "7.9"),
        (36.0, Unit.MMOL, "2.0"),
        (0.0, Unit.MGDL, "0"),
    ],
)
def test_format_amount(amount: float, unit: Unit, shown: str) -> None:
    assert format_amount(amount, unit) == shown


def test_unit_labels() -> None:
    assert Unit.MGDL.value == Unit.MGDL.label == "mg/dL"
    assert Unit.MMOL.value == Unit.MMOL.label == "mmol/L"
    assert Unit("mmol/L") is Unit.MMOL
    assert Unit.MGDL.spoken == "milligrams per decilitre"
    assert Unit.MMOL.spoken == "millimoles per litre"


# --- rates (falling/rising fast thresholds) -----------------------------------------------------


@pytest.mark.parametrize(
    ("mgdl_per_minute", "mgdl_text", "mmol_text"),
    [
        (1, "1", "0.06"),
        (3, "3", "0.17"),
        (2.5, "2.5", "0.14"),
        (2.55, "2.6", "0.14"),
        (10, "10", "0.56"),
    ],
)
def test_a_rate_is_shown_in_either_unit(
    mgdl_per_minute: float, mgdl_text: str, mmol_text: str
) -> None:
    assert format_rate(mgdl_per_minute, Unit.MGDL) == mgdl_text
    assert format_rate(mgdl_per_minute, Unit.MMOL) == mmol_text
    assert (rate_label(Unit.MGDL), rate_label(Unit.MMOL)) == ("mg/dL/min", "mmol/L/min")


def test_a_typed_rate_is_stored_in_mgdl_per_minute_to_a_tenth() -> None:
    assert rate_from_display("0.2", Unit.MMOL, 3) == 3.6
    assert rate_from_display("0,17", Unit.MMOL, None) == 3.1
    assert rate_from_display("2.54", Unit.MGDL, None) == 2.5
    with pytest.raises(ValueError, match="not a number"):
        rate_from_display("fast", Unit.MMOL, 3)


@given(st.integers(10, 100).map(lambda tenths: tenths / 10), st.sampled_from(Unit))
def test_an_untouched_rate_keeps_its_stored_value(mgdl_per_minute: float, unit: Unit) -> None:
    shown = format_rate(mgdl_per_minute, unit)
    assert rate_from_display(shown, unit, mgdl_per_minute) == mgdl_per_minute


@given(st.integers(6, 55).map(lambda hundredths: Decimal(hundredths) / 100))
def test_a_rate_typed_in_mmol_shows_again_as_typed(mmol: Decimal) -> None:
    stored = rate_from_display(mmol, Unit.MMOL, None)
    assert Decimal(format_rate(stored, Unit.MMOL)) == mmol


def test_the_allowed_rates_are_written_in_the_unit_with_ends_inside_the_range() -> None:
    assert rate_range_text(1, 10, Unit.MGDL) == "between 1 and 10 mg/dL per minute"
    assert rate_range_text(1, 10, Unit.MMOL) == "between 0.06 and 0.55 mmol/L per minute"
    assert (
        1
        <= rate_from_display("0.06", Unit.MMOL, None)
        <= rate_from_display("0.55", Unit.MMOL, None)
        <= 10
    )
