"""The real app on a real X server with an XEmbed tray: its badge is on screen, in its range's
colour; the tray menu works; closing a window does not quit; SIGTERM and Quit exit with 0."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.processes import CGM_TRAY, Process, is_event, spawn
from tests.support.xdesktop import (
    MIN_BADGE_PIXELS,
    MIN_BADGE_SIDE,
    ScreenRect,
    TrayDesktop,
    badge_background,
    is_range_update,
    open_tray_menu,
    tray_icon,
    tray_icons_box,
)

pytestmark = pytest.mark.desktop

#: The first reading needs a sign-in and a read against the demo service: generous for CI.
APP_TIMEOUT_S = 30.0


@pytest.fixture
def demo_app(tray_desktop: TrayDesktop, tmp_path: Path) -> Iterator[Process]:
    """The real app, --demo, drawing on the test's X display with Qt's xcb platform; its JSON log
    events (stderr) collected as they arrive."""
    argv = [*CGM_TRAY, "--demo", "--basedir", str(tmp_path / "base"), "--log-json"]
    app = spawn("cgm-tray", argv, tray_desktop.env(QT_QPA_PLATFORM="xcb"))
    yield app
    app.cleanup()


def test_the_badge_is_on_screen_in_the_tray_in_the_colour_of_its_range(
    tray_desktop: TrayDesktop, demo_app: Process, tmp_path: Path
) -> None:
    demo_app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S)
    panel = tray_desktop.panel()
    assert panel is not None
    seen: dict[str, object] = {}

    def badge_on_screen() -> bool:
        latest = [e for e in demo_app.stderr.events if is_range_update(e)][-1]
        colour = badge_background(latest)
        count, box = tray_desktop.grab().colour_box(colour, panel)
        seen.update(severity=latest["severity"], colour=colour, pixels=count, box=box)
        return (
            box is not None
            and count >= MIN_BADGE_PIXELS
            and min(box.width, box.height) >= MIN_BADGE_SIDE
        )

    if not tray_desktop.poll(badge_on_screen, tray_desktop.timeout_s):
        shot = tray_desktop.save_screenshot(tmp_path / "screen.png")
        pytest.fail(f"no badge of the expected colour in the tray {panel}: {seen}; see {shot}")

    badge = seen["box"]
    assert isinstance(badge, type(panel))
    # The demo shows its family (an icon per person): the coloured badges are the app's icons.
    assert tray_icons_box(tray_desktop).contains(badge), "the coloured badge is the app's icon"


def test_closing_the_about_window_leaves_the_app_running_and_refreshing(
    tray_desktop: TrayDesktop, demo_app: Process
) -> None:
    demo_app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S)
    open_tray_menu(tray_desktop)
    tray_desktop.xdotool("key", "a")  # "&About"
    about: dict[str, ScreenRect] = {}

    def about_shown() -> bool:
        about.update(tray_desktop.visible("--name", "About"))
        return bool(about)

    tray_desktop.wait_until(about_shown, "the About window", timeout=30)
    for window in about:
        tray_desktop.x.close_window(int(window))
    tray_desktop.wait_until(lambda: not tray_desktop.visible("--name", "About"), "About closed")

    assert demo_app.popen.poll() is None, "closing its last window quit the app"
    before = len(demo_app.stderr.events)
    open_tray_menu(tray_desktop)
    tray_desktop.xdotool("key", "r")  # "&Refresh now": the app answers with a poll it plans
    demo_app.stderr.wait_for(
        lambda e: e.get("event") == "poll.scheduled" and e.get("reason") == "user",
        start=before,
        timeout=APP_TIMEOUT_S,
    )
    assert demo_app.popen.poll() is None


def test_sigterm_quits_cleanly_with_status_0_and_the_icon_leaves_the_tray(
    tray_desktop: TrayDesktop, demo_app: Process
) -> None:
    demo_app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S)
    tray_icon(tray_desktop)

    demo_app.popen.send_signal(signal.SIGTERM)

    assert demo_app.popen.wait(timeout=APP_TIMEOUT_S) == 0
    demo_app.stderr.wait_for(is_event("app.stopping"), timeout=30)
    tray_desktop.wait_until(lambda: not tray_desktop.visible("--class", "^CGM Tray$"), "icon gone")


def test_quit_from_the_tray_menu_exits_with_status_0(
    tray_desktop: TrayDesktop, demo_app: Process
) -> None:
    demo_app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S)
    open_tray_menu(tray_desktop)

    tray_desktop.xdotool("key", "q")  # "&Quit"

    assert demo_app.popen.wait(timeout=APP_TIMEOUT_S) == 0
    demo_app.stderr.wait_for(is_event("app.stopping"), timeout=30)
