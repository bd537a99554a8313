"""The settings window: account (with test sign-in), display unit, alerts, start at login, data."""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import shiboken6
from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cgmtray import APP_NAME
from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.connection import locked_line
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.sign_in_gate import Reason
from cgmtray.domain.units import Unit
from cgmtray.share.regions import Region
from cgmtray.storage import autostart as autostart_entries
from cgmtray.storage import people
from cgmtray.storage.autostart import AutostartEntry, AutostartError
from cgmtray.storage.credentials import CredentialStoreError, PasswordStore
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.settings import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    Settings,
    SettingsError,
    validate,
)
from cgmtray.storage.sign_in_state import PersistedSignInGate
from cgmtray.ui.alerts_page import AlertsPage, spin_box
from cgmtray.ui.background import BackgroundTask, TaskResult
from cgmtray.ui.outcome_style import OUTCOME_COLOURS, OUTCOME_TONE, left_bar
from cgmtray.ui.people_page import PeoplePage, Removal
from cgmtray.ui.person_dialogs import NewPerson
from cgmtray.ui.sign_in_test import (
    OutcomeKind,
    SignInAttempt,
    SignInOutcome,
    SignInTester,
)

log = logging.getLogger(__name__)


_TEST_HINT = "One sign-in attempt; it is never repeated by itself."
#: Where the (empty) range of an export of an empty store sits.
_EMPTY_RANGE_AT = datetime(2000, 1, 1, tzinfo=UTC)


class Page(enum.IntEnum):
    """The dialog's tabs, in order."""

    ACCOUNT = 0
    PEOPLE = 1
    DISPLAY = 2
    ALERTS = 3
    GENERAL = 4


@dataclass(frozen=True)
class AccountChange:
    """The account to sign in with changed (region, username or password): sign in anew.

    `remembered` says whether the password is in the system keyring; if not, keep it in memory
    for this session only. The password is never in the repr.
    """

    settings: Settings
    password: str = field(repr=False)
    remembered: bool
    #: The Account page person's Share account id when known (a test sign-in learned it, or the
    #: account is the one already running); never in the repr.
    account_id: str | None = field(default=None, repr=False)
    #: Whose account changed: the Account page's person (the first person unless the People
    #: page moved someone above them).
    person_id: str = ""

    @property
    def person(self) -> Person:
        """The person whose account changed."""
        for person in self.settings.people:
            if person.id == self.person_id:
                return person
        return self.settings.first_person


@dataclass(frozen=True)
class Draft:
    """What the dialog's fields amount to: settings that may be saved, or what is wrong."""

    settings: Settings | None
    problems: tuple[str, ...] = ()
    #: Save must wait (the keyring is still being checked), without a problem to show.
    pending: bool = False
    #: The account id known for the first person's account as the fields name it.
    account_id: str | None = field(default=None, repr=False)


def _store_password(
    store: PasswordStore,
    region: str,
    username: str,
    password: str,
    forget: tuple[str, str] | None,
    account_id: str | None = None,
    *,
    new_account: bool = False,
) -> None:
    """Runs on a worker thread: saves the password and the account id (if known), then forgets
    the old account's password and account id, if any. With no id and another account, an id
    left from earlier for this account is removed (storage.people keeps the id)."""
    store.set(region, username, password)
    source = ShareSource(region, username)
    people.keep_account_id(
        store, source, account_id, only_with_password=False, forget_unknown=new_account
    )
    if forget is not None and forget != (region, username):
        try:
            people.forget_credentials(store, ShareSource(*forget))
        except (CredentialStoreError, ValueError):
            log.warning("the old account's password could not be removed from the keyring")


def _store_new_people(store: PasswordStore, added: Sequence[NewPerson]) -> None:
    """Runs on a worker thread: each added person's password (and account id, if a test
    sign-in learned it) to the keyring, the way the Account page's password goes."""
    for new in added:
        source = new.person.source
        _store_password(
            store,
            source.region,
            source.username,
            new.password,
            None,
            new.account_id,
            new_account=True,
        )


def _store_accounts(store: PasswordStore, given: Sequence[tuple[ShareSource, NewPerson]]) -> None:
    """Runs on a worker thread: the password (and account id, if a test sign-in learned it) of
    each person given an account on the People page to the keyring; an account they left is
    forgotten (source: the account they had)."""
    for old, new in given:
        source = new.person.source
        moved = old.account_key != source.account_key
        _store_password(
            store,
            source.region,
            source.username,
            new.password,
            (old.region, old.username) if moved and old.username else None,
            new.account_id,
            new_account=moved,
        )


def _forget_people(
    store: PasswordStore,
    saved: Settings,
    removals: Sequence[Removal],
    data_dir: Path | None,
) -> None:
    """Runs on a worker thread: storage.people removes each removed person's keyring entries
    and, unless kept, their history file (an account someone on the list still uses stays)."""
    for removal in removals:
        with_them = dataclasses.replace(saved, people=(*saved.people, removal.person))
        try:
            people.remove_person(
                with_them,
                removal.person.id,
                store,
                keep_history=removal.keep_history,
                data_dir=data_dir,
            )
        except (CredentialStoreError, ValueError, OSError) as error:
            log.warning(
                "a removed person's entries were not all deleted (%s)", type(error).__name__
            )


