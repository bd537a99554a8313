"""Wires the worker to the alert engine, notifier and tray: the app's one place of coordination."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication, QSessionManager
from PySide6.QtNetwork import QNetworkInformation

from cgmtray.domain import alerts, display
from cgmtray.domain.alert_config import (
    AlertControl,
    AlertKind,
    AlertSettings,
    ControlAction,
    ControlSource,
)
from cgmtray.domain.clock import Clock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.person_tag import PersonTag, key_person, notification_key, titled
from cgmtray.domain.readings import Reading
from cgmtray.domain.units import Unit
from cgmtray.share.client import ShareClient
from cgmtray.storage.settings import Settings
from cgmtray.ui.notifier import BACKEND_WINDOW, NotificationRequest, Notifier
from cgmtray.ui.timers import REAL_TIMERS, Timers
from cgmtray.ui.tray import MenuState
from cgmtray.ui.tray_like import TrayLike
from cgmtray.ui.worker import WorkerThread

log = logging.getLogger(__name__)

#: The controller keeps this much recent history in memory for the display and the alert engine,
#: counted back from the corrected now (never from the newest reading: one reading stamped far
#: ahead must not push every real one out).
RECENT_SPAN = timedelta(hours=3)
#: A held reading may be this far ahead of the corrected now (clocks disagree by seconds); one
#: further ahead is dropped, so it can neither stand for the current value nor hide a low.
FUTURE_SLACK = timedelta(minutes=5)
#: The display and the alert engine are re-evaluated this often (ages change, no-data comes due).
TICK_MS = 20_000
#: "Snooze" on a notification asks for this long (capped per kind by the rules).
NOTIFICATION_SNOOZE = timedelta(minutes=30)

#: The notifier kind of a notice about the app's files (a damaged history store moved aside):
#: shown like an alert but no alert kind, so it has no snooze and answers change nothing.
FILES_NOTICE_KIND = "files"

#: What each control writes to the log.
_CONTROL_EVENTS: dict[ControlAction, tuple[str, str]] = {
    ControlAction.SNOOZE: ("alert.snoozed", "alert snoozed"),
    ControlAction.ACKNOWLEDGE: ("alert.acknowledged", "alert acknowledged"),
    ControlAction.CANCEL_SNOOZE: ("alert.snooze_cancelled", "alert snooze cancelled"),
    ControlAction.TURN_OFF: ("alert.turned_off", "alert turned off"),
}


class HistoryView(Protocol):
    """The history window as the controller sees it (made lazily by the app; it follows the
    settings itself)."""

    def open(self) -> object: ...

    def add_readings(self, readings: tuple[Reading, ...]) -> None: ...


@dataclass(frozen=True)
class ViewSettings:
    """The parts of the settings the controller applies live."""

    unit: Unit = Unit.MGDL
    alerts: AlertSettings = field(default_factory=AlertSettings)


class Controller(QObject):
    """Worker -> readings -> alert engine -> notifier; display model -> tray.

    One controller watches one person. With a `person`, its notification keys start with the
    person's id, its titles name them ("Sam · Urgent low: 48 mg/dL ↓") and its log lines carry their
    id; it answers only its own notifications, so several controllers can share one notifier
    (and its one alarm). Without one (the single unnamed person) keys and titles are as they were.

    Signals:
        quit_requested(): the person chose Quit.
        refreshed(): the display and alerts were re-evaluated (tests wait on it).
        decisions_made(tuple[AlertDecision, ...]): what the alert engine decided, after showing.
    """

    quit_requested = Signal()
    refreshed = Signal()
    decisions_made = Signal(object)

    def __init__(
        self,
        *,
        clock: Clock,
        tray: TrayLike,
        notifier: Notifier,
        worker: WorkerThread,
        view: ViewSettings,
        stored: list[Reading] | None = None,
        time_scale: float = 1.0,
        history: HistoryView | None = None,
        open_settings: Callable[[], None] | None = None,
        open_about: Callable[[], None] | None = None,
        timers: Timers = REAL_TIMERS,
        person: PersonTag | None = None,
        shared_notifier: bool = False,
        alert_state: alerts.AlertState | None = None,
    ) -> None:
        """`timers` is where the tick's waiting comes from: real QTimers, or a test's virtual
        time (then give the worker the same). `person`: whose readings these are (None: the
        one unnamed person of a single-account app). `shared_notifier`: the notifier outlives
        this controller (the session owns it), so stopping closes only this person's alerts.
        `alert_state`: what the person's previous controller kept (alerts.carried_over)."""
        super().__init__()
        self._person = person
        self._shared_notifier = shared_notifier
        self._clock = clock  # the corrected clock (Share's, steadied): "now" for every rule
        self._tray = tray
        self._notifier = notifier
        self._worker = worker
        self._view = view
        self._recent: dict[datetime, Reading] = {r.time: r for r in stored or ()}
        self._status = ConnectionStatus(LinkState.STARTING)
        self._alert_state = alert_state if alert_state is not None else alerts.initial_state()
        self._alerts_live = False
        self._history = history
        #: The alerts the status window holds: key -> kind.
        self._window_keys: dict[str, AlertKind] = {}
        self._open_settings = open_settings
        self._open_about = open_about
        self._tick_ms = max(50, round(TICK_MS / time_scale))
        self._tick = timers.alarm(self, self._on_tick_timeout, repeat=True)
        #: Set by stop(): a late reading, status or notifier answer (queued before the stop, or
        #: meant for the person's next controller) is ignored, never raised as an alert.
        self._stopped = False

        worker.worker.readings_received.connect(self._on_worker_readings_received)
        worker.worker.status_changed.connect(self._on_worker_status_changed)
        tray.refresh_requested.connect(self._on_tray_refresh_requested)
        tray.control_requested.connect(self._on_tray_control_requested)
        tray.quit_requested.connect(self.quit_requested)
        tray.open_history_requested.connect(self._on_tray_open_history_requested)
        tray.settings_requested.connect(self._on_tray_settings_requested)
        tray.about_requested.connect(self._on_tray_about_requested)
        notifier.snooze_requested.connect(self._on_notifier_snooze_requested)
        notifier.acknowledged.connect(self._on_notifier_acknowledged)
        notifier.delivered.connect(self._on_notifier_delivered)
        notifier.withdrawn.connect(self._on_notifier_withdrawn)
        self._update_menu_state()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, *, held: ConnectionStatus | None = None) -> None:
        """Shows what is stored at once, then starts the worker (which polls at once).

        `held`: the person cannot be followed yet (no password saved): the worker is not
        started, and the icon and a sign-in alert say why, until the person is set up anew."""
        self._refresh()
        self._tick.start(self._tick_ms)
        if held is not None:
            self._on_worker_status_changed(held)
        else:
            self._worker.start()
        self._watch_network()
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            # Logout: close what we show (the session may still be cancelled, so keep working);
            # any way out of the event loop: close everything before the D-Bus thread ends.
            app.commitDataRequest.connect(self._on_commit_data_requested)
            app.aboutToQuit.connect(self._on_about_to_quit)

    @Slot(QSessionManager)
    def _on_commit_data_requested(self, _manager: QSessionManager) -> None:
        log.info("the session is ending: closing notifications", extra={"event": "app.logout"})
        self._notifier.close_all()

    @Slot()
    def _on_about_to_quit(self) -> None:
        self._notifier.shutdown()

    def _watch_network(self) -> None:
        """When the network comes back (Wi-Fi rejoined, cable in), poll at once."""
        if not QNetworkInformation.loadDefaultBackend():
            log.info("no network-information backend: relying on clock-jump and backoff")
            return
        info = QNetworkInformation.instance()
        if info is not None:
            info.reachabilityChanged.connect(self._on_network_reachability_changed)

    @Slot(QNetworkInformation.Reachability)
    def _on_network_reachability_changed(
        self, reachability: QNetworkInformation.Reachability
    ) -> None:
        if reachability in (
            QNetworkInformation.Reachability.Online,
            QNetworkInformation.Reachability.Site,
        ):
            log.info("network is back: polling at once", extra={"event": "network.online"})
            self._worker.bridge.resume_requested.emit()

    def stop(self) -> bool:
        """Stops the tick, the notifier (closing every notification it shows, bounded) and the
        worker (bounded); True if the worker ended. A named person's controller shares the
        notifier with others: it closes only its own alerts, and the notifier's owner shuts the
        notifier down (at quit every controller's aboutToQuit does)."""
        self._tick.stop()
        if self._stopped:
            return self._worker.stop()
        self._stopped = True
        self._worker.worker.readings_received.disconnect(self._on_worker_readings_received)
        self._worker.worker.status_changed.disconnect(self._on_worker_status_changed)
        notifier = self._notifier
        notifier.snooze_requested.disconnect(self._on_notifier_snooze_requested)
        notifier.acknowledged.disconnect(self._on_notifier_acknowledged)
        notifier.delivered.disconnect(self._on_notifier_delivered)
        notifier.withdrawn.disconnect(self._on_notifier_withdrawn)
        if self._person is None and not self._shared_notifier:
            self._notifier.shutdown()
        else:
            self._notifier.close_person(None if self._person is None else self._person.id)
        finished = self._worker.stop()
        self._tray.shutdown()
        return finished

    @property
    def person(self) -> PersonTag | None:
        """Whose readings and alerts these are (None: the single unnamed person)."""
        return self._person

    def rename(self, person: PersonTag) -> None:
        """The person got a new name: later alerts' titles carry it (same id, same keys)."""
        if self._person is None or person.id != self._person.id:
            raise ValueError("only a named person's name may change, never who it is")
        self._person = person

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def recent(self) -> tuple[Reading, ...]:
        """Readings held for the display and alerts, newest first."""
        return tuple(sorted(self._recent.values(), reverse=True))

    @property
    def alert_state(self) -> alerts.AlertState:
        return self._alert_state

    def replace_client(self, factory: Callable[[], ShareClient]) -> None:
        """The account changed: the worker signs in anew with a new client."""
        self._status = ConnectionStatus(LinkState.STARTING)
        self._worker.bridge.client_replaced.emit(factory)

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """New settings (a SettingsModel's `changed`): the unit and alerts are applied when they
        differ from the ones in use; any other change redraws nothing. A named person's alerts
        are theirs in the people list (another person's change leaves this one alone)."""
        alerts = settings.first_person.alerts
        if self._person is not None:
            mine = [p.alerts for p in settings.people if p.id == self._person.id]
            if not mine:
                return  # removed: the session stops this controller
            alerts = mine[0]
        view = ViewSettings(unit=settings.unit, alerts=alerts)
        if view != self._view:
            self.apply_view(view)

    def apply_view(self, view: ViewSettings) -> None:
        """New unit or alert settings: re-evaluated at once in the tray. Kinds turned off go
        through apply_control (their alarm and notification end now)."""
        turned_off = tuple(
            kind
            for kind in AlertKind
            if self._view.alerts[kind].enabled and not view.alerts[kind].enabled
        )
        self._view = view
        if turned_off:
            self.apply_control(
                AlertControl(ControlAction.TURN_OFF, turned_off, ControlSource.SETTINGS)
            )
        self._update_menu_state()
        self._refresh()

    # --- worker -------------------------------------------------------------------------------

    @Slot(object)
    def _on_worker_readings_received(self, readings: tuple[Reading, ...]) -> None:
        for reading in readings:
            self._recent[reading.time] = reading
        self._refresh()
        if self._history is not None:
            self._history.add_readings(readings)

    @Slot(object)
    def _on_worker_status_changed(self, status: ConnectionStatus) -> None:
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        self._status = status
        self._update_menu_state()
        if status.state is not LinkState.STARTING:
            # Alerts start with the first real outcome, so old stored history cannot raise a
            # stale "no data" alert in the moment before the first fetch.
            self._alerts_live = True
        self._refresh()

    # --- evaluation ---------------------------------------------------------------------------

    @Slot()
    def _on_tick_timeout(self) -> None:
        self._refresh()

    def _window(self, now: datetime) -> tuple[Reading, ...]:
        """The held readings in [now - RECENT_SPAN, now + FUTURE_SLACK], newest first; older ones
        are forgotten. Ones further ahead are kept but not used: after a clock that was behind is
        corrected they count again."""
        for time in [t for t in self._recent if t < now - RECENT_SPAN]:
            del self._recent[time]
        return tuple(r for r in self.recent if r.time <= now + FUTURE_SLACK)

    def _refresh(self) -> None:
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        now = self._clock.now()
        readings = self._window(now)
        if self._alerts_live:
            self._evaluate_alerts(readings, now)
        model = display.model(
            readings,
            now,
            unit=self._view.unit,
            thresholds=self._view.alerts.thresholds(),
            connection=self._status.problem,
            failure=self._status.failure,
            # `now` is already on Share's clock: no second correction.
        )
        self._tray.show_model(model)
        self.refreshed.emit()

    def _evaluate_alerts(self, readings: tuple[Reading, ...], now: datetime) -> None:
        status = self._status
        connection = alerts.ConnectionState(
            reachable=status.state not in (LinkState.UNREACHABLE, LinkState.RATE_LIMITED),
            sign_in_problem=status.problem if status.needs_user else None,
        )
        self._alert_state, decisions = alerts.evaluate(
            self._alert_state, readings, now, self._view.alerts, connection, unit=self._view.unit
        )
        for decision in decisions:
            self._deliver(decision)
        if decisions:
            self._update_menu_state()
            self.decisions_made.emit(decisions)

    def _deliver(self, decision: alerts.AlertDecision) -> None:
        key = notification_key(self._person, decision.key)
        extra = {
            **self._person_field(),
            "kind": decision.kind.value,
            "action": decision.action.value,
            "urgent": decision.urgent,
            "at": decision.at.isoformat(),
        }
        if decision.action is alerts.DecisionAction.CLEAR:
            log.info("alert cleared", extra={"event": "alert.cleared", **extra})
            self._notifier.close(key)
            return
        log.info("alert raised", extra={"event": "alert.raised", **extra})
        sound: str | None = None
        if decision.sound:
            sound = "alarm" if decision.urgent else "chime"
        title = titled(self._person, decision.title)
        self._notifier.show(
            NotificationRequest(
                key=key,
                kind=decision.kind.value,
                # The demo's alerts say they are the demo's (a person trying it must never
                # take a simulated low for their own).
                title=f"Demo: {title}" if self._tray.demo else title,
                body=decision.message,
                urgent=decision.urgent,
                sound=sound,
                snoozable=decision.kind is not AlertKind.SIGN_IN_PROBLEM,
                resident=decision.resident,
            )
        )

    # --- asks from the person -----------------------------------------------------------------

    @Slot()
    def _on_tray_refresh_requested(self) -> None:
        self._worker.bridge.poll_requested.emit()

    @Slot(object)
    def _on_tray_control_requested(self, control: AlertControl) -> None:
        self.apply_control(control)

    def _owns(self, key: str) -> bool:
        """The notification `key` is about this controller's person."""
        return key_person(key) == (None if self._person is None else self._person.id)

    def _person_field(self) -> dict[str, str]:
        """The log field naming the person: the id, never the name (names are personal)."""
        return {} if self._person is None else {"person": self._person.id}

    @Slot(str, str)
    def _on_notifier_snooze_requested(self, key: str, kind: str) -> None:
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        if kind == FILES_NOTICE_KIND or not self._owns(key):
            return
        self.apply_control(
            AlertControl(
                ControlAction.SNOOZE,
                (AlertKind(kind),),
                ControlSource.NOTIFICATION,
                NOTIFICATION_SNOOZE,
            )
        )

    @Slot(str, str)
    def _on_notifier_acknowledged(self, key: str, kind: str) -> None:
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        if kind == FILES_NOTICE_KIND or not self._owns(key):
            return
        self.apply_control(
            AlertControl(ControlAction.ACKNOWLEDGE, (AlertKind(kind),), ControlSource.NOTIFICATION)
        )

    def snooze(self, kind: AlertKind, duration: timedelta) -> timedelta:
        """Snoozes one kind from the menu (capped by its rules); returns the time granted."""
        control = AlertControl(ControlAction.SNOOZE, (kind,), ControlSource.MENU, duration)
        return self.apply_control(control).get(kind, timedelta(0))

    def apply_control(self, control: AlertControl) -> dict[AlertKind, timedelta]:
        """The one path of every alert control (menu, notification, status window, Settings).

        Updates the engine's state (snooze / acknowledge / cancel a snooze / forget a kind turned
        off), stops the alarm and closes the notifications of the kinds silenced, logs it, and
        refreshes the menu. Returns the snooze granted per kind (empty for other actions).
        """
        now = self._clock.now()
        state = self._alert_state
        granted: dict[AlertKind, timedelta] = {}
        silenced: list[AlertKind] = []
        for kind in control.kinds:
            minutes: int | None = None
            if control.action is ControlAction.SNOOZE:
                if control.duration is None:
                    raise ValueError("a snooze control needs a duration")
                state, granted[kind] = alerts.snooze(
                    state, kind, control.duration, now, self._view.alerts
                )
                minutes = round(granted[kind].total_seconds() / 60)
                if granted[kind] > timedelta(0):
                    silenced.append(kind)
            elif control.action is ControlAction.ACKNOWLEDGE:
                state = alerts.acknowledge(state, kind, now)
                silenced.append(kind)
            elif control.action is ControlAction.CANCEL_SNOOZE:
                state = alerts.cancel_snooze(state, kind, now)
            else:
                state = alerts.withdraw(state, kind)
                silenced.append(kind)
            event, message = _CONTROL_EVENTS[control.action]
            extra: dict[str, object] = {
                "event": event,
                **self._person_field(),
                "kind": kind.value,
                "source": control.source.value,
            }
            if minutes is not None:
                extra["minutes"] = minutes
            log.info(message, extra=extra)
        self._alert_state = state
        self._notifier.close_kinds(
            {kind.value for kind in silenced},
            person=None if self._person is None else self._person.id,
        )
        self._update_menu_state()
        if control.action is ControlAction.CANCEL_SNOOZE and self._alerts_live:
            self._refresh()  # a condition still on alerts again now, not at the next tick
        return granted

    @Slot(str, str)
    def _on_notifier_delivered(self, key: str, backend: str) -> None:
        """The status window has controls for the alert it shows."""
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        request = self._notifier.request_for(key)
        if backend != BACKEND_WINDOW or request is None or not self._owns(key):
            return
        if request.kind == FILES_NOTICE_KIND:
            self._tray.show_status_message(request.title, request.body)
            return
        kind = AlertKind(request.kind)
        self._window_keys[key] = kind
        cap = self._view.alerts[kind].snooze_cap
        self._tray.show_status_alert(kind, request.title, request.body, cap)

    @Slot(str)
    def _on_notifier_withdrawn(self, key: str) -> None:
        if self._stopped:
            return  # a stopped controller raises and shows nothing
        kind = self._window_keys.pop(key, None)
        if kind is not None:
            self._tray.clear_status_alert(kind)

    @Slot()
    def _on_tray_open_history_requested(self) -> None:
        if self._history is not None:
            self._history.open()

    @Slot()
    def _on_tray_settings_requested(self) -> None:
        if self._open_settings is not None:
            self._open_settings()

    @Slot()
    def _on_tray_about_requested(self) -> None:
        if self._open_about is not None:
            self._open_about()

    def _update_menu_state(self) -> None:
        snoozed = {
            kind: until
            for kind in AlertKind
            if (until := alerts.snoozed_until(self._alert_state, kind)) is not None
            and until > self._clock.now()
        }
        self._tray.set_menu_state(
            MenuState(
                history_available=self._history is not None,
                settings_available=self._open_settings is not None,
                snoozed_until=snoozed,
                alerts=self._view.alerts,
                connection=self._status,
                open_alerts=alerts.active_alerts(self._alert_state),
            )
        )
