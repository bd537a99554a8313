"""Settings file: round trips, atomic private saves, tolerant loads, migration, validation."""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmtray.domain.alert_config import AlertKind, AlertSettings, KindConfig
from cgmtray.domain.units import Unit
from cgmtray.storage.people import ShareSource
from cgmtray.storage.settings import (
    SETTINGS_VERSION,
    LoadResult,
    Settings,
    SettingsError,
    is_loopback_url,
    load_settings,
    one_person_settings,
    recover_account,
    save_settings,
    threshold_problems,
    validate,
)

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ACCOUNT_ID = "7d3a2f3c-0000-4c4c-9e9e-123456789abc"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.toml"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


#: The id of the person of customised() (loaded back, it must be the same).
PERSON_ID = "0123456789ab"


def without_ids(settings: Settings) -> Settings:
    """`settings` with every person's id blanked: a file without ids gets random ones."""
    return replace(settings, people=tuple(replace(p, id="") for p in settings.people))


def customised() -> Settings:
    alerts = AlertSettings().with_kind(
        AlertKind.LOW, KindConfig(True, 75, timedelta(minutes=10), True, timedelta(hours=1))
    )
    alerts = alerts.with_kind(
        AlertKind.RISING_FAST,
        KindConfig(True, 2.5, None, False, timedelta(minutes=90), timedelta(minutes=5)),
    )
    return one_person_settings(
        region="ous",
        username="+11234567890",
        person_id=PERSON_ID,
        unit=Unit.MMOL,
        alerts=alerts,
        start_at_login=True,
        retention_days=90,
        share_url="http://127.0.0.1:8123/ShareWebServices/Services/",
    )


# --- round trips and the file on disk -------------------------------------------------------


def test_missing_file_gives_defaults_quietly(path: Path) -> None:
    assert load_settings(path) == LoadResult(Settings(), problem=None, backup=None)
    assert not path.exists()


def test_defaults_are_the_design_defaults() -> None:
    defaults = Settings()
    assert (
        defaults.first_person.source.region,
        defaults.first_person.source.username,
        defaults.people,
        defaults.tray_icons,
    ) == ("us", "", (), "auto")
    assert defaults.unit is Unit.MGDL
    assert defaults.first_person.alerts == AlertSettings()
    assert (
        defaults.start_at_login,
        defaults.retention_days,
        defaults.first_person.source.share_url,
    ) == (
        False,
        365,
        None,
    )


def test_saved_settings_load_back_identical(path: Path) -> None:
    save_settings(customised(), path)
    result = load_settings(path)
    assert result.settings == customised()  # never written down
    assert result.problem is None
    assert not result.should_save


def test_defaults_round_trip(path: Path) -> None:
    save_settings(Settings(), path)
    assert load_settings(path) == LoadResult(Settings())


def test_file_layout_is_human_editable(path: Path) -> None:
    save_settings(customised(), path)
    text = path.read_text(encoding="utf-8")
    document = tomllib.loads(text)
    assert document["version"] == SETTINGS_VERSION
    (person,) = document["people"]
    assert person["id"] == PERSON_ID
    assert (person["name"], person["label"], person["colour"]) == ("+11234567890", "1", "#0072B2")
    assert person["history_file"] == "history.sqlite3"
    assert person["share"] == {
        "region": "ous",
        "username": "+11234567890",
        "share_url": "http://127.0.0.1:8123/ShareWebServices/Services/",
    }
    assert ACCOUNT_ID not in text
    assert document["display"] == {"unit": "mmol/L"}
    alerts = person["alerts"]
    assert alerts["low"] == {
        "enabled": True,
        "threshold": 75,
        "repeat_minutes": 10,
        "sound": True,
        "snooze_cap_minutes": 60,
        "persistence_minutes": 0,
    }
    assert alerts["rising_fast"]["threshold"] == 2.5
    assert alerts["rising_fast"]["repeat_minutes"] == 0
    assert set(alerts) == {kind.value for kind in AlertKind}
    assert document["general"] == {
        "start_at_login": True,
        "retention_days": 90,
        "tray_icons": "auto",
    }
    assert "[[people]]" in text
    assert "[people.alerts.urgent_low]" in text
    assert "password" not in text.replace("The password is never stored here", "")