@dataclass(frozen=True)
class _KeyringStatus:
    usable: bool
    saved: bool
    problem: str | None = None
    #: The account id kept next to the saved password, if any.
    account_id: str | None = field(default=None, repr=False)


def _check_keyring(store: PasswordStore, region: str, username: str) -> _KeyringStatus:
    """Runs on a worker thread: is there a keyring, a password saved for this account, and the
    account id kept next to it?"""
    source = ShareSource(region, username)
    try:
        usable = store.available()
        saved = bool(usable and people.read_password(store, source))
    except CredentialStoreError as error:
        return _KeyringStatus(False, False, str(error))
    except ValueError:
        return _KeyringStatus(store.available(), False)
    account_id = people.read_account_id(store, source) if saved else None
    return _KeyringStatus(usable, saved, account_id=account_id)


def _export_history(history_path: Path, target: Path) -> int:
    """Runs on a worker thread: every stored reading to `target` as CSV; the count written."""
    with HistoryStore(history_path, read_only=True) as store:
        oldest, newest = store.oldest_time(), store.newest_time()
        start = oldest if oldest is not None else _EMPTY_RANGE_AT
        end = newest + timedelta(milliseconds=1) if newest is not None else _EMPTY_RANGE_AT
        with target.open("w", newline="", encoding="utf-8") as out:
            return store.export_csv(start, end, out)


def _still_there(widget: QWidget) -> bool:
    """False once Qt has deleted the widget (a late background result must then be dropped)."""
    return bool(shiboken6.isValid(widget))


