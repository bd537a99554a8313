"""Settings › People driven as a person would: add, rename, label, colour, reorder, remove, copy."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QMessageBox, QWidget
from pytestqt.qtbot import QtBot
from tests.support.fake_share import USER, running_fake
from tests.support.memory_keyring import MemoryKeyring
from tests.ui.test_mnemonics import clashes, labelled, mnemonic

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, Region
from cgmtray.storage import people
from cgmtray.storage.credentials import SERVICE, CredentialStore, account_id_key, credential_key
from cgmtray.storage.people import MAX_PEOPLE, PALETTE, ShareSource
from cgmtray.storage.settings import Settings, load_settings, one_person_settings, save_settings
from cgmtray.ui.people_page import PeoplePage
from cgmtray.ui.person_dialogs import (
    AddPersonDialog,
    EditPersonDialog,
    NewPerson,
    PersonAccountDialog,
)
from cgmtray.ui.settings_dialog import AccountChange, Page, SettingsDialog
from cgmtray.ui.sign_in_test import OutcomeKind, SignInOutcome

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
SAM = "sam@example.com"
SAM_PASSWORD = "pa55word-Sam"
MIA = "mia@example.jp"


class DictKeyring(MemoryKeyring):
    """The shared in-memory keyring, read by a person's source."""

    def password(self, source: ShareSource) -> str | None:
        return self.entries.get((SERVICE, credential_key(source.region, source.username)))

    def account_id(self, source: ShareSource) -> str | None:
        return self.entries.get((SERVICE, account_id_key(source.region, source.username)))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with running_fake(clock) as server:
        server.add_account(Region.US, SAM, SAM_PASSWORD)
        yield server


class Harness:
    """Dialogs on one settings file, a keyring of the test's own and a data folder."""

    def __init__(self, qtbot: QtBot, tmp_path: Path, clock: ManualClock) -> None:
        self.qtbot = qtbot
        self.path = tmp_path / "config" / "settings.toml"
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.backend = DictKeyring()
        self.store = CredentialStore(self.backend)
        self.clock = clock
        self.share_urls: dict[Region, str] = {}

    def saved(self, settings: Settings) -> Settings:
        """`settings` in the file, every person's password and account id in the keyring."""
        save_settings(settings, self.path)
        for number, person in enumerate(settings.people):
            source = person.source
            self.store.set(source.region, source.username, f"password-{number}")
            self.store.set_account_id(
                source.region, source.username, str(uuid.UUID(int=number + 1))
            )
        return settings

    def open(self) -> SettingsDialog:
        dialog = SettingsDialog(
            load_settings(self.path).settings,
            settings_path=self.path,
            password_store=self.store,
            clock=self.clock,
            history_path=self.data / "history.sqlite3",
            share_urls=self.share_urls,
        )
        self.qtbot.addWidget(dialog)
        with self.qtbot.waitSignal(dialog.keyring_checked, timeout=WAIT_MS):
            dialog.show()
        dialog.show_page(Page.PEOPLE)
        return dialog

    def save(self, dialog: SettingsDialog) -> Settings:
        assert dialog.save_button.isEnabled(), dialog.problems_label.text()
        with self.qtbot.waitSignal(dialog.settings_saved, timeout=WAIT_MS):
            QTest.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        assert dialog.wait_for_background(WAIT_MS)
        self.qtbot.waitUntil(lambda: not dialog._tasks, timeout=WAIT_MS)
        return load_settings(self.path).settings


@pytest.fixture
def harness(qtbot: QtBot, tmp_path: Path, clock: ManualClock) -> Harness:
    return Harness(qtbot, tmp_path, clock)


def two_people() -> Settings:
    first = one_person_settings(username=USER, name="Erin")
    sam = people.new_person(first.people, ShareSource("us", SAM), name="Sam")
    return people.add_person(first, sam)


def _type(edit: QLineEdit, text: str) -> None:
    edit.setFocus()
    edit.selectAll()
    QTest.keyClick(edit, Qt.Key.Key_Backspace)
    QTest.keyClicks(edit, text)


