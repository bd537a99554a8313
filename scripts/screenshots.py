"""Screenshots of the real app in a real XEmbed tray (Xvfb + trayer), light and dark.

Writes docs/screenshots/tray-icon.png, tray-icon-dark.png, tray-menu-light.png and
tray-menu-dark.png. The app runs as a person runs it (a saved account, no --demo) against a fake
Share service in this process that holds a calm, in-range morning, so every run shows the same
reading. Dark and light come from the desktop's colour-scheme setting (a freedesktop portal on
the private bus), which Qt's xdgdesktopportal theme follows: the app needs no option for it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import ENDPOINT_READ, Region
from cgmtray.ui.icon import RANGE_COLOURS

if TYPE_CHECKING:  # mypy names the helpers by their path; at run time bench/ is put on sys.path
    from bench.appproc import AppProcess, poll_until, prepare_account, running_app
    from bench.xsession import Desktop, Look, Rect, RgbImage, find_colour, hex_rgb
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from appproc import AppProcess, poll_until, prepare_account, running_app
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for look in ("light", "dark"):
        for path in shoot(look, args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
