"""Hostile input for share.wire: any JSON, near-valid readings, raw bytes; readings or one error."""

from __future__ import annotations

import json
import math
import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmtray.domain.readings import (
    HIGH_MGDL,
    LOW_MGDL,
    MAX_REAL_MGDL,
    MIN_REAL_MGDL,
    Reading,
    Trend,
)
from cgmtray.share.errors import InvalidResponse, ShareError
from cgmtray.share.wire import (
    EARLIEST_DATE,
    LATEST_DATE,
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

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST_MS: Final = (EARLIEST_DATE - _EPOCH) // timedelta(milliseconds=1)
_LATEST_MS: Final = (LATEST_DATE - _EPOCH) // timedelta(milliseconds=1) - 1
#: Planted in generated payloads: a wire error must never repeat it (it stands for a password,
#: a session id, an account name or any other piece of the body).
SECRET: Final = "hunter2-Secret-Pa55"
SECRET_ID: Final = "5e55a0b1-9c1d-4e2f-8a3b-7c6d5e4f3a2b"
#: A wire error is one short line, however big or odd the body was.
MAX_MESSAGE_CHARS: Final = 300

FUZZ = settings(
    max_examples=max(300, settings().max_examples),  # `make fuzz`: the explore profile's count
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _ms(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(milliseconds=1)


# --- strategies ----------------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "1e400",
        "null",
        "None",
        "undefined",
        "\x00",
        "\ud800",
        "٣٩",  # Arabic-Indic digits: not ASCII digits
        "３９",  # full-width digits
        "Date()",
        "Date(-1)",
        "Date(1745081013817",
        "Date 1745081013817",
        "<html>",
        SECRET,
        SECRET_ID,
        "9" * 5000,
    ]
)
TEXT = st.one_of(st.text(max_size=40), NASTY_TEXT)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [0, -1, 38, 39, 40, 400, 401, 402, 2**63, -(2**63), 10**400, 1e308, 39.0, 401.0]
    ),
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(TEXT, st.sampled_from(["WT", "DT", "ST", "Value", "Trend"])),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)

IN_RANGE_MS = st.integers(min_value=_EARLIEST_MS, max_value=_LATEST_MS)
OFFSETS = st.sampled_from(["", "-0400", "+0000", "+0530", "-0700", "+1400", "-1200"])


@st.composite
def share_dates(draw: st.DrawFn, ms: int | None = None) -> tuple[str, int]:
    """A date string in one of the protocol 5.2 forms, and the epoch ms it stands for."""
    millis = draw(IN_RANGE_MS) if ms is None else ms
    offset = draw(OFFSETS)
    form = draw(st.sampled_from(["Date({})", "/Date({})/", "\\/Date({})\\/", " Date({}) "]))
    return form.format(f"{millis}{offset}"), millis


@st.composite
def mutated_dates(draw: st.DrawFn) -> object:
    """Something that looked like a date once: cut, padded, out of range, wrong type."""
    text, millis = draw(share_dates())
    mutation = draw(st.integers(min_value=0, max_value=9))
    if mutation == 0:
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    if mutation == 1:
        return draw(TEXT) + text + draw(TEXT)
    if mutation == 2:
        return text.replace(
            str(millis), str(draw(st.integers(min_value=-(10**20), max_value=10**20)))
        )
    if mutation == 3:
        return text.replace("(", "[")
    if mutation == 4:
        return millis  # the number, not the string
    if mutation == 5:
        return text.replace(str(millis), str(millis) + "." + "5")
    if mutation == 6:
        return {"DateTime": text, "OffsetMinutes": 0}
    if mutation == 7:
        return draw(TEXT)
    if mutation == 8:
        return text.replace("Date", "date")
    return text


TREND_VALUES = st.one_of(
    st.sampled_from([t.wire_name for t in Trend]),
    st.sampled_from([t.wire_name.upper() for t in Trend]),
    st.sampled_from(["double up", "forty five down", "NonComputable", "FORTY_FIVE_UP", " 4 "]),
    st.integers(min_value=-3, max_value=12),
    st.sampled_from(["SidewaysWobble", "", None, 4.0, True, [], {}]),
    JSON_SCALARS,
)