def test_hand_edit_is_picked_up(path: Path) -> None:
    save_settings(one_person_settings(username="alice"), path)
    text = path.read_text(encoding="utf-8").replace('unit = "mg/dL"', 'unit = "mmol/L"')
    text = text.replace("retention_days = 365", "retention_days = 30")
    path.write_text(text, encoding="utf-8")
    loaded = load_settings(path)
    assert loaded.problem is None
    assert loaded.settings == replace(
        one_person_settings(username="alice", unit=Unit.MMOL, retention_days=30),
        people=loaded.settings.people,
    )
    assert loaded.settings.first_person.source.username == "alice"


def test_unit_spellings_people_type_are_understood(path: Path) -> None:
    for spelled, unit in [("mmol", Unit.MMOL), ("MMOL/L", Unit.MMOL), ("mg/dl", Unit.MGDL)]:
        write(path, f'version = 1\n[display]\nunit = "{spelled}"\n')
        assert load_settings(path).settings.unit is unit


@posix_only
def test_saved_file_is_owner_only_even_over_a_loose_one(path: Path) -> None:
    write(path, "version = 1\n")
    path.chmod(0o644)
    save_settings(one_person_settings(username="alice"), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_creates_the_folder_and_leaves_no_temp_files(path: Path) -> None:
    save_settings(Settings(), path)
    save_settings(customised(), path)
    assert [p.name for p in path.parent.iterdir()] == ["settings.toml"]


def test_a_save_clears_what_a_killed_save_left_but_not_a_save_in_progress(path: Path) -> None:
    save_settings(Settings(), path)
    killed = path.parent / ".settings.toml.abc123.tmp"
    killed.write_text("version = 1\n[acc", encoding="utf-8")
    an_hour_ago = killed.stat().st_mtime - 3600
    os.utime(killed, (an_hour_ago, an_hour_ago))
    running = path.parent / ".settings.toml.def456.tmp"  # another process, mid-save
    running.write_text("version = 1\n", encoding="utf-8")
    save_settings(customised(), path)
    assert sorted(p.name for p in path.parent.iterdir()) == [running.name, "settings.toml"]
    assert load_settings(path).settings == customised()


def test_failed_save_keeps_the_old_file_whole(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(one_person_settings(username="alice"), path)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_settings(customised(), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["settings.toml"]


def test_invalid_settings_are_not_saved(path: Path) -> None:
    with pytest.raises(SettingsError, match="Keep history") as info:
        save_settings(Settings(retention_days=0), path)
    assert info.value.problems == ["Keep history between 1 and 3650 days."]
    assert not path.exists()


def test_settings_without_an_account_may_be_saved(path: Path) -> None:
    save_settings(one_person_settings(region="jp"), path)
    assert load_settings(path).settings.first_person.source.region == "jp"


def test_repr_never_shows_the_account_id() -> None:
    assert ACCOUNT_ID not in repr(customised())
    assert ACCOUNT_ID not in repr(LoadResult(customised()))


def test_an_account_id_in_an_older_file_is_used_then_dropped_from_the_file(path: Path) -> None:
    write(path, f'version = 1\n[account]\nusername = "alice"\naccount_id = "{ACCOUNT_ID}"\n')
    loaded = load_settings(path)
    assert loaded.legacy_account_ids == {loaded.settings.first_person.id: ACCOUNT_ID}
    assert loaded.should_save
    assert loaded.problem is None
    save_settings(loaded.settings, path)
    assert ACCOUNT_ID not in path.read_text(encoding="utf-8")
    assert load_settings(path) == LoadResult(loaded.settings)


# --- passwords never live here ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'version = 1\npassword = "hunter2"\n[account]\nusername = "alice"\n',
        'version = 1\n[account]\nusername = "alice"\npassword = "hunter2"\n',
        'version = 1\n[account]\nusername = "alice"\nPassword = "hunter2"\n',
        'version = 1\n[account]\nusername = "alice"\n[account.old]\nmy_password = "hunter2"\n',
    ],
    ids=["top", "account", "capitalised", "nested"],
)
def test_a_password_in_the_file_is_ignored_reported_and_dropped(path: Path, text: str) -> None:
    write(path, text)
    result = load_settings(path)
    assert result.settings.first_person.source.username == "alice"
    assert result.problem is not None
    assert "password" in result.problem
    assert "hunter2" not in result.problem
    assert "hunter2" not in repr(result)
    assert result.should_save
    save_settings(result.settings, path)
    assert "hunter2" not in path.read_text(encoding="utf-8")


# --- tolerant load ---------------------------------------------------------------------------


def test_unknown_keys_and_tables_are_ignored(path: Path) -> None:
    write(
        path,
        'version = 1\ntheme = "dark"\n[account]\nusername = "alice"\nnickname = "Al"\n'
        "[alerts.low]\nthreshold = 80\nvibrate = true\n[alerts.made_up_kind]\nenabled = true\n"
        "[plugins]\nx = 1\n",
    )
    result = load_settings(path)
    assert result.problem is None
    assert result.settings.first_person.source.username == "alice"
    assert result.settings.first_person.alerts[AlertKind.LOW].threshold == 80


@pytest.mark.parametrize(
    ("line_table", "line", "key"),
    [
        ("general", 'retention_days = "forever"', "general.retention_days"),
        ("general", "retention_days = 0", "general.retention_days"),
        ("general", "retention_days = 12.5", "general.retention_days"),
        ("general", "start_at_login = 1", "general.start_at_login"),
        ("account", "username = 42", "account.username"),
        ("account", 'region = "eu"', "account.region"),
        ("display", 'unit = "stones"', "display.unit"),
        ("alerts.low", "threshold = true", "alerts.low.threshold"),
        ("alerts.low", "threshold = 900", "alerts.low.threshold"),
        ("alerts.low", "threshold = nan", "alerts.low.threshold"),
        ("alerts.low", 'enabled = "yes"', "alerts.low.enabled"),
        ("alerts.high", "repeat_minutes = -5", "alerts.high.repeat_minutes"),
        ("alerts.high", "persistence_minutes = 99999", "alerts.high.persistence_minutes"),
        ("alerts.no_data", "threshold = 1", "alerts.no_data.threshold"),
        ("advanced", 'share_url = "https://evil.example/ShareWebServices/Services/"', "share_url"),
    ],
)
def test_one_bad_value_falls_back_alone_and_is_named(
    path: Path, line_table: str, line: str, key: str
) -> None:
    tables: dict[str, dict[str, str]] = {
        "account": {"region": 'region = "ous"', "username": 'username = "alice"'},
        "display": {"unit": 'unit = "mmol/L"'},
    }
    tables.setdefault(line_table, {})[line.split(" = ")[0]] = line
    write(
        path,
        "version = 1\n"
        + "".join(
            f"[{name}]\n" + "\n".join(lines.values()) + "\n" for name, lines in tables.items()
        ),
    )
    result = load_settings(path)
    assert result.problem is not None
    # A version-1 file's account and alerts are the first person's in version 2.
    named = key.replace("account.", "people[1].share.")
    named = "people[1]." + named if named.startswith("alerts.") else named
    assert named in result.problem
    assert "default" in result.problem
    loaded = result.settings
    field = key.split(".")[-1]
    account = {"region": "ous", "username": "alice"}
    if line_table == "account":
        account[field] = getattr(ShareSource(), field)
    expected = one_person_settings(
        region=account["region"],
        username=account["username"],
        unit=Unit.MGDL if line_table == "display" else Unit.MMOL,
    )
    assert without_ids(loaded) == without_ids(expected)
    assert validate(loaded, require_username=False) == []


def test_a_section_that_is_not_a_table_is_reported(path: Path) -> None:
    write(path, 'version = 1\naccount = "alice"\nalerts = 5\n[general]\nretention_days = 10\n')
    result = load_settings(path)
    assert result.problem is not None
    assert "people[1].share" in result.problem  # the version-1 account table
    assert "people[1].alerts" in result.problem
    assert result.settings.retention_days == 10
    assert result.settings.first_person.source == ShareSource()
    assert result.settings.first_person.alerts == AlertSettings()


def test_thresholds_out_of_order_fall_back_to_default_thresholds(path: Path) -> None:
    write(
        path,
        "version = 1\n[alerts.low]\nthreshold = 260\nsound = true\n"
        "[alerts.high]\nthreshold = 200\n",
    )
    result = load_settings(path)
    assert result.problem is not None
    assert "not in order" in result.problem
    alerts = result.settings.first_person.alerts
    assert alerts.thresholds() == AlertSettings().thresholds()
    assert alerts[AlertKind.LOW].sound  # the rest of the kind's settings survive


def test_urgent_low_stays_on_and_capped_whatever_the_file_says(path: Path) -> None:
    write(path, "version = 1\n[alerts.urgent_low]\nenabled = false\nsnooze_cap_minutes = 240\n")
    urgent_low = load_settings(path).settings.first_person.alerts[AlertKind.URGENT_LOW]
    assert urgent_low.enabled
    assert urgent_low.snooze_cap == timedelta(minutes=30)


def test_usernames_are_trimmed_and_account_ids_blank_means_none(path: Path) -> None:
    write(path, 'version = 1\n[account]\nusername = "  alice@example.com "\naccount_id = ""\n')
    result = load_settings(path)
    assert result.settings.first_person.source.username == "alice@example.com"
    assert result.legacy_account_ids == {}


def test_loopback_share_url_is_kept(path: Path) -> None:
    url = "http://localhost:9000/ShareWebServices/Services/"
    write(path, f'version = 1\n[advanced]\nshare_url = "{url}"\n')
    assert load_settings(path).settings.first_person.source.share_url == url


# --- versions ------------------------------------------------------------------------------


def test_version_0_file_is_migrated(path: Path) -> None:
    write(path, 'units = "mmol"\n[account]\nregion = "jp"\nusername = "alice"\n')
    result = load_settings(path)
    assert result.problem is None
    assert result.should_save
    assert without_ids(result.settings) == without_ids(
        one_person_settings(region="jp", username="alice", unit=Unit.MMOL)
    )
    save_settings(result.settings, path)
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document["version"] == SETTINGS_VERSION
    assert "units" not in document
    assert load_settings(path) == LoadResult(result.settings)


def test_version_0_with_mgdl(path: Path) -> None:
    write(path, 'units = "mgdl"\n')
    assert load_settings(path).settings.unit is Unit.MGDL


def test_newer_file_loads_what_is_known_and_says_so(path: Path) -> None:
    write(
        path,
        'version = 7\nhologram = true\n[[people]]\nname = "Al"\n[people.share]\nregion = "ous"\n'
        'username = "alice"\n[people.alerts.low]\nthreshold = 80\n'
        "[people.alerts.low.schedule]\nnight = 65\n",
    )
    result = load_settings(path)
    assert result.problem is not None
    assert "newer" in result.problem
    assert not result.should_save  # do not clobber the newer app's file on our own
    assert result.settings.first_person.source.region == "ous"
    assert result.settings.first_person.alerts[AlertKind.LOW].threshold == 80


def test_a_nonsense_version_is_reported(path: Path) -> None:
    write(path, 'version = "one"\n[account]\nusername = "alice"\n')
    result = load_settings(path)
    assert result.problem is not None
    assert "version" in result.problem
    assert result.settings.first_person.source.username == "alice"


# --- unreadable files ----------------------------------------------------------------------


def test_corrupt_file_is_kept_aside_and_the_sign_in_survives(path: Path) -> None:
    text = 'version = 1\n[account]\nregion = "ous"\nusername = "alice@example.com"\n[display\n'
    write(path, text)
    result = load_settings(path, now=NOW)
    backup = path.with_name("settings.toml.corrupt-20240506T070809Z")
    assert result.backup == backup
    assert backup.read_text(encoding="utf-8") == text
    assert result.problem is not None
    assert result.problem.startswith(
        f"Your settings file was unreadable; it was kept as {backup} and defaults are in use."
    )
    assert without_ids(result.settings) == without_ids(
        one_person_settings(region="ous", username="alice@example.com")
    )
    assert result.should_save
    save_settings(result.settings, path)
    assert load_settings(path) == LoadResult(result.settings)


def test_corrupt_file_twice_in_a_second_keeps_both(path: Path) -> None:
    write(path, "= broken")
    first = load_settings(path, now=NOW).backup
    write(path, "= broken again")
    second = load_settings(path, now=NOW).backup
    assert first is not None
    assert second is not None
    assert first != second
    assert second.read_text(encoding="utf-8") == "= broken again"


def test_corrupt_file_without_an_account_gives_plain_defaults(path: Path) -> None:
    write(path, "\x00\x01 not toml at all [[[")
    result = load_settings(path, now=NOW)
    assert result.settings == Settings()
    assert result.backup is not None
    assert result.problem is not None
    assert "recovered" not in result.problem


def test_file_that_is_not_utf8_is_treated_as_corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b'[account]\nregion = "jp"\nusername = "bob"\n\xff\xfe\xfa')
    result = load_settings(path, now=NOW)
    assert result.backup is not None
    assert without_ids(result.settings) == without_ids(
        one_person_settings(region="jp", username="bob")
    )


