"""One followed person's running parts (controller, worker, tray, history) and the tray seam."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject

from cgmtray.domain.attention import TrayIcons, labels_on_badges, resolve_tray_icons
from cgmtray.domain.clock import Clock
from cgmtray.domain.person_tag import PersonTag
from cgmtray.domain.server_clock import ServerClock
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.storage.people import Person
from cgmtray.storage.settings import Settings
from cgmtray.ui.controller import Controller
from cgmtray.ui.history_access import PersonHistory
from cgmtray.ui.icon import PersonBadge
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.tray_together import TogetherTray, TrayPort

__all__ = ["Account", "PersonRuntime", "badge_of", "make_tray", "tag_of", "tray_mode"]


@dataclass(frozen=True)
class Account:
    """Everything needed to make a ShareClient, and how fast the clock runs."""

    config: ClientConfig
    password: str = field(repr=False)
    clock: Clock
    time_scale: float
    #: The settings it started with; the live ones are the session's SettingsModel.
    settings: Settings
    #: Share's clock over `clock`, for this account's clients (each Date header feeds it), its
    #: worker's schedule and its controller's alerts (design: one corrected "now").
    share_clock: ServerClock = field(repr=False)


@dataclass
class PersonRuntime:
    """What runs for one person: the session is a list of these, in the people list's order."""

    person: Person
    controller: Controller
    #: What the controller shows on: the person's own icon, or their port in one icon for
    #: everyone.
    surface: TrayPresenter | TrayPort
    #: None while the person cannot be followed (no password saved): the icon says so.
    account: Account | None
    #: The person's door to the app's one history window (None: their store cannot be used).
    history: PersonHistory | None
    history_path: Path
    #: The factory of the polling client: account id news from any other one is stale.
    client_source: Callable[[], ShareClient] | None = None

    @property
    def icon(self) -> TrayPresenter | None:
        """The person's own icon (one icon per person), else None."""
        return self.surface if isinstance(self.surface, TrayPresenter) else None

    @property
    def port(self) -> TrayPort | None:
        """The person's place in one icon for everyone, else None."""
        return self.surface if isinstance(self.surface, TrayPort) else None

    @property
    def tray(self) -> TrayPresenter:
        """The person's own icon; a TypeError while everyone shares one icon (see `port`)."""
        if isinstance(self.surface, TrayPresenter):
            return self.surface
        raise TypeError("this person shares the one icon for everyone")


def tag_of(person: Person, people: int) -> PersonTag | None:
    """Whose alerts a controller raises: nobody named with one person (everything as before)."""
    return PersonTag(person.id, person.name) if labels_on_badges(people) else None


def badge_of(person: Person, people: int) -> PersonBadge | None:
    """The label and colour on the person's badge; none with one person (the plain badge)."""
    return PersonBadge(person.label, person.colour) if labels_on_badges(people) else None


def tray_mode(settings: Settings) -> TrayIcons:
    """One icon per person or one for everyone, for these settings (an unknown value: auto)."""
    try:
        setting = TrayIcons(settings.tray_icons)
    except ValueError:
        setting = TrayIcons.AUTO
    return resolve_tray_icons(setting, len(settings.people))


def make_tray(
    person: Person,
    people: int,
    *,
    force_status_window: bool,
    clock: Clock,
    demo: bool,
    parent: QObject | None,
    together: TogetherTray | None = None,
) -> TrayPresenter | TrayPort:
    """The tray object of one person's controller (the one seam where the tray is chosen):
    their port in `together` (one icon for everyone), else an icon of their own."""
    if together is not None:
        return together.port_for(person)
    named = labels_on_badges(people)
    return TrayPresenter(
        force_status_window=force_status_window,
        clock=clock,
        demo=demo,
        person_badge=badge_of(person, people),
        person_name=person.name if named else None,
        parent=parent,
    )
