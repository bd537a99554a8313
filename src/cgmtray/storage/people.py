"""The people the app follows: the model, and the one owner of their list and keyring entries."""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cgmtray.domain.alert_config import AlertSettings
from cgmtray.storage.credentials import CredentialStoreError, PasswordStore
from cgmtray.storage.paths import HISTORY_DB_NAME

if TYPE_CHECKING:
    from cgmtray.storage.settings import LoadResult, Settings

log = logging.getLogger(__name__)

#: As many people as Dexcom's own Follow app follows.
MAX_PEOPLE: Final = 10

#: Badge colours in list order: Okabe and Ito's colour-blind-safe set, then two more of Tol's.
PALETTE: Final = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#882255",
    "#44AA99",
)

#: The name of a person made from a username with nothing before an '@'.
DEFAULT_NAME: Final = "Me"

MAX_NAME_LENGTH: Final = 40
MAX_LABEL_LENGTH: Final = 2

_ID = re.compile(r"[0-9a-f]{12}")
_HISTORY_FILE = re.compile(r"history(-[0-9a-f]{12})?\.sqlite3")
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


class PeopleError(ValueError):
    """A list of people that may not be kept; the message lists the plain messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ShareSource:
    """Where a person's readings come from: one Dexcom Share account (no password here)."""

    region: str = "us"
    #: The Dexcom login of the person who wears the sensor (username, e-mail or phone number).
    username: str = ""
    #: A loopback Share base URL for tests and the demo; not shown in the UI.
    share_url: str | None = None

    @property
    def account_key(self) -> tuple[str, str]:
        """What makes two sources the same Dexcom account (and keys the keyring)."""
        return (self.region, self.username.strip().casefold())


@dataclass(frozen=True)
class Person:
    """Someone the app follows. `id` is random, never shown, and safe inside a file name."""

    id: str
    name: str
    label: str
    colour: str
    source: ShareSource = field(default_factory=ShareSource)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    #: The file name of their history store, in the data folder.
    history_file: str = HISTORY_DB_NAME


# ---------------------------------------------------------------------------------------------
# Making people


def new_id() -> str:
    """A fresh random person id (12 hex digits)."""
    return secrets.token_hex(6)


