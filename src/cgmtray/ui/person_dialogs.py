"""The People page's windows: add a person, adjust one's account (Test sign-in), edit the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cgmtray.domain.clock import Clock
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.units import Unit
from cgmtray.share.regions import Region
from cgmtray.storage import people
from cgmtray.storage.credentials import PasswordStore
from cgmtray.storage.people import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, PALETTE, Person, ShareSource
from cgmtray.storage.settings import Settings
from cgmtray.ui.outcome_style import OUTCOME_COLOURS, left_bar, outcome_bar
from cgmtray.ui.sign_in_test import OutcomeKind, SignInAttempt, SignInOutcome, SignInTester

_TEST_HINT = "One sign-in attempt for this person; it is never repeated by itself."
#: A chosen swatch is ringed in the theme's highlight (its check state alone barely shows).
_SWATCH_STYLE = (
    "QToolButton { border: 2px solid transparent; border-radius: 4px; padding: 1px; }"
    "QToolButton:checked { border-color: palette(highlight); }"
    "QToolButton:focus { border-style: dotted; border-color: palette(text); }"
)


def _ink_for(colour: str) -> QColor:
    """Black or white, whichever reads better on `colour`."""
    background = QColor(colour)
    luma = 0.299 * background.red() + 0.587 * background.green() + 0.114 * background.blue()
    return QColor("#000000") if luma > 150 else QColor("#ffffff")


def chip_icon(label: str, colour: str, size: int = 24) -> QIcon:
    """A rounded chip in the person's colour with their label, as on their tray badge."""
    pixmap = QPixmap(size * 2, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor("#808080"))  # an edge, so black and white chips show on any theme
    painter.setBrush(QColor(colour))
    box = QRectF(0.5, 0.5, size * 2 - 1.0, size - 1.0)
    painter.drawRoundedRect(box, size / 4, size / 4)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.55))
    painter.setFont(font)
    painter.setPen(_ink_for(colour))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
    painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)  # the person's colour, not tinted by selection
    return icon


@dataclass(frozen=True)
class NewPerson:
    """A person the Add window made, with their password (never in the repr)."""

    person: Person
    password: str = field(repr=False)
    #: Learned by a test sign-in of this account; never in the repr.
    account_id: str | None = field(default=None, repr=False)


