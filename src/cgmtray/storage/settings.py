"""Typed, versioned Settings in an editable TOML file: validation, atomic save, tolerant load."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import tomli_w

from cgmtray.domain.alert_config import (
    RANGE_KINDS,
    AlertKind,
    AlertSettings,
    KindConfig,
    place_ranges,
)
from cgmtray.domain.attention import TrayIcons
from cgmtray.domain.clock import require_aware_utc
from cgmtray.domain.readings import MAX_REAL_MGDL, MIN_REAL_MGDL
from cgmtray.domain.units import Unit, format_value, rate_range_text
from cgmtray.share.urls import EXAMPLE_SHARE_URL, is_share_url, share_url_problem
from cgmtray.storage.atomic import write_atomically
from cgmtray.storage.paths import HISTORY_DB_NAME
from cgmtray.storage.people import (
    DEFAULT_NAME,
    MAX_PEOPLE,
    PALETTE,
    Person,
    ShareSource,
    colour_for,
    default_label,
    history_file_for,
    is_colour,
    is_history_file,
    is_id,
    name_from_username,
    new_id,
    people_problems,
)
from cgmtray.storage.safe_open import TooLargeError, UnsafeFileError, check_not_link, read_capped

log = logging.getLogger(__name__)

#: The layout this code writes; older files are migrated on load.
SETTINGS_VERSION = 2

#: How the tray shows people: "auto" (one icon each up to three people, one for everyone beyond),
#: "per_person" or "together".
TRAY_ICONS = tuple(choice.value for choice in TrayIcons)

#: Region values as stored (the caller converts to share.regions.Region).
REGIONS = ("us", "ous", "jp")

MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
MAX_MINUTES = 24 * 60

_PRIVATE_FILE_MODE = 0o600

#: A real settings file is a few KB; a larger one is not parsed (a 100 MB TOML array takes
#: minutes): it is moved aside like an unreadable one and the defaults are used.
MAX_SETTINGS_BYTES: Final = 1024 * 1024

#: Alert kinds whose threshold is a glucose value in mg/dL.
GLUCOSE_KINDS = frozenset(
    {
        AlertKind.URGENT_LOW,
        AlertKind.URGENT_LOW_SOON,
        AlertKind.LOW,
        AlertKind.HIGH,
        AlertKind.URGENT_HIGH,
    }
)
#: Alert kinds whose threshold is a rate in mg/dL per minute.
RATE_KINDS = frozenset({AlertKind.FALLING_FAST, AlertKind.RISING_FAST})

_T = TypeVar("_T")


#: Who `Settings.first_person` is before anyone is set up (never saved: it has no account).
NOBODY = Person(id="", name=DEFAULT_NAME, label=default_label(DEFAULT_NAME), colour=PALETTE[0])


@dataclass(frozen=True)
class Settings:
    """Everything the user can set. Never a password: that lives in the keyring only."""

    unit: Unit = Unit.MGDL
    start_at_login: bool = False
    retention_days: int = 365
    tray_icons: str = "auto"
    #: The people followed, in the order the person chose (storage.people owns the list).
    people: tuple[Person, ...] = ()

    @property
    def first_person(self) -> Person:
        """The person the app, the settings dialog and `cgm-tray now` follow until the
        multi-person runtime lands; NOBODY (no account) before anyone is set up."""
        return self.people[0] if self.people else NOBODY


def one_person_settings(
    *,
    region: str = "us",
    username: str = "",
    alerts: AlertSettings | None = None,
    share_url: str | None = None,
    name: str | None = None,
    unit: Unit = Unit.MGDL,
    start_at_login: bool = False,
    retention_days: int = 365,
    tray_icons: str = "auto",
    person_id: str | None = None,
) -> Settings:
    """Settings following one person (the layout before people), e.g. for tests and the demo.

    `person_id` defaults to a fresh random id."""
    shown = (name or "").strip() or name_from_username(username)
    person = Person(
        id=person_id if person_id is not None else new_id(),
        name=shown,
        label=default_label(shown),
        colour=PALETTE[0],
        source=ShareSource(region=region, username=username, share_url=share_url),
        alerts=alerts if alerts is not None else AlertSettings(),
        history_file=HISTORY_DB_NAME,
    )
    return Settings(
        unit=unit,
        start_at_login=start_at_login,
        retention_days=retention_days,
        tray_icons=tray_icons,
        people=(person,),
    )


@dataclass(frozen=True)
class LoadResult:
    """What load_settings found: the settings to use and, if any, what the user should be told."""

    settings: Settings
    #: Plain sentences for the user (several joined by spaces), or None when all was well.
    problem: str | None = None
    #: Where an unreadable file was kept aside, if it was.
    backup: Path | None = None
    #: True when the file should be rewritten now (migrated, held a password, or was replaced).
    should_save: bool = False
    #: True when the file was not used at all (unreadable, a symlink, too large: defaults are in
    #: use), which the person must see, not only the log.
    ignored: bool = False
    #: How many people the file listed that are not followed (the same account twice, more than
    #: ten, not a table): the person must see it, and the file is copied before it is rewritten.
    left_out: int = 0
    #: Account ids an older file held, by person id: moved to the keyring, never written back.
    legacy_account_ids: dict[str, str] = field(default_factory=dict, repr=False)


class SettingsError(ValueError):
    """Settings that may not be saved; the message lists the plain validation messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


