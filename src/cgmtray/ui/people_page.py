"""The settings window's People page: who is followed, in which order, added, edited, removed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cgmtray import APP_NAME
from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.units import Unit
from cgmtray.share.regions import Region
from cgmtray.storage import people
from cgmtray.storage.credentials import PasswordStore
from cgmtray.storage.people import MAX_PEOPLE, Person
from cgmtray.storage.settings import Settings
from cgmtray.ui.person_dialogs import (
    AddPersonDialog,
    EditPersonDialog,
    NewPerson,
    PersonAccountDialog,
    chip_icon,
)

_PERSON_ID = Qt.ItemDataRole.UserRole
#: The size of a person's label chip in the list (as wide as a badge's tab is, in proportion).
CHIP_HEIGHT = 24
CHIP_WIDTH = 2 * CHIP_HEIGHT


@dataclass(frozen=True)
class Removal:
    """A person taken off the list: on Save their keyring entries go, their history if asked."""

    person: Person
    keep_history: bool


def _region_name(value: str) -> str:
    try:
        return Region(value).display_name
    except ValueError:
        return value


def person_line(person: Person) -> str:
    """How the list shows a person: their name, then their Dexcom username and region."""
    source = person.source
    account = source.username or "no account yet"
    return f"{person.name}\n{account} · {_region_name(source.region)}"


class PeoplePage(QWidget):
    """The list of people with Add, Edit, Remove, Move up/down and Copy alerts from….

    It edits a working copy of the settings (`settings`) through storage.people's functions;
    nothing is saved or deleted until the dialog's Save (which reads `added`, `accounts` and
    `removed`).

    Signals:
        changed(): the list changed (the dialog re-validates).
        selected(str): the person chosen in the list (the Alerts page edits their alerts).
        alerts_copied(str): that person's alerts were replaced by another's.
        account_page_asked(): Adjust account… on the Account page's person (whose account
            that page edits).
    """

    changed = Signal()
    selected = Signal(str)
    alerts_copied = Signal(str)
    account_page_asked = Signal()

    def __init__(
        self,
        settings: Settings,
        *,
        password_store: PasswordStore,
        clock: Clock | None,
        share_urls: Mapping[Region, str],
        state_dir: Path | None,
        unit: Callable[[], Unit],
        thresholds: Callable[[], Thresholds],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.added: dict[str, NewPerson] = {}
        self.removed: list[Removal] = []
        #: People already on the list given an account and password here, by id (Save puts
        #: the password in the keyring and signs them in anew).
        self.accounts: dict[str, NewPerson] = {}
        #: The person whose account the dialog's Account page edits (set by the dialog).
        self.account_page_person: str | None = None
        #: The alerts of a person as the dialog's Alerts page shows them now (set by the dialog).
        self.alerts_of: Callable[[Person], AlertSettings] = lambda person: person.alerts
        self._store = password_store
        self._clock = clock
        self._share_urls = dict(share_urls)
        self._state_dir = state_dir
        self._unit = unit
        self._thresholds = thresholds
        self.add_dialog: AddPersonDialog | None = None
        self.edit_dialog: EditPersonDialog | None = None
        self.account_dialog: PersonAccountDialog | None = None
        self.remove_box: QMessageBox | None = None

        intro = QLabel(
            f"{APP_NAME} follows up to {MAX_PEOPLE} people, each with their own Dexcom Share "
            "account, alerts and history. The first person's account is on the Account page."
        )
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("people-list")
        self.list.setAccessibleName("People")
        self.list.setIconSize(QSize(CHIP_WIDTH, CHIP_HEIGHT))
        self.list.setSpacing(2)
        self.list.currentRowChanged.connect(self._on_current_row_changed)
        self.list.itemActivated.connect(lambda _item: self.open_edit())

        self.add_button = QPushButton("Ne&w person…")
        self.add_button.setAutoDefault(False)
        self.add_button.clicked.connect(self.open_add)
        self.edit_button = QPushButton("Name, la&bel, colour…")
        self.edit_button.setAutoDefault(False)
        self.edit_button.clicked.connect(self.open_edit)
        self.account_button = QPushButton("Ad&just account…")
        self.account_button.setAutoDefault(False)
        self.account_button.setToolTip("Region, username and password of this person")
        self.account_button.clicked.connect(self.open_account)
        self.remove_button = QPushButton("Remo&ve…")
        self.remove_button.setAutoDefault(False)
        self.remove_button.clicked.connect(self.ask_remove)
        self.copy_button = QPushButton("Cop&y alerts from…")
        self.copy_button.setAutoDefault(False)
        self.copy_menu = QMenu(self.copy_button)
        self.copy_button.setMenu(self.copy_menu)
        self.copy_menu.aboutToShow.connect(self._fill_copy_menu)
        self.up_button = QToolButton()
        self.up_button.setArrowType(Qt.ArrowType.UpArrow)
        self.up_button.setAccessibleName("Move up")
        self.up_button.setToolTip("Move up (Ctrl+Up)")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QToolButton()
        self.down_button.setArrowType(Qt.ArrowType.DownArrow)
        self.down_button.setAccessibleName("Move down")
        self.down_button.setToolTip("Move down (Ctrl+Down)")
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        for keys, step in (("Ctrl+Up", -1), ("Ctrl+Down", 1)):
            shortcut = QShortcut(QKeySequence(keys), self.list)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(lambda step=step: self.move_selected(step))
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.ask_remove)

        order = QHBoxLayout()
        order.addWidget(self.up_button)
        order.addWidget(self.down_button)
        order.addStretch(1)
        side = QVBoxLayout()
        for button in (
            self.add_button,
            self.edit_button,
            self.account_button,
            self.copy_button,
            self.remove_button,
        ):
            side.addWidget(button)
        side.addLayout(order)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addLayout(side)
        self.status_label = QLabel()
        self.status_label.setObjectName("people-status")
        self.status_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(body, 1)
        layout.addWidget(self.status_label)
        self._refill(self.settings.people[0].id if self.settings.people else None)

    # --- the list ---------------------------------------------------------------------------------

    def current_id(self) -> str | None:
        """The id of the person chosen in the list, if any."""
        item = self.list.currentItem()
        return None if item is None else str(item.data(_PERSON_ID))

    def select(self, person_id: str) -> None:
        """Chooses a person in the list."""
        for row in range(self.list.count()):
            if self.list.item(row).data(_PERSON_ID) == person_id:
                self.list.setCurrentRow(row)

    def _refill(self, keep: str | None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for person in self.settings.people:
            chip = chip_icon(person.label, person.colour, CHIP_HEIGHT)
            item = QListWidgetItem(chip, person_line(person))
            item.setData(_PERSON_ID, person.id)
            item.setToolTip(f"Label {person.label}, colour {person.colour}")
            self.list.addItem(item)
        self.list.blockSignals(False)
        if keep is not None:
            self.select(keep)
        if self.list.currentRow() < 0 and self.list.count():
            self.list.setCurrentRow(0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        count = len(self.settings.people)
        row = self.list.currentRow()
        chosen = row >= 0
        self.add_button.setEnabled(0 < count < MAX_PEOPLE)
        if count >= MAX_PEOPLE:
            self.add_button.setToolTip(
                f"{APP_NAME} follows at most {MAX_PEOPLE} people. Remove someone to add another."
            )
        elif count == 0:
            self.add_button.setToolTip("Set up the first person on the Account page, then save.")
        else:
            self.add_button.setToolTip("")
        self.edit_button.setEnabled(chosen)
        self.account_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen and count > 1)
        self.remove_button.setToolTip(
            "" if count > 1 else "The only person cannot be removed; change their account instead."
        )
        self.copy_button.setEnabled(chosen and count > 1)
        self.up_button.setEnabled(chosen and row > 0)
        self.down_button.setEnabled(chosen and 0 <= row < count - 1)

    @Slot(int)
    def _on_current_row_changed(self, _row: int) -> None:
        self._update_buttons()
        person_id = self.current_id()
        if person_id is not None:
            self.selected.emit(person_id)

    def _set(self, settings: Settings, keep: str | None, status: str = "") -> None:
        self.settings = settings
        self.status_label.setText(status)
        self._refill(keep)
        self.changed.emit()

    # --- reorder ----------------------------------------------------------------------------------

    def move_selected(self, step: int) -> None:
        """Moves the chosen person up (-1) or down (+1) one place."""
        person_id = self.current_id()
        ids = [person.id for person in self.settings.people]
        if person_id is None:
            return
        row = ids.index(person_id)
        target = row + step
        if not 0 <= target < len(ids):
            return
        ids[row], ids[target] = ids[target], ids[row]
        self._set(people.reorder_people(self.settings, ids), person_id)

    # --- add --------------------------------------------------------------------------------------

    @Slot()
    def open_add(self) -> AddPersonDialog | None:
        """Opens the Add a person window (None when the list is full or has nobody yet)."""
        if not self.add_button.isEnabled():
            return None
        if self.add_dialog is not None:
            self.add_dialog.raise_()
            self.add_dialog.activateWindow()
            return self.add_dialog
        dialog = AddPersonDialog(
            self.settings,
            password_store=self._store,
            clock=self._clock,
            share_urls=self._share_urls,
            state_dir=self._state_dir,
            unit=self._unit(),
            thresholds=self._thresholds(),
            parent=self,
        )
        dialog.added.connect(self._on_person_added)
        dialog.finished.connect(lambda _result: self._forget_add_dialog(dialog))
        self.add_dialog = dialog
        dialog.open()
        return dialog

    def _forget_add_dialog(self, dialog: AddPersonDialog) -> None:
        if self.add_dialog is dialog:
            self.add_dialog = None
        # A test sign-in still running keeps its own task alive; its result is dropped.
        dialog.deleteLater()

    @Slot(object)
    def _on_person_added(self, new: NewPerson) -> None:
        try:
            settings = people.add_person(self.settings, new.person)
        except people.PeopleError as error:
            self.status_label.setText(" ".join(error.problems))
            return
        self.added[new.person.id] = new
        self._set(settings, new.person.id, f"{new.person.name} will be added when you save.")

    # --- edit -------------------------------------------------------------------------------------

    @Slot()
    def open_edit(self) -> EditPersonDialog | None:
        """Opens the name, label and colour window of the chosen person."""
        person_id = self.current_id()
        if person_id is None or self.edit_dialog is not None:
            return self.edit_dialog
        dialog = EditPersonDialog(people.find(self.settings, person_id), parent=self)
        dialog.edited.connect(
            lambda name, label, colour: self._on_person_edited(person_id, name, label, colour)
        )
        dialog.finished.connect(lambda _result: self._forget_edit_dialog(dialog))
        self.edit_dialog = dialog
        dialog.open()
        return dialog

    def _forget_edit_dialog(self, dialog: EditPersonDialog) -> None:
        if self.edit_dialog is dialog:
            self.edit_dialog = None
        dialog.deleteLater()

    def _on_person_edited(self, person_id: str, name: str, label: str, colour: str) -> None:
        try:
            renamed = people.rename_person(self.settings, person_id, name, label)
            person = dataclasses.replace(people.find(renamed, person_id), colour=colour)
            settings = people.update_person(renamed, person)
        except people.PeopleError as error:
            self.status_label.setText(" ".join(error.problems))
            return
        if person_id in self.added:
            self.added[person_id] = dataclasses.replace(self.added[person_id], person=person)
        self._set(settings, person_id)

    # --- account --------------------------------------------------------------------------------

    @Slot()
    def open_account(self) -> PersonAccountDialog | None:
        """Opens the region, username and password window of the chosen person (the Account
        page for the person that page edits)."""
        person_id = self.current_id()
        if person_id is None:
            return None
        if person_id == self.account_page_person and person_id not in self.added:
            self.account_page_asked.emit()
            return None
        if self.account_dialog is not None:
            self.account_dialog.raise_()
            self.account_dialog.activateWindow()
            return self.account_dialog
        dialog = PersonAccountDialog(
            self.settings,
            people.find(self.settings, person_id),
            password_store=self._store,
            clock=self._clock,
            share_urls=self._share_urls,
            state_dir=self._state_dir,
            unit=self._unit(),
            thresholds=self._thresholds(),
            parent=self,
        )
        dialog.added.connect(lambda given: self._on_account_given(person_id, given))
        dialog.finished.connect(lambda _result: self._forget_account_dialog(dialog))
        self.account_dialog = dialog
        dialog.open()
        return dialog

    def _forget_account_dialog(self, dialog: PersonAccountDialog) -> None:
        if self.account_dialog is dialog:
            self.account_dialog = None
        dialog.deleteLater()

    def _on_account_given(self, person_id: str, given: NewPerson) -> None:
        if not any(person.id == person_id for person in self.settings.people):
            return  # removed while the window was open
        try:
            settings = people.update_person(self.settings, given.person)
        except people.PeopleError as error:
            self.status_label.setText(" ".join(error.problems))
            return
        if person_id in self.added:
            # Not saved yet at all: they are added with this account and password.
            self.added[person_id] = given
        else:
            self.accounts[person_id] = given
        name = given.person.name
        self._set(settings, person_id, f"{name}'s account and password are kept when you save.")

    # --- remove -----------------------------------------------------------------------------------

    @Slot()
    def ask_remove(self) -> QMessageBox | None:
        """Asks, in plain words, whether to keep the chosen person's history, then removes them
        from the list (their keyring entries and history go when the settings are saved)."""
        person_id = self.current_id()
        if person_id is None or not self.remove_button.isEnabled() or self.remove_box is not None:
            return self.remove_box
        person = people.find(self.settings, person_id)
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(f"Remove {person.name}")
        box.setText(f"Stop following {person.name}?")
        box.setInformativeText(
            f"{APP_NAME} will forget {person.name}'s Dexcom password and alert settings when you "
            f"save. Their readings stored on this computer can stay (you can export them later) "
            "or be deleted now."
        )
        keep = box.addButton("&Keep history", QMessageBox.ButtonRole.AcceptRole)
        delete = box.addButton("&Delete history", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        self.remove_box = box

        def answered(_result: int) -> None:
            clicked = box.clickedButton()
            self.remove_box = None
            box.deleteLater()
            if clicked is keep or clicked is delete:
                self._remove(person_id, keep_history=clicked is keep)

        box.finished.connect(answered)
        box.open()
        return box

    def _remove(self, person_id: str, *, keep_history: bool) -> None:
        person = people.find(self.settings, person_id)
        ids = [other.id for other in self.settings.people]
        row = ids.index(person_id)
        ids.remove(person_id)
        keep = ids[min(row, len(ids) - 1)] if ids else None
        # storage.people.remove_person deletes keyring entries at once: it runs at Save.
        rest = tuple(other for other in self.settings.people if other.id != person_id)
        self.accounts.pop(person_id, None)
        if self.added.pop(person_id, None) is None:
            # Nothing of a person added in this window is in the keyring or on disk yet.
            self.removed.append(Removal(person, keep_history))
        kept = "kept" if keep_history else "deleted"
        status = f"{person.name} will be removed when you save (history {kept})."
        self._set(dataclasses.replace(self.settings, people=rest), keep, status)

    # --- copy alerts ------------------------------------------------------------------------------

    @Slot()
    def _fill_copy_menu(self) -> None:
        self.copy_menu.clear()
        target = self.current_id()
        for person in self.settings.people:
            if person.id == target:
                continue
            action = self.copy_menu.addAction(chip_icon(person.label, person.colour), person.name)
            action.triggered.connect(
                lambda _checked=False, source=person.id: self.copy_alerts(source)
            )

    def copy_alerts(self, source_id: str) -> None:
        """Gives the chosen person the alert settings of `source_id`."""
        target_id = self.current_id()
        if target_id is None or target_id == source_id:
            return
        source = people.find(self.settings, source_id)
        target = people.find(self.settings, target_id)
        copied = dataclasses.replace(target, alerts=self.alerts_of(source))
        self._set(
            people.update_person(self.settings, copied),
            target_id,
            f"{target.name} now has {source.name}'s alert settings.",
        )
        self.alerts_copied.emit(target_id)

    def set_alerts(self, person_id: str, alerts: AlertSettings) -> None:
        """Keeps alerts edited on the Alerts page in the working list (no signal)."""
        person = people.find(self.settings, person_id)
        if person.alerts != alerts:
            self.settings = people.update_person(
                self.settings, dataclasses.replace(person, alerts=alerts)
            )

    def wait_for_background(self, timeout_ms: int) -> bool:
        """Blocks until an open Add or Adjust account window's test sign-in returned."""
        windows = (self.add_dialog, self.account_dialog)
        return all(d is None or d.wait_for_background(timeout_ms) for d in windows)