def test_unreadable_path_gives_defaults_and_a_message(path: Path) -> None:
    path.mkdir(parents=True)  # a folder where the file should be
    result = load_settings(path)
    assert result.settings == Settings()
    assert result.problem is not None
    assert "could not be read" in result.problem
    assert path.is_dir()


def test_recover_account_understands_toml_strings() -> None:
    text = 'region = \'JP\'\nusername = "a\\"b"\nusername = "second"\n[[[\n'
    assert recover_account(text) == ("jp", 'a"b')
    assert recover_account('region = "mars"\nusername = 5\n') == (None, None)
    assert recover_account("") == (None, None)


# --- validation ----------------------------------------------------------------------------


def test_default_settings_need_only_a_username() -> None:
    assert validate(Settings()) == [
        "Enter the Dexcom username, e-mail or phone number of the person who wears the sensor."
    ]
    assert validate(Settings(), require_username=False) == []
    assert validate(customised()) == []


def test_validation_messages_are_plain() -> None:
    bad = one_person_settings(
        region="eu",
        username=" alice",
        retention_days=4000,
        share_url="https://example.com/ShareWebServices/Services/",
    )
    assert validate(bad) == [
        "Choose a region: United States, Outside the US or Japan.",
        "The username must not start or end with spaces.",
        "A custom Share address must point to this computer (loopback).",
        "Keep history between 1 and 3650 days.",
    ]