def _click(widget: QWidget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def _rows(page: PeoplePage) -> list[str]:
    return [page.list.item(row).text() for row in range(page.list.count())]


def _choose(page: PeoplePage, name: str) -> None:
    for row, text in enumerate(_rows(page)):
        if text.split("\n")[0] == name:
            page.list.setCurrentRow(row)
            return
    raise AssertionError(f"{name} is not on the list: {_rows(page)}")


def _add_dialog(qtbot: QtBot, page: PeoplePage) -> AddPersonDialog:
    _click(page.add_button)
    qtbot.waitUntil(lambda: page.add_dialog is not None, timeout=WAIT_MS)
    assert page.add_dialog is not None
    return page.add_dialog


def _fill(dialog: AddPersonDialog, name: str, region: Region, username: str, password: str) -> None:
    _type(dialog.name_edit, name)
    dialog.region_combo.setCurrentIndex(dialog.region_combo.findData(region.value))
    _type(dialog.username_edit, username)
    _type(dialog.password_edit, password)


def _edit_dialog(qtbot: QtBot, page: PeoplePage) -> EditPersonDialog:
    _click(page.edit_button)
    qtbot.waitUntil(lambda: page.edit_dialog is not None, timeout=WAIT_MS)
    assert page.edit_dialog is not None
    return page.edit_dialog


def _threshold(dialog: SettingsDialog, kind: AlertKind) -> QLineEdit:
    edit = dialog.kind_rows[kind].threshold
    assert edit is not None
    return edit


# --- one person: as today, plus the page ---------------------------------------------------------


def test_one_person_shows_one_row_and_cannot_be_removed(harness: Harness) -> None:
    harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    assert dialog.tabs.isTabVisible(int(Page.PEOPLE))
    page = dialog.people_page
    assert _rows(page) == [f"Erin\n{USER} · United States"]
    assert page.add_button.isEnabled()
    assert not page.remove_button.isEnabled()
    assert not page.copy_button.isEnabled()
    dialog.show_page(Page.ALERTS)
    assert not dialog.alerts_heading.isVisible()  # whose alerts goes without saying
    assert not dialog.account_whose.isVisible()
    assert dialog.save_button.isEnabled()


def test_before_anyone_is_set_up_only_the_account_page_makes_people(harness: Harness) -> None:
    dialog = harness.open()
    assert not dialog.tabs.isTabVisible(int(Page.PEOPLE))
    assert dialog.tabs.isTabVisible(int(Page.ACCOUNT))
    assert _rows(dialog.people_page) == []
    assert not dialog.people_page.add_button.isEnabled()
    assert "Account page" in dialog.people_page.add_button.toolTip()
    dialog.show_page(Page.ACCOUNT)
    _type(dialog.username_edit, USER)
    _type(dialog.password_edit, "first password")
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    saved = harness.save(dialog)
    assert [person.source.username for person in saved.people] == [USER]
    assert changes[0].person_id == saved.people[0].id


# --- add -----------------------------------------------------------------------------------------


def test_adding_a_second_person_tested_and_saved(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    fake.publish(Region.US, SAM, Reading(T0 - timedelta(minutes=4), 123, Trend.FLAT))
    first = harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    page = dialog.people_page
    added: list[tuple[NewPerson, ...]] = []
    dialog.people_added.connect(added.append)

    add = _add_dialog(qtbot, page)
    _fill(add, "Sam", Region.US, SAM, SAM_PASSWORD)
    with qtbot.waitSignal(add.test_finished, timeout=WAIT_MS) as blocker:
        _click(add.test_button)
    outcome = blocker.args[0]
    assert isinstance(outcome, SignInOutcome)
    assert outcome.kind is OutcomeKind.OK
    assert "123" in add.test_message.text()
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    _click(add.add_button)
    qtbot.waitUntil(lambda: page.add_dialog is None, timeout=WAIT_MS)
    assert _rows(page)[1] == f"Sam\n{SAM} · United States"
    dialog.show_page(Page.ACCOUNT)
    assert dialog.account_whose.isVisible()  # with two people the page says whose it is
    assert "Erin's Dexcom account" in dialog.account_whose.text()
    assert harness.backend.password(ShareSource("us", SAM)) is None  # nothing before Save

    saved = harness.save(dialog)
    assert [person.name for person in saved.people] == ["Erin", "Sam"]
    sam = saved.people[1]
    assert sam.source == ShareSource("us", SAM)
    assert sam.label == "S"
    assert sam.colour == PALETTE[1]
    assert sam.history_file != first.people[0].history_file
    assert harness.backend.password(sam.source) == SAM_PASSWORD
    assert harness.backend.account_id(sam.source) == fake.account_id(Region.US, SAM)
    assert harness.backend.password(first.people[0].source) == "password-0"
    assert SAM_PASSWORD not in harness.path.read_text(encoding="utf-8")
    assert [new.person.id for new in added[0]] == [sam.id]
    assert SAM_PASSWORD not in repr(added[0])


def test_the_add_window_says_what_is_missing_or_already_followed(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    add = _add_dialog(qtbot, dialog.people_page)
    assert not add.add_button.isEnabled()
    _fill(add, "", Region.US, SAM, SAM_PASSWORD)
    assert "Enter a name for each person." in add.problems_label.text()
    assert not add.add_button.isEnabled()
    _type(add.name_edit, "Erin again")
    _type(add.username_edit, USER.upper())
    assert "the same Dexcom account" in add.problems_label.text()
    assert not add.add_button.isEnabled()
    add.region_combo.setCurrentIndex(add.region_combo.findData(Region.OUS.value))
    assert add.add_button.isEnabled()  # the same login in another region is another account
    _type(add.password_edit, "")
    assert "Enter the password" in add.problems_label.text()
    _click(add.cancel_button)
    qtbot.waitUntil(lambda: dialog.people_page.add_dialog is None, timeout=WAIT_MS)
    assert len(dialog.people_page.settings.people) == 1


def _add_sam(qtbot: QtBot, page: PeoplePage) -> None:
    add = _add_dialog(qtbot, page)
    _fill(add, "Sam", Region.US, SAM, SAM_PASSWORD)
    _click(add.add_button)
    qtbot.waitUntil(lambda: page.add_dialog is None, timeout=WAIT_MS)


def test_a_keyring_refusing_a_new_persons_password_saves_nothing(
    qtbot: QtBot, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    first = harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    _add_sam(qtbot, dialog.people_page)
    harness.backend.fail_writes = True
    _click(dialog.save_button)
    qtbot.waitUntil(lambda: "nothing was saved" in dialog.problems_label.text(), timeout=WAIT_MS)
    assert load_settings(harness.path).settings.people == first.people
    assert dialog.isVisible()
    # Save again: the password is kept only while the app runs, handed over with the person.
    added: list[tuple[NewPerson, ...]] = []
    dialog.people_added.connect(added.append)
    saved = harness.save(dialog)
    assert [person.name for person in saved.people] == ["Erin", "Sam"]
    assert harness.backend.password(ShareSource("us", SAM)) is None
    assert added[0][0].password == SAM_PASSWORD
    assert SAM_PASSWORD not in caplog.text
    assert SAM_PASSWORD not in harness.path.read_text(encoding="utf-8")


def test_a_new_password_on_the_account_page_names_its_person_after_a_reorder(
    qtbot: QtBot, harness: Harness
) -> None:
    settings = harness.saved(two_people())
    erin = settings.people[0]
    dialog = harness.open()
    _choose(dialog.people_page, "Sam")
    _click(dialog.people_page.up_button)
    dialog.show_page(Page.ACCOUNT)
    _type(dialog.password_edit, "erin's new password")
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    saved = harness.save(dialog)
    assert [person.name for person in saved.people] == ["Sam", "Erin"]
    assert changes[0].person_id == erin.id
    assert changes[0].person.source == erin.source
    assert harness.backend.password(erin.source) == "erin's new password"
    assert harness.backend.password(saved.people[0].source) == "password-1"


def test_the_account_page_may_not_take_another_persons_account(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    dialog.show_page(Page.ACCOUNT)
    _type(dialog.username_edit, SAM)
    _type(dialog.password_edit, "another")
    assert "the same Dexcom account" in dialog.problems_label.text()
    assert not dialog.save_button.isEnabled()


def _account_dialog(qtbot: QtBot, page: PeoplePage) -> PersonAccountDialog:
    _click(page.account_button)
    qtbot.waitUntil(lambda: page.account_dialog is not None, timeout=WAIT_MS)
    assert page.account_dialog is not None
    return page.account_dialog


def test_a_second_person_without_a_saved_password_is_given_one_in_adjust_account(
    qtbot: QtBot, harness: Harness, fake: FakeShare, caplog: pytest.LogCaptureFixture
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    fake.publish(Region.US, SAM, Reading(T0 - timedelta(minutes=4), 123, Trend.FLAT))
    settings = two_people()
    save_settings(settings, harness.path)
    erin, sam = settings.people
    harness.store.set(erin.source.region, erin.source.username, "password-0")
    dialog = harness.open()
    page = dialog.people_page
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)

    _choose(page, "Sam")
    assert page.account_button.isEnabled()
    window = _account_dialog(qtbot, page)
    assert "Sam" in window.windowTitle()
    assert not window.name_edit.isVisible()  # the name is the other window's
    assert window.username_edit.text() == SAM  # his account as it is, only the password wanted
    assert not window.add_button.isEnabled()
    assert "Enter the password" in window.problems_label.text()
    assert clashes(window) == {}
    _type(window.password_edit, SAM_PASSWORD)
    with qtbot.waitSignal(window.test_finished, timeout=WAIT_MS) as blocker:
        _click(window.test_button)
    assert blocker.args[0].kind is OutcomeKind.OK
    assert "123" in window.test_message.text()
    _click(window.add_button)
    qtbot.waitUntil(lambda: page.account_dialog is None, timeout=WAIT_MS)
    assert "Sam" in page.status_label.text()
    assert harness.backend.password(sam.source) is None  # nothing before Save

    saved = harness.save(dialog)
    assert [person.id for person in saved.people] == [erin.id, sam.id]
    assert saved.people[1].source == sam.source
    assert harness.backend.password(sam.source) == SAM_PASSWORD
    assert harness.backend.account_id(sam.source) == fake.account_id(Region.US, SAM)
    assert harness.backend.password(erin.source) == "password-0"
    (change,) = changes  # only Sam signs in anew; Erin's account is untouched
    assert change.person_id == sam.id
    assert change.person.source == sam.source
    assert change.password == SAM_PASSWORD
    assert change.remembered
    assert change.account_id == fake.account_id(Region.US, SAM)
    assert SAM_PASSWORD not in repr(change)
    assert SAM_PASSWORD not in caplog.text
    assert SAM_PASSWORD not in harness.path.read_text(encoding="utf-8")


def test_adjust_account_moves_a_person_to_another_account_and_forgets_the_old_one(
    qtbot: QtBot, harness: Harness
) -> None:
    settings = harness.saved(two_people())
    erin, sam = settings.people
    dialog = harness.open()
    page = dialog.people_page
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    _choose(page, "Sam")
    window = _account_dialog(qtbot, page)
    _type(window.username_edit, USER)  # Erin's: refused
    _type(window.password_edit, "new")
    assert "the same Dexcom account" in window.problems_label.text()
    assert not window.add_button.isEnabled()
    window.region_combo.setCurrentIndex(window.region_combo.findData(Region.JP.value))
    _type(window.username_edit, MIA)
    _click(window.add_button)
    qtbot.waitUntil(lambda: page.account_dialog is None, timeout=WAIT_MS)
    assert _rows(page)[1].startswith(f"Sam\n{MIA}")

    saved = harness.save(dialog)
    moved = ShareSource(Region.JP.value, MIA)
    assert saved.people[1].source == moved
    assert harness.backend.password(moved) == "new"
    assert harness.backend.password(sam.source) is None
    assert harness.backend.account_id(sam.source) is None
    assert harness.backend.password(erin.source) == "password-0"
    assert [(change.person_id, change.person.source) for change in changes] == [(sam.id, moved)]


def test_a_keyring_refusing_an_adjusted_password_saves_nothing_then_keeps_it_in_memory(
    qtbot: QtBot, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    settings = two_people()
    save_settings(settings, harness.path)
    erin, sam = settings.people
    harness.store.set(erin.source.region, erin.source.username, "password-0")
    dialog = harness.open()
    page = dialog.people_page
    changes: list[AccountChange] = []
    dialog.account_changed.connect(changes.append)
    _choose(page, "Sam")
    window = _account_dialog(qtbot, page)
    _type(window.password_edit, SAM_PASSWORD)
    _click(window.add_button)
    qtbot.waitUntil(lambda: page.account_dialog is None, timeout=WAIT_MS)
    harness.backend.fail_writes = True
    _click(dialog.save_button)
    qtbot.waitUntil(lambda: "nothing was saved" in dialog.problems_label.text(), timeout=WAIT_MS)
    assert changes == []
    assert dialog.isVisible()
    # Save again: the password goes to the app for this run only, never to the keyring.
    harness.save(dialog)
    (change,) = changes
    assert change.person_id == sam.id
    assert change.password == SAM_PASSWORD
    assert not change.remembered
    assert harness.backend.password(sam.source) is None
    assert SAM_PASSWORD not in caplog.text
    assert SAM_PASSWORD not in harness.path.read_text(encoding="utf-8")


def test_adjust_account_on_the_account_pages_person_shows_the_account_page(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Erin")
    _click(page.account_button)
    assert page.account_dialog is None
    assert dialog.tabs.currentIndex() == int(Page.ACCOUNT)


def test_at_ten_people_add_is_disabled_and_says_why(harness: Harness) -> None:
    settings = one_person_settings(username="p0@example.com")
    for number in range(1, MAX_PEOPLE):
        source = ShareSource("us", f"p{number}@example.com")
        settings = people.add_person(settings, people.new_person(settings.people, source))
    harness.saved(settings)
    dialog = harness.open()
    page = dialog.people_page
    assert len(_rows(page)) == MAX_PEOPLE
    assert not page.add_button.isEnabled()
    assert f"at most {MAX_PEOPLE} people" in page.add_button.toolTip()
    assert page.open_add() is None
    dialog.show_add_person()  # the tray's "Add a person…" at ten: the page says why
    assert dialog.tabs.currentIndex() == int(Page.PEOPLE)
    assert page.add_dialog is None


def test_the_trays_add_a_person_opens_the_page_with_the_add_window(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(one_person_settings(username=USER))
    dialog = harness.open()
    dialog.show_page(Page.ACCOUNT)
    dialog.show_add_person()
    assert dialog.tabs.currentIndex() == int(Page.PEOPLE)
    add = dialog.people_page.add_dialog
    assert add is not None
    qtbot.waitUntil(add.isVisible, timeout=WAIT_MS)


def test_a_rejected_test_is_not_repeated_until_the_password_changes(
    qtbot: QtBot, harness: Harness, fake: FakeShare
) -> None:
    harness.share_urls = {region: fake.base_url(region) for region in Region}
    harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    add = _add_dialog(qtbot, dialog.people_page)
    _fill(add, "Sam", Region.US, SAM, "not-the-password")
    with qtbot.waitSignal(add.test_finished, timeout=WAIT_MS) as blocker:
        _click(add.test_button)
    assert blocker.args[0].kind is OutcomeKind.CREDENTIALS
    assert add.test_headline.text() == "Dexcom did not accept this sign-in"
    assert not add.test_button.isEnabled()
    assert "Change the username, password or region" in add.test_hint.text()
    _type(add.password_edit, SAM_PASSWORD)
    assert add.test_button.isEnabled()
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1


# --- rename, label, colour, reorder --------------------------------------------------------------


def test_rename_label_and_colour(qtbot: QtBot, harness: Harness) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Sam")
    edit = _edit_dialog(qtbot, page)
    _type(edit.name_edit, "")
    assert "Enter a name for each person." in edit.problems_label.text()
    assert not edit.ok_button.isEnabled()
    _type(edit.name_edit, "Max")
    assert edit.label_edit.text() == "M"  # the label follows the initial until typed
    _type(edit.label_edit, "Mx")
    _click(edit.swatches[PALETTE[5]])
    _click(edit.ok_button)
    qtbot.waitUntil(lambda: page.edit_dialog is None, timeout=WAIT_MS)
    assert _rows(page)[1].startswith("Max\n")

    saved = harness.save(dialog)
    max_ = saved.people[1]
    assert (max_.name, max_.label, max_.colour) == ("Max", "Mx", PALETTE[5])
    assert max_.source == ShareSource("us", SAM)


def test_a_label_must_be_one_or_two_characters_and_other_colours_can_be_picked(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Sam")
    edit = _edit_dialog(qtbot, page)
    _type(edit.label_edit, "")
    assert "the label must be 1 or 2 characters" in edit.problems_label.text()
    assert not edit.ok_button.isEnabled()
    QTest.keyClicks(edit.label_edit, "xyz")
    assert edit.label_edit.text() == "xy"  # a third character is not taken
    assert edit.ok_button.isEnabled()
    edit.set_colour("#123abc")
    assert not any(swatch.isChecked() for swatch in edit.swatches.values())
    QTest.keyClick(edit.name_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.edit_dialog is None, timeout=WAIT_MS)
    saved = harness.save(dialog)
    assert (saved.people[1].label, saved.people[1].colour) == ("xy", "#123ABC")


def test_reorder_with_the_keyboard_and_the_arrows(qtbot: QtBot, harness: Harness) -> None:
    settings = two_people()
    mia = people.new_person(settings.people, ShareSource("jp", MIA), name="Mia")
    harness.saved(people.add_person(settings, mia))
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Mia")
    assert not page.down_button.isEnabled()
    page.list.setFocus()
    QTest.keyClick(page.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(page.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert [row.split("\n")[0] for row in _rows(page)] == ["Mia", "Erin", "Sam"]
    assert page.current_id() == mia.id  # the moved person stays chosen
    _choose(page, "Erin")
    _click(page.down_button)
    assert [row.split("\n")[0] for row in _rows(page)] == ["Mia", "Sam", "Erin"]
    saved = harness.save(dialog)
    assert [person.name for person in saved.people] == ["Mia", "Sam", "Erin"]
    assert saved.people[0].source == ShareSource("jp", MIA)


# --- remove --------------------------------------------------------------------------------------


def _answer(qtbot: QtBot, page: PeoplePage, text: str) -> None:
    box = page.remove_box
    assert isinstance(box, QMessageBox)
    qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
    (button,) = [b for b in box.buttons() if b.text() == text]
    _click(button)
    qtbot.waitUntil(lambda: page.remove_box is None, timeout=WAIT_MS)


@pytest.mark.parametrize("keep", [True, False])
def test_remove_asks_about_history_and_forgets_the_keyring_entries(
    qtbot: QtBot, harness: Harness, keep: bool
) -> None:
    settings = harness.saved(two_people())
    erin, sam = settings.people
    files = [harness.data / sam.history_file, harness.data / (sam.history_file + "-wal")]
    for file in [*files, harness.data / erin.history_file]:
        file.write_bytes(b"readings")
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Sam")
    page.list.setFocus()
    QTest.keyClick(page.list, Qt.Key.Key_Delete)
    box = page.remove_box
    assert box is not None
    assert "Stop following Sam?" in box.text()
    assert "readings stored on this computer" in box.informativeText()
    _answer(qtbot, page, "&Keep history" if keep else "&Delete history")
    assert [row.split("\n")[0] for row in _rows(page)] == ["Erin"]
    assert harness.backend.password(sam.source) == "password-1"  # not before Save

    saved = harness.save(dialog)
    assert [person.id for person in saved.people] == [erin.id]
    assert harness.backend.password(sam.source) is None
    assert harness.backend.account_id(sam.source) is None
    assert harness.backend.password(erin.source) == "password-0"
    assert all(file.exists() is keep for file in files)
    assert (harness.data / erin.history_file).exists()


def test_cancelling_the_question_or_the_dialog_removes_nothing(
    qtbot: QtBot, harness: Harness
) -> None:
    settings = harness.saved(two_people())
    sam = settings.people[1]
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Sam")
    _click(page.remove_button)
    _answer(qtbot, page, "&Cancel")
    assert len(_rows(page)) == 2
    _click(page.remove_button)
    _answer(qtbot, page, "&Delete history")
    assert len(_rows(page)) == 1
    _click(dialog.cancel_button)
    assert load_settings(harness.path).settings.people == settings.people
    assert harness.backend.password(sam.source) == "password-1"


def test_removing_the_account_pages_person_leaves_the_others_saved(
    qtbot: QtBot, harness: Harness
) -> None:
    settings = harness.saved(two_people())
    erin, sam = settings.people
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Erin")
    _click(page.remove_button)
    _answer(qtbot, page, "&Keep history")
    assert not dialog.username_edit.isEnabled()
    saved = harness.save(dialog)
    assert [person.id for person in saved.people] == [sam.id]
    assert harness.backend.password(erin.source) is None
    assert harness.backend.password(sam.source) == "password-1"


# --- alerts --------------------------------------------------------------------------------------


def test_the_alerts_page_edits_the_person_chosen_on_the_people_page(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    _choose(dialog.people_page, "Sam")
    dialog.show_page(Page.ALERTS)
    assert dialog.alerts_heading.isVisible()
    assert "Alerts for Sam" in dialog.alerts_heading.text()
    _type(_threshold(dialog, AlertKind.LOW), "85")
    dialog.show_page(Page.PEOPLE)
    _choose(dialog.people_page, "Erin")
    assert _threshold(dialog, AlertKind.LOW).text() == "70"
    _type(_threshold(dialog, AlertKind.HIGH), "200")
    saved = harness.save(dialog)
    erin, sam = saved.people
    assert (erin.alerts[AlertKind.LOW].threshold, erin.alerts[AlertKind.HIGH].threshold) == (
        70,
        200,
    )
    assert sam.alerts[AlertKind.LOW].threshold == 85
    assert sam.alerts[AlertKind.HIGH] == AlertSettings()[AlertKind.HIGH]


def test_alerts_that_are_wrong_stay_on_screen_until_put_right(
    qtbot: QtBot, harness: Harness
) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    dialog.unit_mmol.click()
    _type(_threshold(dialog, AlertKind.LOW), "seventy")
    _choose(dialog.people_page, "Sam")
    assert "Alerts for Erin" in dialog.alerts_heading.text()  # not lost by a click elsewhere
    assert "Low: enter a number." in dialog.problems_label.text()
    _type(_threshold(dialog, AlertKind.LOW), "4.2")
    _choose(dialog.people_page, "Erin")
    _choose(dialog.people_page, "Sam")
    assert "Alerts for Sam" in dialog.alerts_heading.text()
    assert _threshold(dialog, AlertKind.LOW).text() == "3.9"  # Sam's 70 mg/dL, in mmol/L
    saved = harness.save(dialog)
    assert saved.people[0].alerts[AlertKind.LOW].threshold == 76  # 4.2 mmol/L
    assert saved.people[1].alerts[AlertKind.LOW].threshold == 70


def test_copy_alert_settings_from_another_person(qtbot: QtBot, harness: Harness) -> None:
    settings = two_people()
    erin = settings.people[0]
    low = dataclasses.replace(AlertSettings()[AlertKind.LOW], threshold=80, sound=False)
    erin_alerts = AlertSettings().with_kind(AlertKind.LOW, low)
    harness.saved(people.update_person(settings, dataclasses.replace(erin, alerts=erin_alerts)))
    dialog = harness.open()
    page = dialog.people_page
    _choose(page, "Erin")
    _type(_threshold(dialog, AlertKind.URGENT_LOW), "60")  # typed, not yet saved: copied too
    _choose(page, "Sam")
    page._fill_copy_menu()
    actions = [action.text() for action in page.copy_menu.actions()]
    assert actions == ["Erin"]
    page.copy_menu.actions()[0].trigger()
    assert "Sam now has Erin's alert settings." in page.status_label.text()
    assert _threshold(dialog, AlertKind.LOW).text() == "80"
    assert not dialog.kind_rows[AlertKind.LOW].sound.isChecked()
    saved = harness.save(dialog)
    assert saved.people[1].alerts == saved.people[0].alerts
    assert saved.people[1].alerts[AlertKind.URGENT_LOW].threshold == 60


# --- keyboard ------------------------------------------------------------------------------------


def test_a_person_is_added_with_the_keyboard_alone(qtbot: QtBot, harness: Harness) -> None:
    harness.saved(one_person_settings(username=USER, name="Erin"))
    dialog = harness.open()
    dialog.show_page(Page.ACCOUNT)
    dialog.activateWindow()
    # Alt+letter shortcuts reach only the active window: wait until it is (bounds a hang only).
    qtbot.waitUntil(dialog.isActiveWindow, timeout=WAIT_MS)
    QTest.keyClick(dialog, Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)
    assert dialog.tabs.currentIndex() == int(Page.PEOPLE)
    page = dialog.people_page
    QTest.keyClick(dialog, Qt.Key.Key_W, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: page.add_dialog is not None, timeout=WAIT_MS)
    add = page.add_dialog
    assert add is not None
    qtbot.waitUntil(lambda: add.isVisible() and add.isActiveWindow(), timeout=WAIT_MS)
    qtbot.waitUntil(add.name_edit.hasFocus, timeout=WAIT_MS)  # the name field takes the keys first
    QTest.keyClicks(add.name_edit, "Sam")
    QTest.keyClick(add, Qt.Key.Key_U, Qt.KeyboardModifier.AltModifier)
    QTest.keyClicks(add.username_edit, SAM)
    QTest.keyClick(add, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    QTest.keyClicks(add.password_edit, SAM_PASSWORD)
    QTest.keyClick(add.password_edit, Qt.Key.Key_Return)  # Add is the default button
    qtbot.waitUntil(lambda: page.add_dialog is None, timeout=WAIT_MS)
    assert [row.split("\n")[0] for row in _rows(page)] == ["Erin", "Sam"]
    saved = harness.save(dialog)
    assert saved.people[1].source == ShareSource("us", SAM)


def test_the_people_windows_have_unique_mnemonics(qtbot: QtBot, harness: Harness) -> None:
    harness.saved(two_people())
    dialog = harness.open()
    page = dialog.people_page
    add = _add_dialog(qtbot, page)
    edit = EditPersonDialog(page.settings.people[1])
    qtbot.addWidget(edit)
    window: QWidget
    for window in (add, edit):
        assert clashes(window) == {}
        assert [name for name, text in labelled(window) if text and mnemonic(text) is None] == []
    _click(add.cancel_button)
    # Each window's letters are its own; gone, the Add window leaves the dialog's alone.
    qtbot.waitUntil(lambda: not dialog.findChildren(AddPersonDialog), timeout=WAIT_MS)
    assert clashes(dialog) == {}
