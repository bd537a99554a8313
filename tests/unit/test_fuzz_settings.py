"""Hostile settings files: any bytes, any TOML, valid files with mutated values; load never fails.

Whatever is in the file, `load_settings` returns settings that pass validation (defaults where a
value was unusable) and at most a readable problem; saving what it returned and loading again
gives the same settings with nothing to report.
"""

from __future__ import annotations

import math
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cgmtray.domain.alert_config import AlertKind
from cgmtray.storage.settings import (
    SETTINGS_VERSION,
    LoadResult,
    Settings,
    load_settings,
    one_person_settings,
    save_settings,
    to_toml_dict,
    validate,
)

NOW: Final = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
#: The version-1 settings file the code before people wrote (tests/fixtures/make_v1_fixture.py).
V1_SETTINGS: Final = Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "settings.toml"
#: Planted as a password in files: it must never reach a message or the rewritten file.
PASSWORD: Final = "hunter2-Settings-Pa55"
#: A long run of one character: a message must never echo a huge value back.
ECHO_PROBE: Final = "Q" * 200
MAX_PROBLEM_CHARS: Final = 12_000

FUZZ = settings(
    max_examples=max(250, settings().max_examples),  # `make fuzz`: the explore profile's count
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Loaded:
    result: LoadResult
    files_after: dict[str, bytes]


def load_bytes(data: bytes) -> Loaded:
    """Loads `data` as a settings file in a fresh folder; what it returned and left behind."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "settings.toml"
        target.write_bytes(data)
        result = load_settings(target, now=NOW)
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    return Loaded(result, files)


def check_usable(loaded: Loaded, original: bytes) -> None:
    """Valid settings, a readable problem, nothing lost, no password kept."""
    result = loaded.result
    assert isinstance(result.settings, Settings)
    assert validate(result.settings, require_username=False) == []
    problem = result.problem
    if problem is not None:
        assert problem.strip()
        assert len(problem) <= MAX_PROBLEM_CHARS
        assert PASSWORD not in problem
        assert ECHO_PROBE not in problem
        assert problem.rstrip().endswith(".")
    if result.backup is not None:
        # An unreadable file is kept aside byte for byte, never lost.
        assert loaded.files_after[result.backup.name] == original
        assert result.should_save
        assert problem is not None
    assert PASSWORD not in repr(result.settings)
    assert (
        result.settings.first_person.source.username
        == result.settings.first_person.source.username.strip()
    )


def check_round_trip(result: LoadResult) -> None:
    """Saving what was loaded and loading it again gives the same, quietly (but for an older
    file's account id, which moves to the keyring and is never written back)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "settings.toml"
        save_settings(result.settings, target)
        text = target.read_bytes()
        again = load_settings(target, now=NOW)
    assert again == LoadResult(result.settings)
    assert PASSWORD.encode() not in text


# --- strategies ----------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
KEYS = st.one_of(
    st.sampled_from(
        [
            "version",
            "people",
            "share",
            "id",
            "name",
            "label",
            "colour",
            "history_file",
            "tray_icons",
            "account",
            "region",
            "username",
            "account_id",
            "password",
            "Password",
            "display",
            "unit",
            "units",
            "alerts",
            "general",
            "advanced",
            "share_url",
            "threshold",
            "enabled",
            "repeat_minutes",
            "snooze_cap_minutes",
            "persistence_minutes",
            "sound",
            "start_at_login",
            "retention_days",
            *[kind.value for kind in AlertKind],
        ]
    ),
    TEXT,
)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(
        ["us", "OUS ", "jp", "eu", "mmol", "mg/dL", "http://127.0.0.1:1/", PASSWORD, ECHO_PROBE]
    ),
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=8)


def _deep(opening: str, closing: str, depth: int) -> str:
    return opening * depth + "1" + closing * depth


HOSTILE_TEXTS = st.sampled_from(
    [
        "version = " + "9" * 5000,  # more digits than Python turns into an int by default
        "version = 0x" + "f" * 5000,  # an int whose decimal form is too long to print
        "[general]\nretention_days = " + "1" * 5000,
        "[account]\nusername = " + "7" * 5000 + '\nregion = "jp"',
        "[account]\nregion = " + _deep("[", "]", 3000),
        "[alerts.low]\nthreshold = " + _deep("{a=", "}", 3000),
        "version = 1\n[display]\nunit = " + _deep("[", "]", 600),
        "[account]\nregion = 'jp'\nusername = " + _deep("[", "]", 3000) + "\nbroken = = =",
        '[account]\nusername = "alice"\nregion = ' + "9" * 5000 + "\nbroken",
        "version = 1e99999",
        "version = nan\n[alerts.low]\nthreshold = inf",
        "\ufeffversion = 1",
        "version = 1\x00",
        'version = 1\r\n[account]\r\nusername = "crlf"\r\n',
        "[account]\n[account]\n",
        f'password = "{PASSWORD}"\n[account]\nusername = "alice"\n',
        f'[account]\npassword = "{PASSWORD}"\nusername = ' + "9" * 5000,
        "[[alerts]]\nlow = 1\n[[alerts]]\nhigh = 2",
        "version = 2\n" + "x = 1\n" * 2000,
        "version = -1",
        "version = true",
    ]
)


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    text = draw(HOSTILE_TEXTS)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1-junk"]))
    if encoding == "latin-1-junk":
        return text.encode("utf-8") + b"\xff\xfe"
    return text.encode(encoding)


def valid_document() -> dict[str, Any]:
    settings_value = one_person_settings(region="ous", username="+11234567890")
    return to_toml_dict(settings_value)


def _paths(
    document: dict[str, Any] | list[Any], prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _child(parent: Any, key: str | int) -> Any:
    if isinstance(parent, dict):
        return parent.get(key)
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        return parent[key]
    return None


def v1_document() -> dict[str, Any]:
    """The version-1 file the code before people wrote (tests/fixtures/v1)."""
    return tomllib.loads(V1_SETTINGS.read_text(encoding="utf-8"))


def first_share(document: dict[str, Any]) -> dict[str, Any]:
    """The first person's account table, in a version-2 or a version-1 document."""
    people = document.get("people")
    if isinstance(people, list) and people and isinstance(people[0], dict):
        share = people[0].get("share")
        return share if isinstance(share, dict) else {}
    account = document.get("account")
    return account if isinstance(account, dict) else {}


BAD_VALUES = st.one_of(
    SCALARS,
    st.sampled_from(
        [
            -1,
            0,
            39,
            401,
            10**18,
            -(10**18),
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            "",
            "   ",
            "x" * 100_000,
            ECHO_PROBE,
            [],
            {},
            {"password": PASSWORD},
            2,
            SETTINGS_VERSION + 1,
        ]
    ),
    VALUES,
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid settings document (version 2, or version 1 as the code before people wrote it)
    with a few values replaced, removed or added."""
    document: dict[str, Any] = draw(st.sampled_from([valid_document, v1_document]))()
    paths = list(_paths(document))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for key in path[:-1]:
            parent = _child(parent, key)
        last = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            if action == "delete":
                del parent[last]
            else:
                parent[last] = draw(BAD_VALUES)
            continue
        if not isinstance(parent, dict):
            continue
        if action == "replace":
            parent[last] = draw(BAD_VALUES)
        elif action == "delete":
            parent.pop(last, None)
        else:
            parent[draw(KEYS)] = draw(BAD_VALUES)
    return document


# --- the fuzz tests ------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=400), hostile_bytes()))
def test_any_bytes_load_into_usable_settings(data: bytes) -> None:
    loaded = load_bytes(data)
    check_usable(loaded, data)
    check_round_trip(loaded.result)


@FUZZ
@given(DOCUMENTS)
@example({"version": [], "account": {"account_id": "0"}})  # an older file's account id
def test_any_toml_document_loads_into_usable_settings(document: dict[str, Any]) -> None:
    data = tomli_w.dumps(document).encode("utf-8")
    loaded = load_bytes(data)
    assert loaded.result.backup is None  # valid TOML is never treated as a corrupt file
    check_usable(loaded, data)
    check_round_trip(loaded.result)


@FUZZ
@given(mutated_documents())
def test_a_valid_file_with_mutated_values_keeps_what_is_still_good(
    document: dict[str, Any],
) -> None:
    data = tomli_w.dumps(document).encode("utf-8")
    loaded = load_bytes(data)
    assert loaded.result.backup is None
    check_usable(loaded, data)
    check_round_trip(loaded.result)
    account = first_share(document)
    people = document.get("people", [{}])  # (a version-1 file has one person)
    first_kept = isinstance(people, list) and people and isinstance(people[0], dict)
    source = loaded.result.settings.first_person.source
    if first_kept and account.get("region") in ("ous", "jp"):  # (a tuple: it may be a list)
        assert source.region == account["region"]  # an untouched value survives
    if first_kept and account.get("username") in ("+11234567890", "sam.parent@example.com"):
        assert source.username == account["username"]


@pytest.mark.parametrize(
    "text",
    [
        "version = " + "9" * 5000,
        "version = 0x" + "f" * 5000,
        "[account]\nregion = " + _deep("[", "]", 3000),
        "[alerts.low]\nthreshold = " + _deep("{a=", "}", 3000),
        '[account]\nusername = "alice"\nregion = ' + "9" * 5000 + "\nbroken",
        "[account]\nregion = 'jp'\nusername = " + _deep("[", "]", 3000) + "\nbroken = = =",
    ],
    ids=[
        "huge-int",
        "huge-hex-version",
        "deep-array",
        "deep-inline-table",
        "huge-int-in-broken-file",
        "deep-array-in-broken-file",
    ],
)
def test_files_python_itself_cannot_read_are_handled(tmp_path: Path, text: str) -> None:
    # Regression: these raised ValueError / RecursionError out of load_settings.
    target = tmp_path / "settings.toml"
    target.write_text(text, encoding="utf-8")
    result = load_settings(target, now=NOW)
    assert validate(result.settings, require_username=False) == []
    assert result.problem is not None
    assert len(result.problem) < 1000
    check_round_trip(result)


def test_a_future_version_loads_what_it_knows_and_says_so(tmp_path: Path) -> None:
    document = valid_document()
    document["version"] = 10**30
    document["brand_new_table"] = {"feature": True}
    target = tmp_path / "settings.toml"
    target.write_text(tomli_w.dumps(document), encoding="utf-8")
    result = load_settings(target, now=NOW)
    assert result.settings.first_person.source.region == "ous"
    assert result.settings.first_person.source.username == "+11234567890"
    assert result.problem is not None
    assert "newer CGM Tray" in result.problem
    check_round_trip(result)


def test_a_password_anywhere_is_dropped_and_never_repeated(tmp_path: Path) -> None:
    document = valid_document()
    document["people"][0]["share"]["password"] = PASSWORD
    document["people"][0]["alerts"]["low"]["Password_old"] = PASSWORD
    document["extra"] = [{"password": PASSWORD}]
    target = tmp_path / "settings.toml"
    target.write_text(tomli_w.dumps(document), encoding="utf-8")
    result = load_settings(target, now=NOW)
    assert result.should_save
    assert result.problem is not None
    assert "password" in result.problem
    assert PASSWORD not in result.problem
    save_settings(result.settings, target)
    assert PASSWORD not in target.read_text(encoding="utf-8")
    assert tomllib.loads(target.read_text(encoding="utf-8"))["people"][0]["share"]["username"] == (
        "+11234567890"
    )