def test_threshold_order_and_bounds_messages() -> None:
    assert threshold_problems(55, 70, 250, 300) == []
    assert threshold_problems(70, 70, 250, 300) == ["Urgent low must be below low."]
    assert threshold_problems(55, 260, 250, 240) == [
        "Low must be below high.",
        "High must be below urgent high.",
    ]
    assert threshold_problems(30, 70, 250, 450) == [
        "Urgent low must be between 40 and 400 mg/dL.",
        "Urgent high must be between 40 and 400 mg/dL.",
    ]
    assert threshold_problems(30, 70, 250, 300, Unit.MMOL) == [
        "Urgent low must be between 2.2 and 22.2 mmol/L."
    ]


def test_only_enabled_thresholds_are_held_in_order() -> None:
    urgent_high_off = (True, True, True, False)
    assert threshold_problems(55, 70, 320, 300, enabled=urgent_high_off) == []
    assert threshold_problems(55, 70, 320, 300) == ["High must be below urgent high."]
    low_off = (True, False, True, True)
    assert threshold_problems(75, 70, 250, 300, enabled=low_off) == []
    assert threshold_problems(55, 300, 250, 300, enabled=low_off) == []
    assert threshold_problems(55, 70, 60, 300, enabled=(True, True, False, True)) == []
    assert threshold_problems(55, 70, 400, 300, enabled=urgent_high_off) == [
        "Leave room between the thresholds for the turned-off ones (urgent high): move the "
        "enabled thresholds further apart."
    ]
    still_bounded = threshold_problems(55, 70, 250, 450, enabled=urgent_high_off)
    assert still_bounded == ["Urgent high must be between 40 and 400 mg/dL."]