def is_id(value: object) -> bool:
    """True for a string that may be a person id (and so a part of a file name)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_history_file(value: object) -> bool:
    """True for a history file name this module hands out (no folder, no dots to climb)."""
    return isinstance(value, str) and _HISTORY_FILE.fullmatch(value) is not None


def is_colour(value: object) -> bool:
    """True for "#RRGGBB"."""
    return isinstance(value, str) and _COLOUR.fullmatch(value) is not None


def name_from_username(username: str) -> str:
    """The name a person gets from their login: the part before '@', or "Me"."""
    name = username.strip().split("@", 1)[0].strip()[:MAX_NAME_LENGTH].strip()
    return name or DEFAULT_NAME


def default_label(name: str) -> str:
    """The badge label of a name: its initial, upper case ("?" for no letter at all)."""
    for character in name.strip():
        if character.isalnum():
            upper = character.upper()  # (a few letters grow: "ﬃ" is "FFI" in upper case)
            return upper if len(upper) <= MAX_LABEL_LENGTH else character
    return "?"


def colour_for(position: int) -> str:
    """The palette colour of the person at `position` in the list."""
    return PALETTE[position % len(PALETTE)]


def history_file_for(person_id: str) -> str:
    """The history store file of a person added after the first."""
    return f"history-{person_id}.sqlite3"


def new_person(
    existing: Sequence[Person],
    source: ShareSource,
    *,
    name: str | None = None,
    alerts: AlertSettings | None = None,
) -> Person:
    """A person to add after `existing`: a fresh id, the default label and colour.

    The first person of an empty list keeps the history file the app has always used (so a
    person set up before there were people keeps their readings); the others get their own.
    """
    taken = {person.id for person in existing}
    person_id = new_id()
    while person_id in taken:
        person_id = new_id()
    shown = (name or "").strip() or name_from_username(source.username)
    used_files = {person.history_file for person in existing}
    history_file = HISTORY_DB_NAME
    if existing or HISTORY_DB_NAME in used_files:
        history_file = history_file_for(person_id)
    return Person(
        id=person_id,
        name=shown,
        label=default_label(shown),
        colour=colour_for(len(existing)),
        source=source,
        alerts=alerts if alerts is not None else AlertSettings(),
        history_file=history_file,
    )


# ---------------------------------------------------------------------------------------------
# Validation


def person_problems(person: Person) -> list[str]:
    """Plain messages for what is wrong with one person on their own."""
    problems: list[str] = []
    if not person.name.strip():
        problems.append("Enter a name for each person.")
    elif len(person.name) > MAX_NAME_LENGTH:
        problems.append(f"A name may be at most {MAX_NAME_LENGTH} characters.")
    if not 1 <= len(person.label) <= MAX_LABEL_LENGTH or not person.label.strip():
        problems.append(f"{_who(person)}: the label must be 1 or 2 characters.")
    if not is_colour(person.colour):
        problems.append(f"{_who(person)}: the colour must be written #RRGGBB.")
    if not is_id(person.id) or not is_history_file(person.history_file):
        problems.append(f"{_who(person)}: the person's file names are damaged.")
    return problems


def _who(person: Person) -> str:
    return person.name.strip() or "A person"


def people_problems(people: Sequence[Person]) -> list[str]:
    """Plain messages for everything wrong with a list of people; empty when it may be kept."""
    problems: list[str] = []
    if len(people) > MAX_PEOPLE:
        problems.append(f"CGM Tray follows at most {MAX_PEOPLE} people; remove someone first.")
    for person in people:
        problems += person_problems(person)
    seen: dict[tuple[str, str], str] = {}
    for person in people:
        key = person.source.account_key
        if not key[1]:
            continue
        if key in seen:
            problems.append(
                f"{_who(person)} and {seen[key]} have the same Dexcom account; "
                "each account may be followed once."
            )
        else:
            seen[key] = _who(person)
    ids = [person.id for person in people]
    files = [person.history_file for person in people]
    if len(set(ids)) != len(ids) or len(set(files)) != len(files):
        problems.append("Two people share an id or a history file.")
    return problems


def _checked(people: Sequence[Person]) -> tuple[Person, ...]:
    problems = people_problems(people)
    if problems:
        raise PeopleError(problems)
    return tuple(people)


# ---------------------------------------------------------------------------------------------
# Editing the list (each returns new Settings; nothing is saved until save())


def find(settings: Settings, person_id: str) -> Person:
    """The person with `person_id` (KeyError if there is none)."""
    for person in settings.people:
        if person.id == person_id:
            return person
    raise KeyError("no such person")


def add_person(settings: Settings, person: Person) -> Settings:
    """`settings` with `person` at the end; PeopleError if the list would not be valid."""
    return dataclasses.replace(settings, people=_checked((*settings.people, person)))


def update_person(settings: Settings, person: Person) -> Settings:
    """`settings` with the person of the same id replaced by `person`."""
    find(settings, person.id)
    people = tuple(person if old.id == person.id else old for old in settings.people)
    return dataclasses.replace(settings, people=_checked(people))


def rename_person(
    settings: Settings, person_id: str, name: str, label: str | None = None
) -> Settings:
    """`settings` with a person renamed; the label follows the initial unless one is given."""
    person = find(settings, person_id)
    shown = name.strip()
    new_label = label if label is not None else default_label(shown)
    return update_person(settings, dataclasses.replace(person, name=shown, label=new_label))


def reorder_people(settings: Settings, ids: Sequence[str]) -> Settings:
    """`settings` with the people in the order of `ids` (every id once)."""
    by_id = {person.id: person for person in settings.people}
    if sorted(ids) != sorted(by_id):
        raise ValueError("reorder needs every person's id exactly once")
    return dataclasses.replace(settings, people=tuple(by_id[i] for i in ids))


def remove_person(
    settings: Settings,
    person_id: str,
    store: PasswordStore,
    *,
    keep_history: bool,
    data_dir: Path | None = None,
) -> Settings:
    """`settings` without the person; their password and account id leave the keyring.

    Their history file (in `data_dir`) is deleted unless `keep_history`. A keyring entry that
    another person still uses (the same account twice cannot be saved, but an old file may hold
    it) is left. Raises CredentialStoreError if the keyring refused (the list is unchanged then).
    """
    person = find(settings, person_id)
    rest = tuple(other for other in settings.people if other.id != person_id)
    source = person.source
    if source.username and all(o.source.account_key != source.account_key for o in rest):
        store.delete(source.region, source.username)
    if not keep_history and data_dir is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (data_dir / (person.history_file + suffix)).unlink(missing_ok=True)
    return dataclasses.replace(settings, people=rest)


def with_first_person(
    settings: Settings,
    *,
    region: str,
    username: str,
    share_url: str | None,
    alerts: AlertSettings,
) -> Settings:
    """`settings` with the first person's account and alerts changed (the one-person settings
    dialog); with nobody yet, that person is added, named from the username."""
    source = ShareSource(region=region, username=username, share_url=share_url)
    if not settings.people:
        if not username.strip():
            return settings  # nobody to keep yet (first run without an account)
        person = new_person((), source, alerts=alerts)
        return dataclasses.replace(settings, people=(person,))
    first = settings.people[0]
    return dataclasses.replace(
        settings,
        people=(dataclasses.replace(first, source=source, alerts=alerts), *settings.people[1:]),
    )


# ---------------------------------------------------------------------------------------------
# Loading and saving (the settings file holds the list)


def load(path: Path) -> LoadResult:
    """The settings file with its people (never failing: see settings.load_settings)."""
    from cgmtray.storage.settings import load_settings

    return load_settings(path)


def save(settings: Settings, path: Path) -> None:
    """Writes the settings file with its people, atomically (see settings.save_settings)."""
    from cgmtray.storage.settings import save_settings

    save_settings(settings, path)


# ---------------------------------------------------------------------------------------------
# The keyring entries of a person (password and Dexcom account id), keyed by region + username


def read_password(store: PasswordStore, source: ShareSource) -> str | None:
    """The person's saved password, or None. Raises CredentialStoreError if the keyring fails."""
    if not source.username:
        return None
    return store.get(source.region, source.username)