@st.composite
def valid_readings(draw: st.DrawFn) -> tuple[dict[str, Any], Reading]:
    """A reading object in any of the forms Share has sent, and the reading it must become."""
    millis = draw(IN_RANGE_MS)
    mgdl = draw(st.integers(min_value=LOW_MGDL, max_value=HIGH_MGDL))
    trend = draw(st.sampled_from(list(Trend)))
    obj: dict[str, Any] = {}
    # The time is taken from WT, else DT, else ST: give the first present field the instant,
    # and the later ones something else (they must not be used).
    fields = draw(st.sampled_from([("WT", "DT", "ST"), ("DT", "ST"), ("ST",), ("WT",)]))
    first, *rest = fields
    obj[first] = draw(share_dates(millis))[0]
    for name in rest:
        obj[name] = draw(st.one_of(share_dates(), mutated_dates()))
        if not isinstance(obj[name], str) or obj[name] == "":
            obj[name] = draw(share_dates())[0]
    obj["Value"] = draw(st.sampled_from([mgdl, float(mgdl)]))
    trend_form = draw(st.sampled_from(["name", "int", "lower", "absent"]))
    if trend_form == "name":
        obj["Trend"] = trend.wire_name
    elif trend_form == "int":
        obj["Trend"] = int(trend)
    elif trend_form == "lower":
        obj["Trend"] = trend.wire_name.lower()
    expected_trend = Trend.NONE if trend_form == "absent" else trend
    extra_key = draw(TEXT)
    if extra_key not in ("WT", "DT", "ST", "Value", "Trend"):
        obj[extra_key] = draw(JSON_VALUES)  # unknown keys are ignored
    instant = _EPOCH + timedelta(milliseconds=millis)
    return obj, Reading(instant, mgdl, expected_trend)


@st.composite
def junk_readings(draw: st.DrawFn) -> object:
    """An element no parser could make a reading of (no time at all, or no usable Value)."""
    kind = draw(st.integers(min_value=0, max_value=4))
    if kind == 0:
        return draw(JSON_SCALARS)
    if kind == 1:
        return draw(st.lists(JSON_VALUES, max_size=3))
    if kind == 2:
        return {"Value": draw(NUMBERS), "Trend": draw(TREND_VALUES)}  # no time
    if kind == 3:
        value = draw(
            st.one_of(
                st.integers(max_value=LOW_MGDL - 1),
                st.integers(min_value=HIGH_MGDL + 1),
                st.sampled_from([math.nan, math.inf, 120.5, "120", None, True, [120], SECRET]),
            )
        )
        return {"WT": draw(share_dates())[0], "Value": value, "Trend": "Flat"}
    bad_date = draw(st.sampled_from(["", "Date()", "Date(1)", "Date(99999999999999)", "today"]))
    return {"WT": bad_date, "Value": 120, "Trend": "Flat", "X": SECRET}


@st.composite
def near_valid_readings(draw: st.DrawFn) -> dict[str, Any]:
    """A reading object with each field possibly mutated, dropped or replaced by junk."""
    obj, _ = draw(valid_readings())
    for key in ("WT", "DT", "ST", "Value", "Trend"):
        action = draw(st.integers(min_value=0, max_value=5))
        if action == 0:
            obj.pop(key, None)
        elif action == 1:
            obj[key] = draw(JSON_VALUES)
        elif action == 2 and key in ("WT", "DT", "ST"):
            obj[key] = draw(mutated_dates())
        elif action == 3 and key == "Value":
            obj[key] = draw(NUMBERS)
        elif action == 3 and key == "Trend":
            obj[key] = draw(TREND_VALUES)
    return obj


# --- what every outcome must satisfy ------------------------------------------------------------


def assert_readable_wire_error(error: BaseException) -> None:
    """The one documented error type, with one short line a person can read and no secrets."""
    assert type(error) is WireFormatError
    assert isinstance(error, InvalidResponse)
    assert isinstance(error, ShareError)
    for text in (str(error), repr(error), error.detail, error.user_message):
        assert text
        assert len(text) <= MAX_MESSAGE_CHARS
        assert SECRET not in text
        assert SECRET_ID not in text
        assert "\n" not in text
        assert "9" * 50 not in text  # no echo of a huge number from the body
    assert error.failure_class is InvalidResponse.failure_class


