"""The real app's tray icon driven the way a StatusNotifierItem panel drives it (KDE, GNOME's
AppIndicator, waybar): one item registers, its dbusmenu reads and clicks like the Qt menu, a snooze
from it silences an urgent alarm, Quit closes what the app opened, a second start adds no icon."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from tests.support.processes import CGM_TRAY, FakeShareProcess, Process, Rig, VirtualClock, spawn
from tests.support.sni_host import SniItem
from tests.support.xdesktop import SniDesktop

from cgmtray.fakeshare.demo import DEMO_FAMILY

pytestmark = pytest.mark.desktop

#: Real seconds from start to the icon, the first reading, an alert: generous for a busy CI.
APP_TIMEOUT_S: Final = 30.0
#: Real seconds a click on Quit may take to end the process.
QUIT_TIMEOUT_S: Final = 20.0
#: The menu a panel shows, in order, below the status lines (which change with the reading).
MENU_ENTRIES: Final = [
    "Open history…",
    "Refresh now",
    "Snooze alerts",
    "Settings…",
    "About",
    "Quit",
]
#: The demo's first menu line (ui/tray.py DEMO_LINE, as a panel shows it).
DEMO_LINE: Final = "Demo — simulated readings"
#: A status line wraps into items no wider than about this many characters (ui/tray.py).
WRAPPED_LINE_MAX_CHARS: Final = 60
SNOOZE_URGENT_LOW_30: Final = ("Snooze alerts", "Urgent low", "30 min")
IN_RANGE_MGDL: Final = 110
URGENT_LOW_MGDL: Final = 50
#: The alarm loops: the stand-in player ends at once, so the app starts it again about every
#: second (the alarm's length). After a snooze, no start may come later than this after it.
SILENCE_WITHIN_S: Final = 1.0
#: How long after that we keep listening for a start that should not come (several loops).
LISTEN_S: Final = 3.0
#: freedesktop urgency "critical": how the urgent alert's notification is sent.
CRITICAL: Final = ("y", 2)

#: A silent pw-play stand-in: writes the time of each start (seconds since the epoch) to $PLAYED.
STAND_IN_PLAYER: Final = '#!/bin/sh\ndate +%s.%N >>"$PLAYED"\n'


def start_demo(desktop: SniDesktop, basedir: Path, name: str = "cgm-tray") -> Process:
    """`cgm-tray --demo --basedir <basedir> --log-json` on the test's display and bus."""
    argv = [*CGM_TRAY, "--demo", "--basedir", str(basedir), "--log-json"]
    return spawn(name, argv, desktop.env())