# ---------------------------------------------------------------------------------------------
# Validation


def threshold_range(kind: AlertKind) -> tuple[float, float]:
    """The allowed threshold of a kind, in its own unit (mg/dL, mg/dL/min or minutes)."""
    if kind in GLUCOSE_KINDS:
        return (MIN_REAL_MGDL, MAX_REAL_MGDL)
    if kind in RATE_KINDS:
        return (1, 10)
    if kind is AlertKind.NO_DATA:
        return (10, MAX_MINUTES)
    return (0, MAX_MINUTES)


def _glucose_bounds_text(unit: Unit) -> str:
    low = format_value(MIN_REAL_MGDL, unit)
    high = format_value(MAX_REAL_MGDL, unit)
    return f"between {low} and {high} {unit.label}"


def threshold_problems(
    urgent_low: float,
    low: float,
    high: float,
    urgent_high: float,
    unit: Unit = Unit.MGDL,
    *,
    enabled: tuple[bool, bool, bool, bool] = (True, True, True, True),
) -> list[str]:
    """Plain messages for glucose thresholds (mg/dL) as a person would enter them.

    Only enabled thresholds are held to the order urgent low < low < high < urgent high (`enabled`
    says which are on, in that order); a turned-off one only has to be a glucose value. Usable
    before an AlertSettings is built (which refuses what this refuses).
    """
    named = [("Urgent low", urgent_low), ("Low", low), ("High", high), ("Urgent high", urgent_high)]
    bounds = _glucose_bounds_text(unit)
    problems = [
        f"{title} must be {bounds}."
        for title, value in named
        if not MIN_REAL_MGDL <= value <= MAX_REAL_MGDL
    ]
    if problems:
        return problems
    active = [item for item, on in zip(named, enabled, strict=True) if on]
    for (lower_title, lower), (upper_title, upper) in itertools.pairwise(active):
        if not lower < upper:
            problems.append(f"{lower_title} must be below {upper_title.lower()}.")
    if not problems and place_ranges([round(v) for _, v in named], list(enabled)) is None:
        off = ", ".join(
            title.lower() for (title, _), on in zip(named, enabled, strict=True) if not on
        )
        problems.append(
            f"Leave room between the thresholds for the turned-off ones ({off}): "
            "move the enabled thresholds further apart."
        )
    return problems


def range_enabled(alerts: AlertSettings) -> tuple[bool, bool, bool, bool]:
    """Which of urgent low, low, high and urgent high are on (threshold_problems' `enabled`)."""
    urgent_low, low, high, urgent_high = (alerts[kind].enabled for kind in _RANGE_KINDS)
    return (urgent_low, low, high, urgent_high)


#: The four kinds whose thresholds bound the glucose ranges (checked by threshold_problems).
_RANGE_KINDS = RANGE_KINDS