def test_settings_with_high_above_a_turned_off_urgent_high_are_saved_and_loaded(
    path: Path,
) -> None:
    alerts = AlertSettings().with_kind(
        AlertKind.HIGH, replace(AlertSettings()[AlertKind.HIGH], threshold=320)
    )
    settings = one_person_settings(username="alice", alerts=alerts)
    assert validate(settings) == []
    save_settings(settings, path)
    loaded = load_settings(path)
    assert loaded.problem is None
    assert loaded.settings.first_person.alerts[AlertKind.HIGH].threshold == 320


def test_a_rate_out_of_range_is_described_in_the_chosen_unit() -> None:
    alerts = AlertSettings().with_kind(
        AlertKind.RISING_FAST, KindConfig(True, 12, None, False, timedelta(hours=1))
    )
    problems = validate(one_person_settings(username="alice", unit=Unit.MMOL, alerts=alerts))
    assert problems == ["Rising fast must be a rate between 0.06 and 0.55 mmol/L per minute."]


def test_an_old_file_without_a_sound_key_gets_the_new_default_and_one_with_it_keeps_it(
    path: Path,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("version = 1\n[alerts.low]\nthreshold = 75\n", encoding="utf-8")
    assert (
        load_settings(path).settings.first_person.alerts[AlertKind.LOW].sound
    )  # the new default: a chime
    path.write_text("version = 1\n[alerts.low]\nsound = false\n", encoding="utf-8")
    assert (
        not load_settings(path).settings.first_person.alerts[AlertKind.LOW].sound
    )  # the person's choice


def test_other_alert_kinds_are_validated() -> None:
    alerts = (
        AlertSettings()
        .with_kind(AlertKind.FALLING_FAST, KindConfig(True, 0, None, False, timedelta(hours=1)))
        .with_kind(AlertKind.URGENT_LOW_SOON, KindConfig(True, 500, None, True, timedelta(hours=1)))
        .with_kind(AlertKind.NO_DATA, KindConfig(True, 2, timedelta(0), False, timedelta(hours=1)))
    )
    problems = validate(one_person_settings(username="alice", alerts=alerts))
    assert problems == [
        "Urgent low soon must be between 40 and 400 mg/dL.",
        "Falling fast must be a rate between 1 and 10 mg/dL per minute.",
        "No data must be between 10 and 1440 minutes without a reading.",
        "No data: repeat must be between 1 and 1440 minutes.",
    ]
    too_long = timedelta(days=2)
    high = KindConfig(True, 250, timedelta(hours=1), False, too_long, too_long)
    problems = validate(
        one_person_settings(
            username="alice", alerts=AlertSettings().with_kind(AlertKind.HIGH, high)
        )
    )
    assert problems == [
        "High: snooze limit must be at most 1440 minutes.",
        "High: delay must be at most 1440 minutes.",
    ]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8080/ShareWebServices/Services/", True),
        ("http://127.5.6.7:80/ShareWebServices/Services/", True),
        ("http://[::1]:8080/ShareWebServices/Services/", True),
        ("https://localhost:8443/ShareWebServices/Services/", True),
        # Loopback, but the client could never poll them (one rule now: share/urls.py).
        ("http://127.5.6.7/", False),
        ("http://[::1]:8080/", False),
        ("https://localhost/", False),
        ("https://share2.dexcom.com/ShareWebServices/Services/", False),
        ("http://127.0.0.1.evil.example/", False),
        ("ftp://127.0.0.1/", False),
        ("http://127.0.0.1:notaport/", False),
        ("127.0.0.1:8080", False),
        ("", False),
    ],
)
def test_only_loopback_share_urls(url: str, ok: bool) -> None:
    assert is_loopback_url(url) is ok


