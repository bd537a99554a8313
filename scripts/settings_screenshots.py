"""Screenshots of the settings dialog's pages and outcomes, the welcome window and the password
choice, light and dark: settings-*.png (settings-people-* with three people), sign-in-test-*.png
and password-choice-*.png in docs/screenshots.

The account outcomes come from real test sign-ins against the fake Share service on loopback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring.backend
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region
from cgmtray.storage import people
from cgmtray.storage.autostart import XdgAutostart
from cgmtray.storage.credentials import CredentialStore
from cgmtray.storage.people import ShareSource
from cgmtray.storage.settings import Settings, one_person_settings
from cgmtray.ui.first_run import WelcomeWindow
from cgmtray.ui.password_choice import PasswordChoice
from cgmtray.ui.settings_dialog import Page, SettingsDialog

if TYPE_CHECKING:  # mypy names the sibling script by its path
    from scripts.history_screenshots import dark_palette
else:  # run as a script: its folder is on sys.path
    from history_screenshots import dark_palette

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
USER = "erin@example.com"
PASSWORD = "pa55word-Erin"  # noqa: S105 - the fake service's made-up account
WIDTH = 680
#: Real seconds a test sign-in against the loopback fake may take before the script gives up.
WAIT_S = 30.0


def _wait(app: QApplication, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the dialog did not finish in time")
        app.processEvents()
        time.sleep(0.01)


def _type(edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    edit.insert(text)


class ScreenshotKeyring(keyring.backend.KeyringBackend):
    """A keyring in memory standing for the desktop's (the real one is never touched)."""

    priority = -10  # never chosen by keyring's auto-detection

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class Shooter:
    """Makes dialogs on a temporary folder and the fake service, and saves what they show."""

    def __init__(self, app: QApplication, out_dir: Path, work: Path, fake: FakeShare) -> None:
        self.app = app
        self.out_dir = out_dir
        self.work = work
        self.fake = fake
        self.written: list[Path] = []

    def dialog(self, settings: Settings, password: str = "") -> SettingsDialog:
        store = CredentialStore(ScreenshotKeyring())
        if password:
            store.set(
                settings.first_person.source.region, settings.first_person.source.username, password
            )
        dialog = SettingsDialog(
            settings,
            settings_path=self.work / "settings.toml",
            password_store=store,
            clock=ManualClock(NOW),
            autostart=XdgAutostart(self.work / "xdg"),
            launch_command=["/usr/bin/cgm-tray"],
            history_path=self.work / "history.sqlite3",
            log_dir=self.work / "log",
            share_urls={region: self.fake.base_url(region) for region in Region},
        )
        dialog.resize(WIDTH, dialog.sizeHint().height())
        dialog.show()
        _wait(self.app, lambda: "Checking" not in dialog.keyring_label.text())
        return dialog

    def save(self, window: QWidget, name: str, theme: str) -> None:
        window.adjustSize()
        if isinstance(window, SettingsDialog):
            window.resize(WIDTH, window.sizeHint().height())
        self.app.processEvents()
        path = self.out_dir / f"{name}-{theme}.png"
        window.grab().save(str(path))
        self.written.append(path)
        if isinstance(window, SettingsDialog):
            window.wait_for_background(int(WAIT_S * 1000))
        window.close()
        window.deleteLater()
        self.app.processEvents()

    def test_sign_in(self, dialog: SettingsDialog, password: str) -> None:
        _type(dialog.password_edit, password)
        results: list[object] = []
        dialog.test_finished.connect(results.append)
        dialog.test_button.click()
        _wait(self.app, lambda: bool(results))

    def shoot(self, theme: str) -> None:
        account = one_person_settings(region="us", username=USER)
        self.save(self.dialog(Settings()), "settings-account-empty", theme)

        for minutes, mgdl in ((7, 138), (2, 142)):
            reading = Reading(NOW - timedelta(minutes=minutes), mgdl, Trend.FORTY_FIVE_UP)
            self.fake.publish(Region.US, USER, reading)
        ok = self.dialog(account, PASSWORD)
        self.test_sign_in(ok, PASSWORD)
        self.save(ok, "settings-account-ok", theme)

        rejected = self.dialog(account, PASSWORD)
        self.test_sign_in(rejected, "not-the-password")
        self.save(rejected, "settings-account-rejected", theme)

        self.fake.add_account(Region.US, "quiet@example.com", PASSWORD)
        quiet = self.dialog(one_person_settings(region="us", username="quiet@example.com"))
        self.test_sign_in(quiet, PASSWORD)
        self.save(quiet, "settings-account-no-readings", theme)

        # Share on, nobody follows: the follower list is empty, so reads are too.
        self.fake.add_account(Region.US, "unfollowed@example.com", PASSWORD)
        self.fake.remove_followers(Region.US, "unfollowed@example.com")
        unfollowed = self.dialog(
            one_person_settings(region="us", username="unfollowed@example.com")
        )
        self.test_sign_in(unfollowed, PASSWORD)
        self.save(unfollowed, "sign-in-test-no-follower", theme)

        self.fake.add_account(Region.US, "locked@example.com", PASSWORD)
        self.fake.lock_account(Region.US, "locked@example.com")
        locked = self.dialog(one_person_settings(region="us", username="locked@example.com"))
        self.test_sign_in(locked, PASSWORD)
        self.save(locked, "settings-account-locked", theme)

        display = self.dialog(account, PASSWORD)
        display.show_page(Page.DISPLAY)
        self.save(display, "settings-display", theme)

        general = self.dialog(replace(account, start_at_login=True), PASSWORD)
        general.show_page(Page.GENERAL)
        self.save(general, "settings-general", theme)

        mmol = self.dialog(
            one_person_settings(region="us", username=USER, unit=Unit.MMOL), PASSWORD
        )
        mmol.show_page(Page.ALERTS)
        self.save(mmol, "settings-alerts-mmol", theme)

        # Urgent high on, so a low above high is refused whichever alerts are off.
        urgent_high = replace(AlertSettings()[AlertKind.URGENT_HIGH], enabled=True)
        alerts = AlertSettings().with_kind(AlertKind.URGENT_HIGH, urgent_high)
        invalid = self.dialog(
            one_person_settings(region="us", username=USER, unit=Unit.MMOL, alerts=alerts), PASSWORD
        )
        invalid.show_page(Page.ALERTS)
        low = invalid.kind_rows[AlertKind.LOW].threshold
        assert low is not None
        _type(low, "14,5")
        self.save(invalid, "settings-alerts-invalid", theme)

        family = self.dialog(family_settings(), PASSWORD)
        family.show_page(Page.PEOPLE)
        family.people_page.select(family.people_page.settings.people[1].id)
        self.save(family, "settings-people", theme)

        # Adding a fourth person: the Add window after its own test sign-in.
        self.fake.add_account(Region.OUS, "noah@example.de", PASSWORD)
        reading = Reading(NOW - timedelta(minutes=3), 96, Trend.FLAT)
        self.fake.publish(Region.OUS, "noah@example.de", reading)
        adding = self.dialog(family_settings(), PASSWORD)
        adding.show_add_person()
        add = adding.people_page.add_dialog
        assert add is not None
        _type(add.name_edit, "Noah")
        add.region_combo.setCurrentIndex(add.region_combo.findData(Region.OUS.value))
        _type(add.username_edit, "noah@example.de")
        _type(add.password_edit, PASSWORD)
        tested: list[object] = []
        add.test_finished.connect(tested.append)
        add.test_button.click()
        _wait(self.app, lambda: bool(tested))
        self.save(add, "settings-people-add", theme)
        adding.wait_for_background(int(WAIT_S * 1000))
        adding.close()
        adding.deleteLater()
        self.app.processEvents()

        welcome = WelcomeWindow()
        welcome.show()
        self.save(welcome, "settings-welcome", theme)

        choice = PasswordChoice()
        choice.show()
        self.save(choice, "password-choice", theme)


def family_settings() -> Settings:
    """Three people in two regions, as a family that follows them would set them up."""
    settings = one_person_settings(region="us", username=USER, name="Erin")
    for name, region, username in (
        ("Mia", "us", "mia.rivera"),
        ("Alex", "ous", "alex@example.de"),
    ):
        source = ShareSource(region=region, username=username)
        settings = people.add_person(
            settings, people.new_person(settings.people, source, name=name)
        )
    return settings


@contextmanager
def fake_share() -> Iterator[FakeShare]:
    with FakeShare(ManualClock(NOW)) as fake:
        fake.add_account(Region.US, USER, PASSWORD)
        yield fake


def render(out_dir: Path) -> list[Path]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    light: QPalette = app.style().standardPalette()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for theme, palette in (("light", light), ("dark", dark_palette())):
        app.setPalette(palette)
        with tempfile.TemporaryDirectory() as work, fake_share() as fake:
            shooter = Shooter(app, out_dir, Path(work), fake)
            shooter.shoot(theme)
            written += shooter.written
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/screenshots"))
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    for path in render(args.out):
        print(path)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