def read_account_id(store: PasswordStore, source: ShareSource) -> str | None:
    """The person's stored Share account id; None (a sign-in by name follows) if the keyring
    has none or cannot say."""
    if not source.username:
        return None
    try:
        return store.get_account_id(source.region, source.username)
    except CredentialStoreError:
        log.info("the account id could not be read from the keyring; signing in by name")
        return None


def keep_account_id(
    store: PasswordStore,
    source: ShareSource,
    account_id: str | None,
    *,
    only_with_password: bool = True,
    forget_unknown: bool = True,
) -> None:
    """Stores (or, for None, forgets) the person's account id, best effort, never raising
    (without an id the next sign-in is by name).

    With `only_with_password` an id is only kept while the account's password is kept: a
    read-only or locked keyring, or an account whose password was just removed, is left as it is.
    With `forget_unknown=False` a None leaves an id stored earlier where it is.
    """
    if not source.username:
        return
    region, username = source.region, source.username
    try:
        if account_id is None:
            if forget_unknown:
                store.delete_account_id(region, username)
        elif not only_with_password or store.get(region, username):
            store.set_account_id(region, username, account_id)
    except (CredentialStoreError, ValueError) as error:
        log.debug("the account id was not kept in the keyring (%s)", type(error).__name__)


def forget_credentials(store: PasswordStore, source: ShareSource) -> None:
    """Removes the person's password and account id from the keyring (CredentialStoreError)."""
    if source.username:
        store.delete(source.region, source.username)