def _kind_problems(kind: AlertKind, config: KindConfig, unit: Unit) -> list[str]:
    problems: list[str] = []
    low_bound, high_bound = threshold_range(kind)
    if kind in GLUCOSE_KINDS:
        if kind not in _RANGE_KINDS and not low_bound <= config.threshold <= high_bound:
            problems.append(f"{kind.title} must be {_glucose_bounds_text(unit)}.")
    elif kind in RATE_KINDS:
        if not low_bound <= config.threshold <= high_bound:
            problems.append(
                f"{kind.title} must be a rate {rate_range_text(low_bound, high_bound, unit)}."
            )
    elif kind is AlertKind.NO_DATA and not low_bound <= config.threshold <= high_bound:
        problems.append(
            f"{kind.title} must be between {low_bound:g} and {high_bound:g} minutes without a "
            "reading."
        )
    minute = timedelta(minutes=1)
    if config.repeat is not None and not minute <= config.repeat <= timedelta(minutes=MAX_MINUTES):
        problems.append(f"{kind.title}: repeat must be between 1 and {MAX_MINUTES} minutes.")
    if not timedelta(0) <= config.snooze_cap <= timedelta(minutes=MAX_MINUTES):
        problems.append(f"{kind.title}: snooze limit must be at most {MAX_MINUTES} minutes.")
    if not timedelta(0) <= config.persistence <= timedelta(minutes=MAX_MINUTES):
        problems.append(f"{kind.title}: delay must be at most {MAX_MINUTES} minutes.")
    return problems


def is_loopback_url(url: str) -> bool:
    """True for a Share URL override the client accepts (the one rule of `share.urls`)."""
    return is_share_url(url)


def validate(settings: Settings, *, require_username: bool = True) -> list[str]:
    """Plain messages for everything wrong with `settings`; empty when they may be saved.

    `require_username=False` accepts settings without an account yet (first run, demo).
    """
    problems: list[str] = []
    if require_username and not settings.first_person.source.username.strip():
        problems.append(
            "Enter the Dexcom username, e-mail or phone number of the person who wears the sensor."
        )
    for person in settings.people:
        for problem in source_problems(person.source) + alert_problems(
            person.alerts, settings.unit
        ):
            if problem not in problems:
                problems.append(problem)
    problems += people_problems(settings.people)
    if not MIN_RETENTION_DAYS <= settings.retention_days <= MAX_RETENTION_DAYS:
        problems.append(f"Keep history between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days.")
    if settings.tray_icons not in TRAY_ICONS:
        problems.append('Tray icons must be "auto", "per_person" or "together".')
    return problems


def source_problems(source: ShareSource) -> list[str]:
    """Plain messages for a person's Share account as entered (no username is allowed)."""
    problems: list[str] = []
    if source.region not in REGIONS:
        problems.append("Choose a region: United States, Outside the US or Japan.")
    if source.username != source.username.strip():
        problems.append("The username must not start or end with spaces.")
    if source.share_url is not None and (url_problem := share_url_problem(source.share_url)):
        problems.append(url_problem)
    return problems


def alert_problems(alerts: AlertSettings, unit: Unit = Unit.MGDL) -> list[str]:
    """Plain messages for a person's alert settings (values shown in `unit`)."""
    kinds = alerts.kinds
    problems = threshold_problems(
        kinds[AlertKind.URGENT_LOW].threshold,
        kinds[AlertKind.LOW].threshold,
        kinds[AlertKind.HIGH].threshold,
        kinds[AlertKind.URGENT_HIGH].threshold,
        unit,
        enabled=range_enabled(alerts),
    )
    for kind in AlertKind:
        problems += _kind_problems(kind, kinds[kind], unit)
    return problems


# ---------------------------------------------------------------------------------------------
# Saving


def _minutes(span: timedelta) -> int | float:
    minutes = span / timedelta(minutes=1)
    return int(minutes) if minutes.is_integer() else minutes


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _alerts_table(settings: AlertSettings) -> dict[str, Any]:
    alerts: dict[str, Any] = {}
    for kind in AlertKind:
        config = settings.kinds[kind]
        alerts[kind.value] = {
            "enabled": config.enabled,
            "threshold": _number(config.threshold),
            "repeat_minutes": 0 if config.repeat is None else _minutes(config.repeat),
            "sound": config.sound,
            "snooze_cap_minutes": _minutes(config.snooze_cap),
            "persistence_minutes": _minutes(config.persistence),
        }
    return alerts


def _person_table(person: Person) -> dict[str, Any]:
    share: dict[str, Any] = {"region": person.source.region, "username": person.source.username}
    if person.source.share_url is not None:
        share["share_url"] = person.source.share_url
    return {
        "id": person.id,
        "name": person.name,
        "label": person.label,
        "colour": person.colour,
        "history_file": person.history_file,
        "share": share,
        "alerts": _alerts_table(person.alerts),
    }