# --- properties ----------------------------------------------------------------------------

no_surrogates = st.characters(codec="utf-8")
KNOWN_KEYS = [
    "version",
    "units",
    "password",
    "account",
    "region",
    "username",
    "account_id",
    "display",
    "unit",
    "alerts",
    "general",
    "start_at_login",
    "retention_days",
    "advanced",
    "share_url",
    "enabled",
    "threshold",
    "repeat_minutes",
    "sound",
    "snooze_cap_minutes",
    "persistence_minutes",
    *[kind.value for kind in AlertKind],
]
toml_keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(no_surrogates, max_size=8))
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(no_surrogates, max_size=20),
    st.sampled_from(["us", "ous", "jp", "mmol", "mg/dL", "http://127.0.0.1:1/"]),
    st.datetimes(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(toml_keys, children, max_size=6)
    ),
    max_leaves=25,
)
toml_documents = st.dictionaries(toml_keys, toml_values, max_size=8)


def load_text(data: bytes) -> LoadResult:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "settings.toml"
        target.write_bytes(data)
        return load_settings(target, now=NOW)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_any_bytes_never_break_loading(data: bytes) -> None:
    result = load_text(data)
    assert validate(result.settings, require_username=False) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_documents)
def test_any_toml_document_loads_into_valid_settings(document: dict[str, Any]) -> None:
    result = load_text(tomli_w.dumps(document).encode("utf-8"))
    assert result.backup is None
    assert validate(result.settings, require_username=False) == []
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "settings.toml"
        save_settings(result.settings, target)
        again = load_settings(target)
    assert again == LoadResult(result.settings)  # an old file's account id is never written


