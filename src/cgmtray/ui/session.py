"""The running session: decides how to start (demo, first run, saved people), then owns one
PersonRuntime per person followed and the settings dialog for the rest of the app's life."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from cgmtray import logging_setup
from cgmtray.domain.alerts import AlertState, carried_over
from cgmtray.domain.attention import TrayIcons, labels_on_badges
from cgmtray.domain.clock import Clock, shared_clock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.person_tag import notification_key, titled
from cgmtray.domain.server_clock import ServerClock
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import Region
from cgmtray.storage import autostart, people
from cgmtray.storage import paths as app_paths
from cgmtray.storage.credentials import (
    CredentialStore,
    MemoryCredentialStore,
    PasswordStore,
)
from cgmtray.storage.history import HistoryStore, open_or_recover
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.safe_open import describe
from cgmtray.storage.settings import Settings, keep_copy
from cgmtray.storage.sign_in_state import PersistedSignInGate
from cgmtray.ui.about import about_opener
from cgmtray.ui.background import BackgroundTask, TaskResult
from cgmtray.ui.controller import FILES_NOTICE_KIND, RECENT_SPAN, Controller, ViewSettings
from cgmtray.ui.history_access import HistoryOpener, PersonHistory, history_opener
from cgmtray.ui.notifier import OPEN_NOTIFICATIONS_FILE, NotificationRequest, Notifier
from cgmtray.ui.person_runtime import (
    Account,
    PersonRuntime,
    badge_of,
    make_tray,
    tag_of,
    tray_mode,
)
from cgmtray.ui.settings_model import SettingsModel
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.timers import REAL_TIMERS, Timers
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.tray_together import TogetherTray, TrayPort
from cgmtray.ui.worker import AccountIdNews, ShareWorker, WorkerThread

if TYPE_CHECKING:
    from cgmtray.ui.settings_dialog import SettingsDialog

log = logging.getLogger(__name__)

#: What the settings dialog says when the demo's "Sign in with your own account…" opens it.
DEMO_SIGN_IN_NOTICE = (
    "Sign in with your Dexcom account. When you save, the demo stops and CGM Tray follows your "
    "readings instead; Cancel keeps the demo running."
)


#: What a person's icon says when their password is not in the keyring (the others run).
NO_PASSWORD_PROBLEM = (
    "No password saved for this person: enter it in Settings › People › Adjust account…"  # noqa: S105 - a message
)

__all__ = ["DEMO_SIGN_IN_NOTICE", "NO_PASSWORD_PROBLEM", "Account", "AppSession", "KeyringAnswer"]


@dataclass(frozen=True)
class KeyringAnswer:
    """What the start-up keyring lookup found (made off the GUI thread)."""

    store: PasswordStore
    password: str | None = field(repr=False)
    problem: str | None
    #: The Share account id kept next to the password (protocol 7.2), if any.
    account_id: str | None = field(default=None, repr=False)


def _pick_store() -> PasswordStore:
    """Runs on a background thread: the system keyring, or memory when none works."""
    store = CredentialStore()
    return store if store.available() else MemoryCredentialStore()


def _look_up_password(source: ShareSource, legacy_id: str | None = None) -> KeyringAnswer:
    """Runs on a background thread: picks the keyring backend, reads the password and the
    account id. `legacy_id` (from an old settings file) moves to the keyring if none is there."""
    store = CredentialStore()
    if not store.available():
        return KeyringAnswer(
            MemoryCredentialStore(),
            None,
            "No system keyring works on this computer, so the password is kept in memory for "
            "this session only. Enter it to start.",
        )
    password = people.read_password(store, source)
    if not password:
        return KeyringAnswer(store, None, "Enter the Dexcom password to start.")
    account_id = people.read_account_id(store, source)
    if account_id is None and legacy_id is not None:
        account_id = legacy_id
        people.keep_account_id(store, source, legacy_id)
    return KeyringAnswer(store, password, None, account_id)


@dataclass(frozen=True)
class PeopleAnswer:
    """What the start-up keyring lookup found for several people (made off the GUI thread)."""

    store: PasswordStore
    #: Per person id: (password or None, account id or None).
    found: dict[str, tuple[str | None, str | None]] = field(repr=False)


def _look_up_people(
    sources: dict[str, ShareSource], store: PasswordStore | None = None
) -> PeopleAnswer:
    """Runs on a background thread: each person's password and account id (None where the
    keyring has none, or cannot say); the keyring is picked unless `store` is given."""
    if store is None:
        store = _pick_store()
    found: dict[str, tuple[str | None, str | None]] = {}
    for person_id, source in sources.items():
        try:
            password = people.read_password(store, source)
        except Exception as error:  # a failing keyring: this person cannot start, others may
            log.warning("a password could not be read: %s", type(error).__name__)
            password = None
        account_id = people.read_account_id(store, source) if password else None
        found[person_id] = (password or None, account_id)
    return PeopleAnswer(store, found)


def _no_client() -> ShareClient:
    """The client factory of a person held without a password: their worker never starts."""
    raise RuntimeError("no password: this person is not followed")


def _same_source(old: Person, new: Person) -> bool:
    """The same Dexcom account, reached the same way (else the person signs in anew)."""
    return (old.source.account_key, old.source.share_url) == (
        new.source.account_key,
        new.source.share_url,
    )


class AppSession(QObject):
    """Starts the app the right way and keeps what the running app needs.

    Signals:
        quit_requested(): Quit from the menu, or nothing to run (welcome closed, or Quit chosen
            after the start-up password prompt was cancelled). The process connects it to
            `QApplication.exit`.
    """

    quit_requested = Signal()

    def __init__(
        self,
        args: argparse.Namespace,
        paths: app_paths.AppPaths,
        stack: contextlib.ExitStack,
        *,
        timers: Timers = REAL_TIMERS,
    ) -> None:
        """`timers`: where the workers' and controllers' waiting comes from (a test's virtual
        time, or real QTimers)."""
        super().__init__()
        self._args = args
        self._paths = paths
        self._stack = stack
        self._timers = timers
        self._settings = Settings()
        self._password_store: PasswordStore = MemoryCredentialStore()
        #: One per person followed, in the people list's order (empty until something runs).
        self._runtimes: list[PersonRuntime] = []
        #: Shared by every person's controller: one notifier, one alarm sound.
        self._notifier: Notifier | None = None
        self._sound: AlarmSound | None = None
        #: People being looked up in the keyring before they start (ids).
        self._pending: set[str] = set()
        #: The people's alerts and badges name them (two or more people).
        self._named = False
        #: One icon per person or one for everyone (None until something runs).
        self._mode: TrayIcons | None = None
        #: The one icon for everyone (only while the mode says so).
        self._together: TogetherTray | None = None
        #: The app's one history window (each person's controller gets their door to it).
        self._opener: HistoryOpener | None = None
        #: Passwords (and account ids) of people added in Settings that the keyring could not
        #: keep: used when the keyring has none for them. Never logged.
        self._given: dict[str, tuple[ShareSource, str, str | None]] = {}
        #: stop() ran: a keyring answer arriving later starts nobody.
        self._stopped = False
        #: Where the people's history stores are (the demo: its temporary folder).
        self._history_dir: Path = paths.data_dir
        #: The running app's clock (the demo's, or the system's scaled by --speed).
        self._clock: Clock | None = None
        #: The running app's settings; its parts follow `changed` (None until something runs).
        self._model: SettingsModel | None = None
        #: The retention last pruned to.
        self._retention_days: int | None = None
        self._dialog: SettingsDialog | None = None
        #: The demo's "Sign in with your own account…" is opening the keyring (a 2nd click waits).
        self._picking_for_sign_in = False
        self._first_run: object | None = None
        #: Offered when the start-up password prompt is cancelled (enter it, or quit).
        self._password_choice: QWidget | None = None
        #: What the start-up password prompt said (said again if the person chooses to enter it).
        self._password_notice: str | None = None
        self._tasks: set[BackgroundTask] = set()
        self._demo = bool(args.demo)
        #: What the demo runs (its simulated service, its temporary folder): closed when the
        #: person signs in with their own account, or at exit.
        self._demo_stack = contextlib.ExitStack()
        stack.callback(self._demo_stack.close)
        #: Where the shared sign-in state lives (demo: its temporary folder).
        self._state_dir: Path = paths.data_dir
        #: Account id writes run one at a time, in order; the next one waits here.
        self._id_write_running = False
        self._id_writes: list[Callable[[], None]] = []
        #: What the person must know about the app's files (shown under the status line).
        self._notices: list[str] = []

    # --- the first person's parts (what a single-person app has) ---------------------------

    @property
    def runtimes(self) -> tuple[PersonRuntime, ...]:
        """Every person's running parts, in the people list's order."""
        return tuple(self._runtimes)

    @property
    def _first(self) -> PersonRuntime | None:
        return self._runtimes[0] if self._runtimes else None

    @property
    def _controller(self) -> Controller | None:
        return self._first.controller if self._first is not None else None

    @property
    def _tray(self) -> TrayPresenter | None:
        """The first person's own icon (None while everyone shares one: `together`)."""
        return self._first.icon if self._first is not None else None

    @property
    def together(self) -> TogetherTray | None:
        """The one icon for everyone, while the tray setting and the people list say so."""
        return self._together

    @property
    def _history(self) -> HistoryOpener | None:
        """The app's one history window (None until someone's history store is usable)."""
        return self._opener

    @property
    def _account(self) -> Account | None:
        return self._first.account if self._first is not None else None

    @property
    def _client_source(self) -> Callable[[], ShareClient] | None:
        return self._first.client_source if self._first is not None else None

    # --- start ------------------------------------------------------------------------------

    @Slot(str)
    def add_notice(self, text: str) -> None:
        """A file the app cannot use (history not kept, settings not saved, no log file): said
        in the log and under the status line (the menu and the status window), once."""
        if text in self._notices:
            return
        self._notices.append(text)
        log.warning("%s", text, extra={"event": "files.notice"})
        for runtime in self._runtimes:
            if runtime.icon is not None:
                runtime.icon.set_notices(tuple(self._notices))
        if self._together is not None:
            self._together.set_notices(tuple(self._notices))

    def begin(self) -> None:
        """Chooses the way in: demo, welcome window, or the saved account (keyring off-thread)."""
        if self._demo:
            self._start_demo()
            return
        loaded = people.load(self._paths.settings_file)
        self._settings = loaded.settings
        if loaded.problem:
            log.warning("settings: %s", loaded.problem)
            if loaded.backup is not None or loaded.ignored or loaded.left_out:
                self.add_notice(loaded.problem)
        should_save = loaded.should_save
        if should_save and loaded.left_out:
            # Saving rewrites the file without the people left out: keep it as it was first.
            kept = keep_copy(self._paths.settings_file)
            if kept is None:
                should_save = False
            else:
                self.add_notice(f"Your settings file as it was is kept as {kept}.")
        if should_save:
            try:
                people.save(loaded.settings, self._paths.settings_file)
            except OSError as error:
                self.add_notice(
                    f"Settings cannot be saved ({describe(error)}); they are kept in memory "
                    "until CGM Tray quits."
                )
            except ValueError:
                pass
        from cgmtray.ui.first_run import needs_first_run

        if needs_first_run(self._settings):
            self._show_first_run(loaded.problem)
            return
        if len(self._settings.people) > 1:
            # Several people: each one's password from the keyring; one without runs as a
            # sign-in problem on their own icon, the others start.
            sources = {p.id: p.source for p in self._settings.people}
            task = BackgroundTask(lambda: _look_up_people(sources), name="keyring-read")
            task.finished.connect(self._on_people_found)
            self._run(task)
            return
        person = self._settings.first_person
        legacy_id = loaded.legacy_account_ids.get(person.id)
        if getattr(self._args, "password_stdin", False):
            password = sys.stdin.readline().rstrip("\r\n")
            if password:
                self._start_account(self._settings, password, given=True, account_id=legacy_id)
                return
            self._ask_for_password("No password arrived on standard input. Enter it to start.")
            return
        source = person.source
        task = BackgroundTask(lambda: _look_up_password(source, legacy_id), name="keyring-read")
        task.finished.connect(self._on_keyring_task_finished)
        self._run(task)

    @Slot(object)
    def _on_keyring_task_finished(self, result: TaskResult) -> None:
        if result.error is not None:
            log.warning("the system keyring could not be read: %s", type(result.error).__name__)
            self._ask_for_password(
                "The system keyring could not be read, so the password is kept in memory for "
                "this session only. Enter it to start."
            )
            return
        answer = result.value
        assert isinstance(answer, KeyringAnswer)
        self._password_store = answer.store
        if answer.password is None:
            self._ask_for_password(answer.problem)
            return
        self._start_account(self._settings, answer.password, account_id=answer.account_id)

    def _show_first_run(self, notice: str | None) -> None:
        from cgmtray.ui.first_run import FirstRunFlow

        # The keyring is picked off the GUI thread while the welcome window shows, so the
        # password (and then the account id) typed next is kept there, not only in memory.
        picking = BackgroundTask(_pick_store, name="keyring-pick")
        picking.finished.connect(self._on_store_picked)
        self._run(picking)

        flow = FirstRunFlow(lambda: self._make_dialog(notice))
        flow.account_ready.connect(self._on_account_changed)
        flow.settings_saved.connect(self._on_settings_saved)
        flow.demo_chosen.connect(self._start_demo)
        flow.abandoned.connect(self.quit_requested)
        self._first_run = flow
        flow.start()

    def _ask_for_password(self, notice: str | None) -> None:
        """The account is known but not its password: the settings dialog asks for it."""
        self._password_notice = notice
        self.open_settings(notice=notice, page_account=True)

    @Slot(object)
    def _on_store_picked(self, result: TaskResult) -> None:
        if result.error is not None:
            log.warning("the system keyring could not be opened: %s", type(result.error).__name__)
            return
        store = result.value
        if isinstance(store, CredentialStore | MemoryCredentialStore) and not self._runtimes:
            self._password_store = store

    @Slot()
    def _start_demo(self) -> None:
        from cgmtray.fakeshare.demo import DemoService

        self._demo = True
        speed = float(getattr(self._args, "speed", None) or 1.0)
        demo = self._demo_stack.enter_context(DemoService(speed=speed))
        # The demo family as people, each on the region the service holds them in.
        family: list[Person] = []
        for member in demo.accounts:
            source = ShareSource(member.region.value, member.username, demo.base_url_of(member))
            person = people.new_person(family, source, name=member.person.name)
            family.append(replace(person, label=member.person.label))
        settings = replace(Settings(), people=tuple(family))
        store_dir = Path(self._demo_stack.enter_context(tempfile.TemporaryDirectory()))
        self._state_dir = store_dir
        self._history_dir = store_dir
        self._clock = demo.clock
        runs: list[tuple[Person, Account | None]] = []
        for person in family:
            config = self._client_config(person)
            runs.append(
                (
                    person,
                    Account(
                        config, demo.password, demo.clock, speed, settings, ServerClock(demo.clock)
                    ),
                )
            )
        self._start(settings, runs)

    def _app_clock(self) -> Clock:
        """The clock of the running app (the demo's, or the system's scaled by --speed)."""
        if self._clock is None:
            speed = float(getattr(self._args, "speed", None) or 1.0)
            epoch = getattr(self._args, "clock_epoch", None) or datetime.now(UTC)
            self._clock = shared_clock(speed, epoch, getattr(self._args, "clock_file", None))
        return self._clock

    def _account_for(
        self, person: Person, settings: Settings, password: str, account_id: str | None
    ) -> Account:
        """A person's account to poll as (their password, their own Share clock)."""
        logging_setup.register_secret(password)
        logging_setup.register_secret(person.source.username)
        clock = self._app_clock()
        speed = float(getattr(self._args, "speed", None) or 1.0)
        config = self._client_config(person, account_id)
        return Account(config, password, clock, speed, settings, ServerClock(clock))

    def _start_account(
        self,
        settings: Settings,
        password: str,
        *,
        given: bool = False,
        account_id: str | None = None,
        person: Person | None = None,
    ) -> None:
        """Starts polling as `person`'s account (default: the first person's; the others, if
        any, follow from the keyring); `given`: the person just typed the password (or piped it
        on stdin), which lifts a rejection on record (a lock stays)."""
        self._settings = settings
        person = person if person is not None else settings.first_person
        account = self._account_for(person, settings, password, account_id)
        if given:
            self._gate_for(account.config).user_acted(credentials_changed=True)
        self._history_dir = self._paths.data_dir
        self._start(settings, [(person, account)])

    @Slot(object)
    def _on_people_found(self, result: TaskResult) -> None:
        """Several people's keyring lookup at start: each starts, or says their password is
        missing on their own icon."""
        if self._stopped:
            return
        if result.error is not None:
            log.warning("the system keyring could not be read: %s", type(result.error).__name__)
            answer = PeopleAnswer(MemoryCredentialStore(), {})
        else:
            assert isinstance(result.value, PeopleAnswer)
            answer = result.value
        self._password_store = answer.store
        settings = self._settings
        runs: list[tuple[Person, Account | None]] = []
        for person in settings.people:
            password, account_id = answer.found.get(person.id, (None, None))
            account = None
            if password:
                account = self._account_for(person, settings, password, account_id)
            runs.append((person, account))
        self._history_dir = self._paths.data_dir
        self._start(settings, runs)

    def _history_path_of(self, settings: Settings) -> Path:
        """The history store of the first person (the one the settings dialog shows)."""
        return self._paths.data_dir / settings.first_person.history_file

    def _start(self, settings: Settings, runs: list[tuple[Person, Account | None]]) -> None:
        """Starts each of `runs` (a person and their account, None: no password); the people
        of `settings` not among them start once the keyring has answered for them."""
        self._named = labels_on_badges(len(settings.people))
        self._mode = tray_mode(settings)
        for person, account in runs:
            self._launch(person, account, settings)
        log.info(
            "CGM Tray started",
            extra={"event": "app.started", "demo": self._demo, "people": len(settings.people)},
        )
        self._on_settings_changed(settings)  # prunes to the retention at once

    # --- running ----------------------------------------------------------------------------

    def _shared_parts(
        self, tray: TrayPresenter | TrayPort, settings: Settings
    ) -> tuple[Notifier, SettingsModel]:
        """The one notifier (with the one alarm sound) and the one settings model every
        person's parts share; made with the first person's tray."""
        if self._notifier is None:
            sound = AlarmSound(parent=self)

            def to_status_window(_request: NotificationRequest) -> None:
                """Accepts an alert for the status window; the controller shows it there, with
                its Snooze and Acknowledge, when the notifier reports it delivered (one owner)."""

            self._sound = sound
            self._notifier = Notifier(
                tray=tray.tray,
                status_sink=to_status_window,
                sound=sound,
                state_file=self._paths.data_dir / OPEN_NOTIFICATIONS_FILE,
                parent=self,
            )
        if self._model is None:
            self._model = SettingsModel(settings, parent=self)
            self._model.changed.connect(self._on_settings_changed)
        return self._notifier, self._model

    def _launch(
        self,
        person: Person,
        account: Account | None,
        settings: Settings,
        *,
        alert_state: AlertState | None = None,
    ) -> PersonRuntime:
        """Starts one person's parts: their tray icon, history store, worker and controller
        (with `alert_state` kept from their previous controller, if any)."""
        count = len(settings.people)
        history_path = self._history_dir / person.history_file
        opened = open_or_recover(history_path, datetime.now(UTC), RECENT_SPAN)
        clock = account.clock if account is not None else self._app_clock()
        tray = make_tray(
            person,
            count,
            force_status_window=getattr(self._args, "status_window", False),
            clock=clock,
            demo=self._demo,
            parent=self,
            together=self._together_tray(clock) if self._mode is TrayIcons.TOGETHER else None,
        )
        if isinstance(tray, TrayPresenter):
            tray.sign_in_requested.connect(self.sign_in_from_demo)
            tray.add_person_requested.connect(self.add_person)
        folder_said = any(str(history_path.parent) in notice for notice in self._notices)
        if opened.problem is not None and opened.moved_to is None and not folder_said:
            # (a notice about the data folder itself already says history is not kept)
            self.add_notice(opened.problem + " Readings are shown and alerts work from memory.")
        if isinstance(tray, TrayPresenter):
            tray.set_notices(tuple(self._notices))
        notifier, model = self._shared_parts(tray, settings)
        if tray.tray is not None and not self._icon_in_use(notifier.tray):
            notifier.set_tray(tray.tray)  # the icon the notifier had went (its person, or a mode)
        live = model.settings
        time_scale = account.time_scale if account is not None else 1.0
        client_factory: Callable[[], ShareClient] | None = None
        if account is not None:
            client_factory = self._client_factory(
                account.config, account.password, account.share_clock
            )
            worker = ShareWorker(
                client_factory,
                clock=account.clock,
                store_path=str(history_path) if opened.usable else None,
                newest_known=opened.newest,
                time_scale=account.time_scale,
                seed=secrets.randbelow(2**31),  # installs (and people) must not poll in step
                timers=self._timers,
            )
            worker.account_id_changed.connect(self._on_account_id_changed)
            worker.store_failed.connect(self.add_notice)
        else:
            worker = ShareWorker(_no_client, clock=clock, store_path=None, timers=self._timers)
        history: PersonHistory | None = None
        if opened.usable:
            history = self._history_opener(history_path, clock, live).for_person(person.id)
        alerts = next((p.alerts for p in live.people if p.id == person.id), person.alerts)
        tag = tag_of(person, count)
        open_settings: Callable[[], None] | None = self.open_settings
        if self._demo:
            open_settings = None
        elif account is None:
            # Held for want of a password: their Settings… opens where it is given.
            open_settings = functools.partial(self.open_settings, person_id=person.id)
        controller = Controller(
            clock=account.share_clock if account is not None else clock,
            tray=tray,
            notifier=notifier,
            worker=WorkerThread(worker),
            view=ViewSettings(unit=live.unit, alerts=alerts),
            stored=list(opened.recent),
            time_scale=time_scale,
            history=history,
            open_settings=open_settings,
            open_about=about_opener(),
            timers=self._timers,
            person=tag,
            shared_notifier=True,
            alert_state=alert_state,
        )
        # The parts that depend on the settings follow the model.
        model.changed.connect(controller.apply_settings)
        controller.quit_requested.connect(self.quit_requested)
        runtime = PersonRuntime(
            person, controller, tray, account, history, history_path, client_factory
        )
        self._runtimes.append(runtime)
        self._sort_runtimes(live)
        held = None
        if account is None:
            held = ConnectionStatus(LinkState.STOPPED, NO_PASSWORD_PROBLEM)
        controller.start(held=held)
        # After the controller: it shows a notice that reaches the status window there.
        if opened.moved_to is not None and opened.problem is not None:
            log.warning(
                "%s",
                opened.problem,
                extra={"event": "history.moved_aside", "moved_to": str(opened.moved_to)},
            )
            notifier.show(
                NotificationRequest(
                    key=notification_key(tag, "files-history-moved"),
                    kind=FILES_NOTICE_KIND,
                    title=titled(tag, "History store was damaged"),
                    body=opened.problem,
                    urgent=False,
                    snoozable=False,
                )
            )
        if self._retention_days is not None:  # a person added while the app runs
            self._prune_history(history_path, self._retention_days, clock)
        log.info(
            "person started",
            extra={"event": "person.started", "person": person.id, "held": account is None},
        )
        return runtime

    def _sort_runtimes(self, settings: Settings) -> None:
        order = {person.id: index for index, person in enumerate(settings.people)}
        self._runtimes.sort(key=lambda runtime: order.get(runtime.person.id, len(order)))
        if self._together is not None:
            self._together.arrange(settings.people)  # its menu's order, names and badges

    def _icon_in_use(self, icon: QSystemTrayIcon | None) -> bool:
        """`icon` is a running person's (or the one for everyone)."""
        return icon is not None and any(r.surface.tray is icon for r in self._runtimes)

    def _together_tray(self, clock: Clock) -> TogetherTray:
        """The one icon for everyone, made when the first person joins it."""
        if self._together is None:
            together = TogetherTray(
                force_status_window=getattr(self._args, "status_window", False),
                clock=clock,
                demo=self._demo,
                parent=self,
            )
            together.sign_in_requested.connect(self.sign_in_from_demo)
            together.add_person_requested.connect(self.add_person)
            together.quit_requested.connect(self.quit_requested)
            together.set_notices(tuple(self._notices))
            self._together = together
            log.info("one icon for everyone", extra={"event": "tray.together"})
        return self._together

    def _drop_together(self) -> None:
        """The one icon for everyone goes (everyone has left it: the mode changed, or the end)."""
        together, self._together = self._together, None
        if together is None:
            return
        if self._notifier is not None and self._notifier.tray is together.tray:
            self._notifier.set_tray(None)
        together.shutdown()
        together.deleteLater()

    def _history_opener(self, history_path: Path, clock: Clock, live: Settings) -> HistoryOpener:
        """The app's one history window, made (not yet shown) with the first usable store."""
        if self._opener is None:
            opener = history_opener(
                history_path, clock, live, self._paths.config_dir / "window-state.ini", parent=self
            )
            if self._model is not None:
                self._model.changed.connect(opener.apply_settings)
            self._opener = opener
        return self._opener

    def _close_history(self) -> None:
        """Closes the history window and every store it opened (the end, or the demo's)."""
        opener, self._opener = self._opener, None
        if opener is None:
            return
        if self._model is not None:
            with contextlib.suppress(RuntimeError):
                self._model.changed.disconnect(opener.apply_settings)
        opener.close()
        opener.deleteLater()

    @Slot()
    def add_person(self) -> None:
        """The tray's "Add a person…": the settings dialog, raised, with the Add window on top."""
        if self._demo:
            return
        self.open_settings()
        if self._dialog is not None:
            self._dialog.show_add_person()

    @Slot(object)
    def _on_people_added(self, added: object) -> None:
        """People added in Settings were saved: those the keyring could not keep start with the
        password typed in the Add window (the others start from the keyring)."""
        from cgmtray.ui.person_dialogs import NewPerson

        assert isinstance(added, tuple)
        for new in added:
            assert isinstance(new, NewPerson)
            logging_setup.register_secret(new.password)
            self._given[new.person.id] = (new.person.source, new.password, new.account_id)
        model = self._model
        if model is None or self._stopped:
            return
        settings = model.settings
        for person in settings.people:
            given = self._given_for(person)
            if given is None or person.id in self._pending:
                continue  # (the keyring's answer, when it comes, falls back on it)
            running = next((r for r in self._runtimes if r.person.id == person.id), None)
            if running is not None and running.account is not None:
                continue
            if running is not None:
                self._stop_runtime(running)
            self._launch(person, self._account_for(person, settings, *given), settings)

    def _given_for(self, person: Person) -> tuple[str, str | None] | None:
        """The password (and account id) typed for this person's account in this run."""
        given = self._given.get(person.id)
        if given is None or given[0] != person.source:
            return None
        return given[1], given[2]

    def _stop_runtime(self, runtime: PersonRuntime, *, delete: bool = False) -> bool:
        """Stops one person: their worker, their open alerts, their icon; True when the worker
        ended in time."""
        if runtime in self._runtimes:
            self._runtimes.remove(runtime)
        model = self._model
        if model is not None:
            model.changed.disconnect(runtime.controller.apply_settings)
        finished = runtime.controller.stop()
        notifier = self._notifier
        if notifier is not None and runtime.icon is not None and notifier.tray is runtime.icon.tray:
            # Balloons go to another person's icon (none: the next person's, when one starts).
            others = [r.surface.tray for r in self._runtimes if r.surface.tray is not None]
            notifier.set_tray(others[0] if others else None)
        if delete and runtime.icon is not None:
            runtime.icon.deleteLater()
        log.info("person stopped", extra={"event": "person.stopped", "person": runtime.person.id})
        return finished

    def _follow_people(self, settings: Settings) -> None:
        """The people list changed: only the people added, removed or given another account
        start or stop; a rename, label or colour redraws their icon (the worker runs on)."""
        if self._model is None:
            return
        wanted = settings.people
        count = len(wanted)
        mode = tray_mode(settings)
        ids = {person.id for person in wanted}
        self._given = {k: v for k, v in self._given.items() if k in ids}
        if self._runtimes and (labels_on_badges(count) != self._named or mode != self._mode):
            # One person became several or back: every key, title and badge changes; or the
            # tray changed between one icon per person and one for everyone.
            kept = {r.person.id: r for r in self._runtimes}
            for runtime in list(self._runtimes):
                self._stop_runtime(runtime)
            self._named = labels_on_badges(count)
            self._mode = mode
            if mode is not TrayIcons.TOGETHER:
                self._drop_together()
            log.info(
                "the tray follows the people",
                extra={"event": "tray.mode", "mode": mode.value, "people": count},
            )
            for person in wanted:
                old = kept.get(person.id)
                if old is not None and old.account is not None and _same_source(old.person, person):
                    # Snoozes survive the switch (a snoozed urgent low must not ring again).
                    kept_alerts = carried_over(old.controller.alert_state)
                    self._launch(person, old.account, settings, alert_state=kept_alerts)
        self._mode = mode
        by_id = {runtime.person.id: runtime for runtime in self._runtimes}
        for runtime in list(self._runtimes):
            if runtime.person.id not in ids:
                self._stop_runtime(runtime)
        missing: list[Person] = []
        for person in wanted:
            found = by_id.get(person.id)
            if found is None or found not in self._runtimes:
                if person.id not in self._pending:
                    missing.append(person)
                continue
            runtime = found
            if not _same_source(runtime.person, person):
                self._stop_runtime(runtime)
                missing.append(person)
                continue
            if runtime.account is None and person.id not in self._pending:
                missing.append(person)  # perhaps the password is there now
            looks = (person.name, person.label, person.colour)
            if looks != (runtime.person.name, runtime.person.label, runtime.person.colour):
                if runtime.icon is not None:  # (a port is redrawn by arrange)
                    runtime.icon.set_person(
                        badge_of(person, count), person.name if self._named else None
                    )
                tag = tag_of(person, count)
                if tag is not None:
                    runtime.controller.rename(tag)
            runtime.person = person
        self._sort_runtimes(settings)
        if missing:
            self._look_up_later(missing)

    def _look_up_later(self, persons: list[Person]) -> None:
        """Reads these people's passwords off the GUI thread, then starts them."""
        sources = {person.id: person.source for person in persons}
        self._pending.update(sources)
        store = self._password_store
        task = BackgroundTask(lambda: _look_up_people(sources, store), name="keyring-read")
        task.finished.connect(lambda result: self._on_later_found(result, dict(sources)))
        self._run(task)

    def _on_later_found(self, result: TaskResult, asked: dict[str, ShareSource]) -> None:
        self._pending -= set(asked)
        model = self._model
        if model is None or self._stopped:
            return  # the app stopped meanwhile
        found = result.value.found if isinstance(result.value, PeopleAnswer) else {}
        settings = model.settings
        for person in settings.people:
            if person.id not in asked:
                continue
            if person.source != asked[person.id]:  # another account since: look that one up
                self._look_up_later([person])
                continue
            running = next((r for r in self._runtimes if r.person.id == person.id), None)
            password, account_id = found.get(person.id, (None, None))
            given = self._given_for(person)
            if not password and given is not None:
                password, account_id = given  # added in Settings; the keyring did not keep it
            if running is not None and (running.account is not None or not password):
                continue  # running already, or still without a password
            if running is not None:
                self._stop_runtime(running)
            account = None
            if password:
                account = self._account_for(person, settings, password, account_id)
            self._launch(person, account, settings)

    def _client_config(self, person: Person, account_id: str | None = None) -> ClientConfig:
        """The client's account: the person's (and a --share-url, loopback only; the demo's
        people each have their own)."""
        source = person.source
        share_url = source.share_url if self._demo else (self._args.share_url or source.share_url)
        return ClientConfig(
            region=Region(source.region),
            username=source.username,
            base_url=share_url,
            account_id=account_id,
        )

    def _gate_for(self, config: ClientConfig, *, asked: bool = False) -> PersistedSignInGate:
        """The sign-in gate every process of this data folder and account shares."""
        return PersistedSignInGate(
            self._state_dir,
            region=config.region.value,
            username=config.username,
            base_url=config.base_url,
            asked=asked,
        )

    def _client_factory(
        self, config: ClientConfig, password: str, share_clock: ServerClock
    ) -> Callable[[], ShareClient]:
        """Clients of one account; the first one's gate counts as the person asking: a start of
        the app, or an account saved in Settings, may sign in once a lock's wait is over (never
        during it, and never after a rejection without new credentials)."""
        first = [True]

        def factory() -> ShareClient:
            asked, first[0] = first[0], False
            return ShareClient(
                config,
                password,
                clock=share_clock.base,
                server_clock=share_clock,
                gate=self._gate_for(config, asked=asked),
            )

        return factory

    def open_settings(
        self,
        *,
        notice: str | None = None,
        page_account: bool = False,
        person_id: str | None = None,
    ) -> None:
        """Shows the one settings dialog (raised if already open); with `person_id`, on the
        People page with that person's Adjust account window."""
        from cgmtray.ui.settings_dialog import Page

        dialog = self._dialog
        if dialog is not None and dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return
        dialog = self._make_dialog(notice)
        dialog.settings_saved.connect(self._on_settings_saved)
        dialog.people_added.connect(self._on_people_added)
        dialog.account_changed.connect(self._on_account_changed)
        dialog.rejected.connect(self._on_dialog_rejected)
        if page_account or notice:
            dialog.show_page(Page.ACCOUNT)
        self._dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        if person_id is not None:
            dialog.show_person_account(person_id)

    @Slot()
    def sign_in_from_demo(self) -> None:
        """The demo's "Sign in with your own account…": the settings dialog on its Account page
        for the person's own account (their saved settings, the system keyring when there is
        one). Saving the account ends the demo and starts following that account; Cancel keeps
        the demo running."""
        if not self._demo:
            return
        if self._dialog is not None and self._dialog.isVisible():
            _bring_forward(self._dialog)
            return
        if self._picking_for_sign_in:  # a second click while the keyring is being opened
            return
        loaded = people.load(self._paths.settings_file)
        if loaded.problem:
            log.warning("settings: %s", loaded.problem)
        self._settings = loaded.settings
        self._picking_for_sign_in = True
        picking = BackgroundTask(_pick_store, name="keyring-pick")
        picking.finished.connect(self._on_store_picked_for_sign_in)
        self._run(picking)

    @Slot(object)
    def _on_store_picked_for_sign_in(self, result: TaskResult) -> None:
        from cgmtray.ui.settings_dialog import Page

        self._picking_for_sign_in = False
        store = result.value
        if result.error is None and isinstance(store, CredentialStore | MemoryCredentialStore):
            self._password_store = store
        else:
            log.warning("the system keyring could not be opened: %s", type(result.error).__name__)
            self._password_store = MemoryCredentialStore()
        if not self._demo:  # the app quit or changed meanwhile
            return
        dialog = self._make_dialog(DEMO_SIGN_IN_NOTICE, for_account=True)
        dialog.settings_saved.connect(self._on_settings_saved)
        dialog.people_added.connect(self._on_people_added)
        dialog.account_changed.connect(self._on_account_changed)
        dialog.show_page(Page.ACCOUNT)
        self._dialog = dialog
        _bring_forward(dialog)

    def _end_demo(self) -> None:
        """Stops the demo: its controller (icon, notifications, worker), its history window, its
        simulated service and temporary folder. The session then starts like a real one."""
        self._close_history()
        for runtime in list(self._runtimes):
            if not self._stop_runtime(runtime, delete=True):
                log.warning("the demo's worker did not stop in time", extra={"event": "demo.stuck"})
        self._drop_together()
        self._mode = None
        if self._notifier is not None:
            self._notifier.shutdown()
            self._notifier.deleteLater()
            self._notifier = None
        if self._model is not None:
            self._model.deleteLater()  # the demo's parts stop following it
            self._model = None
        self._retention_days = None
        self._demo_stack.close()
        self._demo = False
        self._clock = None
        self._state_dir = self._paths.data_dir
        self._history_dir = self._paths.data_dir
        log.info("the demo ended: following the person's account", extra={"event": "demo.ended"})

    def _make_dialog(self, notice: str | None, *, for_account: bool = False) -> SettingsDialog:
        from cgmtray.ui.settings_dialog import SettingsDialog

        # With a loopback Share URL (tests, the fake service) every region's test goes there.
        share_url = self._args.share_url or self._settings.first_person.source.share_url
        share_urls = dict.fromkeys(Region, share_url) if share_url else None
        return SettingsDialog(
            self._settings,
            settings_path=self._paths.settings_file,
            password_store=self._password_store,
            autostart=autostart.for_platform(),
            history_path=self._history_path_of(self._settings),
            log_dir=self._paths.log_dir,
            share_urls=share_urls,
            notice=notice,
            sign_in_state_dir=self._paths.data_dir
            if for_account
            else (None if self._demo else self._state_dir),
            account_id=self._running_account_id(),
        )

    def _running_account_id(self) -> str | None:
        """The account id of the account running now, when it is the first person's."""
        account = self._account
        if self._demo or account is None:
            return None
        source = self._settings.first_person.source
        if (source.region, source.username) != (
            account.config.region.value,
            account.config.username,
        ):
            return None
        return account.config.account_id

    @Slot()
    def _on_dialog_rejected(self) -> None:
        """Cancelled before anything runs (the password was asked at start): the person chooses
        between entering it and quitting; the app never quits without saying so."""
        if self._controller is None:
            self._offer_password_choice()

    def _offer_password_choice(self) -> None:
        from cgmtray.ui.password_choice import PasswordChoice

        log.info("the password prompt was cancelled: asking whether to enter it or quit")
        choice = PasswordChoice()
        choice.enter_chosen.connect(self._on_password_choice_enter)
        choice.quit_chosen.connect(self._on_password_choice_quit)
        self._password_choice = choice
        choice.show()
        choice.raise_()
        choice.activateWindow()

    @Slot()
    def _on_password_choice_enter(self) -> None:
        self._password_choice = None
        self._ask_for_password(self._password_notice)

    @Slot()
    def _on_password_choice_quit(self) -> None:
        self._password_choice = None
        log.info("no password given: quitting as the person chose")
        self.quit_requested.emit()

    @Slot(object)
    def _on_account_id_changed(self, news: AccountIdNews) -> None:
        """The polling client learned or dropped its account id: keep the keyring in step."""
        runtime = next((r for r in self._runtimes if r.client_source is news.source), None)
        if self._demo or runtime is None or runtime.account is None:
            return  # from a client of an account that has been replaced since
        config = replace(runtime.account.config, account_id=news.account_id)
        runtime.account = replace(runtime.account, config=config)
        source = ShareSource(config.region.value, config.username)
        store, account_id = self._password_store, news.account_id
        self._queue_id_write(lambda: people.keep_account_id(store, source, account_id))

    def _queue_id_write(self, write: Callable[[], None]) -> None:
        self._id_writes.append(write)
        if not self._id_write_running:
            self._next_id_write()

    def _next_id_write(self) -> None:
        if not self._id_writes:
            self._id_write_running = False
            return
        self._id_write_running = True
        task = BackgroundTask(self._id_writes.pop(0), name="keyring-account-id")
        task.finished.connect(self._on_id_write_finished)
        self._run(task)

    @Slot(object)
    def _on_id_write_finished(self, _result: TaskResult) -> None:
        self._next_id_write()

    def _publish_settings(self) -> None:
        """The running app follows `self._settings` (never the demo: its own settings stay)."""
        if self._model is not None and not self._demo:
            self._model.update(self._settings)

    @Slot(object)
    def _on_settings_saved(self, settings: Settings) -> None:
        """Saved settings become the model's; its listeners apply what changed (the unit and
        alerts at once). The account is handled separately (`_on_account_changed`)."""
        self._settings = settings
        self._publish_settings()

    @Slot(object)
    def _on_settings_changed(self, settings: Settings) -> None:
        """The people followed start and stop with the list; each one's history is pruned to
        the retention when it is first known or changes."""
        self._follow_people(settings)
        if not self._runtimes or settings.retention_days == self._retention_days:
            return
        self._retention_days = settings.retention_days
        for runtime in self._runtimes:
            self._prune_history(runtime.history_path, settings.retention_days, self._app_clock())

    @Slot(object)
    def _on_account_changed(self, change: object) -> None:
        """A new account or password for the person the dialog's Account page showed (not
        necessarily the first after a reorder): they sign in anew (the only thing that re-signs
        in); nobody else restarts."""
        from cgmtray.ui.settings_dialog import AccountChange

        assert isinstance(change, AccountChange)
        if self._demo:
            self._end_demo()
        settings = change.settings
        person = change.person
        source = person.source
        runtime = next((r for r in self._runtimes if r.person.id == person.id), None)
        account_id = change.account_id
        if runtime is not None and runtime.account is not None:
            current = runtime.account.config
            if (source.region, source.username) == (current.region.value, current.username):
                account_id = account_id or current.account_id
        if not change.remembered:
            # The keyring did not keep it: held for this run only. The store stays the one in
            # use (a real keyring stays the one the others' entries, and removals, go to); a
            # memory store (no keyring at all) gets this person beside the others.
            store = self._password_store
            if isinstance(store, MemoryCredentialStore):
                store.set(source.region, source.username, change.password)
                if account_id is not None:
                    with contextlib.suppress(ValueError):  # an old file's id that is no UUID
                        store.set_account_id(source.region, source.username, account_id)
            # (the person restarts with it if the tray changes mode)
            self._given[person.id] = (source, change.password, account_id)
        if not self._runtimes:
            self._start_account(
                settings, change.password, given=True, account_id=account_id, person=person
            )
            return
        if runtime is None or runtime.account is None or not _same_source(runtime.person, person):
            # Held without a password, stopped for another account, or not started yet: they
            # start anew with the one just given.
            if runtime is not None:
                self._stop_runtime(runtime)
            self._settings = settings
            account = self._account_for(person, settings, change.password, account_id)
            self._gate_for(account.config).user_acted(credentials_changed=True)
            self._launch(person, account, self._model.settings if self._model else settings)
            self._publish_settings()
            return
        assert runtime.account is not None
        logging_setup.register_secret(change.password)
        logging_setup.register_secret(source.username)
        self._settings = settings
        config = self._client_config(person, account_id)
        share_clock = runtime.account.share_clock
        runtime.account = replace(
            runtime.account, config=config, password=change.password, settings=settings
        )
        factory = self._client_factory(config, change.password, share_clock)
        runtime.client_source = factory
        runtime.person = person  # the new account is already running: no restart for it
        runtime.controller.replace_client(factory)
        self._publish_settings()

    def _prune_history(self, path: Path, retention_days: int, clock: Clock) -> None:
        before = clock.now() - timedelta(days=retention_days)

        def prune() -> int:
            with HistoryStore(path) as store:
                return store.prune(before)

        task = BackgroundTask(prune, name="history-prune")
        task.finished.connect(self._on_prune_finished)
        self._run(task)

    @Slot(object)
    def _on_prune_finished(self, result: TaskResult) -> None:
        if result.error is not None:
            log.warning("old history could not be pruned: %s", type(result.error).__name__)

    def _run(self, task: BackgroundTask) -> None:
        self._tasks.add(task)
        task.finished.connect(lambda _result, t=task: self._tasks.discard(t))
        task.start()

    def present(self) -> str:
        """Shows the running app to a person who started it again; returns what was shown.

        The window that waits for them comes first (welcome, settings asking for the password),
        then the tray (see TrayPresenter.present); "starting" while the keyring is still read.
        """
        from cgmtray.ui.first_run import FirstRunFlow

        flow = self._first_run
        if isinstance(flow, FirstRunFlow) and not flow.finished:
            dialog = flow.settings_dialog
            if dialog is not None and dialog.isVisible():
                _bring_forward(dialog)
                return "settings"
            _bring_forward(flow.welcome)
            return "welcome"
        if self._dialog is not None and self._dialog.isVisible():
            _bring_forward(self._dialog)
            return "settings"
        if self._controller is None:
            return "starting"
        if self._together is not None:
            return self._together.present()
        if self._tray is None:
            return "starting"
        return self._tray.present()

    # --- end --------------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stops every person's controller (each bounded) and closes the notifications shown;
        True when every worker thread ended."""
        self._stopped = True
        choice, self._password_choice = self._password_choice, None
        if choice is not None:
            choice.blockSignals(True)  # going down: closing it is no choice of the person's
            choice.close()
        if self._opener is not None:
            self._opener.close()
        finished = True
        for runtime in self._runtimes:
            finished = runtime.controller.stop() and finished
        if self._together is not None:
            self._together.shutdown()
        if self._notifier is not None:
            self._notifier.shutdown()
        return finished


def _bring_forward(window: QWidget) -> None:
    """Restores, raises and activates a window (as far as the window manager allows)."""
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()
