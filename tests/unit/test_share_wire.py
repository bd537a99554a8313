"""Share JSON -> readings and ids: every date and trend form, LOW/HIGH, and no crash on junk."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.share.errors import InvalidResponse
from cgmtray.share.wire import (
    FUTURE_TOLERANCE,
    ZERO_ID,
    WireFormatError,
    is_zero_id,
    parse_id,
    parse_reading,
    parse_readings,
    parse_share_date,
    parse_trend,
    parse_value,
)

RECORDED_MS = 1745081013817
RECORDED_INSTANT = datetime(2025, 4, 19, 16, 43, 33, 817000, tzinfo=UTC)
LEGACY_MS = 1426292016000
LEGACY_INSTANT = datetime(2015, 3, 14, 0, 13, 36, tzinfo=UTC)


def _ms(instant: datetime) -> int:
    return int((instant - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def test_recorded_instants_are_what_the_tables_say() -> None:
    assert _ms(RECORDED_INSTANT) == RECORDED_MS
    assert _ms(LEGACY_INSTANT) == LEGACY_MS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Date(1745081013817)", RECORDED_INSTANT),
        ("Date(1745081013817-0400)", RECORDED_INSTANT),
        ("Date(1745081013817+0000)", RECORDED_INSTANT),
        ("Date(1745081013817+0530)", RECORDED_INSTANT),
        ("/Date(1426292016000)/", LEGACY_INSTANT),
        ("/Date(1426292016000-0700)/", LEGACY_INSTANT),
        ("\\/Date(1426292016000-0700)\\/", LEGACY_INSTANT),
        (json.loads('"\\/Date(1426292016000-0700)\\/"'), LEGACY_INSTANT),
        ("  Date(1426292016000)  ", LEGACY_INSTANT),
        ("Date(1638448498000)", datetime(2021, 12, 2, 12, 34, 58, tzinfo=UTC)),
    ],
)
def test_every_share_date_form_gives_the_utc_instant(text: str, expected: datetime) -> None:
    parsed = parse_share_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Date()",
        "Date(abc)",
        "1745081013817",
        "Date(-1745081013817)",
        "Date(1)",  # 1970: absurd for a reading
        "Date(946684799999)",  # one millisecond before 2000
        "Date(4102444800000)",  # 2100-01-01
        "Date(99999999999999999999999)",
        "Date(1745081013817-04)",
        "Date(١٧٤٥٠٨١٠١٣٨١٧)",  # digits, but not ASCII ones
    ],
)
def test_absurd_or_malformed_dates_are_refused(text: str) -> None:
    with pytest.raises(WireFormatError):
        parse_share_date(text)


@pytest.mark.parametrize("value", [None, 1745081013817, ["Date(1745081013817)"]])
def test_a_date_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(WireFormatError):
        parse_share_date(value)


def test_the_first_and_last_accepted_dates() -> None:
    assert parse_share_date("Date(946684800000)") == datetime(2000, 1, 1, tzinfo=UTC)
    assert parse_share_date("Date(4102444799999)") < datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("trend", list(Trend))
def test_every_trend_by_integer_wire_name_and_spelling(trend: Trend) -> None:
    assert parse_trend(int(trend)) is trend
    assert parse_trend(trend.wire_name) is trend
    assert parse_trend(trend.wire_name.lower()) is trend
    assert parse_trend(trend.wire_name.upper()) is trend
    assert parse_trend(trend.name.replace("_", " ")) is trend


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fortyfiveup", Trend.FORTY_FIVE_UP),
        ("Forty Five Up", Trend.FORTY_FIVE_UP),
        (" Flat ", Trend.FLAT),
        ("FLAT", Trend.FLAT),
        ("NOT COMPUTABLE", Trend.NOT_COMPUTABLE),
        ("NonComputable", Trend.NOT_COMPUTABLE),
        ("RATE OUT OF RANGE", Trend.RATE_OUT_OF_RANGE),
        ("4", Trend.FLAT),
        ("¹", Trend.NONE),
        ("٤", Trend.NONE),
        ("Sideways", Trend.NONE),
        ("", Trend.NONE),
        (10, Trend.NONE),
        (-1, Trend.NONE),
        (True, Trend.NONE),
        (4.0, Trend.NONE),
        ([4], Trend.NONE),
        ({"Trend": 4}, Trend.NONE),
        (None, Trend.NONE),
    ],
)
def test_trend_spellings_and_unknowns_never_crash(value: object, expected: Trend) -> None:
    assert parse_trend(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(39, LOW_MGDL), (401, HIGH_MGDL), (224, 224), (40, 40), (224.0, 224)]
)
def test_values_including_low_and_high(value: object, expected: int) -> None:
    assert parse_value(value) == expected


@pytest.mark.parametrize(
    "value", [True, False, "224", None, 38, 402, 0, -5, 224.5, math.nan, math.inf, [224]]
)
def test_bad_values_are_refused(value: object) -> None:
    with pytest.raises(WireFormatError):
        parse_value(value)


def test_the_recorded_2025_answer_parses() -> None:
    body = (
        '[{"WT":"Date(1745081013817)","ST":"Date(1745081013817)",'
        '"DT":"Date(1745081013817-0400)","Value":224,"Trend":"Flat"}]'
    )
    assert parse_readings(json.loads(body)) == (Reading(RECORDED_INSTANT, 224, Trend.FLAT),)


def test_the_legacy_2015_answer_parses_and_dates_by_wt() -> None:
    body = (
        '[{"DT":"\\/Date(1426292016000-0700)\\/","ST":"\\/Date(1426295616000)\\/",'
        '"WT":"\\/Date(1426292039000)\\/","Value":120,"Trend":4}]'
    )
    (reading,) = parse_readings(json.loads(body))
    assert reading == Reading(LEGACY_INSTANT + timedelta(seconds=23), 120, Trend.FLAT)


def test_low_and_high_readings_keep_their_meaning() -> None:
    low = parse_reading({"WT": "Date(1745081013817)", "Value": 39, "Trend": "DoubleDown"})
    high = parse_reading({"WT": "Date(1745081013817)", "Value": 401, "Trend": "DoubleUp"})
    assert low.is_low
    assert not low.is_numeric
    assert high.is_high
    assert not high.is_numeric


def test_time_falls_back_from_wt_to_dt_to_st() -> None:
    wt, dt, st = "Date(1745081013817)", "Date(1745080713817-0400)", "Date(1745080413817)"
    assert parse_reading({"WT": wt, "DT": dt, "ST": st, "Value": 100}).time == RECORDED_INSTANT
    assert parse_reading({"DT": dt, "ST": st, "Value": 100}).time == RECORDED_INSTANT - timedelta(
        minutes=5
    )
    assert parse_reading({"ST": st, "Value": 100}).time == RECORDED_INSTANT - timedelta(minutes=10)
    assert parse_reading({"WT": "garbage", "DT": dt, "Value": 100}).time == (
        RECORDED_INSTANT - timedelta(minutes=5)
    )


def test_a_reading_without_trend_has_no_trend() -> None:
    assert parse_reading({"WT": "Date(1745081013817)", "Value": 100}).trend is Trend.NONE


@pytest.mark.parametrize(
    "obj",
    [
        {"Value": 100},
        {"WT": None, "Value": 100},
        {"WT": "Date(1745081013817)"},
        {"WT": "Date(1745081013817)", "Value": None},
        [1, 2],
        "Date(1745081013817)",
        None,
    ],
)
def test_unusable_reading_objects_are_refused(obj: object) -> None:
    with pytest.raises(WireFormatError):
        parse_reading(obj)


def test_readings_come_back_newest_first_without_duplicates() -> None:
    older = {"WT": "Date(1745080713817)", "Value": 110, "Trend": "Flat"}
    newer = {"WT": "Date(1745081013817)", "Value": 120, "Trend": "SingleUp"}
    readings = parse_readings([older, newer, newer])
    assert [r.mgdl for r in readings] == [120, 110]


def test_an_empty_answer_is_not_an_error() -> None:
    assert parse_readings([]) == ()


def _at(instant: datetime, mgdl: int) -> dict[str, object]:
    return {"WT": f"Date({_ms(instant)})", "Value": mgdl, "Trend": "Flat"}


def test_readings_from_the_future_are_dropped_and_the_others_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = RECORDED_INSTANT
    real = _at(now - timedelta(minutes=2), 45)
    edge = _at(now + FUTURE_TOLERANCE, 60)  # 5 min ahead: a clock a little off, still taken
    future = _at(now + timedelta(days=365), 250)
    just_over = _at(now + FUTURE_TOLERANCE + timedelta(milliseconds=1), 90)
    with caplog.at_level("WARNING"):
        readings = parse_readings([future, real, edge, just_over], now=now)
    assert [r.mgdl for r in readings] == [60, 45]
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "share.future_reading"]
    assert getattr(record, "count", None) == 2
    assert getattr(record, "ahead_s", None) == 365 * 86400
    assert "250" not in record.getMessage()
    assert "90" not in record.getMessage()


def test_without_now_or_without_future_readings_nothing_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    future = _at(RECORDED_INSTANT + timedelta(days=365), 250)
    assert [r.mgdl for r in parse_readings([future])] == [250]
    with caplog.at_level("WARNING"):
        share_now = RECORDED_INSTANT + timedelta(days=365)
        assert [r.mgdl for r in parse_readings([future], now=share_now)] == [250]
    assert not caplog.records


def test_an_answer_of_only_future_readings_is_empty_not_an_error() -> None:
    future = _at(RECORDED_INSTANT + timedelta(days=365), 250)
    assert parse_readings([future], now=RECORDED_INSTANT) == ()


def test_an_unreadable_element_is_skipped_when_others_are_fine() -> None:
    good = {"WT": "Date(1745081013817)", "Value": 120}
    sensor_error_code = {"WT": "Date(1745080713817)", "Value": 5}
    assert parse_readings([sensor_error_code, good]) == (Reading(RECORDED_INSTANT, 120),)


@pytest.mark.parametrize(
    "payload", [{"Code": "SessionIdNotFound"}, "[]", None, 5, [{"Value": 5}], [None]]
)
def test_answers_with_nothing_readable_are_wire_errors(payload: object) -> None:
    with pytest.raises(WireFormatError):
        parse_readings(payload)


def test_wire_errors_are_treated_as_invalid_responses() -> None:
    assert issubclass(WireFormatError, InvalidResponse)


def test_ids() -> None:
    session = "5C2A9E7D-1234-4ABC-8DEF-0123456789AB"
    assert parse_id(session) == session.lower()
    assert parse_id(json.loads('"99999999-9999-9999-9999-999999999999"')) == (
        "99999999-9999-9999-9999-999999999999"
    )
    assert is_zero_id(ZERO_ID)
    assert not is_zero_id(session)


@pytest.mark.parametrize(
    "body",
    [
        ZERO_ID,
        "",
        "1",
        None,
        42,
        ["99999999-9999-9999-9999-999999999999"],
        "{99999999-9999-9999-9999-999999999999}",
        "99999999999999999999999999999999",
        "urn:uuid:99999999-9999-9999-9999-999999999999",
    ],
)
def test_bad_ids_are_refused_without_echoing_them(body: object) -> None:
    with pytest.raises(WireFormatError) as caught:
        parse_id(body)
    assert "9999" not in str(caught.value)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
DATE_TEXTS = st.one_of(
    st.integers(min_value=0, max_value=10**16).map(lambda ms: f"Date({ms})"),
    st.builds(
        lambda ms, sign, hhmm: f"/Date({ms}{sign}{hhmm:04d})/",
        st.integers(min_value=0, max_value=10**16),
        st.sampled_from("+-"),
        st.integers(min_value=0, max_value=9999),
    ),
    st.text(max_size=30),
)
FIELD_VALUES = st.one_of(DATE_TEXTS, JSON_VALUES, st.integers(min_value=30, max_value=410))


@st.composite
def reading_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible reading with some fields dropped, swapped for junk, or renamed."""
    fields: dict[str, Any] = {
        "WT": draw(DATE_TEXTS),
        "ST": draw(DATE_TEXTS),
        "DT": draw(DATE_TEXTS),
        "Value": draw(st.integers(min_value=30, max_value=410)),
        "Trend": draw(st.one_of(st.sampled_from([t.wire_name for t in Trend]), JSON_VALUES)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=5)):
        action = draw(st.sampled_from(["drop", "junk", "rename"]))
        if key not in fields:
            continue
        if action == "drop":
            del fields[key]
        elif action == "junk":
            fields[key] = draw(FIELD_VALUES)
        else:
            fields[key.lower()] = fields.pop(key)
    return fields


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_arbitrary_json_only_ever_raises_wire_format_error(payload: object) -> None:
    try:
        readings = parse_readings(payload)
    except WireFormatError:
        return
    assert all(isinstance(r, Reading) for r in readings)


@settings(max_examples=300)
@given(st.lists(reading_dicts(), max_size=6))
def test_mutated_readings_parse_or_raise_wire_format_error(payload: list[dict[str, Any]]) -> None:
    try:
        readings = parse_readings(payload)
    except WireFormatError:
        return
    times = [r.time for r in readings]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == len(times)
    for reading in readings:
        assert LOW_MGDL <= reading.mgdl <= HIGH_MGDL
        assert datetime(2000, 1, 1, tzinfo=UTC) <= reading.time < datetime(2100, 1, 1, tzinfo=UTC)


@given(JSON_VALUES)
def test_arbitrary_json_ids_and_trends_never_crash(value: object) -> None:
    assert isinstance(parse_trend(value), Trend)
    try:
        parsed = parse_id(value)
    except WireFormatError:
        return
    assert len(parsed) == 36
    assert parsed != ZERO_ID


@given(
    st.integers(min_value=946684800000, max_value=4102444799999),
    st.text(max_size=10).filter(lambda s: "Date(" not in s),
)
def test_any_in_range_date_round_trips_whatever_surrounds_it(ms: int, noise: str) -> None:
    text = f"{noise}/Date({ms}-0700)/{noise}"
    assert _ms(parse_share_date(text)) == ms
