"""Screenshots of the real app in a real XEmbed tray (Xvfb + trayer), light and dark.

Writes docs/screenshots/tray-icon.png, tray-icon-dark.png, tray-menu-light.png and
tray-menu-dark.png. The app runs as a person runs it (a saved account, no --demo) against a fake
Share service in this process that holds a calm, in-range morning, so every run shows the same
reading. Dark and light come from the desktop's colour-scheme setting (a freedesktop portal on
the private bus), which Qt's xdgdesktopportal theme follows: the app needs no option for it.

Then scenes that need a state a calm morning does not reach (a snooze in force, an urgent low in
the status window, a lock, a long error, the demo), each in a child process (`--scene NAME`) that
shows the real TrayPresenter on the same desktop, fed a fixed model, menu state and clock (20:52 in
Berlin): tray-menu-snooze-*.png (the Snooze alerts submenu while Low is snoozed),
status-window-alert-*.png (the status window with an urgent low and its Snooze 30 min /
Acknowledge buttons), tray-menu-locked-*.png (the menu's status lines while Dexcom's lock runs),
tray-menu-error-*.png (a long connection error wrapped into several lines), tray-menu-demo-*.png
and tray-tooltip-demo-*.png (the demo's labels and its "Sign in with your own account…").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain import display
from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.display import DisplayModel
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.errors import AccountLocked, NetworkError
from cgmtray.share.regions import ENDPOINT_READ, Region
from cgmtray.ui.icon import RANGE_COLOURS

if TYPE_CHECKING:  # mypy names the helpers by their path; at run time bench/ is put on sys.path
    from bench.appproc import (
        AppProcess,
        poll_until,
        prepare_account,
        running_app,
        stop_process,
    )
    from bench.xsession import Desktop, Look, Rect, RgbImage, find_colour, hex_rgb
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from appproc import AppProcess, poll_until, prepare_account, running_app, stop_process
    from xsession import Desktop, Look, Rect, RgbImage, find_colour, hex_rgb

USERNAME = "screenshots"
PASSWORD = "not-a-real-password"  # noqa: S105 - the fake service's account
#: The last three hours, every 5 minutes, oldest first: a gentle fall that has levelled off.
VALUES = (
    *(168, 171, 173, 172, 169, 165, 160, 156, 151, 147, 144, 141),
    *(139, 137, 136, 135, 134, 133, 132, 131, 130, 130, 129, 128),
    *(128, 127, 128, 127, 128, 128, 127, 128, 127, 126, 127, 128),
)
#: The newest reading is this old when the app starts.
NEWEST_AGE = timedelta(seconds=100)
SCREEN = (640, 300)
#: Margin around the menu in the menu screenshots, in pixels.
MARGIN = 10


def readings(now: datetime) -> list[Reading]:
    newest = now - NEWEST_AGE
    count = len(VALUES)
    result = []
    for index, value in enumerate(VALUES):
        time_ = newest - timedelta(minutes=5 * (count - 1 - index))
        trend = Trend.FLAT if index > 12 else Trend.FORTY_FIVE_DOWN
        result.append(Reading(time_.replace(microsecond=0), value, trend))
    return result


@contextmanager
def fake_share() -> Iterator[FakeShare]:
    with FakeShare(regions=(Region.US,)) as fake:
        fake.add_account(Region.US, USERNAME, PASSWORD)
        for reading in readings(datetime.now(UTC)):
            fake.publish(Region.US, USERNAME, reading)
        yield fake


def wait_for_badge(desktop: Desktop, colour: str) -> Rect:
    """Waits until the badge (its colour, badge-sized) is in the panel; returns its box."""
    panel = desktop.panel()
    assert panel is not None
    found: list[Rect] = []

    def shown() -> bool:
        cluster = find_colour(desktop.grab(panel), hex_rgb(colour))
        if cluster.box is not None and cluster.is_badge():
            found[:] = [cluster.box]
            return True
        return False

    poll_until(shown, 20, interval=0.05, what="the badge in the tray")
    return found[0]


def settled_grab(desktop: Desktop, rect: Rect) -> RgbImage:
    """A grab once two in a row 100 ms apart are the same (nothing left to paint)."""
    previous = desktop.grab(rect)
    for _ in range(50):
        time.sleep(0.1)
        current = desktop.grab(rect)
        if current.rgb == previous.rgb:
            return current
        previous = current
    return previous


def open_menu(desktop: Desktop, badge: Rect) -> Rect:
    """Right-clicks the icon near its bottom edge (so the menu opens where the panel ends), moves
    the pointer off the menu, returns the menu's place."""
    before = desktop.app_windows()
    menus: list[Rect] = []

    def opened() -> bool:
        menus[:] = [r for r in desktop.app_windows() if r not in before]
        return bool(menus)

    x, y = badge.x + badge.width // 2, badge.bottom + 1
    for _ in range(5):
        desktop.xdotool("mousemove", str(x), str(y), "click", "3")
        try:
            poll_until(opened, 2, interval=0.05, what="the tray menu")
            break
        except TimeoutError:
            continue
    else:
        raise TimeoutError("the tray menu did not open")
    desktop.xdotool("mousemove", "0", str(desktop.size.height - 1))
    return menus[0]


