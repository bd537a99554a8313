"""Tray icon, tooltip and menu (rebuilt on open); a status window when there is no tray."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QObject, Qt, QTimer, Signal, SignalInstance, Slot
from PySide6.QtGui import QAction, QCloseEvent, QFontMetrics, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from cgmtray import APP_NAME
from cgmtray.domain import display
from cgmtray.domain.alert_config import (
    NON_URGENT_KINDS,
    AlertControl,
    AlertKind,
    AlertSettings,
    ControlAction,
    ControlSource,
)
from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.connection import ConnectionStatus, LinkState, next_check_line
from cgmtray.domain.display import DisplayModel
from cgmtray.domain.person_tag import TITLE_SEPARATOR
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.units import Unit
from cgmtray.ui.icon import PersonBadge, render_icon, render_image

log = logging.getLogger(__name__)

#: Snooze choices offered per kind, in minutes (urgent low is capped at 30 by the rules).
SNOOZE_CHOICES_MIN = (30, 60, 120, 240)
#: What the status window's Snooze button asks for (capped per kind, and the label says so).
WINDOW_SNOOZE_MIN = 30
#: What the icon shows before the first model arrives (a moment at start).
STARTING_MODEL = display.model(
    (), datetime.now(UTC), unit=Unit.MGDL, thresholds=Thresholds(), connection="Starting…"
)
#: Link states whose next-check line says what happened and what to do (so the status line
#: need not repeat the problem).
_SAID_BELOW = (LinkState.LOCKED, LinkState.SIGN_IN_REJECTED)
#: While no tray exists, check this often whether one has appeared.
TRAY_RECHECK_MS = 10_000
#: The demo's first menu line, and the first line of its tooltip: the readings are not real.
DEMO_LINE = "Demo — simulated readings"
#: The demo's way to the real thing: sign in and follow that account instead, without quitting.
DEMO_SIGN_IN = "Sign &in with your own account…"
#: The menu's status lines wrap at about this many average characters of the menu's font: an
#: error must not make the menu as wide as the screen, and a reading's line (up to about 50
#: characters in bold, "10.4 mmol/L ↘ falling slightly · -0.5 · 12 min ago") and the lock's
#: next-check line stay whole.
MENU_LINE_CHARS = 60
#: How much wider than that a line may get rather than leave its last word or two alone.
WRAP_SLACK = 0.15


def wrap_lines(text: str, metrics: QFontMetrics, max_px: int) -> list[str]:
    """`text` broken at word boundaries into lines no wider than `max_px` (a single word wider
    than that keeps a line of its own). A last word or two that would sit alone may stretch
    their line by up to WRAP_SLACK instead. A break next to a " · " separator takes its place:
    no line starts or ends with the dot."""
    dot = display.SEPARATOR.strip()
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.split(" ")
        line = ""
        for index, word in enumerate(words):
            candidate = f"{line} {word}" if line else word
            if line and metrics.horizontalAdvance(candidate) > max_px:
                whole = " ".join([line, *words[index:]])
                if metrics.horizontalAdvance(whole) <= max_px * (1 + WRAP_SLACK):
                    line = whole
                    break
                lines.append(line)
                line = "" if word == dot else word
            else:
                line = candidate
        lines.append(line)
    return [line.removesuffix(f" {dot}") for line in lines if line]


@dataclass(frozen=True)
class MenuState:
    """What the menu shows besides the display model: features present, snoozes in force."""

    history_available: bool = False
    settings_available: bool = False
    snoozed_until: dict[AlertKind, datetime] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    #: The link's latest status: when the app looks next (shown under the status line).
    connection: ConnectionStatus = field(
        default_factory=lambda: ConnectionStatus(LinkState.STARTING)
    )
    #: The kinds with an open alert (snoozed ones too), most urgent first: who needs attention.
    open_alerts: tuple[AlertKind, ...] = ()


def _badge_of(model: DisplayModel, person: PersonBadge | None = None) -> tuple[object, ...]:
    """What the icon draws: a model with the same badge needs no repaint."""
    trend = model.reading.trend if model.reading is not None else None
    return (model.text, model.arrow, trend, model.severity, model.range, model.stale, person)


def _snooze_label(minutes: int) -> str:
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def _clock_time(when: datetime) -> str:
    """A time of day as the person reads it: local, 24 h."""
    return when.astimezone().strftime("%H:%M")


def _cap_minutes(alerts: AlertSettings, kind: AlertKind) -> int:
    return int(alerts[kind].snooze_cap.total_seconds() // 60)


class TrayPresenter(QObject):
    """Shows a DisplayModel in the tray (or a status window) and turns clicks into asks.

    Signals:
        open_history_requested(): left click or "Open history…".
        refresh_requested(): "Refresh now".
        control_requested(AlertControl): a snooze, a cancelled snooze (menu) or an answer to the
            alert the status window shows; the controller's apply_control carries it out.
        settings_requested(): "Settings…".
        add_person_requested(): "Add a person…".
        sign_in_requested(): the demo's "Sign in with your own account…".
        about_requested(): "About".
        quit_requested(): "Quit" (the only way the app quits).
    """

    open_history_requested = Signal()
    refresh_requested = Signal()
    control_requested = Signal(object)
    settings_requested = Signal()
    add_person_requested = Signal()
    sign_in_requested = Signal()
    about_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        *,
        force_status_window: bool = False,
        clock: Clock | None = None,
        demo: bool = False,
        person_badge: PersonBadge | None = None,
        person_name: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        """`person_badge`: the label and colour the badge carries (None: the single person's
        plain badge); `person_name`: who this icon shows, named first in the tooltip and the
        menu's status line ("Sam · 142 → …"; None: nobody named, as with one person)."""
        super().__init__(parent)
        #: The readings are the demo's simulated ones: the tooltip, menu and window say so.
        self.demo = demo
        self._person_badge = person_badge
        self._person_name = person_name
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._model: DisplayModel | None = None
        self._menu_state = MenuState()
        self._menu = QMenu()
        self._menu.setObjectName("tray-menu")
        self._menu.aboutToShow.connect(self._on_menu_about_to_show)
        self._tray: QSystemTrayIcon | None = None
        self._window: StatusWindow | None = None
        self._force_window = force_status_window
        #: The alerts the status window holds, by kind: (title, body, snooze minutes or None).
        self._status_alerts: dict[AlertKind, tuple[str, str, int | None]] = {}
        self._status_kind: AlertKind | None = None
        #: What the person must know about the app's files (history not kept, settings not
        #: saved, no log file): shown under the status line until the app ends.
        self._notices: tuple[str, ...] = ()
        self._recheck = QTimer(self)
        self._recheck.setInterval(TRAY_RECHECK_MS)
        self._recheck.timeout.connect(self._on_recheck_timeout)
        #: Fills the menu instead of this presenter's own items (see set_menu_builder).
        self._menu_builder: Callable[[QMenu], None] | None = None
        #: The person's mark drawn on the badge, or None (a single person's badge).
        self._badge: PersonBadge | None = None
        self._build_menu()
        self._place()

    # --- public -------------------------------------------------------------------------------

    @property
    def tray(self) -> QSystemTrayIcon | None:
        return self._tray

    @property
    def status_window(self) -> StatusWindow | None:
        return self._window

    @property
    def menu(self) -> QMenu:
        return self._menu

    @property
    def model(self) -> DisplayModel | None:
        return self._model

    def present(self) -> str:
        """Shows the running app to a person who started it again (the launcher clicked): the
        menu popped up at the icon; the history (the icon's click) when the tray does not say
        where the icon is; the status window, restored and raised, when there is no tray.
        Returns which: "menu", "history" or "status_window"."""
        tray = self._tray
        if tray is None or not tray.isVisible():
            window = self._window
            if window is None:  # no tray and no window yet cannot last: make the window
                self._use_window()
                window = self._window
            assert window is not None
            window.showNormal()
            window.raise_()
            window.activateWindow()
            return "status_window"
        where = tray.geometry()
        if where.isEmpty():  # StatusNotifierItem hosts keep the icon's place to themselves
            self.open_history_requested.emit()
            return "history"
        self._menu.popup(where.bottomLeft())
        return "menu"

    def show_model(self, model: DisplayModel, badge: PersonBadge | None = None) -> None:
        """Shows a new model: the icon is repainted only when what it draws changed (value,
        arrow, colour, stale look, the person's label `badge`), the tooltip whenever its text
        changed (the age ticks)."""
        previous, self._model = self._model, model
        # A badge given (one icon for everyone: whoever is shown) or this icon's own person's.
        badge = badge if badge is not None else self._person_badge
        previous_badge, self._badge = self._badge, badge
        if previous is not None and _badge_of(previous, previous_badge) == _badge_of(model, badge):
            if previous.tooltip != model.tooltip:
                if self._tray is not None:
                    self._tray.setToolTip(self.tooltip_of(model))
                if self._window is not None:
                    self._window.show_model(model, badge)
            return
        icon = render_icon(model, badge)
        if self._tray is not None:
            self._tray.setIcon(icon)
            self._tray.setToolTip(self.tooltip_of(model))
        if self._window is not None:
            self._window.show_model(model, badge)
        log.info(
            "tray updated",
            extra={"event": "tray.updated", "severity": model.severity.value, "stale": model.stale},
        )

    def tooltip_of(self, model: DisplayModel) -> str:
        """The icon's tooltip for `model`: in the demo, first a line saying it is one; with a
        named person, their name first ("Sam · 142 mg/dL …")."""
        return self._demo_first(self._named(model.tooltip))

    @property
    def person_badge(self) -> PersonBadge | None:
        return self._person_badge

    @property
    def person_name(self) -> str | None:
        return self._person_name

    def set_person(self, badge: PersonBadge | None, name: str | None) -> None:
        """The person was renamed or given another label or colour: the badge is redrawn and
        the tooltip and menu name them anew (nothing else changes)."""
        if (badge, name) == (self._person_badge, self._person_name):
            return
        self._person_badge, self._person_name = badge, name
        self._badge = badge
        if self._window is not None:
            self._window.set_person(badge, name)
            if self._model is not None:
                self._window.show_model(self._model)
        model = self._model if self._model is not None else STARTING_MODEL
        if self._tray is not None:
            self._tray.setIcon(render_icon(model, person=badge))
            if self._model is not None:
                self._tray.setToolTip(self.tooltip_of(self._model))

    def _named(self, text: str) -> str:
        """`text` with the person's name first, when this icon shows a named person."""
        name = (self._person_name or "").strip()
        return f"{name}{TITLE_SEPARATOR}{text}" if name else text

    def _demo_first(self, text: str) -> str:
        return f"{DEMO_LINE}\n{text}" if self.demo else text

    def set_menu_state(self, state: MenuState) -> None:
        self._menu_state = state

    @property
    def notices(self) -> tuple[str, ...]:
        return self._notices

    def set_notices(self, notices: tuple[str, ...]) -> None:
        """Lines about the app's files, in the menu under the status line and in the status
        window."""
        self._notices = notices
        if self._window is not None:
            self._window.show_notices(notices)

    def show_status_alert(
        self, kind: AlertKind, title: str, body: str, snooze_cap: timedelta
    ) -> None:
        """An alert of `kind` reached the status window. The window shows the most urgent alert
        open, with Snooze (for what will be granted) and Acknowledge."""
        minutes = min(WINDOW_SNOOZE_MIN, int(snooze_cap.total_seconds() // 60))
        self._status_alerts[kind] = (title, body, minutes if minutes > 0 else None)
        self._show_status_alerts()

    def show_status_message(self, title: str, body: str) -> None:
        """A notice that is no alert (a damaged history store replaced) reached the status
        window: shown without Snooze or Acknowledge, until an alert takes its place."""
        if self._window is not None and self._status_kind is None:
            self._window.show_message(title, body)

    def clear_status_alert(self, kind: AlertKind) -> None:
        """The kind's alert ended or was answered: the window shows the next one, or nothing."""
        self._status_alerts.pop(kind, None)
        self._show_status_alerts()

    def _show_status_alerts(self) -> None:
        kinds = sorted(self._status_alerts, key=lambda kind: kind.rank)
        self._status_kind = kinds[0] if kinds else None
        if self._window is None:
            return
        if self._status_kind is None:
            self._window.clear_message()
            return
        title, body, minutes = self._status_alerts[self._status_kind]
        self._window.show_message(title, body)
        self._window.set_alert_controls(minutes)

    def _control(
        self,
        action: ControlAction,
        kinds: tuple[AlertKind, ...],
        duration: timedelta | None = None,
        *,
        source: ControlSource = ControlSource.MENU,
    ) -> None:
        self.control_requested.emit(AlertControl(action, kinds, source, duration))

    @Slot()
    def _on_window_snooze_clicked(self) -> None:
        if self._status_kind is not None:
            self._control(
                ControlAction.SNOOZE,
                (self._status_kind,),
                timedelta(minutes=WINDOW_SNOOZE_MIN),
                source=ControlSource.WINDOW,
            )

    @Slot()
    def _on_window_acknowledge_clicked(self) -> None:
        if self._status_kind is not None:
            self._control(
                ControlAction.ACKNOWLEDGE, (self._status_kind,), source=ControlSource.WINDOW
            )

    def shutdown(self) -> None:
        self._recheck.stop()
        if self._tray is not None:
            self._tray.hide()
        if self._window is not None:
            self._window.allow_close = True
            self._window.close()

    # --- placement ----------------------------------------------------------------------------

    def _place(self) -> None:
        if not self._force_window and QSystemTrayIcon.isSystemTrayAvailable():
            self._use_tray()
        else:
            self._use_window()
            if not self._force_window:
                self._recheck.start()

    def _use_tray(self) -> None:
        tray = QSystemTrayIcon(self)
        tray.setContextMenu(self._menu)
        tray.activated.connect(self._on_tray_activated)
        if self._model is not None:
            tray.setIcon(render_icon(self._model, self._badge))
            tray.setToolTip(self.tooltip_of(self._model))
        else:
            tray.setIcon(render_icon(STARTING_MODEL, person=self._person_badge))
            tray.setToolTip(self._demo_first(self._named(f"{APP_NAME}: starting…")))
        tray.show()
        self._tray = tray

    def _use_window(self) -> None:
        window = StatusWindow(self._menu, demo=self.demo)
        window.set_person(self._person_badge, self._person_name)
        window.refresh_clicked.connect(self.refresh_requested)
        window.history_clicked.connect(self.open_history_requested)
        window.snooze_clicked.connect(self._on_window_snooze_clicked)
        window.acknowledge_clicked.connect(self._on_window_acknowledge_clicked)
        if self._model is not None:
            window.show_model(self._model, self._badge)
        window.show_notices(self._notices)
        window.show()
        self._window = window
        log.info("no system tray: showing the status window")

    @Slot()
    def _on_recheck_timeout(self) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._recheck.stop()
            log.info("a system tray appeared: moving the icon there")
            self._use_tray()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.open_history_requested.emit()

    # --- the menu -----------------------------------------------------------------------------

    @Slot()
    def _on_menu_about_to_show(self) -> None:
        self._build_menu()

    def set_menu_builder(self, builder: Callable[[QMenu], None] | None) -> None:
        """Another presenter's menu (one icon for everyone): `builder` fills the emptied menu
        each time it opens, instead of this presenter's own items. None: its own again."""
        self._menu_builder = builder
        self._build_menu()

    def _build_menu(self) -> None:
        """Rebuilt each time it opens, so the status line and snoozes are current."""
        menu = self._menu
        # clear() deletes the menu's actions but not the submenus made last time (children of
        # the menu): they go too, or every opening would keep another set.
        for old in menu.findChildren(QMenu, options=Qt.FindChildOption.FindDirectChildrenOnly):
            old.deleteLater()
        menu.clear()
        if self._menu_builder is not None:
            self._menu_builder(menu)
            return
        if self.demo:
            add_demo_line(menu)
        now = self._clock.now()
        text = self._named(status_text(self._model, self._menu_state.connection))
        add_status_lines(menu, text, self._menu_state.connection, now, self.open_history_requested)
        add_notices(menu, self._notices)
        menu.addSeparator()
        add_person_actions(
            menu,
            self._menu_state,
            now,
            on_history=self.open_history_requested,
            on_refresh=self.refresh_requested,
            on_control=self._control,
            refresh_shortcut=True,
        )
        menu.addSeparator()

        if self.demo:
            sign_in = menu.addAction(DEMO_SIGN_IN)
            sign_in.setObjectName("demo-sign-in")
            sign_in.triggered.connect(self.sign_in_requested)
        settings = menu.addAction("S&ettings…")
        settings.setEnabled(self._menu_state.settings_available)
        settings.triggered.connect(self.settings_requested)
        add_person = menu.addAction("A&dd a person…")
        add_person.setObjectName("add-person")
        add_person.setEnabled(self._menu_state.settings_available)
        add_person.triggered.connect(self.add_person_requested)
        about = menu.addAction("&About")
        about.triggered.connect(self.about_requested)
        menu.addSeparator()
        add_quit(menu, self.quit_requested)


#: What a menu item asks of a person's alerts: (action, kinds, duration or None for no snooze).
ControlAsk = Callable[[ControlAction, tuple[AlertKind, ...], timedelta | None], None]


def add_demo_line(menu: QMenu) -> None:
    """The demo's first line: the readings are simulated."""
    demo_line = menu.addAction(DEMO_LINE)
    demo_line.setObjectName("demo-line")
    demo_line.setEnabled(False)


def add_quit(menu: QMenu, on_quit: SignalInstance) -> QAction:
    """The menu's last item, "Quit" (Ctrl+Q)."""
    quit_action = menu.addAction("&Quit")
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)
    quit_action.triggered.connect(on_quit)
    return quit_action


def menu_line_px(menu: QMenu) -> int:
    """How wide a menu's status lines may get before they wrap."""
    return QFontMetrics(menu.font()).averageCharWidth() * MENU_LINE_CHARS


def add_status_lines(
    menu: QMenu,
    text: str,
    connection: ConnectionStatus,
    now: datetime,
    on_open_history: SignalInstance,
) -> None:
    """The status line (bold, wrapped; choosing it opens the history), then when the app looks
    next if that says more (a lock, a rejected password, a backoff)."""
    # The most important line of the menu: enabled (so it is not drawn faded), bold, and
    # opening the history when chosen. Menu items never wrap (Qt's styles draw them on one
    # line, and a panel's dbusmenu shows a QWidgetAction's label nowhere), so a long line is
    # split into several items of the same look, the same on both paths.
    bold = menu.font()
    bold.setBold(True)
    max_px = menu_line_px(menu)
    for line in wrap_lines(text, QFontMetrics(bold), max_px):
        status = menu.addAction(_literal(line))
        status.setObjectName("status-line")
        status.setFont(bold)
        status.triggered.connect(on_open_history)
    next_check = next_check_line(connection, now)
    if next_check is not None:
        for line in wrap_lines(next_check, QFontMetrics(menu.font()), max_px):
            when = menu.addAction(_literal(line))
            when.setObjectName("next-check")
            when.setEnabled(False)


def add_notices(menu: QMenu, notices: tuple[str, ...]) -> None:
    """Lines about the app's files (history not kept, settings not saved), wrapped, faded."""
    max_px = menu_line_px(menu)
    for text in notices:
        for line in wrap_lines(text, QFontMetrics(menu.font()), max_px):
            notice = menu.addAction(_literal(line))
            notice.setObjectName("files-notice")
            notice.setEnabled(False)


def add_person_actions(
    menu: QMenu,
    state: MenuState,
    now: datetime,
    *,
    on_history: SignalInstance,
    on_refresh: SignalInstance,
    on_control: ControlAsk,
    refresh_shortcut: bool,
) -> QMenu:
    """A person's "Open history…", "Refresh now" (F5 with `refresh_shortcut`) and "Snooze
    alerts" submenu; returns the submenu."""
    history = menu.addAction("Open &history…")
    history.setObjectName("open-history")
    history.setEnabled(state.history_available)
    history.triggered.connect(on_history)
    refresh = menu.addAction("&Refresh now")
    refresh.setObjectName("refresh-now")
    if refresh_shortcut:
        refresh.setShortcut(QKeySequence.StandardKey.Refresh)
    refresh.triggered.connect(on_refresh)
    snooze = menu.addMenu("&Snooze alerts")
    snooze.setObjectName("snooze-menu")
    fill_snooze_menu(snooze, state, now, on_control)
    return snooze


def status_text(model: DisplayModel | None, connection: ConnectionStatus) -> str:
    """The model's status line; while a lock or a rejected password stops checks, without
    the problem's own (long) message: the line under it says what happened and what to do.
    A problem too long to share the reading's line starts a line of its own."""
    if model is None:
        return "Starting…"
    problem = connection.problem
    if connection.state in _SAID_BELOW and problem:
        return model.status_line.replace(display.SEPARATOR + problem, "", 1)
    if problem and len(model.status_line) > MENU_LINE_CHARS:
        return model.status_line.replace(display.SEPARATOR + problem, "\n" + problem, 1)
    return model.status_line


def fill_snooze_menu(
    snooze: QMenu, state: MenuState, now: datetime, on_control: ControlAsk
) -> None:
    """ "Snooze all non-urgent", one submenu per kind (only durations its cap grants, and
    until when it is snoozed), then "Cancel snooze" per snoozed kind and for all."""
    enabled = tuple(kind for kind in AlertKind if state.alerts[kind].enabled)
    snoozed = tuple(
        kind for kind in enabled if (until := state.snoozed_until.get(kind)) and until > now
    )
    non_urgent = tuple(kind for kind in NON_URGENT_KINDS if kind in enabled)
    every = snooze.addMenu("Snooze all &non-urgent")
    every.setObjectName("snooze-non-urgent")
    cap = min((_cap_minutes(state.alerts, kind) for kind in non_urgent), default=0)
    _add_durations(every, non_urgent, cap, on_control)
    every.setEnabled(bool(every.actions()))
    snooze.addSeparator()
    for kind in enabled:
        title = kind.title
        if kind in snoozed:
            title += f" — snoozed until {_clock_time(state.snoozed_until[kind])}"
        sub = snooze.addMenu(title)
        sub.setObjectName(f"snooze-{kind.value}")
        _add_durations(sub, (kind,), _cap_minutes(state.alerts, kind), on_control)
        sub.setEnabled(bool(sub.actions()))
    if not snoozed:
        return
    snooze.addSeparator()
    for kind in snoozed:
        cancel = snooze.addAction(f"Cancel snooze: {kind.title}")
        cancel.setObjectName(f"cancel-snooze-{kind.value}")
        cancel.triggered.connect(
            lambda _checked=False, k=kind: on_control(ControlAction.CANCEL_SNOOZE, (k,), None)
        )
    cancel_all = snooze.addAction("&Cancel all snoozes")
    cancel_all.setObjectName("cancel-all-snoozes")
    cancel_all.triggered.connect(
        lambda _checked=False, ks=snoozed: on_control(ControlAction.CANCEL_SNOOZE, ks, None)
    )


def _add_durations(
    menu: QMenu, kinds: tuple[AlertKind, ...], cap_min: int, on_control: ControlAsk
) -> None:
    for minutes in SNOOZE_CHOICES_MIN:
        if minutes > cap_min:
            continue
        action = QAction(_snooze_label(minutes), menu)
        action.triggered.connect(
            lambda _checked=False, ks=kinds, m=minutes: on_control(
                ControlAction.SNOOZE, ks, timedelta(minutes=m)
            )
        )
        menu.addAction(action)


class StatusWindow(QWidget):
    """A small always-available window standing in for the tray icon on desktops without one.

    Signals:
        refresh_clicked(): the Refresh button.
        history_clicked(): the History button.
        snooze_clicked(): the Snooze button of the alert shown.
        acknowledge_clicked(): the Acknowledge button of the alert shown.
    """

    refresh_clicked = Signal()
    history_clicked = Signal()
    snooze_clicked = Signal()
    acknowledge_clicked = Signal()

    def __init__(self, menu: QMenu, *, demo: bool = False) -> None:
        super().__init__(None, Qt.WindowType.Window)
        self.setObjectName("status-window")
        self.setWindowTitle(f"{APP_NAME} — demo" if demo else APP_NAME)
        self._demo = demo
        self._person_badge: PersonBadge | None = None
        self._person_name: str | None = None
        self.allow_close = False
        self._menu = menu
        self._badge = QLabel()
        self._badge.setFixedSize(64, 64)
        self._line = QLabel("Starting…")
        self._line.setTextFormat(Qt.TextFormat.PlainText)  # a person's name is text, not markup
        self._line.setWordWrap(True)
        self._line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._message = QLabel()
        self._message.setWordWrap(True)
        self._message.setContentsMargins(0, 6, 0, 2)  # clear of the badge above, the buttons below
        self._message.hide()
        self._notices = QLabel()
        self._notices.setObjectName("files-notice")
        self._notices.setWordWrap(True)
        self._notices.setTextFormat(Qt.TextFormat.PlainText)
        self._notices.hide()
        self.snooze_button = QPushButton("&Snooze")
        self.snooze_button.setObjectName("status-snooze")
        self.snooze_button.clicked.connect(self.snooze_clicked)
        self.acknowledge_button = QPushButton("&Acknowledge")
        self.acknowledge_button.setObjectName("status-acknowledge")
        self.acknowledge_button.clicked.connect(self.acknowledge_clicked)
        answers = QHBoxLayout()
        answers.addWidget(self.snooze_button)
        answers.addWidget(self.acknowledge_button)
        answers.addStretch(1)
        self.snooze_button.hide()
        self.acknowledge_button.hide()
        refresh = QPushButton("&Refresh")
        refresh.clicked.connect(self.refresh_clicked)
        history = QPushButton("&History…")
        history.clicked.connect(self.history_clicked)
        more = QPushButton("&Menu")
        more.setMenu(menu)
        top = QHBoxLayout()
        top.addWidget(self._badge)
        top.addWidget(self._line, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(history)
        buttons.addWidget(more)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self._notices)
        layout.addWidget(self._message)
        layout.addLayout(answers)
        layout.addLayout(buttons)
        self.setMinimumWidth(320)

    def set_person(self, badge: PersonBadge | None, name: str | None) -> None:
        """Whose window this is (one of several people): the title, badge and line name them."""
        self._person_badge, self._person_name = badge, (name or "").strip() or None
        title = f"{APP_NAME} — demo" if self._demo else APP_NAME
        if self._person_name:
            title = f"{title} — {self._person_name}"
        self.setWindowTitle(title)

    def show_model(self, model: DisplayModel, person: PersonBadge | None = None) -> None:
        """The badge (with `person`'s label when given, else this window's person's), the status
        line and the tooltip."""
        from PySide6.QtGui import QPixmap

        badge = person if person is not None else self._person_badge
        image = render_image(model, 64, self.devicePixelRatioF(), badge)
        self._badge.setPixmap(QPixmap.fromImage(image))
        demo = f"{DEMO_LINE}\n" if self._demo else ""
        named = f"{self._person_name}{TITLE_SEPARATOR}" if self._person_name else ""
        self._line.setText(demo + named + model.status_line)
        self._line.setAccessibleName(model.accessible)
        self._badge.setAccessibleName(model.accessible)
        self.setToolTip(demo + model.tooltip)

    def show_notices(self, notices: tuple[str, ...]) -> None:
        """Lines about the app's files (history not kept, settings not saved)."""
        self._notices.setText("\n".join(notices))
        self._notices.setVisible(bool(notices))

    @property
    def notices(self) -> str:
        return self._notices.text() if self._notices.isVisibleTo(self) else ""

    @property
    def message(self) -> str:
        """The alert text shown, "" when none."""
        return self._message.text() if self._message.isVisibleTo(self) else ""

    def show_message(self, title: str, body: str) -> None:
        """Shows the title in bold over the body, both as written (a person's name or a path
        with "<" or "&" is text, never markup)."""
        title, body = html.escape(title, quote=False), html.escape(body, quote=False)
        self._message.setText(f"<b>{title}</b><br>{body}")
        self._message.show()
        self.snooze_button.hide()
        self.acknowledge_button.hide()
        self.show()
        self.raise_()

    def set_alert_controls(self, snooze_minutes: int | None) -> None:
        """The message shown is an alert: offer Acknowledge, and Snooze for what is granted."""
        if snooze_minutes is not None:
            self.snooze_button.setText(f"&Snooze {_snooze_label(snooze_minutes)}")
        self.snooze_button.setVisible(snooze_minutes is not None)
        self.acknowledge_button.show()

    def clear_message(self) -> None:
        self._message.clear()
        self._message.hide()
        self.snooze_button.hide()
        self.acknowledge_button.hide()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing the window hides it to the taskbar; the app quits only from the menu."""
        if self.allow_close:
            event.accept()
            return
        event.ignore()
        self.showMinimized()


def _literal(text: str) -> str:
    """Menu text shown as written: an "&" in a message or a path is not a mnemonic."""
    return text.replace("&", "&&")
