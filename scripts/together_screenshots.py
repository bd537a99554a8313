"""Screenshots of one icon for everyone in a real XEmbed tray (Xvfb + trayer), light and dark.

Writes docs/screenshots/tray-together-{light,dark}.png (the one icon, showing Mia's urgent low
with her label, and its tooltip with a line per person) and tray-menu-three-people-{light,dark}.png
(the menu: a line per person, Mia's submenu open with her status, Open history, Refresh now and
Snooze alerts, then Settings…, Add a person…, About and Quit). A child process (`--scene`) shows
the real TogetherTray with three ports fed fixed models and menu states, as scripts/screenshots.py
does for one person's scenes (same desktop, clock and time zone).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cgmtray.domain import display
from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.display import DisplayModel
from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.storage.people import Person, colour_for
from cgmtray.ui.icon import RANGE_COLOURS

if TYPE_CHECKING:  # mypy names the helpers by their path; at run time scripts/ is on sys.path
    from bench.appproc import stop_process
    from bench.xsession import Desktop, Look, Rect
    from scripts.screenshots import (
        MARGIN,
        SCENE_NOW,
        SCENE_SCREEN,
        SCENE_TZ,
        open_menu,
        open_submenu,
        settled_grab,
        shoot_tooltip,
        wait_for_badge,
    )
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from appproc import stop_process
    from screenshots import (
        MARGIN,
        SCENE_NOW,
        SCENE_SCREEN,
        SCENE_TZ,
        open_menu,
        open_submenu,
        settled_grab,
        shoot_tooltip,
        wait_for_badge,
    )
    from xsession import Desktop, Look, Rect

#: The demo family, in the people list's order with the palette's colours.
FAMILY = (
    Person(id="a1a1a1a1a1a1", name="Sam", label="S", colour=colour_for(0)),
    Person(id="b2b2b2b2b2b2", name="Mia", label="M", colour=colour_for(1)),
    Person(id="c3c3c3c3c3c3", name="Alex", label="A", colour=colour_for(2)),
)
#: Each person's last readings (oldest first, 5 min apart), trend, the newest one's age, and
#: their open alerts: Sam in range, Mia in an urgent low (the icon shows her), Alex high.
SCENE: dict[str, tuple[tuple[int, ...], Trend, timedelta, tuple[AlertKind, ...]]] = {
    "Sam": ((131, 130, 129, 128), Trend.FLAT, timedelta(seconds=100), ()),
    "Mia": ((78, 69, 61, 54), Trend.SINGLE_DOWN, timedelta(seconds=40), (AlertKind.URGENT_LOW,)),
    "Alex": ((231, 242, 251, 262), Trend.FORTY_FIVE_UP, timedelta(minutes=3), (AlertKind.HIGH,)),
}
#: Mia is second in the list: "2" opens her submenu.
SHOWN_KEY = "2"
SCREEN = (SCENE_SCREEN[0] + 100, SCENE_SCREEN[1] + 40)


def model_of(name: str) -> DisplayModel:
    values, trend, age, _alerts = SCENE[name]
    newest = SCENE_NOW - age
    readings = [
        Reading(newest - timedelta(minutes=5 * (len(values) - 1 - i)), value, trend)
        for i, value in enumerate(values)
    ]
    return display.model(
        readings, SCENE_NOW, unit=Unit.MGDL, thresholds=AlertSettings().thresholds()
    )


def run_scene() -> int:
    """The child: the real TogetherTray showing the family; prints "ready" once shown."""
    from PySide6.QtWidgets import QApplication

    from cgmtray.ui.app import set_identity
    from cgmtray.ui.tray import MenuState
    from cgmtray.ui.tray_together import TogetherTray

    app = QApplication(sys.argv[:1])
    set_identity(app)
    app.setQuitOnLastWindowClosed(False)
    together = TogetherTray(clock=ManualClock(SCENE_NOW))
    next_poll = SCENE_NOW + timedelta(minutes=3, seconds=20)
    for person in FAMILY:
        port = together.port_for(person)
        port.show_model(model_of(person.name))
        port.set_menu_state(
            MenuState(
                history_available=True,
                settings_available=True,
                alerts=AlertSettings(),
                connection=ConnectionStatus(LinkState.OK, next_poll=next_poll),
                open_alerts=SCENE[person.name][3],
            )
        )
    print("ready", flush=True)
    return app.exec()


def shoot(look: Look, out_dir: Path) -> list[Path]:
    """Both screenshots of one look; returns the files written."""
    written = []
    with Desktop(*SCREEN, look=look, portal=True) as desktop:
        env = desktop.env(
            QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORMTHEME="xdgdesktopportal", TZ=SCENE_TZ
        )
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--scene"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("the together scene did not start")
            badge = wait_for_badge(desktop, RANGE_COLOURS[GlucoseRange.URGENT_LOW].background)
            panel = desktop.panel()
            assert panel is not None
            strip = Rect(panel.right - 200, panel.y, 200, panel.height)
            path = out_dir / f"tray-together-{look}.png"
            written.append(shoot_tooltip(desktop, badge, strip, path))
            desktop.xdotool("mousemove", "0", str(desktop.size.height - 1))
            menu = open_menu(desktop, badge)
            sub = open_submenu(desktop, SHOWN_KEY)
            area = strip.united(menu).united(sub).adjusted(MARGIN, desktop.size)
            area = Rect(area.x, 0, desktop.size.right - area.x, area.bottom)
            path = out_dir / f"tray-menu-three-people-{look}.png"
            path.write_bytes(settled_grab(desktop, area).png())
            written.append(path)
        finally:
            stop_process(child)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--scene", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scene:
        return run_scene()
    args.out.mkdir(parents=True, exist_ok=True)
    for look in ("light", "dark"):
        for path in shoot(look, args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
