"""One tray icon for everyone: the person who needs attention first on the badge, all in the menu.

`TogetherTray` shows one icon (or the status window when there is no tray) for several people.
Each person's Controller gets a `TrayPort` from `port_for(person)`: it has everything the
Controller uses of a TrayPresenter (`TrayLike`), so the runtime can hand a Controller either.

- The icon shows the person who needs attention first (`domain.attention`: urgent alert > other
  alert > stale or no data > the rest, then the list order) with their label on the badge; it is
  re-evaluated whenever any person's model or alerts change. The tooltip has a line per person.
- The menu has a line per person (their badge, name, value, arrow, age) opening their own
  submenu (status, Open history, Refresh now, Snooze alerts); their items reach only their port's
  signals, so only their Controller acts. Then once: Settings…, Add a person…, About, Quit.
  Settings…, About and Quit reach the first person's port (each once), whose Controller opens
  the settings and about windows and asks to quit as with a single person.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from cgmtray.domain.alert_config import AlertControl, AlertKind, ControlAction, ControlSource
from cgmtray.domain.attention import PersonGlance, first_needing_attention, labels_on_badges
from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.display import SEPARATOR, DisplayModel
from cgmtray.storage.people import MAX_PEOPLE, Person
from cgmtray.ui.icon import PersonBadge, render_image
from cgmtray.ui.tray import (
    DEMO_SIGN_IN,
    STARTING_MODEL,
    MenuState,
    StatusWindow,
    TrayPresenter,
    add_demo_line,
    add_notices,
    add_person_actions,
    add_quit,
    add_status_lines,
    status_text,
)

__all__ = ["MENU_ICON_SIZES", "TogetherTray", "TrayPort"]

log = logging.getLogger(__name__)

#: Logical sizes of a person's badge in front of their menu line (menus use 16 px mostly).
MENU_ICON_SIZES = (16, 22, 32)


class TrayPort(QObject):
    """One person's place in a TogetherTray: what their Controller uses as its tray.

    Signals (emitted for this person only, from their menu items, or from the status window
    while it shows their alert or their badge):
        open_history_requested(), refresh_requested(), control_requested(AlertControl),
        settings_requested(), sign_in_requested(), about_requested(), quit_requested().
    """

    open_history_requested = Signal()
    refresh_requested = Signal()
    control_requested = Signal(object)
    settings_requested = Signal()
    sign_in_requested = Signal()
    about_requested = Signal()
    quit_requested = Signal()

    def __init__(self, owner: TogetherTray, person: Person) -> None:
        super().__init__(owner)
        self._owner = owner
        self._person = person
        self._model: DisplayModel | None = None
        self._menu_state = MenuState()
        #: The alerts for the status window, by kind: (title, body, snooze cap).
        self.status_alerts: dict[AlertKind, tuple[str, str, timedelta]] = {}
        self._stopped = False

    # --- what the Controller uses (TrayLike) ---------------------------------------------------

    @property
    def tray(self) -> QSystemTrayIcon | None:
        """The one icon everyone shares (the notifier's balloons go there)."""
        return self._owner.tray

    @property
    def status_window(self) -> StatusWindow | None:
        """The window everyone shares when there is no tray."""
        return self._owner.status_window

    @property
    def demo(self) -> bool:
        return self._owner.demo

    def show_model(self, model: DisplayModel) -> None:
        self._model = model
        self._owner.changed(self)

    def set_menu_state(self, state: MenuState) -> None:
        self._menu_state = state
        self._owner.changed(self)

    def show_status_alert(
        self, kind: AlertKind, title: str, body: str, snooze_cap: timedelta
    ) -> None:
        """The person's alert of `kind` reached the status window (its title names them)."""
        self.status_alerts[kind] = (title, body, snooze_cap)
        self._owner.status_alerts_changed()

    def clear_status_alert(self, kind: AlertKind) -> None:
        self.status_alerts.pop(kind, None)
        self._owner.status_alerts_changed()

    def show_status_message(self, title: str, body: str) -> None:
        self._owner.show_status_message(title, body)

    def shutdown(self) -> None:
        """The person's Controller stopped: they leave the icon and the menu (the icon goes when
        everyone's has stopped)."""
        if self._stopped:
            return
        self._stopped = True
        self.status_alerts.clear()
        self._owner.stopped(self)

    # --- for the shared tray -------------------------------------------------------------------

    @property
    def person(self) -> Person:
        return self._person

    @person.setter
    def person(self, person: Person) -> None:
        self._person = person

    @property
    def model(self) -> DisplayModel | None:
        return self._model

    @property
    def menu_state(self) -> MenuState:
        return self._menu_state

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def badge(self) -> PersonBadge:
        return PersonBadge(self._person.label, self._person.colour)

    def glance(self, position: int) -> PersonGlance:
        """What the attention rule needs: open alerts and how current the reading is."""
        model = self._model if self._model is not None else STARTING_MODEL
        return PersonGlance(
            self._person.id, position, self._menu_state.open_alerts, model.freshness
        )

    def line(self) -> str:
        """Name, value, arrow, delta and age: the person's line in the menu and the tooltip."""
        name = self._person.name.strip()
        if self._model is None:
            return f"{name}{SEPARATOR}Starting…"
        return f"{name}{SEPARATOR}{self._model.tooltip.splitlines()[0]}"

    def control(
        self,
        action: ControlAction,
        kinds: tuple[AlertKind, ...],
        duration: timedelta | None = None,
        source: ControlSource = ControlSource.MENU,
    ) -> None:
        self.control_requested.emit(AlertControl(action, kinds, source, duration))


class TogetherTray(QObject):
    """One icon for every person followed; the Controllers talk to it through `port_for`.

    Signals:
        add_person_requested(): "Add a person…".
        sign_in_requested(): the demo's "Sign in with your own account…".
        quit_requested(): "Quit" while no person's port is running (otherwise the first
            person's port asks, once).
    """

    add_person_requested = Signal()
    sign_in_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        *,
        force_status_window: bool = False,
        clock: Clock | None = None,
        demo: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ports: list[TrayPort] = []
        #: Whose badge the icon shows, and whose alert the status window shows (and its kind).
        self._shown: TrayPort | None = None
        self._alert: tuple[TrayPort, AlertKind] | None = None
        # The icon, tooltip, status window and menu popup are a TrayPresenter's; what it shows
        # and what its menu holds come from here.
        self._surface = TrayPresenter(
            force_status_window=force_status_window, clock=self._clock, demo=demo, parent=self
        )
        self._surface.set_menu_builder(self._build_menu)
        self._surface.open_history_requested.connect(self._on_surface_open_history_requested)
        self._surface.refresh_requested.connect(self._on_surface_refresh_requested)
        self._surface.control_requested.connect(self._on_surface_control_requested)

    # --- public -------------------------------------------------------------------------------

    def port_for(self, person: Person) -> TrayPort:
        """The person's port: new ones join at the end of the list (call in the people list's
        order, or `arrange` after); asked again with the same id while their port runs, the
        same port, with the person's name, label and colour updated. A stopped port is gone:
        the same person gets a new one."""
        for port in self._ports:
            if port.person.id == person.id:
                port.person = person
                self._reevaluate()
                return port
        if len(self._ports) >= MAX_PEOPLE:
            raise ValueError(f"one icon holds at most {MAX_PEOPLE} people")
        port = TrayPort(self, person)
        self._ports.append(port)
        self._reevaluate()
        return port

    def arrange(self, people: Sequence[Person]) -> None:
        """The people list changed (reordered, renamed, a new label or colour): the ports follow
        its order (ties of attention go by it) and show the new names and badges. A port whose
        person is not in `people` keeps its place after them until its Controller stops."""
        where = {person.id: index for index, person in enumerate(people)}
        for port in self._ports:
            if port.person.id in where:
                port.person = people[where[port.person.id]]
        self._ports.sort(key=lambda port: where.get(port.person.id, len(where)))
        self._reevaluate()

    @property
    def ports(self) -> tuple[TrayPort, ...]:
        """Every running person's port, in the list order."""
        return tuple(port for port in self._ports if not port.stopped)

    @property
    def demo(self) -> bool:
        return self._surface.demo

    @property
    def tray(self) -> QSystemTrayIcon | None:
        return self._surface.tray

    @property
    def status_window(self) -> StatusWindow | None:
        return self._surface.status_window

    @property
    def menu(self) -> QMenu:
        return self._surface.menu

    @property
    def model(self) -> DisplayModel | None:
        """What the icon shows: the shown person's model, named, the tooltip for everyone."""
        return self._surface.model

    @property
    def shown(self) -> TrayPort | None:
        """The person the icon shows (who needs attention first)."""
        return self._shown

    @property
    def badge(self) -> PersonBadge | None:
        """The label on the icon's badge (None with a single person)."""
        return self._badge_of(self._shown)

    def present(self) -> str:
        """As TrayPresenter.present: the menu, the shown person's history, or the window."""
        return self._surface.present()

    @property
    def notices(self) -> tuple[str, ...]:
        return self._surface.notices

    def set_notices(self, notices: tuple[str, ...]) -> None:
        """Lines about the app's files, in the menu under everyone and in the status window."""
        self._surface.set_notices(notices)

    def shutdown(self) -> None:
        self._surface.shutdown()

    # --- from the ports -----------------------------------------------------------------------

    def changed(self, _port: TrayPort) -> None:
        """A person's model or alerts changed: who the icon shows is decided again."""
        self._reevaluate()

    def stopped(self, port: TrayPort) -> None:
        """A person's Controller stopped: they leave. When everyone has, the icon goes on the
        event loop's next turn, unless someone joined by then (the runtime restarting people)."""
        self._ports.remove(port)
        self.status_alerts_changed()
        if self._ports:
            self._reevaluate()
        else:
            QTimer.singleShot(0, self, self._on_everyone_stopped)

    @Slot()
    def _on_everyone_stopped(self) -> None:
        if not self._ports:
            self._surface.shutdown()

    def show_status_message(self, title: str, body: str) -> None:
        self._surface.show_status_message(title, body)

    def status_alerts_changed(self) -> None:
        """The status window shows the most urgent alert of anyone (ties: the list order), with
        Snooze and Acknowledge for that person."""
        candidates = [
            (kind.rank, position, port, kind)
            for position, port in enumerate(self.ports)
            for kind in port.status_alerts
        ]
        top = min(candidates, key=lambda c: (c[0], c[1])) if candidates else None
        if self._alert is not None:
            self._surface.clear_status_alert(self._alert[1])
            self._alert = None
        if top is None:
            return
        _rank, _position, port, kind = top
        title, body, cap = port.status_alerts[kind]
        self._alert = (port, kind)
        self._surface.show_status_alert(kind, title, body, cap)

    # --- the icon -----------------------------------------------------------------------------

    def _badge_of(self, port: TrayPort | None) -> PersonBadge | None:
        if port is None or not labels_on_badges(len(self.ports)):
            return None
        return port.badge

    def _reevaluate(self) -> None:
        ports = self.ports
        first = first_needing_attention(port.glance(i) for i, port in enumerate(ports))
        if first is None:
            self._shown = None
            return
        shown = ports[first.position]
        if shown is not self._shown:
            log.info(
                "together icon shows another person",
                extra={"event": "tray.person_shown", "person": shown.person.id},
            )
        self._shown = shown
        model = shown.model if shown.model is not None else STARTING_MODEL
        name = shown.person.name.strip()
        if len(ports) > 1:
            model = replace(
                model,
                tooltip="\n".join(port.line() for port in ports),
                status_line=f"{name}{SEPARATOR}{model.status_line}",
                accessible=f"{name}: {model.accessible}",
            )
        self._surface.show_model(model, self._badge_of(shown))

    # --- the menu -----------------------------------------------------------------------------

    def _build_menu(self, menu: QMenu) -> None:
        """A line per person (their submenu), then the app's items once."""
        if self.demo:
            add_demo_line(menu)
        ports = self.ports
        now = self._clock.now()
        bold = menu.font()
        bold.setBold(True)
        for index, port in enumerate(ports):
            number = (index + 1) % 10
            # A person's line: their badge, number (the mnemonic), name, value, arrow and age.
            sub = menu.addMenu(self._menu_icon(port, menu), f"&{number} {_literal(port.line())}")
            sub.setObjectName(f"person-{port.person.id}")
            if port is self._shown and len(ports) > 1:
                sub.menuAction().setFont(bold)  # who the icon shows
            state = port.menu_state
            add_status_lines(
                sub,
                status_text(port.model, state.connection),
                state.connection,
                now,
                port.open_history_requested,
            )
            sub.addSeparator()
            add_person_actions(
                sub,
                state,
                now,
                on_history=port.open_history_requested,
                on_refresh=port.refresh_requested,
                on_control=port.control,
                refresh_shortcut=False,
            )
        menu.addSeparator()
        if self.notices:
            add_notices(menu, self.notices)
            menu.addSeparator()
        first = ports[0] if ports else None
        if self.demo:
            sign_in = menu.addAction(DEMO_SIGN_IN)
            sign_in.setObjectName("demo-sign-in")
            sign_in.triggered.connect(self.sign_in_requested)
        settings_available = first is not None and first.menu_state.settings_available
        settings = menu.addAction("S&ettings…")
        settings.setObjectName("settings")
        settings.setEnabled(settings_available)
        add_person = menu.addAction("A&dd a person…")
        add_person.setObjectName("add-person")
        add_person.setEnabled(settings_available and len(ports) < MAX_PEOPLE)
        add_person.triggered.connect(self.add_person_requested)
        about = menu.addAction("&About")
        about.setObjectName("about")
        if first is not None:
            settings.triggered.connect(first.settings_requested)
            about.triggered.connect(first.about_requested)
        menu.addSeparator()
        add_quit(menu, first.quit_requested if first is not None else self.quit_requested)

    def _menu_icon(self, port: TrayPort, menu: QMenu) -> QIcon:
        """The person's badge (with their label) at a menu's sizes."""
        model = port.model if port.model is not None else STARTING_MODEL
        ratio = menu.devicePixelRatioF()
        icon = QIcon()
        for size in MENU_ICON_SIZES:
            icon.addPixmap(QPixmap.fromImage(render_image(model, size, ratio, port.badge)))
        return icon

    # --- from the icon and the status window -------------------------------------------------

    @Slot()
    def _on_surface_open_history_requested(self) -> None:
        """A click on the icon (or the window's History…): the shown person's history."""
        if self._shown is not None:
            self._shown.open_history_requested.emit()

    @Slot()
    def _on_surface_refresh_requested(self) -> None:
        """The status window's Refresh: everyone."""
        for port in self.ports:
            port.refresh_requested.emit()

    @Slot(object)
    def _on_surface_control_requested(self, control: AlertControl) -> None:
        """The status window's Snooze or Acknowledge: for the person whose alert it shows."""
        if self._alert is not None:
            self._alert[0].control_requested.emit(control)


def _literal(text: str) -> str:
    """Menu text shown as written: an "&" in a name is not a mnemonic."""
    return text.replace("&", "&&")
