"""Who among the people followed needs attention first, and how many tray icons to show.

Rules (issue 14, product.md "Several people in one tray"):

- Each person falls in one tier: an urgent alert open (urgent low, urgent low soon, urgent high),
  else any other alert open (low, high, falling or rising fast, no data, sign-in problem), else no
  current reading (stale, or no data at all), else fine. A snoozed alert is still open: snoozing
  silences the sound, not the person's need, so it keeps its tier.
- The order is by tier, then by the person's place in the people list; two people in the same
  tier keep the list's order (never "who raised first", which would make the icon jump).
- The tray icon setting is "auto" | "per_person" | "together". Auto is one icon per person for up
  to three people and one icon for everyone beyond. Zero people resolve like one: the single icon
  of today.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.freshness import Freshness

__all__ = [
    "AUTO_PER_PERSON_UP_TO",
    "Need",
    "PersonGlance",
    "TrayIcons",
    "attention_order",
    "first_needing_attention",
    "labels_on_badges",
    "need",
    "resolve_tray_icons",
]

#: "auto" shows one icon per person up to this many people, one icon for everyone beyond.
AUTO_PER_PERSON_UP_TO = 3


class Need(enum.IntEnum):
    """How much a person needs attention; a smaller value comes first."""

    URGENT_ALERT = 0
    ALERT = 1
    NO_CURRENT_DATA = 2
    FINE = 3


@dataclass(frozen=True, slots=True)
class PersonGlance:
    """What the attention rule needs to know about one person, from what the runtime holds.

    `alerts` is `domain.alerts.active_alerts(state)` of the person's alert state; `freshness` is
    the `freshness` of the person's `DisplayModel`; `position` is their index in the people list.
    """

    person_id: str
    position: int
    alerts: tuple[AlertKind, ...]
    freshness: Freshness


def need(glance: PersonGlance) -> Need:
    """The person's tier: urgent alert, other alert, no current reading, or fine."""
    if any(kind.is_urgent for kind in glance.alerts):
        return Need.URGENT_ALERT
    if glance.alerts:
        return Need.ALERT
    if glance.freshness in (Freshness.STALE, Freshness.NO_DATA):
        return Need.NO_CURRENT_DATA
    return Need.FINE


def attention_order(glances: Iterable[PersonGlance]) -> tuple[PersonGlance, ...]:
    """Everyone, the one who needs attention first at the front; ties keep the list order."""
    return tuple(sorted(glances, key=lambda glance: (need(glance), glance.position)))


def first_needing_attention(glances: Iterable[PersonGlance]) -> PersonGlance | None:
    """The person the one shared icon shows: first in `attention_order`; None with no people.

    When everyone is fine this is the first person in the list.
    """
    ordered = attention_order(glances)
    return ordered[0] if ordered else None


class TrayIcons(enum.Enum):
    """The `tray_icons` setting: how many icons the tray shows for the people followed."""

    AUTO = "auto"
    PER_PERSON = "per_person"
    TOGETHER = "together"


def resolve_tray_icons(setting: TrayIcons, people: int) -> TrayIcons:
    """PER_PERSON or TOGETHER (never AUTO) for this many people; an explicit choice is kept."""
    if people < 0:
        raise ValueError("the number of people cannot be negative")
    if setting is not TrayIcons.AUTO:
        return setting
    return TrayIcons.PER_PERSON if people <= AUTO_PER_PERSON_UP_TO else TrayIcons.TOGETHER


def labels_on_badges(people: int) -> bool:
    """Whether badges carry a person's label: not for one person, whose badge stays as today."""
    return people > 1