def assert_domain_readings(readings: object) -> None:
    """Readings the rest of the app may rely on: aware UTC, sane dates, LOW/HIGH or 40..400."""
    assert isinstance(readings, tuple)
    for reading in readings:
        assert isinstance(reading, Reading)
        assert reading.time.tzinfo is UTC
        assert EARLIEST_DATE <= reading.time < LATEST_DATE
        assert reading.is_low or reading.is_high or MIN_REAL_MGDL <= reading.mgdl <= MAX_REAL_MGDL
        assert isinstance(reading.trend, Trend)
    times = [r.time for r in readings]
    assert times == sorted(set(times), reverse=True)  # newest first, one per timestamp


def parse_or_error(payload: object) -> tuple[Reading, ...] | None:
    """The readings, or None after checking the error is the documented one."""
    try:
        readings = parse_readings(payload)
    except WireFormatError as error:
        assert_readable_wire_error(error)
        return None
    assert_domain_readings(readings)
    return readings


# --- the fuzz tests ------------------------------------------------------------------------------


@FUZZ
@given(JSON_VALUES)
def test_any_json_value_gives_domain_readings_or_one_readable_error(payload: object) -> None:
    parse_or_error(payload)


@FUZZ
@given(st.lists(st.one_of(near_valid_readings(), junk_readings(), JSON_VALUES), max_size=8))
def test_near_valid_arrays_give_domain_readings_or_one_readable_error(
    payload: list[object],
) -> None:
    readings = parse_or_error(payload)
    if payload == []:
        assert readings == ()


@FUZZ
@given(
    st.lists(valid_readings(), max_size=8),
    st.lists(junk_readings(), max_size=4),
    st.randoms(use_true_random=False),
)
def test_good_readings_survive_any_junk_next_to_them(
    good: list[tuple[dict[str, Any], Reading]], junk: list[object], shuffler: random.Random
) -> None:
    elements: list[object] = [obj for obj, _ in good] + junk
    shuffler.shuffle(elements)
    if not good and junk:
        with pytest.raises(WireFormatError) as caught:
            parse_readings(elements)
        assert_readable_wire_error(caught.value)
        return
    # Two readings with one timestamp: the one later in the answer wins.
    wanted: dict[datetime, Reading] = {}
    for element in elements:
        for obj, reading in good:
            if element is obj:
                wanted[reading.time] = reading
    readings = parse_readings(elements)
    assert_domain_readings(readings)
    assert readings == tuple(sorted(wanted.values(), key=lambda r: r.time, reverse=True))


@FUZZ
@given(valid_readings())
def test_every_date_form_and_trend_form_reads_the_same_instant(
    case: tuple[dict[str, Any], Reading],
) -> None:
    obj, expected = case
    assert parse_reading(obj) == expected
    # The same reading through real JSON text (with \/ escapes as pre-2021 answers had them).
    text = json.dumps([obj]).replace("/Date", "\\/Date").replace(")/", ")\\/")
    assert parse_readings(json.loads(text)) == (expected,)


@FUZZ
@given(st.one_of(mutated_dates(), JSON_VALUES))
def test_dates_parse_to_aware_utc_or_raise_the_wire_error(value: object) -> None:
    try:
        instant = parse_share_date(value)
    except WireFormatError as error:
        assert_readable_wire_error(error)
        return
    assert instant.tzinfo is UTC
    assert EARLIEST_DATE <= instant < LATEST_DATE
    assert isinstance(value, str)
    assert str(_ms(instant)) in value  # the digits in the text are the instant, offset or not


@FUZZ
@given(TREND_VALUES)
def test_any_trend_is_a_trend_never_an_exception(value: object) -> None:
    assert isinstance(parse_trend(value), Trend)


@FUZZ
@given(JSON_VALUES)
def test_values_are_low_high_or_real_or_the_wire_error(value: object) -> None:
    try:
        mgdl = parse_value(value)
    except WireFormatError as error:
        assert_readable_wire_error(error)
        return
    assert type(mgdl) is int
    assert LOW_MGDL <= mgdl <= HIGH_MGDL