class SettingsDialog(QDialog):
    """Account, display, alerts and general settings; nothing is saved until Save.

    Save writes the settings file (and the password to the keyring, off the GUI thread), turns
    start at login on or off, then emits. Cancel and Esc change nothing.

    Signals:
        settings_saved(Settings): the settings were saved; apply unit and alerts at once.
        account_changed(AccountChange): region, username or password changed; sign in anew.
        keyring_checked(): the look at the keyring is done (Save may need it).
        test_finished(SignInOutcome): a test sign-in ended and its message is shown.
        export_finished(str): the history export ended; the message shown.
        people_added(tuple[NewPerson, ...]): people added on the People page were saved (their
            passwords are in the keyring, or only in these objects if it cannot keep them).
    """

    settings_saved = Signal(object)
    account_changed = Signal(object)
    keyring_checked = Signal()
    people_added = Signal(object)
    test_finished = Signal(object)
    export_finished = Signal(str)

    def __init__(
        self,
        settings: Settings,
        *,
        settings_path: Path,
        password_store: PasswordStore,
        clock: Clock | None = None,
        autostart: AutostartEntry | None = None,
        launch_command: Sequence[str] | None = None,
        history_path: Path | None = None,
        log_dir: Path | None = None,
        share_urls: Mapping[Region, str] | None = None,
        notice: str | None = None,
        open_url: Callable[[QUrl], object] | None = None,
        sign_in_state_dir: Path | None = None,
        account_id: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """`account_id`: the first person's Share account id the running app knows (else it
        is read from the keyring with the password)."""
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} Settings")
        self.setObjectName("settings-dialog")
        self._original = settings
        #: The person this dialog edits: the first (the People page comes later).
        self._person = settings.first_person
        self._known_account_id = account_id
        self._settings_path = settings_path
        self._store = password_store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._autostart = autostart
        self._launch_command = list(launch_command) if launch_command is not None else None
        self._history_path = history_path
        self._log_dir = log_dir
        self._share_urls = dict(share_urls or {})
        self._open_url: Callable[[QUrl], object] = (
            open_url if open_url is not None else QDesktopServices.openUrl
        )
        self._unit = settings.unit
        self._keyring: _KeyringStatus | None = None
        self._keyring_failed_on_save: str | None = None
        self._password_generation = 0
        #: (region, username, password generation or None for any) a test must not repeat.
        self._blocked: tuple[str, str, int | None] | None = None
        self._learned: tuple[str, str, str] | None = None
        self._saving = False
        #: Whether the passwords given on the People page went to the keyring at this Save.
        self._given_kept = False
        self._tasks: set[BackgroundTask] = set()
        #: The data folder of the shared sign-in gate (None: no gate, e.g. the demo).
        self._state_dir = sign_in_state_dir
        self._tester = SignInTester(
            clock=self._clock,
            password_store=password_store,
            state_dir=sign_in_state_dir,
            parent=self,
        )
        self._tester.finished.connect(self._on_tester_finished)

        tabs = QTabWidget()
        tabs.setObjectName("settings-tabs")
        tabs.addTab(self._account_page(), "&Account")
        self.people_page = PeoplePage(
            settings,
            password_store=password_store,
            clock=self._clock,
            share_urls=self._share_urls,
            state_dir=sign_in_state_dir,
            unit=lambda: self._unit,
            thresholds=self._thresholds_for_display,
        )
        self.people_page.alerts_of = self._alerts_of
        self.people_page.account_page_person = self._person.id
        self.people_page.account_page_asked.connect(lambda: self.show_page(Page.ACCOUNT))
        tabs.addTab(self.people_page, "P&eople")
        tabs.addTab(self._display_page(), "&Display")
        #: Whose alerts the Alerts page shows: the person chosen on the People page.
        self._alerts_person_id = self._person.id
        self.alerts_heading = QLabel()
        self.alerts_heading.setObjectName("alerts-heading")
        self.alerts_heading.setContentsMargins(9, 9, 9, 0)
        self._alerts_tab = QWidget()
        self._alerts_layout = QVBoxLayout(self._alerts_tab)
        self._alerts_layout.setContentsMargins(0, 0, 0, 0)
        self._alerts_layout.addWidget(self.alerts_heading)
        self.alerts_page = AlertsPage(self._person.alerts, self._unit)
        self.kind_rows = self.alerts_page.kind_rows
        self._alerts_layout.addWidget(self.alerts_page, 1)
        self._show_alerts_heading()
        tabs.addTab(self._alerts_tab, "A&lerts")
        tabs.addTab(self._general_page(), "&General")
        self.tabs = tabs
        # The first run stays as simple as ever: the Account page makes the first person.
        tabs.setTabVisible(int(Page.PEOPLE), bool(settings.people))

        self.notice_label = QLabel(notice or "")
        self.notice_label.setWordWrap(True)
        self.notice_label.setVisible(bool(notice))
        self.notice_label.setFrameShape(QFrame.Shape.StyledPanel)
        self.notice_label.setContentsMargins(8, 6, 8, 6)

        self.problems_label = QLabel()
        self.problems_label.setObjectName("settings-problems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(left_bar("QLabel", OUTCOME_COLOURS["bad"]))

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setText("&Save")
        save.setDefault(True)
        self.save_button = save
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        # Every text carries its own mnemonic (unique in the dialog), so no platform theme or
        # desktop (KDE's automatic accelerators) picks one that is already taken.
        self.cancel_button.setText("&Cancel")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.notice_label)
        layout.addWidget(tabs)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.buttons)

        self._connect_revalidation()
        self._show_account_whose()
        self._check_keyring()
        self._revalidate()
        if not self._person.source.username:
            self.username_edit.setFocus()

    # --- pages --------------------------------------------------------------------------------

    def _account_page(self) -> QWidget:
        page = QWidget()
        self.region_combo = QComboBox()
        for region in Region:
            self.region_combo.addItem(region.display_name, region.value)
        index = self.region_combo.findData(self._person.source.region)
        self.region_combo.setCurrentIndex(max(0, index))

        self.username_edit = QLineEdit(self._person.source.username)
        self.username_edit.setPlaceholderText("username, e-mail or phone number (+11234567890)")
        self.username_edit.setAccessibleName("Dexcom username, e-mail or phone number")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Dexcom password")
        self.keyring_label = QLabel("Checking the system keyring…")
        self.keyring_label.setWordWrap(True)
        self.keyring_label.setObjectName("keyring-status")
        self.keyring_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        who = QLabel(
            "Use the Dexcom app login of the person who wears the sensor (or of the parent who "
            "set it up for a child) — not a follower's login. Share must be on in their Dexcom "
            "app, with at least one follower."
        )
        who.setWordWrap(True)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        region_label = QLabel("&Region:")
        region_label.setBuddy(self.region_combo)
        username_label = QLabel("&Username:")
        username_label.setBuddy(self.username_edit)
        password_label = QLabel("&Password:")
        password_label.setBuddy(self.password_edit)
        form.addRow(region_label, self.region_combo)
        form.addRow(username_label, self.username_edit)
        form.addRow(password_label, self.password_edit)
        form.addRow("", self.keyring_label)

        self.test_button = QPushButton("&Test sign-in")
        self.test_button.setAutoDefault(False)
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.test_hint = QLabel(_TEST_HINT)
        self.test_hint.setWordWrap(True)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_hint, 1)

        self.test_headline = QLabel()
        self.test_headline.setObjectName("test-headline")
        font = self.test_headline.font()
        font.setBold(True)
        self.test_headline.setFont(font)
        self.test_message = QLabel()
        self.test_message.setObjectName("test-message")
        self.test_message.setWordWrap(True)
        self.test_result = QFrame()
        self.test_result.setObjectName("test-result")
        result_layout = QVBoxLayout(self.test_result)
        result_layout.setContentsMargins(10, 4, 4, 4)
        result_layout.addWidget(self.test_headline)
        result_layout.addWidget(self.test_message)
        self.test_result.setVisible(False)

        #: Whose account this is, once there are several people.
        self.account_whose = QLabel()
        self.account_whose.setObjectName("account-whose")
        self.account_whose.setWordWrap(True)
        self.account_whose.setVisible(False)

        layout = QVBoxLayout(page)
        layout.addWidget(self.account_whose)
        layout.addWidget(who)
        layout.addLayout(form)
        layout.addLayout(test_row)
        layout.addWidget(self.test_result)
        layout.addStretch(1)
        return page

    def _display_page(self) -> QWidget:
        page = QWidget()
        self.unit_mgdl = QRadioButton("&mg/dL (milligrams per decilitre)")
        self.unit_mmol = QRadioButton("mm&ol/L (millimoles per litre)")
        self._unit_group = QButtonGroup(page)
        self._unit_group.addButton(self.unit_mgdl)
        self._unit_group.addButton(self.unit_mmol)
        (self.unit_mmol if self._unit is Unit.MMOL else self.unit_mgdl).setChecked(True)
        self.unit_mmol.toggled.connect(self._on_unit_mmol_toggled)
        box = QGroupBox("Glucose u&nit")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.unit_mgdl)
        box_layout.addWidget(self.unit_mmol)
        note = QLabel(
            "The tray, notifications, history and the alert thresholds all use this unit. "
            "Thresholds you do not change keep their exact value when you switch."
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(box)
        layout.addWidget(note)
        layout.addStretch(1)
        return page

    def _general_page(self) -> QWidget:
        page = QWidget()
        self.start_at_login_box = QCheckBox(f"Start {APP_NAME} when I log &in")
        self.start_at_login_box.setChecked(self._original.start_at_login)
        if self._autostart is None:
            self.start_at_login_box.setEnabled(False)
            self.start_at_login_box.setToolTip("Not available on this system.")
        else:
            self.start_at_login_box.setToolTip(self._autostart.location)

        self.retention_spin = spin_box(MIN_RETENTION_DAYS, MAX_RETENTION_DAYS, " days")
        self.retention_spin.setValue(self._original.retention_days)
        retention_label = QLabel("&Keep history for:")
        retention_label.setBuddy(self.retention_spin)
        retention_row = QHBoxLayout()
        retention_row.addWidget(retention_label)
        retention_row.addWidget(self.retention_spin)
        retention_row.addStretch(1)

        self.export_button = QPushButton("E&xport history…")
        self.export_button.setAutoDefault(False)
        self.export_button.setEnabled(self._history_path is not None)
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.export_status = QLabel()
        self.export_status.setWordWrap(True)
        self.log_button = QPushButton("Open log &folder")
        self.log_button.setAutoDefault(False)
        self.log_button.setEnabled(self._log_dir is not None)
        self.log_button.clicked.connect(self._on_log_button_clicked)
        data_row = QHBoxLayout()
        data_row.addWidget(self.export_button)
        data_row.addWidget(self.log_button)
        data_row.addStretch(1)

        data_box = QGroupBox("&History and logs")
        data_layout = QVBoxLayout(data_box)
        data_layout.addLayout(retention_row)
        data_layout.addLayout(data_row)
        data_layout.addWidget(self.export_status)

        layout = QVBoxLayout(page)
        layout.addWidget(self.start_at_login_box)
        layout.addWidget(data_box)
        layout.addStretch(1)
        return page

    # --- public ---------------------------------------------------------------------------------

    def show_page(self, page: Page) -> None:
        """Opens one tab (the first run opens the account page)."""
        self.tabs.setCurrentIndex(int(page))
        if page is Page.ACCOUNT:
            (self.password_edit if self.username_edit.text() else self.username_edit).setFocus()

    @property
    def unit(self) -> Unit:
        return self._unit

    def draft(self) -> Draft:
        """The settings the fields describe now, or the plain reasons they cannot be saved."""
        problems: list[str] = []
        alerts = self.alerts_page.alerts(problems)
        if alerts is None:
            return Draft(None, tuple(problems))
        region, username = self._account_fields()
        account_id = self._account_id_for(region, username)
        here = self._account_person_here()
        try:
            settings = self._draft_people(alerts, region, username, here=here)
        except people.PeopleError as error:
            return Draft(None, tuple(error.problems))
        problems += validate(settings, require_username=True)
        # A typed password waits for the keyring check: saving before it would keep the
        # password in memory only, and the next start would ask for it again.
        typed = bool(self.password_edit.text())
        pending = typed and self._store.persistent and self._keyring is None
        if not typed and username and here:
            if self._account_is_new(region, username):
                problems.append("Enter the password of this Dexcom account.")
            elif self._keyring is None:
                pending = True
            elif not self._keyring.saved:
                problems.append("Enter the password: none is saved for this account.")
        if problems:
            return Draft(None, tuple(problems))
        return Draft(settings, (), pending, account_id)

    def _draft_people(
        self, alerts: AlertSettings, region: str, username: str, *, here: bool
    ) -> Settings:
        """The People page's list with the Account page's account and the Alerts page's alerts
        (PeopleError when the list may not be kept)."""
        settings = dataclasses.replace(
            self.people_page.settings,
            unit=self._unit,
            start_at_login=self.start_at_login_box.isChecked(),
            retention_days=self.retention_spin.value(),
        )
        if not settings.people:
            return people.with_first_person(
                settings,
                region=region,
                username=username,
                share_url=self._person.source.share_url,
                alerts=alerts,
            )
        ids = {person.id for person in settings.people}
        if self._alerts_person_id in ids:
            shown = people.find(settings, self._alerts_person_id)
            settings = people.update_person(settings, dataclasses.replace(shown, alerts=alerts))
        if here:
            person = people.find(settings, self._person.id)
            source = ShareSource(region, username, self._person.source.share_url)
            settings = people.update_person(settings, dataclasses.replace(person, source=source))
        return settings

    def _account_person_here(self) -> bool:
        """Whether the person of the Account page is still on the list (not removed); with
        nobody set up yet the Account page makes the first person."""
        listed = self.people_page.settings.people
        return not listed or any(person.id == self._person.id for person in listed)

    # --- validation ---------------------------------------------------------------------------

    def _account_fields(self) -> tuple[str, str]:
        region = str(self.region_combo.currentData())
        return region, self.username_edit.text().strip()

    def _account_is_new(self, region: str, username: str) -> bool:
        source = self._person.source
        return not source.username or region != source.region or username != source.username

    def _account_id_for(self, region: str, username: str) -> str | None:
        if self._learned is not None and self._learned[:2] == (region, username):
            return self._learned[2]
        if self._account_is_new(region, username):
            return None
        return self._original_account_id()

    def _original_account_id(self) -> str | None:
        """The first person's account id as the app or the keyring knows it."""
        if self._known_account_id is not None:
            return self._known_account_id
        return self._keyring.account_id if self._keyring is not None else None

    def _connect_revalidation(self) -> None:
        self.region_combo.currentIndexChanged.connect(self._on_account_field_changed)
        self.username_edit.textChanged.connect(self._on_account_field_changed)
        self.password_edit.textChanged.connect(self._on_password_edit_text_changed)
        self.alerts_page.changed.connect(self._on_field_changed)
        self.people_page.changed.connect(self._on_people_changed)
        self.people_page.selected.connect(self._on_person_selected)
        self.people_page.alerts_copied.connect(self._on_alerts_copied)

    @Slot()
    def _on_field_changed(self) -> None:
        self._revalidate()

    @Slot()
    def _on_account_field_changed(self) -> None:
        self._show_keyring_status()
        self._revalidate()

    @Slot(str)
    def _on_password_edit_text_changed(self, _text: str) -> None:
        self._password_generation += 1
        self._show_keyring_status()
        self._revalidate()

    def _revalidate(self) -> None:
        draft = self.draft()
        self.problems_label.setText("\n".join(draft.problems))
        self.problems_label.setVisible(bool(draft.problems))
        self.save_button.setEnabled(
            draft.settings is not None and not draft.pending and not self._saving
        )
        self.cancel_button.setEnabled(not self._saving)
        self._update_test_button()

    # --- people ---------------------------------------------------------------------------------

    @Slot()
    def _on_people_changed(self) -> None:
        here = self._account_person_here()
        for widget in (self.region_combo, self.username_edit, self.password_edit):
            widget.setEnabled(here)
        if not here:
            self.keyring_label.setText(
                f"{self._person.name} will be removed when you save; their account is not "
                "changed here."
            )
        self._show_alerts_heading()
        self._show_account_whose()
        self._revalidate()

    def _show_account_whose(self) -> None:
        listed = self.people_page.settings.people
        shown = [p for p in listed if p.id == self._person.id]
        if shown:
            self.account_whose.setText(
                f"<b>{escape(shown[0].name)}'s Dexcom account.</b> Each other person's account "
                "is set when they are added on the People page."
            )
        self.account_whose.setVisible(len(listed) > 1 and bool(shown))

    @Slot(str)
    def _on_person_selected(self, person_id: str) -> None:
        if person_id == self._alerts_person_id:
            return
        problems: list[str] = []
        alerts = self.alerts_page.alerts(problems)
        if alerts is None:
            return  # the Alerts page keeps its person until its fields are right
        if any(p.id == self._alerts_person_id for p in self.people_page.settings.people):
            self.people_page.set_alerts(self._alerts_person_id, alerts)
        self._show_alerts_of(person_id)

    @Slot(str)
    def _on_alerts_copied(self, person_id: str) -> None:
        if person_id == self._alerts_person_id:
            self._show_alerts_of(person_id)

    def _alerts_of(self, person: Person) -> AlertSettings:
        """A person's alerts as the dialog stands (the Alerts page's fields, if theirs, valid)."""
        if person.id == self._alerts_person_id:
            current = self.alerts_page.alerts([])
            if current is not None:
                return current
        return person.alerts

    def _show_alerts_of(self, person_id: str) -> None:
        person = people.find(self.people_page.settings, person_id)
        old = self.alerts_page
        self.alerts_page = AlertsPage(person.alerts, self._unit)
        self.kind_rows = self.alerts_page.kind_rows
        self._alerts_layout.replaceWidget(old, self.alerts_page)
        old.hide()
        old.deleteLater()
        self.alerts_page.changed.connect(self._on_field_changed)
        self._alerts_person_id = person_id
        self._show_alerts_heading()
        self._revalidate()

    def _show_alerts_heading(self) -> None:
        shown = [p for p in self.people_page.settings.people if p.id == self._alerts_person_id]
        several = len(self.people_page.settings.people) > 1
        if shown:
            self.alerts_heading.setText(
                f"<b>Alerts for {escape(shown[0].name)}</b> — choose another person on the "
                "People page."
            )
        self.alerts_heading.setVisible(several and bool(shown))

    def show_add_person(self) -> None:
        """Opens the People page with the Add a person window on top (the tray's "Add a
        person…"); show the dialog first."""
        self.show_page(Page.PEOPLE)
        self.people_page.open_add()

    def show_person_account(self, person_id: str) -> None:
        """Opens the People page with that person chosen and their Adjust account window on
        top (a held person's "Settings…"); show the dialog first."""
        self.show_page(Page.PEOPLE)
        self.people_page.select(person_id)
        self.people_page.open_account()

    # --- unit -----------------------------------------------------------------------------------

    @Slot(bool)
    def _on_unit_mmol_toggled(self, mmol: bool) -> None:
        new_unit = Unit.MMOL if mmol else Unit.MGDL
        if new_unit is self._unit:
            return
        self._unit = new_unit
        self.alerts_page.set_unit(new_unit)
        self._revalidate()

    # --- keyring --------------------------------------------------------------------------------

    def _run(self, work: Callable[[], object], done: Callable[[TaskResult], None]) -> None:
        task = BackgroundTask(work, name="settings-dialog")
        self._tasks.add(task)

        def finished(result: TaskResult) -> None:
            self._tasks.discard(task)
            if _still_there(self):
                done(result)

        task.finished.connect(finished)
        task.start()

    def _check_keyring(self) -> None:
        store, source = self._store, self._person.source
        region, username = source.region, source.username
        self._run(lambda: _check_keyring(store, region, username), self._on_keyring_checked)

    def _on_keyring_checked(self, result: TaskResult) -> None:
        status = result.value
        if not isinstance(status, _KeyringStatus):
            status = _KeyringStatus(False, False, type(result.error).__name__)
        self._keyring = status
        self._show_keyring_status()
        self._revalidate()
        self.keyring_checked.emit()

    def _keeps_passwords(self) -> bool:
        status = self._keyring
        return (
            self._store.persistent
            and status is not None
            and status.usable
            and self._keyring_failed_on_save is None
        )

    def _show_keyring_status(self) -> None:
        status = self._keyring
        if status is None:
            text = "Checking the system keyring…"
        elif self._keyring_failed_on_save is not None:
            text = (
                f"The password could not be saved in the system keyring "
                f"({self._keyring_failed_on_save}). Save again to keep it only while "
                f"{APP_NAME} runs; you will be asked for it next time."
            )
        elif not self._keeps_passwords():
            reason = f" ({status.problem})" if status.problem else ""
            text = (
                f"No system keyring is available{reason}: the password is kept only while "
                f"{APP_NAME} runs, and asked again next time."
            )
        elif status.saved and not self._account_is_new(*self._account_fields()):
            if self.password_edit.text():
                text = "The new password will replace the saved one in the system keyring."
            else:
                text = (
                    "The password is saved in the system keyring. Leave the field empty to keep it."
                )
        else:
            text = "The password will be saved in the system keyring, never in a file."
        self.keyring_label.setText(text)
        saved = status is not None and status.saved
        self.password_edit.setPlaceholderText(
            "saved — type to replace"
            if saved and not self._account_is_new(*self._account_fields())
            else ""
        )

    # --- test sign-in -----------------------------------------------------------------------------

    def _test_key(self) -> tuple[str, str]:
        region, username = self._account_fields()
        return region, username.casefold()

    def _test_blocked(self) -> bool:
        if self._blocked is None:
            return False
        region, username, generation = self._blocked
        same_account = self._test_key() == (region, username)
        return same_account and (generation is None or generation == self._password_generation)

    def _update_test_button(self) -> None:
        region, username = self._account_fields()
        has_password = bool(self.password_edit.text()) or (
            not self._account_is_new(region, username)
            and self._keyring is not None
            and self._keyring.saved
        )
        blocked = self._test_blocked()
        self.test_button.setEnabled(
            bool(username)
            and has_password
            and not self._tester.busy
            and not blocked
            and self._account_person_here()
        )
        if self._tester.busy:
            self.test_button.setText("Testing…")
        else:
            self.test_button.setText("&Test sign-in")
        if blocked and self._blocked is not None and self._blocked[2] is None:
            hint = "Locked by Dexcom: wait at least an hour before testing this account again."
        elif blocked:
            hint = "Change the username, password or region before testing again."
        else:
            hint = _TEST_HINT
        self.test_hint.setText(hint)

    @Slot()
    def _on_test_button_clicked(self) -> None:
        region_value, username = self._account_fields()
        region = Region(region_value)
        attempt = SignInAttempt(
            region,
            username,
            self.password_edit.text(),
            base_url=self._share_urls.get(region) or self._person.source.share_url,
            unit=self._unit,
            thresholds=self._thresholds_for_display(),
        )
        if self._tester.test(attempt):
            self.test_result.setVisible(True)
            self._show_outcome_text("Testing…", "Signing in to Dexcom Share once.", None)
        self._update_test_button()

    def _thresholds_for_display(self) -> Thresholds:
        draft = self.draft()
        if draft.settings is not None:
            return draft.settings.first_person.alerts.thresholds()
        return self._person.alerts.thresholds()

    @Slot(object)
    def _on_tester_finished(self, outcome: SignInOutcome) -> None:
        region, username = self._test_key()
        if outcome.kind is OutcomeKind.CREDENTIALS:
            self._blocked = (region, username, self._password_generation)
        elif outcome.kind is OutcomeKind.LOCKED:
            self._blocked = (region, username, None)
        else:
            self._blocked = None
        if outcome.signed_in and outcome.account_id:
            self._learned = (*self._account_fields(), outcome.account_id)
        self._show_outcome_text(outcome.headline, outcome.message, outcome.kind)
        self._update_test_button()
        self.test_finished.emit(outcome)

    def _show_outcome_text(self, headline: str, message: str, kind: OutcomeKind | None) -> None:
        tone = OUTCOME_TONE[kind] if kind is not None else "busy"
        self.test_result.setStyleSheet(left_bar("QFrame#test-result", OUTCOME_COLOURS[tone]))
        self.test_headline.setText(headline)
        self.test_message.setText(message)

    # --- general page -----------------------------------------------------------------------------

    @Slot()
    def _on_export_button_clicked(self) -> None:
        suggested = str(Path.home() / "cgm-tray-history.csv")
        target, _filter = QFileDialog.getSaveFileName(
            self, "Export history", suggested, "CSV files (*.csv)"
        )
        if target:
            self.export_history_to(Path(target))

    def export_history_to(self, target: Path) -> None:
        """Writes every stored reading to `target` (CSV) off the GUI thread; says how it went."""
        history = self._history_path
        if history is None:
            return
        self.export_button.setEnabled(False)
        self.export_status.setText("Exporting…")
        self._run(
            lambda: _export_history(history, target),
            lambda result: self._on_export_done(target, result),
        )

    def _on_export_done(self, target: Path, result: TaskResult) -> None:
        self.export_button.setEnabled(True)
        if isinstance(result.value, int):
            message = f"Exported {result.value:,} readings to {target}."
        else:
            error = result.error
            reason = getattr(error, "strerror", None) or type(error).__name__
            message = f"The export to {target} failed ({reason})."
        self.export_status.setText(message)
        self.export_finished.emit(message)

    @Slot()
    def _on_log_button_clicked(self) -> None:
        if self._log_dir is not None:
            self._open_url(QUrl.fromLocalFile(str(self._log_dir)))

    # --- save -----------------------------------------------------------------------------------

    @Slot()
    def _on_buttons_accepted(self) -> None:
        draft = self.draft()
        settings = draft.settings
        if settings is None or draft.pending or self._saving:
            return
        self._saving = True
        self._revalidate()
        added = tuple(self.people_page.added.values())
        given = self._given_accounts(settings)
        self._given_kept = False
        if (added or given) and self._keeps_passwords():
            store = self._store

            def store_both() -> None:
                _store_new_people(store, added)
                _store_accounts(store, given)

            self._run(store_both, lambda result: self._on_new_people_stored(draft, result))
            return
        if (added or given) and not self._store.persistent:
            for new in (*added, *(new for _old, new in given)):
                try:
                    source = new.person.source
                    self._store.set(source.region, source.username, new.password)
                except (CredentialStoreError, ValueError):
                    log.warning("a new person's password could not be kept in memory")
        self._save_account(draft)

    def _given_accounts(self, settings: Settings) -> tuple[tuple[ShareSource, NewPerson], ...]:
        """The people given an account on the People page and still on the list, each with the
        account they had (as saved before) and as they are in `settings`."""
        was = {person.id: person.source for person in self._original.people}
        given: list[tuple[ShareSource, NewPerson]] = []
        for person_id, new in self.people_page.accounts.items():
            now = next((p for p in settings.people if p.id == person_id), None)
            if now is not None:
                old = was.get(person_id, now.source)
                given.append((old, dataclasses.replace(new, person=now)))
        return tuple(given)

    def _on_new_people_stored(self, draft: Draft, result: TaskResult) -> None:
        if result.error is not None:
            self._saving = False
            self._keyring_failed_on_save = (
                str(result.error)
                if isinstance(result.error, CredentialStoreError)
                else type(result.error).__name__
            )
            self._show_keyring_status()
            self._show_problem(
                "A password typed on the People page could not be saved in the system keyring; "
                f"nothing was saved. Press Save again to keep passwords only while {APP_NAME} "
                "runs."
            )
            self._revalidate_keep_problem()
            return
        self._given_kept = True
        self._save_account(draft)

    def _save_account(self, draft: Draft) -> None:
        """The Account page's password (if typed) to the keyring, then the file."""
        settings = draft.settings
        assert settings is not None
        password = self.password_edit.text() if self._account_person_here() else ""
        store = self._store
        source = self._account_source(settings)
        region, username = source.region, source.username
        account_id = draft.account_id
        if password and self._keeps_passwords():
            new_account = self._account_is_new(region, username)
            forget = None
            old = self._person.source
            if old.username and new_account:
                forget = (old.region, old.username)
            self._run(
                lambda: _store_password(
                    store, region, username, password, forget, account_id, new_account=new_account
                ),
                lambda result: self._on_password_stored(settings, password, account_id, result),
            )
            return
        if password and not self._store.persistent:
            try:
                self._store.set(region, username, password)
            except (CredentialStoreError, ValueError):
                log.warning("the password could not be kept in memory")
        learned = account_id is not None and account_id != self._original_account_id()

        def keep() -> None:
            people.keep_account_id(
                store, source, account_id, only_with_password=False, forget_unknown=False
            )

        if learned and not password and self._keeps_passwords():
            # A test sign-in with the saved password learned the id: keep it next to that.
            self._run(keep, lambda _result: None)
        elif learned and not self._store.persistent:
            keep()
        self._finish_save(settings, password, account_id, remembered=False)

    def _on_password_stored(
        self, settings: Settings, password: str, account_id: str | None, result: TaskResult
    ) -> None:
        if result.error is not None:
            self._saving = False
            self._keyring_failed_on_save = (
                str(result.error)
                if isinstance(result.error, CredentialStoreError)
                else type(result.error).__name__
            )
            self._show_keyring_status()
            self._show_problem(
                "The password could not be saved in the system keyring; nothing was saved. "
                f"Press Save again to keep the password only while {APP_NAME} runs."
            )
            self._revalidate_keep_problem()
            return
        self._finish_save(settings, password, account_id, remembered=True)

    def _finish_save(
        self, settings: Settings, password: str, account_id: str | None, *, remembered: bool
    ) -> None:
        try:
            self._apply_start_at_login(settings.start_at_login)
        except AutostartError as error:
            self._saving = False
            self._show_problem(f"Start at login could not be changed: {error} Nothing was saved.")
            self._revalidate_keep_problem()
            return
        try:
            people.save(settings, self._settings_path)
        except (OSError, SettingsError) as error:
            self._saving = False
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            self._show_problem(f"The settings could not be saved ({reason}).")
            self._revalidate_keep_problem()
            return
        # A new account always comes with a typed password (validation asks for one).
        account_changed = bool(password)
        log.info(
            "settings saved",
            extra={"event": "settings.saved", "account_changed": account_changed},
        )
        self._saving = False
        self.settings_saved.emit(settings)
        # After the app has let go of the removed people (settings_saved), their entries go.
        self._remove_people(settings)
        kept = {person.id for person in settings.people}
        added = tuple(new for new in self.people_page.added.values() if new.person.id in kept)
        if added:
            self.people_added.emit(added)
        for _old, new in self._given_accounts(settings):
            # Each person given an account on the People page signs in anew (a held one starts).
            self.account_changed.emit(
                AccountChange(
                    settings,
                    new.password,
                    remembered=self._given_kept,
                    account_id=new.account_id,
                    person_id=new.person.id,
                )
            )
        if account_changed:
            whose = self._person.id if self._account_person_here() else ""
            if not self._person.id and settings.people:
                whose = settings.people[0].id  # the first run made the first person
            change = AccountChange(settings, password, remembered, account_id, whose)
            self.account_changed.emit(change)
        locked = self._lock_warning(settings)
        if locked is not None:
            # Saved, but nothing signs in before the lock is over: say so and stay open.
            self.notice_label.setText(locked)
            self.notice_label.setVisible(True)
            return
        self.accept()

    def _account_source(self, settings: Settings) -> ShareSource:
        """The Share account of the Account page's person in `settings`."""
        for person in settings.people:
            if person.id == self._person.id:
                return person.source
        return settings.first_person.source

    def _remove_people(self, settings: Settings) -> None:
        """The keyring entries (and history, unless kept) of the people removed, off the GUI
        thread, once the file without them is saved."""
        removals = tuple(self.people_page.removed)
        if not removals:
            return
        store = self._store
        data_dir = self._history_path.parent if self._history_path is not None else None
        self._run(lambda: _forget_people(store, settings, removals, data_dir), lambda _r: None)

    def _lock_warning(self, settings: Settings) -> str | None:
        """While Dexcom's lock of this account runs, what Save must say (it signs in nowhere)."""
        source = self._account_source(settings)
        if self._state_dir is None or not source.username:
            return None
        region = Region(source.region)
        gate = PersistedSignInGate(
            self._state_dir,
            region=source.region,
            username=source.username,
            base_url=self._share_urls.get(region) or source.share_url,
        )
        now = self._clock.now()
        decision = gate.check(now, asked=True)
        if decision.reason is not Reason.LOCKED:
            return None
        return (
            f"Saved. {locked_line(decision.not_before, now)}: {APP_NAME} does not sign in "
            "before then (every attempt during a lock can make it last longer). Then choose "
            "Refresh now in the tray menu."
        )

    def _apply_start_at_login(self, wanted: bool) -> None:
        """Writes the entry (keeping its command current) or removes it; both are idempotent."""
        entry = self._autostart
        if entry is None:
            return
        if wanted:
            entry.enable(self._launch_command or autostart_entries.launch_command())
        else:
            entry.disable()

    def _show_problem(self, text: str) -> None:
        self.problems_label.setText(text)
        self.problems_label.setVisible(True)

    def _revalidate_keep_problem(self) -> None:
        shown = self.problems_label.text()
        self._revalidate()
        if not self.problems_label.isVisible():
            self._show_problem(shown)

    # --- closing --------------------------------------------------------------------------------

    def reject(self) -> None:
        """Cancel / Esc: nothing is saved (ignored while a save is being finished)."""
        if self._saving:
            return
        super().reject()

    def wait_for_background(self, timeout_ms: int = 5000) -> bool:
        """Blocks until the dialog's background calls returned (tests, app shutdown)."""
        done = self._tester.wait(timeout_ms) and self.people_page.wait_for_background(timeout_ms)
        return all(task.wait(timeout_ms) for task in list(self._tasks)) and done