@settings(max_examples=100, deadline=None)
@given(
    region=st.sampled_from(["us", "ous", "jp"]),
    username=st.text(no_surrogates, max_size=30).map(str.strip),
    unit=st.sampled_from(Unit),
    retention=st.integers(1, 3650),
    thresholds=st.lists(st.integers(40, 400), min_size=4, max_size=4, unique=True).map(sorted),
    low_repeat=st.one_of(st.none(), st.integers(1, 1440).map(lambda m: timedelta(minutes=m))),
    rate=st.floats(1, 10),
)
def test_any_valid_settings_round_trip(
    region: str,
    username: str,
    unit: Unit,
    retention: int,
    thresholds: list[int],
    low_repeat: timedelta | None,
    rate: float,
) -> None:
    kinds = dict(AlertSettings().kinds)
    for kind, value in zip(
        (AlertKind.URGENT_LOW, AlertKind.LOW, AlertKind.HIGH, AlertKind.URGENT_HIGH),
        thresholds,
        strict=True,
    ):
        kinds[kind] = replace(kinds[kind], threshold=value)
    kinds[AlertKind.LOW] = replace(kinds[AlertKind.LOW], repeat=low_repeat)
    kinds[AlertKind.FALLING_FAST] = replace(kinds[AlertKind.FALLING_FAST], threshold=rate)
    original = one_person_settings(
        region=region,
        username=username,
        unit=unit,
        alerts=AlertSettings(kinds),
        retention_days=retention,
    )
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "settings.toml"
        save_settings(original, target)
        assert load_settings(target) == LoadResult(original)
