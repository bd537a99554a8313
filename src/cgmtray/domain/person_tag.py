"""Whose alert it is: a person's id and name, and the notification keys and titles made from them.

Several people's controllers share one notifier, so each notification key names its person:
`"<person id>/<episode key>"`. The unnamed person of a single-account app (`None`) keeps the bare
episode key and the bare title, exactly as before people existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "KEY_SEPARATOR",
    "TITLE_SEPARATOR",
    "PersonTag",
    "key_person",
    "notification_key",
    "titled",
]

#: Between the person's id and the episode key in a notification key (never in an id).
KEY_SEPARATOR: Final = "/"
#: Between the person's name and the alert's title: "Sam · Urgent low: 48 mg/dL ↓".
TITLE_SEPARATOR: Final = " · "


@dataclass(frozen=True, slots=True)
class PersonTag:
    """The person a controller watches: `id` is stable and never shown, `name` is shown."""

    id: str
    name: str

    def __post_init__(self) -> None:
        if not self.id or KEY_SEPARATOR in self.id:
            raise ValueError(f"a person id is not empty and holds no {KEY_SEPARATOR!r}")
        if not self.name.strip():
            raise ValueError("a person has a name")


def notification_key(person: PersonTag | None, key: str) -> str:
    """The notifier's key of `person`'s episode `key` (the episode key itself when unnamed)."""
    return key if person is None else f"{person.id}{KEY_SEPARATOR}{key}"


def key_person(key: str) -> str | None:
    """The id of the person a notification key belongs to; None for the unnamed person's."""
    person, separator, _episode = key.partition(KEY_SEPARATOR)
    return person if separator else None


def titled(person: PersonTag | None, title: str) -> str:
    """The title naming the person ("Sam · Urgent low: 48 mg/dL ↓"); unchanged when unnamed."""
    return title if person is None else f"{person.name.strip()}{TITLE_SEPARATOR}{title}"