@pytest.fixture
def processes(sni_desktop: SniDesktop) -> Iterator[list[Process]]:
    """Processes a test starts on the desktop; each is ended and reaped before the desktop goes."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.cleanup()


def registered_item(desktop: SniDesktop, app: Process) -> SniItem:
    """The one item the app registers (fails with the app's last lines if none comes)."""
    try:
        return desktop.watcher.wait_for_item(APP_TIMEOUT_S)
    except TimeoutError:
        pytest.fail(f"no StatusNotifierItem; exit {app.exited()}; {app.stderr.lines[-8:]}")


# --- a: the menu as a panel sees it, Refresh now, Quit ------------------------------------------


def test_the_app_registers_one_item_with_its_badge_tooltip_and_the_full_menu(
    sni_desktop: SniDesktop, processes: list[Process], tmp_path: Path
) -> None:
    app = start_demo(sni_desktop, tmp_path / "base")
    processes.append(app)
    item = registered_item(sni_desktop, app)
    app.stderr.wait_event("tray.updated", severity="in_range", timeout=APP_TIMEOUT_S)

    with sni_desktop.menu(item) as menu:
        assert menu.owner_pid() == app.popen.pid
        shown = menu.properties()
        assert shown.status == "Active"
        assert shown.title == "CGM Tray"  # panels list the item by its Title, not "cgm-tray"
        assert shown.pixmaps, "the item has no icon pixels"
        assert all(p.well_formed for p in shown.pixmaps)
        assert all(p.opaque_pixels > 0 for p in shown.pixmaps), "an icon size is blank"

        def shows_the_reading() -> bool:
            return "mg/dL" in menu.properties().tooltip_title

        sni_desktop.wait_until(shows_the_reading, "the tooltip shows the reading", APP_TIMEOUT_S)
        assert shows_the_reading()
        assert menu.properties().tooltip_title.startswith(DEMO_LINE)
        root = menu.open()
        labels = root.labels()
        assert labels[0] == DEMO_LINE, f"the demo does not say it is one: {labels}"
        assert not root.child(DEMO_LINE).enabled
        assert "mg/dL" in labels[1], f"the status line shows no reading: {labels}"
        assert root.child("Sign in with your own account…").enabled
        assert [label for label in labels if label in MENU_ENTRIES] == MENU_ENTRIES
        for label in ("Refresh now", "Snooze alerts", "About", "Quit"):
            assert root.child(label).enabled, f"{label} is disabled"
        snooze = menu.open_submenu(root.child("Snooze alerts"))
        assert "Urgent low" in snooze.labels()
        assert menu.find(*SNOOZE_URGENT_LOW_30).enabled

    # One item per person of the demo family, each registered once (and never again).
    family = len(DEMO_FAMILY)
    assert sni_desktop.watcher.wait_until(lambda items: len(items) == family, APP_TIMEOUT_S)
    senders = [i.sender for i in sni_desktop.watcher.registrations]
    assert len(senders) == family
    assert len(set(senders)) == family
    assert item.sender in senders
    assert app.exited() is None


def test_refresh_now_from_the_panel_menu_makes_the_app_poll(
    sni_desktop: SniDesktop, processes: list[Process], tmp_path: Path
) -> None:
    app = start_demo(sni_desktop, tmp_path / "base")
    processes.append(app)
    item = registered_item(sni_desktop, app)
    app.stderr.wait_event("tray.updated", severity="in_range", timeout=APP_TIMEOUT_S)
    before = len(app.stderr.events)

    with sni_desktop.menu(item) as menu:
        menu.click("Refresh now")

    app.stderr.wait_event("poll.scheduled", reason="user", start=before, timeout=APP_TIMEOUT_S)
    assert app.exited() is None


def test_a_snooze_chosen_in_the_panel_menu_shows_in_the_menu_when_it_opens_again(
    sni_desktop: SniDesktop, processes: list[Process], tmp_path: Path
) -> None:
    app = start_demo(sni_desktop, tmp_path / "base")
    processes.append(app)
    item = registered_item(sni_desktop, app)
    app.stderr.wait_event("tray.updated", severity="in_range", timeout=APP_TIMEOUT_S)

    with sni_desktop.menu(item) as menu:
        menu.click(*SNOOZE_URGENT_LOW_30)
        app.stderr.wait_event("alert.snoozed", kind="urgent_low", timeout=APP_TIMEOUT_S)
        snooze = menu.open_submenu(menu.open().child("Snooze alerts"))

    labels = snooze.labels()
    snoozed = [label for label in labels if "snoozed" in label]
    assert len(snoozed) == 1, labels
    assert snoozed[0].startswith("Urgent low"), labels
    assert "Urgent low soon" in labels, "only the kind chosen is snoozed"


def test_quit_from_the_panel_menu_exits_with_status_0_and_the_item_leaves(
    sni_desktop: SniDesktop, processes: list[Process], tmp_path: Path
) -> None:
    app = start_demo(sni_desktop, tmp_path / "base")
    processes.append(app)
    item = registered_item(sni_desktop, app)
    app.stderr.wait_event("tray.updated", severity="in_range", timeout=APP_TIMEOUT_S)

    with sni_desktop.menu(item) as menu:
        menu.click("Quit")

    assert app.popen.wait(timeout=QUIT_TIMEOUT_S) == 0, app.stderr.lines[-5:]
    app.stderr.wait_event("app.stopping", timeout=30)
    assert sni_desktop.watcher.wait_until(lambda items: not items, QUIT_TIMEOUT_S), "icon stayed"


def test_a_long_error_reaches_the_panel_as_several_short_status_items(
    sni_desktop: SniDesktop, tmp_path: Path
) -> None:
    """The status line with Share's long "not available" message wraps into several items over
    dbusmenu too (a QWidgetAction would not be exported at all): every word, none a screen wide."""
    rig = Rig(tmp_path, VirtualClock(1.0, datetime.now(UTC)))
    rig.env = sni_desktop.env()
    try:
        fake = rig.start_fake()
        fake.post("fault", {"fault": "unavailable"})  # every answer a 503 from now on
        app = rig.start_tray(fake).process
        item = registered_item(sni_desktop, app)
        with sni_desktop.menu(item) as menu:

            def status_items() -> list[str]:
                labels = menu.open().labels()
                return labels[: labels.index("Open history…")]

            sni_desktop.wait_until(
                lambda: "not available" in " ".join(status_items()),
                "the menu shows Share's error",
                APP_TIMEOUT_S,
            )
            lines = status_items()
        text = " ".join(lines)
        assert "Dexcom Share is not available right now." in text, lines
        assert len(lines) >= 2, lines
        assert all(len(line) <= WRAPPED_LINE_MAX_CHARS for line in lines), lines
    finally:
        rig.close()


# --- b, c: an urgent low on the fake service, a stand-in alarm player ---------------------------


@dataclass
class UrgentLow:
    """The app showing an urgent low: its item, its critical notification, the player's starts."""

    rig: Rig
    fake: FakeShareProcess
    app: Process
    item: SniItem
    notification_id: int
    played: Path

    def player_starts(self) -> list[float]:
        """When the stand-in player was started (seconds since the epoch), in order."""
        if not self.played.exists():
            return []
        return [float(line) for line in self.played.read_text(encoding="utf-8").split()]


def publish_recent(fake: FakeShareProcess, values: list[int]) -> None:
    """Readings 5 minutes apart ending just now (by the fake's clock), visible at once."""
    now = fake.now()
    times = [now - (len(values) - k) * timedelta(minutes=5) for k in range(len(values))]
    fake.publish([(when, mgdl, when) for when, mgdl in zip(times, values, strict=True)])


@pytest.fixture
def urgent_low(sni_desktop: SniDesktop, tmp_path: Path) -> Iterator[UrgentLow]:
    """The real app signed in to `cgm-tray fake-share` (real time), whose latest reading is an
    urgent low: the critical notification is up and the alarm loops through a stand-in player."""
    players = tmp_path / "bin"
    players.mkdir()
    player = players / "pw-play"
    player.write_text(STAND_IN_PLAYER, encoding="utf-8")
    player.chmod(0o755)
    played = tmp_path / "played.txt"
    rig = Rig(tmp_path, VirtualClock(1.0, datetime.now(UTC)))
    env = sni_desktop.env(PLAYED=str(played))
    env["PATH"] = f"{players}{os.pathsep}{env.get('PATH', '')}"
    rig.env = env
    try:
        fake = rig.start_fake()
        publish_recent(fake, [IN_RANGE_MGDL] * 12 + [60, URGENT_LOW_MGDL])
        tray = rig.start_tray(fake)
        app = tray.process
        item = registered_item(sni_desktop, app)
        app.stderr.wait_event("alert.raised", kind="urgent_low", timeout=APP_TIMEOUT_S)
        app.stderr.wait_event("sound.started", sound="alarm", timeout=APP_TIMEOUT_S)
        server = sni_desktop.notifications

        def critical_ids() -> list[int]:
            return [i for i, call in server.shown() if call.hints.get("urgency") == CRITICAL]

        sni_desktop.wait_until(
            lambda: bool(critical_ids()), "a critical notification", APP_TIMEOUT_S
        )
        urgent = UrgentLow(rig, fake, app, item, critical_ids()[0], played)
        # The alarm loops: the player has been started again at least once.
        sni_desktop.wait_until(
            lambda: len(urgent.player_starts()) >= 2,
            "the alarm player started again",
            APP_TIMEOUT_S,
        )
        yield urgent
    finally:
        rig.close()


def test_snoozing_the_urgent_low_from_the_panel_menu_silences_the_alarm_and_closes_it(
    sni_desktop: SniDesktop, urgent_low: UrgentLow
) -> None:
    app = urgent_low.app
    before = len(app.stderr.events)

    with sni_desktop.menu(urgent_low.item) as menu:
        menu.click(*SNOOZE_URGENT_LOW_30)

    _, snoozed = app.stderr.wait_event(
        "alert.snoozed", kind="urgent_low", start=before, timeout=APP_TIMEOUT_S
    )
    snoozed_at = datetime.fromisoformat(str(snoozed["ts"])).timestamp()
    app.stderr.pass_time(SILENCE_WITHIN_S + LISTEN_S)
    late = [t - snoozed_at for t in urgent_low.player_starts() if t > snoozed_at + SILENCE_WITHIN_S]
    assert late == [], f"the alarm player was started again {late} s after the snooze"
    server = sni_desktop.notifications
    sni_desktop.wait_until(
        lambda: urgent_low.notification_id not in server.open_ids(),
        f"the urgent notification (id {urgent_low.notification_id}) closed",
        APP_TIMEOUT_S,
    )
    assert app.exited() is None


def test_quit_with_the_urgent_notification_on_screen_closes_every_notification_it_opened(
    sni_desktop: SniDesktop, urgent_low: UrgentLow
) -> None:
    app = urgent_low.app
    server = sni_desktop.notifications

    with sni_desktop.menu(urgent_low.item) as menu:
        menu.click("Quit")

    assert app.popen.wait(timeout=QUIT_TIMEOUT_S) == 0, app.stderr.lines[-5:]
    opened = {i for i, _call in server.shown()}
    assert urgent_low.notification_id in opened

    def closed() -> set[int]:
        return {int(call.args[0]) for call in server.calls("CloseNotification")}

    sni_desktop.wait_until(lambda: opened <= closed(), f"every notification of {opened} closed")
    assert server.open_ids() == set()


# --- d: a second start ---------------------------------------------------------------------------


def test_a_second_start_on_the_same_basedir_adds_no_icon_and_exits_with_status_0(
    sni_desktop: SniDesktop, processes: list[Process], tmp_path: Path
) -> None:
    basedir = tmp_path / "base"
    first = start_demo(sni_desktop, basedir)
    processes.append(first)
    item = registered_item(sni_desktop, first)
    first.stderr.wait_event("tray.updated", severity="in_range", timeout=APP_TIMEOUT_S)
    # The demo family's icons, one per person, all the first start's.
    family = len(DEMO_FAMILY)
    assert sni_desktop.watcher.wait_until(lambda items: len(items) == family, APP_TIMEOUT_S)
    items = sni_desktop.watcher.items
    assert item in items
    registered = [i.sender for i in sni_desktop.watcher.registrations]

    second = start_demo(sni_desktop, basedir, name="cgm-tray-2")
    processes.append(second)

    try:
        code = second.popen.wait(timeout=APP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"the second start still runs after {APP_TIMEOUT_S} s: {second.stderr.lines[-5:]}"
        )
    assert code == 0, second.stderr.lines[-5:]
    assert sni_desktop.watcher.items == items
    assert [i.sender for i in sni_desktop.watcher.registrations] == registered, (
        "the second start showed an icon, if only for a moment"
    )
    for shown in items:
        with sni_desktop.menu(shown) as menu:
            assert menu.owner_pid() == first.popen.pid
    assert first.exited() is None