def shoot(look: Look, out_dir: Path) -> list[Path]:
    """Both screenshots of one look; returns the files written."""
    written = []
    with Desktop(*SCREEN, look=look, portal=True) as desktop, fake_share() as fake:
        basedir = desktop.home / "base"
        prepare_account(basedir, username=USERNAME, share_url=fake.base_url(Region.US))
        env = desktop.env(QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORMTHEME="xdgdesktopportal")
        args = ["--basedir", str(basedir), "--password-stdin"]
        with running_app(args, env, stdin_text=PASSWORD + "\n") as app:
            wait_for_live_reading(app)
            badge = wait_for_badge(desktop, RANGE_COLOURS[GlucoseRange.IN_RANGE].background)
            panel = desktop.panel()
            assert panel is not None
            strip = Rect(panel.right - 200, panel.y, 200, panel.height)
            icon_file = out_dir / ("tray-icon.png" if look == "light" else "tray-icon-dark.png")
            icon_file.write_bytes(settled_grab(desktop, strip).scaled(2).png())
            written.append(icon_file)

            menu = open_menu(desktop, badge)
            area = menu.united(strip).adjusted(MARGIN, desktop.size)
            area = Rect(area.x, 0, desktop.size.right - area.x, area.bottom)
            menu_file = out_dir / f"tray-menu-{look}.png"
            menu_file.write_bytes(settled_grab(desktop, area).png())
            written.append(menu_file)
    return written


def wait_for_live_reading(app: AppProcess) -> None:
    """The tray shows what the app fetched (not only what it had stored)."""
    index, _ = app.wait_for(
        lambda e: e.name == "share.request" and e.fields.get("endpoint") == ENDPOINT_READ, 30
    )
    app.wait_for(
        lambda e: e.name == "tray.updated" and e.fields.get("severity") == "in_range",
        30,
        after=index,
    )


# --- scenes: the real presenter fed a fixed state ------------------------------------------------

#: The scenes' clock: 20:52:10 in Berlin (the child runs with TZ=SCENE_TZ), so times read alike.
SCENE_TZ = "Europe/Berlin"
SCENE_NOW = datetime(2026, 12, 3, 19, 52, 10, tzinfo=UTC)
SCENE_SCREEN = (800, 420)


@dataclass(frozen=True)
class Scene:
    """What one scene shows: the readings (newest last, ending `age` before SCENE_NOW), the
    link's status, the snoozes in force, and an alert for the status window (None: a tray)."""

    values: tuple[int, ...]
    trend: Trend
    age: timedelta
    connection: ConnectionStatus
    snoozed: tuple[tuple[AlertKind, datetime], ...] = ()
    alert: AlertKind | None = None
    demo: bool = False

    def readings(self) -> list[Reading]:
        newest = SCENE_NOW - self.age
        count = len(self.values)
        return [
            Reading(newest - timedelta(minutes=5 * (count - 1 - i)), value, self.trend)
            for i, value in enumerate(self.values)
        ]

    def model(self) -> DisplayModel:
        return display.model(
            self.readings(),
            SCENE_NOW,
            unit=Unit.MGDL,
            thresholds=AlertSettings().thresholds(),
            connection=self.connection.problem,
            failure=self.connection.failure,
        )