def to_toml_dict(settings: Settings) -> dict[str, Any]:
    """The settings as the TOML document's tables (the layout a person may edit)."""
    return {
        "version": SETTINGS_VERSION,
        "display": {"unit": settings.unit.value},
        "general": {
            "start_at_login": settings.start_at_login,
            "retention_days": settings.retention_days,
            "tray_icons": settings.tray_icons,
        },
        "people": [_person_table(person) for person in settings.people],
    }


_HEADER = (
    "# CGM Tray settings. You may edit this file while CGM Tray is not running.\n"
    "# The password is never stored here: it lives in the system keyring.\n"
    "# repeat_minutes = 0 means the alert is not repeated.\n"
    "# Each [[people]] table is one person followed, in the order shown; their id and\n"
    "# history_file name their history store: leave those two as they are.\n\n"
)


#: A temp file from a save older than this is a leftover of a killed process.
STALE_TEMP_AGE_S: Final = 600.0


def save_settings(settings: Settings, path: Path) -> None:
    """Writes `settings` atomically (temp file, fsync, rename); the file is owner-only on POSIX.

    Raises SettingsError if they are not valid (an account is not required).
    """
    problems = validate(settings, require_username=False)
    if problems:
        raise SettingsError(problems)
    check_not_link(path)  # UnsafeFileError: a symlinked settings file is neither read nor replaced
    data = (_HEADER + tomli_w.dumps(to_toml_dict(settings))).encode("utf-8")
    _write_atomically(path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, data, mode=_PRIVATE_FILE_MODE)
    if os.name == "posix":
        _fsync_directory(path.parent)
    _remove_stale_temps(path)


def _remove_stale_temps(path: Path) -> None:
    """Temp files a save killed mid-write left behind (never read as settings), once they are
    too old to belong to a save still running in another process."""
    cutoff = time.time() - STALE_TEMP_AGE_S
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------------------------------------
# Loading


def _migrate_v0_to_v1(document: dict[str, Any]) -> dict[str, Any]:
    """v0 (no `version` key) kept the unit at the top level: `units = "mmol"` or "mgdl"."""
    migrated = dict(document)
    units = migrated.pop("units", None)
    if isinstance(units, str):
        display = migrated.get("display")
        display = dict(display) if isinstance(display, dict) else {}
        display.setdefault("unit", units)
        migrated["display"] = display
    migrated["version"] = 1
    return migrated


def _migrate_v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
    """v1 held one account at the top level (account, alerts, advanced.share_url); v2 holds
    people. The one person keeps the history file and keyring entries (region + username) of
    v1, so nothing is copied and no password is asked."""
    migrated = {
        key: value
        for key, value in document.items()
        if key not in {"account", "alerts", "advanced"}
    }
    migrated["version"] = 2
    if "people" in document or not any(k in document for k in ("account", "alerts", "advanced")):
        migrated.setdefault("people", [])  # people already (a hand edit): they are kept
        return migrated
    account = document.get("account")
    advanced = document.get("advanced")
    share: Any = dict(account) if isinstance(account, dict) else account
    if share is None and isinstance(advanced, dict) and "share_url" in advanced:
        share = {}
    if isinstance(share, dict) and isinstance(advanced, dict) and "share_url" in advanced:
        share["share_url"] = advanced["share_url"]
    username = account.get("username") if isinstance(account, dict) else None
    person: dict[str, Any] = {
        "id": new_id(),
        "name": name_from_username(username if isinstance(username, str) else ""),
        "history_file": HISTORY_DB_NAME,
    }
    if share is not None:
        person["share"] = share
    if "alerts" in document:
        person["alerts"] = document["alerts"]
    migrated["people"] = [person]
    return migrated


#: MIGRATIONS[v] turns a version-v document into a version v + 1 one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _migrate_v0_to_v1,
    1: _migrate_v1_to_v2,
}