class AddPersonDialog(QDialog):
    """Name, region, username and password of one more person, with a Test sign-in for them.

    Nothing is saved here: `added(NewPerson)` hands the person to the People page, whose list
    is saved with the settings.
    """

    added = Signal(object)
    test_finished = Signal(object)

    def __init__(
        self,
        existing: Settings,
        *,
        password_store: PasswordStore,
        clock: Clock | None,
        share_urls: Mapping[Region, str],
        state_dir: Path | None,
        unit: Unit,
        thresholds: Thresholds,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a person")
        self.setObjectName("add-person-dialog")
        self.setMinimumWidth(520)
        self._existing = existing
        self._share_urls = dict(share_urls)
        self._unit = unit
        self._thresholds = thresholds
        self._learned: tuple[str, str, str] | None = None
        self._tested: tuple[str, str, str] | None = None
        self._tester = SignInTester(
            clock=clock, password_store=password_store, state_dir=state_dir, parent=self
        )
        self._tester.finished.connect(self._on_tester_finished)

        self.name_edit = QLineEdit()
        self.name_edit.setMaxLength(MAX_NAME_LENGTH)
        self.name_edit.setPlaceholderText("as you call them, e.g. Sam")
        self.name_edit.setAccessibleName("Name")
        self.region_combo = QComboBox()
        for region in Region:
            self.region_combo.addItem(region.display_name, region.value)
        self.username_edit = QLineEdit()
        self.username_edit.setPlaceholderText("username, e-mail or phone number (+11234567890)")
        self.username_edit.setAccessibleName("Dexcom username, e-mail or phone number")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Dexcom password")

        who = QLabel(
            "Use the Dexcom app login of the person who wears the sensor (or of the parent who "
            "set it up for a child), not a follower's. The password is saved in the system "
            "keyring when you save the settings."
        )
        who.setWordWrap(True)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.form = form
        for text, widget in (
            ("&Name:", self.name_edit),
            ("&Region:", self.region_combo),
            ("&Username:", self.username_edit),
            ("&Password:", self.password_edit),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            form.addRow(label, widget)

        self.test_button = QPushButton("&Test sign-in")
        self.test_button.setAutoDefault(False)
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.test_hint = QLabel(_TEST_HINT)
        self.test_hint.setWordWrap(True)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_hint, 1)
        self.test_headline = QLabel()
        font = self.test_headline.font()
        font.setBold(True)
        self.test_headline.setFont(font)
        self.test_message = QLabel()
        self.test_message.setWordWrap(True)
        self.test_result = QFrame()
        self.test_result.setObjectName("add-test-result")
        result_layout = QVBoxLayout(self.test_result)
        result_layout.setContentsMargins(10, 4, 4, 4)
        result_layout.addWidget(self.test_headline)
        result_layout.addWidget(self.test_message)
        self.test_result.setVisible(False)

        self.problems_label = QLabel()
        self.problems_label.setObjectName("add-person-problems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(left_bar("QLabel", OUTCOME_COLOURS["bad"]))

        self.buttons = QDialogButtonBox()
        self.add_button = self.buttons.addButton("&Add", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.setDefault(True)
        self.cancel_button = self.buttons.addButton(
            "&Cancel", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.buttons.accepted.connect(self._on_add)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(who)
        layout.addLayout(form)
        layout.addLayout(test_row)
        layout.addWidget(self.test_result)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.buttons)
        for edit in (self.name_edit, self.username_edit, self.password_edit):
            edit.textChanged.connect(self._revalidate)
        self.region_combo.currentIndexChanged.connect(self._revalidate)
        self._revalidate()
        self.name_edit.setFocus()

    # --- what the fields make ---------------------------------------------------------------------

    def _fields(self) -> tuple[str, str]:
        return str(self.region_combo.currentData()), self.username_edit.text().strip()

    def _typed_problems(self) -> list[str]:
        """What is missing from the account fields."""
        problems: list[str] = []
        if not self._fields()[1]:
            problems.append(
                "Enter the Dexcom username, e-mail or phone number of the person who wears "
                "the sensor."
            )
        if not self.password_edit.text():
            problems.append("Enter the password of this Dexcom account.")
        return problems

    def _base_url(self, region: Region) -> str | None:
        """The Share server a test sign-in in `region` goes to (None: Dexcom's own)."""
        return self._share_urls.get(region)

    def candidate(self) -> tuple[Person | None, list[str]]:
        """The person the fields describe, checked against the people already there."""
        region, username = self._fields()
        problems = self._typed_problems()
        source = ShareSource(region=region, username=username)
        made = people.new_person(self._existing.people, source)
        name = self.name_edit.text().strip()
        person = dataclasses.replace(made, name=name, label=people.default_label(name))
        try:
            people.add_person(self._existing, person)
        except people.PeopleError as error:
            problems += [problem for problem in error.problems if problem not in problems]
        return (None if problems else person), problems

    @Slot()
    def _revalidate(self) -> None:
        person, problems = self.candidate()
        self.problems_label.setText("\n".join(problems))
        self.problems_label.setVisible(bool(problems))
        self.add_button.setEnabled(person is not None)
        self._update_test_button()

    def _update_test_button(self) -> None:
        region, username = self._fields()
        tried = self._tested == (region, username.casefold(), self.password_edit.text())
        ready = bool(username and self.password_edit.text())
        self.test_button.setEnabled(ready and not self._tester.busy and not tried)
        self.test_button.setText("Testing…" if self._tester.busy else "&Test sign-in")
        if tried:
            self.test_hint.setText("Change the username, password or region before testing again.")
        else:
            self.test_hint.setText(_TEST_HINT)

    @Slot()
    def _on_add(self) -> None:
        person, _problems = self.candidate()
        if person is None:
            return
        region, username = self._fields()
        learned = self._learned
        account_id = (
            learned[2] if learned is not None and learned[:2] == (region, username) else None
        )
        self.added.emit(NewPerson(person, self.password_edit.text(), account_id))
        self.accept()

    # --- test sign-in -----------------------------------------------------------------------------

    @Slot()
    def _on_test_button_clicked(self) -> None:
        region_value, username = self._fields()
        region = Region(region_value)
        attempt = SignInAttempt(
            region,
            username,
            self.password_edit.text(),
            base_url=self._base_url(region),
            unit=self._unit,
            thresholds=self._thresholds,
        )
        if self._tester.test(attempt):
            self._tested = (region_value, username.casefold(), self.password_edit.text())
            self._show_outcome("Testing…", "Signing in to Dexcom Share once.", None)
        self._update_test_button()

    @Slot(object)
    def _on_tester_finished(self, outcome: SignInOutcome) -> None:
        if outcome.signed_in and outcome.account_id:
            self._learned = (*self._fields(), outcome.account_id)
        if outcome.kind is not OutcomeKind.CREDENTIALS and outcome.kind is not OutcomeKind.LOCKED:
            self._tested = None
        self._show_outcome(outcome.headline, outcome.message, outcome.kind)
        self._update_test_button()
        self.test_finished.emit(outcome)

    def _show_outcome(self, headline: str, message: str, kind: OutcomeKind | None) -> None:
        self.test_result.setVisible(True)
        self.test_result.setStyleSheet(outcome_bar("QFrame#add-test-result", kind))
        self.test_headline.setText(headline)
        self.test_message.setText(message)

    def wait_for_background(self, timeout_ms: int) -> bool:
        """Blocks until a running test sign-in returned (tests, closing)."""
        return self._tester.wait(timeout_ms)


class PersonAccountDialog(AddPersonDialog):
    """Region, username and password of a person already on the list (a person held for want
    of a saved password, or moving to another account), with a Test sign-in for them.

    Nothing is saved here: `added(NewPerson)` hands the person, with the account typed, and
    the password to the People page; Save puts the password in the keyring.
    """

    def __init__(
        self,
        existing: Settings,
        person: Person,
        *,
        password_store: PasswordStore,
        clock: Clock | None,
        share_urls: Mapping[Region, str],
        state_dir: Path | None,
        unit: Unit,
        thresholds: Thresholds,
        parent: QWidget | None = None,
    ) -> None:
        self._person = person
        super().__init__(
            existing,
            password_store=password_store,
            clock=clock,
            share_urls=share_urls,
            state_dir=state_dir,
            unit=unit,
            thresholds=thresholds,
            parent=parent,
        )
        self.setWindowTitle(f"{person.name}: Dexcom account")
        self.setObjectName("person-account-dialog")
        self.name_edit.setText(person.name)
        self.form.setRowVisible(self.name_edit, False)
        index = self.region_combo.findData(person.source.region)
        self.region_combo.setCurrentIndex(max(index, 0))
        self.username_edit.setText(person.source.username)
        self.add_button.setText("&OK")
        (self.password_edit if person.source.username else self.username_edit).setFocus()

    def _base_url(self, region: Region) -> str | None:
        source = self._person.source
        own = source.share_url if source.region == region.value else None
        return self._share_urls.get(region) or own

    def candidate(self) -> tuple[Person | None, list[str]]:
        """The person with the account the fields name, checked against the others."""
        region, username = self._fields()
        problems = self._typed_problems()
        old = self._person.source
        share_url = old.share_url if region == old.region else None
        source = ShareSource(region=region, username=username, share_url=share_url)
        person = dataclasses.replace(people.find(self._existing, self._person.id), source=source)
        try:
            people.update_person(self._existing, person)
        except people.PeopleError as error:
            problems += [problem for problem in error.problems if problem not in problems]
        return (None if problems else person), problems


class EditPersonDialog(QDialog):
    """A person's name, badge label (1-2 characters) and colour.

    `edited(name, label, colour)` when OK is pressed with acceptable values.
    """

    edited = Signal(str, str, str)

    def __init__(
        self,
        person: Person,
        *,
        choose_colour: Callable[[QColor, QWidget], QColor] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{person.name}: name, label and colour")
        self.setObjectName("edit-person-dialog")
        self._person = person
        self._colour = person.colour
        self._label_typed = person.label != people.default_label(person.name)
        self._choose_colour = choose_colour or _colour_from_dialog

        self.name_edit = QLineEdit(person.name)
        self.name_edit.setMaxLength(MAX_NAME_LENGTH)
        self.label_edit = QLineEdit(person.label)
        self.label_edit.setMaxLength(MAX_LABEL_LENGTH)
        self.label_edit.setMaximumWidth(64)
        self.label_edit.setToolTip("1 or 2 characters on their tray badge")
        self.swatches: dict[str, QToolButton] = {}
        swatch_row = QHBoxLayout()
        swatch_row.setSpacing(4)
        for colour in PALETTE:
            swatch = QToolButton()
            swatch.setCheckable(True)
            swatch.setAutoExclusive(False)
            swatch.setIcon(chip_icon("", colour, 16))
            swatch.setIconSize(QSize(32, 16))
            swatch.setStyleSheet(_SWATCH_STYLE)
            swatch.setAccessibleName(f"Colour {colour}")
            swatch.setToolTip(colour)
            swatch.clicked.connect(lambda _checked=False, c=colour: self.set_colour(c))
            self.swatches[colour] = swatch
            swatch_row.addWidget(swatch)
        self.other_colour_button = QPushButton("Othe&r colour…")
        self.other_colour_button.setAutoDefault(False)
        self.other_colour_button.clicked.connect(self._on_other_colour)
        swatch_row.addWidget(self.other_colour_button)
        swatch_row.addStretch(1)
        self.preview = QLabel()
        self.preview.setAccessibleName("Badge preview")

        form = QFormLayout()
        name_label = QLabel("&Name:")
        name_label.setBuddy(self.name_edit)
        label_label = QLabel("&Label:")
        label_label.setBuddy(self.label_edit)
        form.addRow(name_label, self.name_edit)
        form.addRow(label_label, self.label_edit)
        form.addRow("Colour:", swatch_row)
        form.addRow(QLabel("Badge:"), self.preview)  # a picture: no buddy to jump to

        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(left_bar("QLabel", OUTCOME_COLOURS["bad"]))
        self.buttons = QDialogButtonBox()
        self.ok_button = self.buttons.addButton("&OK", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setDefault(True)
        self.buttons.addButton("&Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.buttons)
        self.name_edit.textEdited.connect(self._on_name_edited)
        self.label_edit.textEdited.connect(self._on_label_edited)
        self.set_colour(person.colour)

    def set_colour(self, colour: str) -> None:
        """Picks `colour` ("#RRGGBB")."""
        self._colour = colour.upper() if people.is_colour(colour) else self._colour
        for value, swatch in self.swatches.items():
            swatch.setChecked(value.upper() == self._colour.upper())
        self._revalidate()

    def values(self) -> tuple[str, str, str]:
        """(name, label, colour) as the fields stand."""
        return self.name_edit.text().strip(), self.label_edit.text().strip(), self._colour

    def problems(self) -> list[str]:
        name, label, colour = self.values()
        changed = dataclasses.replace(self._person, name=name, label=label, colour=colour)
        return people.person_problems(changed)

    @Slot(str)
    def _on_name_edited(self, name: str) -> None:
        if not self._label_typed:
            self.label_edit.setText(people.default_label(name) if name.strip() else "")
        self._revalidate()

    @Slot(str)
    def _on_label_edited(self, _label: str) -> None:
        self._label_typed = True
        self._revalidate()

    @Slot()
    def _on_other_colour(self) -> None:
        chosen = self._choose_colour(QColor(self._colour), self)
        if chosen.isValid():
            self.set_colour(chosen.name())

    def _revalidate(self) -> None:
        problems = self.problems()
        self.problems_label.setText("\n".join(problems))
        self.problems_label.setVisible(bool(problems))
        self.ok_button.setEnabled(not problems)
        _name, label, colour = self.values()
        self.preview.setPixmap(chip_icon(label or " ", colour).pixmap(48, 24))

    @Slot()
    def _on_ok(self) -> None:
        if self.problems():
            return
        self.edited.emit(*self.values())
        self.accept()


def _colour_from_dialog(initial: QColor, parent: QWidget) -> QColor:
    return QColorDialog.getColor(initial, parent, "Badge colour")
