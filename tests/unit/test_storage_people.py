"""People: the model, the rules of the list, their keyring entries, the version-1 file."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.units import Unit
from cgmtray.storage import people
from cgmtray.storage.credentials import MemoryCredentialStore
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.paths import HISTORY_DB_NAME
from cgmtray.storage.people import (
    MAX_PEOPLE,
    PALETTE,
    PeopleError,
    Person,
    ShareSource,
    new_person,
)
from cgmtray.storage.safe_open import UnsafeFileError
from cgmtray.storage.settings import (
    LoadResult,
    Settings,
    SettingsError,
    keep_copy,
    load_settings,
    save_settings,
    validate,
)

ACCOUNT_ID = "7d3a2f3c-1111-4c4c-9e9e-123456789abc"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v1"


def family(*usernames: str) -> Settings:
    settings = Settings()
    for username in usernames:
        person = new_person(settings.people, ShareSource("us", username))
        settings = people.add_person(settings, person)
    return settings


# --- the model -----------------------------------------------------------------------------


def test_a_new_person_is_named_labelled_and_coloured_from_their_login() -> None:
    sam = new_person((), ShareSource("ous", "sam.parent@example.com"))
    assert (sam.name, sam.label, sam.colour) == ("sam.parent", "S", PALETTE[0])
    assert sam.history_file == HISTORY_DB_NAME  # the first keeps the history file of old
    assert people.is_id(sam.id)
    alex = new_person((sam,), ShareSource("us", "+11234567890"), name="alex")
    assert (alex.name, alex.label, alex.colour) == ("alex", "A", PALETTE[1])
    assert alex.history_file == f"history-{alex.id}.sqlite3"
    assert alex.id != sam.id
    assert new_person((), ShareSource("us", "@odd")).name == "Me"


def test_colours_follow_the_list_order_from_a_colour_blind_safe_palette() -> None:
    settings = family(*(f"user{n}" for n in range(MAX_PEOPLE)))
    assert [p.colour for p in settings.people] == list(PALETTE)
    assert len({p.history_file for p in settings.people}) == MAX_PEOPLE


def test_an_id_is_safe_inside_a_file_name() -> None:
    for _ in range(50):
        person_id = people.new_id()
        assert people.is_id(person_id)
        assert people.is_history_file(people.history_file_for(person_id))
    assert not people.is_id("../../etc")
    assert not people.is_history_file("../history.sqlite3")


# --- the list's rules ----------------------------------------------------------------------


def test_at_most_ten_people() -> None:
    settings = family(*(f"user{n}" for n in range(MAX_PEOPLE)))
    eleventh = new_person(settings.people, ShareSource("us", "one-too-many"))
    with pytest.raises(PeopleError, match="at most 10 people"):
        people.add_person(settings, eleventh)


def test_the_same_dexcom_account_twice_is_refused() -> None:
    settings = family("sam")
    again = new_person(settings.people, ShareSource("us", " SAM "), name="Sam again")
    with pytest.raises(PeopleError) as info:
        people.add_person(settings, again)
    assert info.value.problems == [
        "Sam again and sam have the same Dexcom account; each account may be followed once."
    ]
    other_region = new_person(settings.people, ShareSource("ous", "sam"), name="Sam abroad")
    assert len(people.add_person(settings, other_region).people) == 2


def test_an_empty_name_is_refused_in_plain_words() -> None:
    settings = family("sam")
    with pytest.raises(PeopleError, match=r"Enter a name for each person\."):
        people.rename_person(settings, settings.people[0].id, "   ")


def test_rename_moves_the_label_with_the_initial_unless_one_is_chosen() -> None:
    settings = family("sam")
    person_id = settings.people[0].id
    renamed = people.rename_person(settings, person_id, "Robin")
    assert (renamed.people[0].name, renamed.people[0].label) == ("Robin", "R")
    labelled = people.rename_person(settings, person_id, "Robin", label="Rb")
    assert labelled.people[0].label == "Rb"
    with pytest.raises(PeopleError, match="1 or 2 characters"):
        people.rename_person(settings, person_id, "Robin", label="Rob")
    assert renamed.people[0].id == person_id  # the id never changes


def test_reorder_needs_every_person_once() -> None:
    settings = family("a", "b", "c")
    ids = [p.id for p in settings.people]
    reordered = people.reorder_people(settings, [ids[2], ids[0], ids[1]])
    assert [p.source.username for p in reordered.people] == ["c", "a", "b"]
    with pytest.raises(ValueError, match="every person"):
        people.reorder_people(settings, ids[:2])


def test_validation_of_settings_covers_the_people() -> None:
    settings = family("sam")
    twin = dataclasses.replace(
        settings.people[0], id=people.new_id(), history_file="history-0123456789ab.sqlite3"
    )
    doubled = dataclasses.replace(settings, people=(*settings.people, twin))
    assert "each account may be followed once" in " ".join(validate(doubled))
    with pytest.raises(SettingsError):
        save_settings(doubled, Path("/nonexistent/never-written.toml"))


def test_remove_forgets_the_keyring_entries_and_the_history_if_asked(tmp_path: Path) -> None:
    settings = family("sam", "alex")
    sam, alex = settings.people
    store = MemoryCredentialStore()
    for person in settings.people:
        store.set("us", person.source.username, "pw")
        store.set_account_id("us", person.source.username, ACCOUNT_ID)
        (tmp_path / person.history_file).write_bytes(b"readings")

    kept = people.remove_person(settings, alex.id, store, keep_history=True, data_dir=tmp_path)
    assert kept.people == (sam,)
    assert store.get("us", "alex") is None
    assert store.get_account_id("us", "alex") is None
    assert (tmp_path / alex.history_file).exists()  # the caller chose to keep it
    assert store.get("us", "sam") == "pw"  # nobody else's entries

    gone = people.remove_person(kept, sam.id, store, keep_history=False, data_dir=tmp_path)
    assert gone.people == ()
    assert store.get("us", "sam") is None
    assert not (tmp_path / sam.history_file).exists()


# --- the account id: one keeper --------------------------------------------------------------


def test_keep_account_id_keeps_it_only_next_to_a_password_unless_told() -> None:
    store = MemoryCredentialStore()
    source = ShareSource("us", "sam")
    people.keep_account_id(store, source, ACCOUNT_ID)
    assert people.read_account_id(store, source) is None  # no password kept: no id either
    people.keep_account_id(store, source, ACCOUNT_ID, only_with_password=False)
    assert people.read_account_id(store, source) == ACCOUNT_ID
    people.keep_account_id(store, source, None, forget_unknown=False)
    assert people.read_account_id(store, source) == ACCOUNT_ID
    people.keep_account_id(store, source, None)
    assert people.read_account_id(store, source) is None


def test_keep_account_id_never_raises_for_a_bad_id() -> None:
    store = MemoryCredentialStore()
    source = ShareSource("us", "sam")
    store.set("us", "sam", "pw")
    people.keep_account_id(store, source, "not-a-uuid")
    assert people.read_account_id(store, source) is None


def test_the_settings_dialog_edits_the_first_person_or_adds_one() -> None:
    alerts = AlertSettings().with_kind(
        AlertKind.LOW, dataclasses.replace(AlertSettings()[AlertKind.LOW], threshold=80)
    )
    first = people.with_first_person(
        Settings(), region="jp", username="kai@example.com", share_url=None, alerts=alerts
    )
    (kai,) = first.people
    assert (kai.name, kai.source.region, kai.alerts) == ("kai", "jp", alerts)
    assert kai.history_file == HISTORY_DB_NAME
    moved = people.with_first_person(
        first, region="us", username="kai@example.com", share_url=None, alerts=AlertSettings()
    )
    assert moved.people[0].id == kai.id
    assert moved.people[0].source.region == "us"
    nobody = people.with_first_person(
        Settings(), region="us", username="", share_url=None, alerts=alerts
    )
    assert nobody.people == ()


# --- the file before people --------------------------------------------------------------------


def test_the_version_1_fixture_opens_as_one_person_with_everything_kept(tmp_path: Path) -> None:
    settings_file = tmp_path / "config" / "settings.toml"
    settings_file.parent.mkdir()
    shutil.copyfile(FIXTURE / "settings.toml", settings_file)
    shutil.copyfile(FIXTURE / "history.sqlite3", tmp_path / HISTORY_DB_NAME)

    loaded = people.load(settings_file)
    assert loaded.problem is None
    assert loaded.should_save  # written in version 2 at the next save
    settings = loaded.settings
    (person,) = settings.people
    assert settings.first_person == person
    assert person.source == ShareSource("ous", "sam.parent@example.com")
    assert (person.name, person.label) == ("sam.parent", "S")
    assert (settings.unit, settings.retention_days, settings.tray_icons) == (
        Unit.MMOL,
        90,
        "auto",
    )
    # The alerts as they were (tests/fixtures/make_v1_fixture.py changed these).
    alerts = person.alerts
    assert alerts[AlertKind.LOW].threshold == 75
    assert alerts[AlertKind.LOW].repeat == timedelta(minutes=20)
    assert alerts[AlertKind.HIGH].threshold == 220
    assert alerts[AlertKind.HIGH].sound
    assert alerts[AlertKind.HIGH].persistence.total_seconds() == 30 * 60
    assert (alerts[AlertKind.URGENT_HIGH].enabled, alerts[AlertKind.URGENT_HIGH].threshold) == (
        True,
        320,
    )
    assert alerts[AlertKind.RISING_FAST].threshold == 2.5
    assert alerts[AlertKind.RISING_FAST].repeat is None
    assert alerts[AlertKind.NO_DATA].threshold == 45
    assert alerts[AlertKind.NO_DATA].snooze_cap.total_seconds() == 2 * 3600
    # Every reading, in the store it always was in (nothing copied).
    assert person.history_file == HISTORY_DB_NAME
    with HistoryStore(tmp_path / person.history_file, read_only=True) as store:
        assert store.count() == 400
    # No password asked: the keyring entry of before (region + username) is found.
    keyring = MemoryCredentialStore()
    keyring.set("ous", "sam.parent@example.com", "the-password")
    assert people.read_password(keyring, person.source) == "the-password"

    people.save(settings, settings_file)
    assert load_settings(settings_file) == LoadResult(settings)


def test_a_person_table_with_damaged_fields_is_repaired_on_load(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(
        "version = 2\n"
        '[[people]]\nid = "../x"\nname = ""\nlabel = "toolong"\ncolour = "red"\n'
        'history_file = "/etc/passwd"\n[people.share]\nusername = "sam"\n'
        '[[people]]\nname = "Twin"\n[people.share]\nusername = "sam"\n'
        "[[people]]\n"
        '[[people]]\nname = "Kai"\n[people.share]\nregion = "jp"\nusername = "kai"\n'
        "people_extra = 1\n",
        encoding="utf-8",
    )
    loaded = load_settings(settings_file)
    assert loaded.problem is not None
    assert "same Dexcom account" in loaded.problem
    sam, nobody, kai = loaded.settings.people
    assert people.is_id(sam.id)
    assert (sam.name, sam.label, sam.colour) == ("sam", "S", PALETTE[0])
    assert sam.history_file == f"history-{sam.id}.sqlite3"
    assert nobody.source.username == ""
    assert (kai.name, kai.source.region) == ("Kai", "jp")
    assert validate(loaded.settings, require_username=False) == []
    assert loaded.should_save


def test_too_many_people_in_a_file_keeps_the_first_ten(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    tables = "".join(
        f'[[people]]\nname = "P{n}"\n[people.share]\nusername = "user{n}"\n' for n in range(12)
    )
    settings_file.write_text("version = 2\n" + tables, encoding="utf-8")
    loaded = load_settings(settings_file)
    assert [p.name for p in loaded.settings.people] == [f"P{n}" for n in range(10)]
    assert loaded.problem is not None
    assert "more than 10 people" in loaded.problem


def test_tray_icons_setting_round_trips_and_bad_values_fall_back(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    for choice in ("auto", "per_person", "together"):
        save_settings(Settings(tray_icons=choice), settings_file)
        assert load_settings(settings_file).settings.tray_icons == choice
    settings_file.write_text('version = 2\n[general]\ntray_icons = "many"\n', encoding="utf-8")
    loaded = load_settings(settings_file)
    assert loaded.settings.tray_icons == "auto"
    assert loaded.problem is not None
    assert "general.tray_icons" in loaded.problem
    assert validate(Settings(tray_icons="many"), require_username=False) == [
        'Tray icons must be "auto", "per_person" or "together".'
    ]


def test_a_person_is_frozen() -> None:
    person = new_person((), ShareSource("us", "sam"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.name = "x"  # type: ignore[misc]
    assert isinstance(person, Person)


def test_unknown_keys_in_a_version_2_file_are_ignored_quietly(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(
        'version = 2\ntheme = "dark"\n[general]\nretention_days = 30\nvibrate = true\n'
        '[[people]]\nid = "0123456789ab"\nname = "Sam"\nnickname = "S."\n'
        '[people.share]\nregion = "jp"\nusername = "sam"\nport = 1\n'
        "[people.alerts.low]\nthreshold = 80\nvibrate = true\n[people.alerts.made_up]\nx = 1\n",
        encoding="utf-8",
    )
    loaded = load_settings(settings_file)
    assert loaded.problem is None
    assert not loaded.should_save  # nothing to fix: the file is left as the person wrote it
    (sam,) = loaded.settings.people
    assert (sam.id, sam.name, sam.source.region) == ("0123456789ab", "Sam", "jp")
    assert sam.alerts[AlertKind.LOW].threshold == 80
    assert loaded.settings.retention_days == 30


def test_a_symlinked_version_2_file_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    save_settings(family("sam"), real)
    link = tmp_path / "settings.toml"
    link.symlink_to(real)
    loaded = load_settings(link)
    assert loaded.ignored
    assert loaded.settings.people == ()
    with pytest.raises(UnsafeFileError):
        save_settings(family("alex"), link)
    assert load_settings(real).settings.first_person.source.username == "sam"


def test_names_and_labels_made_from_odd_logins_load_back_the_same(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    for username in ("a" * 39 + " b" + "c" * 20, "ﬃx@example.com", "@x", "ß"):
        settings = family(username)
        person = settings.people[0]
        assert person.name == person.name.strip()
        assert 1 <= len(person.label) <= 2
        save_settings(settings, settings_file)
        assert load_settings(settings_file) == LoadResult(settings)


def test_a_person_left_out_on_load_is_counted_unnamed_and_the_file_can_be_kept(
    tmp_path: Path,
) -> None:
    """A hand edit lists one account twice: the second is left out, the message says which by
    position (names stay out of the log it goes to), and a copy keeps the file as it was."""
    settings_file = tmp_path / "settings.toml"
    text = (
        "version = 2\n"
        '[[people]]\nname = "Sam"\n[people.share]\nusername = "sam"\n'
        '[[people]]\nname = "Mia Secretname"\n[people.share]\nusername = "sam"\n'
    )
    settings_file.write_text(text, encoding="utf-8")
    loaded = load_settings(settings_file)
    assert loaded.left_out == 1
    assert [person.name for person in loaded.settings.people] == ["Sam"]
    assert loaded.problem is not None
    assert "Person 2 in your settings file has the same Dexcom account" in loaded.problem
    assert "Secretname" not in loaded.problem
    assert loaded.should_save  # (no ids: they must be written)
    kept = keep_copy(settings_file, datetime(2026, 12, 4, 18, 0, tzinfo=UTC))
    assert kept is not None
    assert kept.name == "settings.toml.kept-20261204T180000Z"
    assert kept.read_text(encoding="utf-8") == text
    assert kept.stat().st_mode & 0o777 == 0o600
    assert load_settings(tmp_path / "missing.toml").left_out == 0
    assert keep_copy(tmp_path / "missing.toml") is None