_OK_NEXT = ConnectionStatus(LinkState.OK, next_poll=SCENE_NOW + timedelta(minutes=3, seconds=20))
SCENES = {
    # Low since 20:40, snoozed for an hour from the menu then.
    "snooze": Scene(
        (92, 86, 80, 75, 71, 68, 66),
        Trend.FORTY_FIVE_DOWN,
        timedelta(seconds=70),
        _OK_NEXT,
        snoozed=((AlertKind.LOW, datetime(2026, 12, 3, 20, 40, tzinfo=UTC)),),
    ),
    # No tray: the status window holds the urgent low just raised.
    "alert": Scene(
        (88, 80, 72, 65, 59, 54),
        Trend.SINGLE_DOWN,
        timedelta(seconds=40),
        _OK_NEXT,
        alert=AlertKind.URGENT_LOW,
    ),
    # Too many sign-ins: Dexcom's lock runs until 21:40; the last reading came before it.
    "locked": Scene(
        VALUES[-6:],
        Trend.FLAT,
        timedelta(minutes=4, seconds=30),
        ConnectionStatus(
            LinkState.LOCKED,
            message=AccountLocked.user_message,
            failure=FailureClass.LOCKED,
            sign_in_after=datetime(2026, 12, 3, 20, 40, tzinfo=UTC),
        ),
    ),
    # Share cannot be reached: the whole message shows, wrapped, and the menu stays narrow.
    "error": Scene(
        VALUES[-6:],
        Trend.FLAT,
        timedelta(minutes=3, seconds=10),
        ConnectionStatus(
            LinkState.UNREACHABLE,
            message=NetworkError.user_message,
            failure=FailureClass.TRANSIENT,
            next_poll=SCENE_NOW + timedelta(seconds=40),
        ),
    ),
    # The demo: says it is one, and offers the way to the person's own account.
    "demo": Scene(
        (150, 158, 166, 175, 184, 193, 201),
        Trend.FORTY_FIVE_UP,
        timedelta(seconds=50),
        _OK_NEXT,
        demo=True,
    ),
}


def run_scene(name: str) -> int:
    """The child: the real TrayPresenter showing `name`; prints "ready" once shown."""
    from PySide6.QtWidgets import QApplication

    from cgmtray.domain import alerts
    from cgmtray.ui.app import set_identity
    from cgmtray.ui.tray import MenuState, TrayPresenter

    scene = SCENES[name]
    app = QApplication(sys.argv[:1])
    set_identity(app)
    app.setQuitOnLastWindowClosed(False)
    settings = AlertSettings()
    presenter = TrayPresenter(
        force_status_window=scene.alert is not None,
        clock=ManualClock(SCENE_NOW),
        demo=scene.demo,
    )
    presenter.show_model(scene.model())
    presenter.set_menu_state(
        MenuState(
            history_available=True,
            settings_available=not scene.demo,  # the demo's settings are not the person's
            snoozed_until=dict(scene.snoozed),
            alerts=settings,
            connection=scene.connection,
        )
    )
    if scene.alert is not None:
        _, decisions = alerts.evaluate(
            alerts.initial_state(), scene.readings(), SCENE_NOW, settings
        )
        raised = next(d for d in decisions if d.kind is scene.alert)
        presenter.show_status_alert(
            raised.kind, raised.title, raised.message, settings[raised.kind].snooze_cap
        )
        window = presenter.status_window
        assert window is not None
        window.move(MARGIN * 4, PANEL_TOP_GAP)
    print("ready", flush=True)
    return app.exec()


#: Where the status window is put (no window manager places it): below trayer's panel.
PANEL_TOP_GAP = 60