@FUZZ
@given(
    st.one_of(JSON_VALUES, st.uuids().map(str), st.uuids().map(lambda u: f"  {str(u).upper()} "))
)
def test_ids_are_canonical_uuids_or_the_wire_error(body: object) -> None:
    zero = is_zero_id(body)
    assert isinstance(zero, bool)
    try:
        account_id = parse_id(body)
    except WireFormatError as error:
        assert_readable_wire_error(error)
        return
    assert not zero
    assert account_id != ZERO_ID
    assert account_id == account_id.lower()
    assert len(account_id) == 36


@FUZZ
@given(st.binary(max_size=200))
def test_raw_bytes_are_never_readings(data: bytes) -> None:
    # The client hands the parser decoded JSON; bytes, or text that was never decoded, must
    # still be refused with the one error rather than crash or be read.
    for payload in (data, data.decode("latin-1")):
        with pytest.raises(WireFormatError) as caught:
            parse_readings(payload)
        assert_readable_wire_error(caught.value)


@st.composite
def damaged_json_bodies(draw: st.DrawFn) -> bytes:
    """A real read answer as bytes, then cut, spliced with junk, or re-encoded."""
    good = [obj for obj, _ in draw(st.lists(valid_readings(), min_size=1, max_size=4))]
    body = json.dumps(good).encode("utf-8")
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    damage = draw(st.sampled_from(["cut", "splice", "utf16", "bom", "latin1-junk"]))
    if damage == "cut":
        return body[:cut]
    if damage == "splice":
        return body[:cut] + draw(st.binary(min_size=1, max_size=20)) + body[cut:]
    if damage == "utf16":
        return body.decode("utf-8").encode("utf-16")
    if damage == "bom":
        return b"\xef\xbb\xbf" + body
    return body[:cut] + "ÿ\u00e9".encode("latin-1") + body[cut:]


@FUZZ
@given(st.one_of(st.binary(max_size=200), damaged_json_bodies()))
def test_non_utf8_or_damaged_json_through_the_decoder(data: bytes) -> None:
    # What the client does with a body: decode as UTF-8 JSON, then parse. Each step fails only
    # in its documented way.
    try:
        payload = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return
    parse_or_error(payload)


def test_a_giant_answer_is_read_without_trouble() -> None:
    start = _ms(datetime(2025, 1, 1, tzinfo=UTC))
    payload = [
        {"WT": f"Date({start + i * 300_000})", "Value": 40 + i % 361, "Trend": "Flat"}
        for i in range(20_000)
    ]
    readings = parse_readings(payload)
    assert len(readings) == 20_000
    assert_domain_readings(readings)


def test_deep_nesting_is_a_wire_error_not_a_crash() -> None:
    deep: object = SECRET
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(WireFormatError) as caught:
        parse_readings([{"WT": deep, "Value": deep}, deep])
    assert_readable_wire_error(caught.value)


def test_messages_name_what_is_wrong_in_plain_words() -> None:
    cases: list[tuple[object, str]] = [
        ({"reading": 1}, "not an array"),
        ([1], "not an object"),
        ([{"Value": 120}], "no WT, DT or ST"),
        ([{"WT": "Date(1745081013817)"}], "no Value"),
        ([{"WT": "Date(1745081013817)", "Value": 402}], "outside 39..401"),
        ([{"WT": "Date(1)", "Value": 120}], "before 2000 or after 2100"),
        ([{"WT": "yesterday", "Value": 120}], "no Date(ms)"),
    ]
    for payload, words in cases:
        with pytest.raises(WireFormatError) as caught:
            parse_readings(payload)
        assert_readable_wire_error(caught.value)
        assert words in str(caught.value)


def test_string_alphabet_is_printable_in_messages() -> None:
    # A body full of control characters must not put them into a message.
    junk = "".join(chr(c) for c in range(32)) + string.printable
    with pytest.raises(WireFormatError) as caught:
        parse_readings([{"WT": junk, "DT": junk, "ST": junk, "Value": junk}])
    assert_readable_wire_error(caught.value)
    assert all(ch.isprintable() for ch in str(caught.value))
