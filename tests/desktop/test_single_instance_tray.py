"""A second start on a real X server with an XEmbed tray: it exits 0 and the running app's menu
pops up at its tray icon."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.support.processes import Process, spawn
from tests.support.xdesktop import ScreenRect, TrayDesktop, tray_icon

from cgmtray.fakeshare.demo import DEMO_FAMILY

pytestmark = pytest.mark.desktop

#: Real seconds, generous for a busy machine: the demo's first reading; a second start's life.
APP_TIMEOUT_S = 40.0
#: A window of the app taller than this that was not there before is the popped-up menu.
MENU_MIN_HEIGHT = 60


def _start(name: str, basedir: Path, desktop: TrayDesktop) -> Process:
    argv = [sys.executable, "-m", "cgmtray", "--demo", "--basedir", str(basedir), "--log-json"]
    return spawn(name, argv, desktop.env(QT_QPA_PLATFORM="xcb"))


def test_a_second_start_pops_up_the_first_ones_menu_at_itstray_icon(
    tray_desktop: TrayDesktop, tmp_path: Path
) -> None:
    basedir = tmp_path / "base"
    first = _start("first", basedir, tray_desktop)
    second: Process | None = None
    try:
        first.stderr.wait_event("app.started", timeout=APP_TIMEOUT_S)
        icon = tray_icon(tray_desktop)
        before = set(tray_desktop.visible("--class", "^CGM Tray$"))
        mark = len(first.stderr.events)

        second = _start("second", basedir, tray_desktop)
        assert second.popen.wait(timeout=APP_TIMEOUT_S) == 0, second.everything_printed
        _, presented = first.stderr.wait_event("app.presented", start=mark, timeout=APP_TIMEOUT_S)
        assert presented["shown"] == "menu"

        menus: list[ScreenRect] = []

        def menu_shown() -> bool:
            shown = tray_desktop.visible("--class", "^CGM Tray$")
            menus[:] = [
                rect
                for window, rect in shown.items()
                if window not in before and rect.height > MENU_MIN_HEIGHT
            ]
            return bool(menus)

        tray_desktop.wait_until(menu_shown, "the tray menu on screen after the second start")
        menu = menus[0]
        # At the icon: the menu starts within an icon's width of it, just under the top panel.
        assert (
            abs(menu.x - icon.x) <= max(icon.width, 32) or menu.x <= icon.x <= menu.x + menu.width
        )
        assert menu.y >= icon.y
        assert menu.y <= icon.y + icon.height + 32
        # Only one app runs: the demo family's icons (one per person), none added.
        assert len(_icons_in_panel(tray_desktop)) == len(DEMO_FAMILY)
    finally:
        if second is not None:
            second.cleanup()
        first.cleanup()


def _icons_in_panel(desktop: TrayDesktop) -> list[ScreenRect]:
    panel = desktop.panel()
    return [
        rect
        for rect in desktop.visible("--class", "^CGM Tray$").values()
        if panel is not None and panel.contains(rect)
    ]