def _mentions_password(value: object) -> bool:
    if isinstance(value, dict):
        return any(
            "password" in str(key).lower() or _mentions_password(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_mentions_password(item) for item in value)
    return False


def _without_passwords(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_passwords(item)
            for key, item in value.items()
            if "password" not in str(key).lower()
        }
    if isinstance(value, list):
        return [_without_passwords(item) for item in value]
    return value


class _Reader:
    """Reads typed values out of a parsed document, noting each one it had to replace."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def complain(self, name: str, expected: str) -> None:
        self.problems.append(
            f"The setting {name} in your settings file was not {expected}; the default is in use."
        )

    def table(self, parent: dict[str, Any], key: str, name: str) -> dict[str, Any]:
        value = parent.get(key, {})
        if isinstance(value, dict):
            return value
        self.complain(name, "a table of settings")
        return {}

    def value(
        self,
        table: dict[str, Any],
        key: str,
        name: str,
        default: _T,
        convert: Callable[[object], _T | None],
        expected: str,
    ) -> _T:
        if key not in table:
            return default
        converted = convert(table[key])
        if converted is None:
            self.complain(name, expected)
            return default
        return converted


def _as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_username(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _as_region(value: object) -> str | None:
    if isinstance(value, str) and value.strip().lower() in REGIONS:
        return value.strip().lower()
    return None


def _as_unit(value: object) -> Unit | None:
    if not isinstance(value, str):
        return None
    spelled = value.strip().lower().replace(" ", "")
    if spelled in {"mg/dl", "mgdl", "mg"}:
        return Unit.MGDL
    if spelled in {"mmol/l", "mmol"}:
        return Unit.MMOL
    return None


def _as_id(value: object) -> str | None:
    return value if isinstance(value, str) and is_id(value) else None


def _as_history_file(value: object) -> str | None:
    return value if isinstance(value, str) and is_history_file(value) else None


def _as_name(value: object) -> str | None:
    if not isinstance(value, str) or len(value.strip()) > 40:
        return None
    return value.strip()


def _as_label(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and len(value.strip()) <= 2:
        return value.strip()
    return None


def _as_colour(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and is_colour(value) else None


def _as_tray_icons(value: object) -> str | None:
    return value if isinstance(value, str) and value in TRAY_ICONS else None


def _as_account_id(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _as_share_url(value: object) -> str | None:
    return value if isinstance(value, str) and is_share_url(value) else None


def _in_range(low: float, high: float) -> Callable[[object], float | None]:
    def convert(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if low <= value <= high else None

    return convert


def _whole_in_range(low: int, high: int) -> Callable[[object], int | None]:
    def convert(value: object) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value if low <= value <= high else None

    return convert


def _minutes_in_range(low: float, high: float) -> Callable[[object], timedelta | None]:
    number = _in_range(low, high)

    def convert(value: object) -> timedelta | None:
        minutes = number(value)
        return None if minutes is None else timedelta(minutes=minutes)

    return convert


def _as_repeat(value: object) -> timedelta | None:
    """0 means "never repeat"; otherwise 1 .. MAX_MINUTES minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    return _minutes_in_range(1, MAX_MINUTES)(value)


def _read_kind(
    reader: _Reader, table: dict[str, Any], kind: AlertKind, default: KindConfig, prefix: str = ""
) -> KindConfig:
    where = f"{prefix}alerts.{kind.value}"
    low, high = threshold_range(kind)
    repeat = reader.value(
        table,
        "repeat_minutes",
        f"{where}.repeat_minutes",
        default.repeat if default.repeat is not None else timedelta(0),
        _as_repeat,
        f"0 (never) or a number of minutes from 1 to {MAX_MINUTES}",
    )
    minutes_text = f"a number of minutes from 0 to {MAX_MINUTES}"
    return KindConfig(
        enabled=reader.value(
            table, "enabled", f"{where}.enabled", default.enabled, _as_bool, "true or false"
        ),
        threshold=reader.value(
            table,
            "threshold",
            f"{where}.threshold",
            default.threshold,
            _in_range(low, high),
            f"a number from {low:g} to {high:g}",
        ),
        repeat=None if repeat == timedelta(0) else repeat,
        sound=reader.value(
            table, "sound", f"{where}.sound", default.sound, _as_bool, "true or false"
        ),
        snooze_cap=reader.value(
            table,
            "snooze_cap_minutes",
            f"{where}.snooze_cap_minutes",
            default.snooze_cap,
            _minutes_in_range(0, MAX_MINUTES),
            minutes_text,
        ),
        persistence=reader.value(
            table,
            "persistence_minutes",
            f"{where}.persistence_minutes",
            default.persistence,
            _minutes_in_range(0, MAX_MINUTES),
            minutes_text,
        ),
    )


def _read_alerts(reader: _Reader, document: dict[str, Any], where: str = "") -> AlertSettings:
    alerts_table = reader.table(document, "alerts", f"{where}alerts")
    defaults = AlertSettings().kinds
    kinds: dict[AlertKind, KindConfig] = {}
    for kind in AlertKind:
        table = reader.table(alerts_table, kind.value, f"{where}alerts.{kind.value}")
        kinds[kind] = _read_kind(reader, table, kind, defaults[kind], where)
    try:
        return AlertSettings(kinds)
    except ValueError:
        reader.problems.append(
            "The alert thresholds in your settings file were not in order (urgent low < low < "
            "high < urgent high, among those turned on); the default thresholds are in use."
        )
    for kind in (AlertKind.URGENT_LOW, AlertKind.LOW, AlertKind.HIGH, AlertKind.URGENT_HIGH):
        kinds[kind] = dataclasses.replace(kinds[kind], threshold=defaults[kind].threshold)
    return AlertSettings(kinds)


def _read_person(
    reader: _Reader, table: dict[str, Any], index: int, earlier: list[Person]
) -> tuple[Person, str | None]:
    """One [[people]] table as a person (what cannot be used replaced), and a legacy id."""
    where = f"people[{index + 1}]."
    share = reader.table(table, "share", f"{where}share")
    source = ShareSource(
        region=reader.value(
            share, "region", f"{where}share.region", "us", _as_region, '"us", "ous" or "jp"'
        ),
        username=reader.value(
            share, "username", f"{where}share.username", "", _as_username, "text"
        ),
        share_url=reader.value(
            share,
            "share_url",
            f"{where}share.share_url",
            None,
            _as_share_url,
            "the address of a Share service on this computer, such as "
            f"{EXAMPLE_SHARE_URL} (Dexcom's own service is used instead)",
        ),
    )
    legacy_id = reader.value(
        share, "account_id", f"{where}share.account_id", None, _as_account_id, "text"
    )
    taken_ids = {person.id for person in earlier}
    person_id = reader.value(table, "id", f"{where}id", "", _as_id, "an id of 12 hex digits")
    if not person_id or person_id in taken_ids:
        person_id = new_id()
        while person_id in taken_ids:
            person_id = new_id()
    taken_files = {person.history_file for person in earlier}
    history_file = reader.value(
        table,
        "history_file",
        f"{where}history_file",
        history_file_for(person_id),
        _as_history_file,
        "a history file name CGM Tray gave",
    )
    if history_file in taken_files:
        reader.complain(f"{where}history_file", "used by one person only")
        history_file = history_file_for(person_id)
    name = reader.value(table, "name", f"{where}name", "", _as_name, "a name of 1 to 40 characters")
    name = name or name_from_username(source.username)
    label = reader.value(
        table, "label", f"{where}label", default_label(name), _as_label, "1 or 2 characters"
    )
    colour = reader.value(
        table, "colour", f"{where}colour", colour_for(len(earlier)), _as_colour, '"#RRGGBB"'
    )
    person = Person(
        id=person_id,
        name=name,
        label=label,
        colour=colour,
        source=source,
        alerts=_read_alerts(reader, table, where),
        history_file=history_file,
    )
    return person, legacy_id


def _read_people(
    reader: _Reader, document: dict[str, Any]
) -> tuple[tuple[Person, ...], dict[str, str]]:
    entries = document.get("people", [])
    if not isinstance(entries, list):
        reader.complain("people", "a list of [[people]] tables")
        return (), {}
    people: list[Person] = []
    legacy: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            reader.problems.append(
                f"Person {index + 1} in your settings file was not a table of settings; "
                "it was left out."
            )
            continue
        if len(people) == MAX_PEOPLE:
            reader.problems.append(
                f"Your settings file lists more than {MAX_PEOPLE} people; only the first "
                f"{MAX_PEOPLE} are followed."
            )
            break
        person, legacy_id = _read_person(reader, entry, index, people)
        key = person.source.account_key
        if key[1] and any(other.source.account_key == key for other in people):
            reader.problems.append(
                f"Person {index + 1} in your settings file has the same Dexcom account as "
                "someone before them; they were left out."
            )
            continue
        people.append(person)
        if legacy_id is not None:
            legacy[person.id] = legacy_id
    return tuple(people), legacy


def settings_from_document(document: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Settings from a parsed current-version document, and a message per value it replaced."""
    settings, problems, _legacy = _settings_and_legacy_ids(document)
    return settings, problems


def _settings_and_legacy_ids(
    document: dict[str, Any],
) -> tuple[Settings, list[str], dict[str, str]]:
    reader = _Reader()
    defaults = Settings()
    display = reader.table(document, "display", "display")
    general = reader.table(document, "general", "general")
    people, legacy = _read_people(reader, document)
    settings = Settings(
        unit=reader.value(
            display, "unit", "display.unit", defaults.unit, _as_unit, '"mg/dL" or "mmol/L"'
        ),
        start_at_login=reader.value(
            general,
            "start_at_login",
            "general.start_at_login",
            defaults.start_at_login,
            _as_bool,
            "true or false",
        ),
        retention_days=reader.value(
            general,
            "retention_days",
            "general.retention_days",
            defaults.retention_days,
            _whole_in_range(MIN_RETENTION_DAYS, MAX_RETENTION_DAYS),
            f"a whole number of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}",
        ),
        tray_icons=reader.value(
            general,
            "tray_icons",
            "general.tray_icons",
            defaults.tray_icons,
            _as_tray_icons,
            '"auto", "per_person" or "together"',
        ),
        people=people,
    )
    return settings, reader.problems, legacy


_STRAY_KEY_PROBLEM = (
    "Your settings file contained a password. It was ignored and will be removed from the file: "
    "passwords are kept only in the system keyring."
)


def load_settings(path: Path, *, now: datetime | None = None) -> LoadResult:
    """Reads the settings file, never failing: whatever cannot be used is replaced and reported.

    A missing file gives the defaults. An unreadable (non-TOML) file is moved aside to
    `<name>.corrupt-<UTC time>` and the defaults are used, keeping the region and username if
    they can still be recognised in it. `now` names the backup (default: the system clock).
    A file over MAX_SETTINGS_BYTES is moved aside the same way without being read or parsed;
    a symlink is not followed: the defaults are used and nothing is saved over it.
    """
    try:
        raw = read_capped(path, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return LoadResult(Settings())
    except TooLargeError as exc:
        return _load_too_large(path, exc, now)
    except UnsafeFileError as exc:
        log.warning("settings file refused: %s", exc.what, extra={"event": "files.unsafe"})
        if not path.is_symlink():  # a folder or a device where the file should be
            return LoadResult(
                Settings(),
                problem=f"Your settings file could not be read ({exc.what}); defaults are in use.",
                ignored=True,
            )
        return LoadResult(
            Settings(),
            problem=f"Your settings file {path} is a symbolic link, which CGM Tray does not "
            "follow; defaults are in use and changes cannot be saved there.",
            ignored=True,
        )
    except OSError as exc:
        log.warning("settings file could not be read (%s)", type(exc).__name__)
        return LoadResult(
            Settings(),
            problem=f"Your settings file could not be read ({exc.strerror or type(exc).__name__}); "
            "defaults are in use.",
            ignored=True,
        )
    try:
        text = raw.decode("utf-8")
        document = tomllib.loads(text)
    except (ValueError, RecursionError):
        # Not UTF-8, not TOML, or TOML that Python cannot hold (an integer of thousands of
        # digits, arrays nested thousands deep): unreadable either way.
        return _load_corrupt(path, raw, now)
    return _load_document(document)


def _load_document(document: dict[str, Any]) -> LoadResult:
    problems: list[str] = []
    should_save = False
    if _mentions_password(document):
        problems.append(_STRAY_KEY_PROBLEM)
        document = _without_passwords(document)
        should_save = True

    version = document.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        problems.append(
            "The setting version in your settings file was not a whole number; "
            "it was read as the version its layout has."
        )
        version = SETTINGS_VERSION if "people" in document else 1
    if version > SETTINGS_VERSION:
        # An absurdly large number is not repeated (Python refuses to print some of them).
        shown = f" (settings version {version})" if version.bit_length() <= 64 else ""
        problems.append(
            f"Your settings file was written by a newer CGM Tray{shown}; "
            "the settings this version knows were loaded and the rest ignored."
        )
    newer = version > SETTINGS_VERSION
    if version >= 2 and _has_v1_layout(document):
        # One account at the top level and no people: the version-1 layout, whatever the
        # number says (a hand edit); read as such rather than losing the account.
        document = _migrate_v1_to_v2(document)
        should_save = should_save or not newer
    while version < SETTINGS_VERSION:
        document = MIGRATIONS[version](document)
        version += 1
        should_save = True

    settings, value_problems, legacy = _settings_and_legacy_ids(document)
    problems += value_problems
    # An older file's account id is used, then dropped; ids made now are kept. A newer app's
    # file is never clobbered on our own.
    missing_id = any(not is_id(raw.get("id")) for raw in _raw_people(document))
    if not newer and (legacy or missing_id):
        should_save = True
    entries = document.get("people")
    listed = len(entries) if isinstance(entries, list) else 0
    return LoadResult(
        settings,
        problem=" ".join(problems) or None,
        should_save=should_save,
        legacy_account_ids=legacy,
        left_out=max(0, listed - len(settings.people)),
    )


def keep_copy(path: Path, now: datetime | None = None) -> Path | None:
    """A private copy of the settings file beside it (`settings.toml.kept-<UTC>`), made before a
    save would rewrite it without something it listed (a person left out); None when it could
    not be made (the caller then does not save)."""
    when = require_aware_utc(now) if now is not None else datetime.now(UTC)
    try:
        data = read_capped(path, MAX_SETTINGS_BYTES)
    except (OSError, UnsafeFileError, TooLargeError):
        return None
    stem = f"{path.name}.kept-{when.strftime('%Y%m%dT%H%M%SZ')}"
    for attempt in range(100):
        candidate = path.with_name(stem if attempt == 0 else f"{stem}-{attempt}")
        if candidate.exists():
            continue
        try:
            write_atomically(candidate, data)
        except OSError:
            return None
        return candidate
    return None


def _has_v1_layout(document: dict[str, Any]) -> bool:
    return "people" not in document and any(
        key in document for key in ("account", "alerts", "advanced")
    )


def _raw_people(document: dict[str, Any]) -> list[dict[str, Any]]:
    entries = document.get("people")
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


_RECOVERABLE_LINE = re.compile(r"^[ \t]*(region|username)[ \t]*=.*$", re.MULTILINE)


def recover_account(text: str) -> tuple[str | None, str | None]:
    """Best effort: the region and username still recognisable in a damaged settings file."""
    found: dict[str, str] = {}
    for match in _RECOVERABLE_LINE.finditer(text):
        key = match.group(1)
        if key in found:
            continue
        try:
            value = tomllib.loads(match.group(0).strip()).get(key)
        except (ValueError, RecursionError):  # not TOML, or TOML too big or deep for Python
            continue
        if isinstance(value, str):
            found[key] = value
    region = _as_region(found.get("region"))
    return region, _as_username(found.get("username"))


def _load_corrupt(path: Path, raw: bytes, now: datetime | None) -> LoadResult:
    region, username = recover_account(raw.decode("utf-8", errors="replace"))
    settings = (
        one_person_settings(region=region or "us", username=username) if username else Settings()
    )
    backup = _move_aside(path, now)
    if backup is None:
        problem = "Your settings file was unreadable and defaults are in use."
    else:
        problem = (
            f"Your settings file was unreadable; it was kept as {backup} and defaults are in use."
        )
    if username:
        problem += " Your region and username were recovered from it."
    log.warning("settings file was unreadable; defaults in use")
    return LoadResult(settings, problem=problem, backup=backup, should_save=True, ignored=True)


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.0f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


def _load_too_large(path: Path, error: TooLargeError, now: datetime | None) -> LoadResult:
    """Too big to be settings: not parsed (not even for the username), kept aside, defaults."""
    backup = _move_aside(path, now)
    where = "ignored" if backup is None else f"moved aside to {backup}"
    problem = (
        f"Your settings file is {_size_text(error.size)}; the limit is "
        f"{_size_text(error.limit)}. It was {where} and defaults are in use."
    )
    log.warning(
        "settings file too large; defaults in use",
        extra={"event": "settings.too_large", "size": error.size},
    )
    return LoadResult(
        Settings(), problem=problem, backup=backup, should_save=backup is not None, ignored=True
    )


def _move_aside(path: Path, now: datetime | None) -> Path | None:
    when = require_aware_utc(now) if now is not None else datetime.now(UTC)
    stem = f"{path.name}.corrupt-{when.strftime('%Y%m%dT%H%M%SZ')}"
    for attempt in range(100):
        candidate = path.with_name(stem if attempt == 0 else f"{stem}-{attempt}")
        if candidate.exists():
            continue
        try:
            path.replace(candidate)
        except OSError as exc:
            log.warning(
                "could not keep the unreadable settings file aside (%s)", type(exc).__name__
            )
            return None
        return candidate
    return None