@contextmanager
def scene_app(desktop: Desktop, name: str) -> Iterator[None]:
    """The scene's child on `desktop`, stopped however the block ends."""
    env = desktop.env(QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORMTHEME="xdgdesktopportal", TZ=SCENE_TZ)
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--scene", name],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"scene {name} did not start")
        yield
    finally:
        stop_process(child)


def shoot_scenes(look: Look, out_dir: Path) -> list[Path]:
    """The scene screenshots of one look; returns the files written."""
    written = []
    for name in ("snooze", "locked", "error", "demo"):
        with Desktop(*SCENE_SCREEN, look=look, portal=True) as desktop, scene_app(desktop, name):
            shown_range = SCENES[name].model().range
            assert shown_range is not None  # every menu scene shows a value
            badge = wait_for_badge(desktop, RANGE_COLOURS[shown_range].background)
            panel = desktop.panel()
            assert panel is not None
            strip = Rect(panel.right - 200, panel.y, 200, panel.height)
            menu = open_menu(desktop, badge)
            shown = [menu]
            if name == "snooze":
                shown.append(open_submenu(desktop, "s"))
            area = strip
            for rect in shown:
                area = area.united(rect)
            area = area.adjusted(MARGIN, desktop.size)
            area = Rect(area.x, 0, desktop.size.right - area.x, area.bottom)
            path = out_dir / f"tray-menu-{name}-{look}.png"
            path.write_bytes(settled_grab(desktop, area).png())
            written.append(path)
            if name == "demo":
                desktop.xdotool("key", "Escape")
                written.append(
                    shoot_tooltip(desktop, badge, strip, out_dir / f"tray-tooltip-demo-{look}.png")
                )
    with Desktop(*SCENE_SCREEN, look=look, portal=True) as desktop, scene_app(desktop, "alert"):
        windows: list[Rect] = []

        def mapped() -> bool:
            windows[:] = desktop.app_windows()
            return bool(windows)

        poll_until(mapped, 20, interval=0.05, what="the status window")
        path = out_dir / f"status-window-alert-{look}.png"
        path.write_bytes(settled_grab(desktop, windows[0].adjusted(MARGIN, desktop.size)).png())
        written.append(path)
    return written


def shoot_tooltip(desktop: Desktop, badge: Rect, strip: Rect, path: Path) -> Path:
    """Rests the pointer on the icon until its tooltip shows; writes the tooltip and the panel."""
    before = desktop.app_windows()
    found: list[Rect] = []

    def shown() -> bool:
        found[:] = [r for r in desktop.app_windows() if r not in before]
        return bool(found)

    for _ in range(5):
        desktop.xdotool("mousemove", str(badge.x + 2), str(badge.y + 2))
        desktop.xdotool(
            "mousemove", str(badge.x + badge.width // 2), str(badge.y + badge.height // 2)
        )
        try:
            poll_until(shown, 4, interval=0.05, what="the tooltip")
            break
        except TimeoutError:
            continue
    else:
        raise TimeoutError("the icon's tooltip did not show")
    area = strip
    for rect in found:
        area = area.united(rect)
    area = area.adjusted(MARGIN, desktop.size)
    area = Rect(area.x, 0, desktop.size.right - area.x, area.bottom)
    path.write_bytes(settled_grab(desktop, area).png())
    return path


def open_submenu(desktop: Desktop, key: str) -> Rect:
    """Presses the mnemonic `key` in the open menu; returns the submenu's place."""
    before = desktop.app_windows()
    found: list[Rect] = []

    def opened() -> bool:
        found[:] = [r for r in desktop.app_windows() if r not in before]
        return bool(found)

    desktop.xdotool("key", key)
    poll_until(opened, 5, interval=0.05, what="the submenu")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--only-scenes", action="store_true", help="skip the calm-morning shots")
    parser.add_argument("--scene", choices=sorted(SCENES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scene is not None:
        return run_scene(args.scene)
    args.out.mkdir(parents=True, exist_ok=True)
    for look in ("light", "dark"):
        paths = [] if args.only_scenes else shoot(look, args.out)
        for path in [*paths, *shoot_scenes(look, args.out)]:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
