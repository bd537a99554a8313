"""The real app on a real X server with an XEmbed tray: its badge is on screen, in its range's
colour; the tray menu works; closing a window does not quit; SIGTERM and Quit exit with 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cgmtray.domain.ranges import GlucoseRange
from cgmtray.ui.icon import RANGE_COLOURS

if TYPE_CHECKING:  # mypy names the helper by its path; pytest puts tests/desktop on sys.path
    from tests.desktop.conftest import ScreenRect, TrayDesktop
    from tests.desktop.dbus_fixtures import stop_process
else:
    from dbus_fixtures import stop_process

pytestmark = pytest.mark.desktop

#: The first reading needs a sign-in and a read against the demo service: generous for CI.
APP_TIMEOUT_S = 30.0
#: Fewer badge-coloured pixels than this is not a badge (a 22 px badge shows ~300).
MIN_BADGE_PIXELS = 60
#: The badge's coloured area is at least this wide and tall, in pixels.
MIN_BADGE_SIDE = 12

Event = Mapping[str, Any]


class RunningApp:
    """`python -m cgmtray ... --log-json` with its JSON log events collected as they arrive."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cgmtray", *args, "--log-json"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._events: list[Event] = []
        self._other: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, name="app-log-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                try:
                    self._events.append(json.loads(line))
                except json.JSONDecodeError:
                    self._other.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    def wait_for(
        self, match: Callable[[Event], bool], *, after: int = 0, timeout: float = APP_TIMEOUT_S
    ) -> tuple[int, Event]:
        """The first event (from index `after`) that matches, with its index."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self._events)):
                    if match(self._events[index]):
                        return index, self._events[index]
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    state = "exited" if self._ended else f"no such event within {timeout} s"
                    pytest.fail(f"app {state}; last events: {self._events[-6:]}; {self._other}")
                self._changed.wait(remaining)

    def stop(self) -> None:
        stop_process(self.process)
        self._reader.join(timeout=10)


def is_range_update(event: Event) -> bool:
    """A tray update that shows a current value (coloured by its range)."""
    return event.get("event") == "tray.updated" and str(event.get("severity", "")).upper() in (
        GlucoseRange.__members__
    )


def badge_background(event: Event) -> str:
    """The badge colour the icon must show for a `tray.updated` event's severity."""
    return RANGE_COLOURS[GlucoseRange[str(event["severity"]).upper()]].background


@pytest.fixture
def demo_app(tray_desktop: TrayDesktop, tmp_path: Path) -> Iterator[RunningApp]:
    """The real app, --demo, drawing on the test's X display with Qt's xcb platform."""
    app = RunningApp(
        ["--demo", "--basedir", str(tmp_path / "base")], tray_desktop.env(QT_QPA_PLATFORM="xcb")
    )
    yield app
    app.stop()


def tray_icon(desktop: TrayDesktop) -> ScreenRect:
    """The app's icon window, embedded in trayer's panel."""
    found: list[ScreenRect] = []

    def embedded() -> bool:
        panel = desktop.panel()
        found[:] = [
            rect
            for rect in desktop.visible("--class", "^CGM Tray$").values()
            if panel is not None and panel.contains(rect)
        ]
        return bool(found)

    desktop.wait_until(embedded, "the app's icon embedded in the tray")
    return found[0]


def open_tray_menu(desktop: TrayDesktop) -> None:
    """Right-clicks the icon until its menu is on screen (a click in the instant a window closes
    can go unanswered, as it can for a person)."""
    icon = tray_icon(desktop)
    before = set(desktop.visible("--class", "^CGM Tray$"))

    def menu_shown() -> bool:
        shown = desktop.visible("--class", "^CGM Tray$")
        return any(rect.height > 60 for window, rect in shown.items() if window not in before)

    x, y = icon.x + icon.width // 2, icon.y + icon.height // 2
    for _ in range(8):
        desktop.xdotool("mousemove", str(x), str(y), "click", "3")
        if desktop.poll(menu_shown, desktop.timeout_s / 8):
            return
    pytest.fail("the tray menu did not open on a right click")


def test_the_badge_is_on_screen_in_the_tray_in_the_colour_of_its_range(
    tray_desktop: TrayDesktop, demo_app: RunningApp, tmp_path: Path
) -> None:
    demo_app.wait_for(is_range_update)
    panel = tray_desktop.panel()
    assert panel is not None
    seen: dict[str, object] = {}

    def badge_on_screen() -> bool:
        latest = [e for e in demo_app.events() if is_range_update(e)][-1]
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
    assert tray_icon(tray_desktop).contains(badge), "the coloured badge is the app's icon"


def test_closing_the_about_window_leaves_the_app_running_and_refreshing(
    tray_desktop: TrayDesktop, demo_app: RunningApp
) -> None:
    demo_app.wait_for(is_range_update)
    open_tray_menu(tray_desktop)
    tray_desktop.xdotool("key", "a")  # "&About"
    about: dict[str, ScreenRect] = {}

    def about_shown() -> bool:
        about.update(tray_desktop.visible("--name", "About"))
        return bool(about)

    tray_desktop.wait_until(about_shown, "the About window", timeout=10)
    for window in about:
        tray_desktop.x.close_window(int(window))
    tray_desktop.wait_until(lambda: not tray_desktop.visible("--name", "About"), "About closed")

    assert demo_app.process.poll() is None, "closing its last window quit the app"
    before = len(demo_app.events())
    open_tray_menu(tray_desktop)
    tray_desktop.xdotool("key", "r")  # "&Refresh now": the app answers with a poll it plans
    demo_app.wait_for(
        lambda e: e.get("event") == "poll.scheduled" and e.get("reason") == "user", after=before
    )
    assert demo_app.process.poll() is None


def test_sigterm_quits_cleanly_with_status_0_and_the_icon_leaves_the_tray(
    tray_desktop: TrayDesktop, demo_app: RunningApp
) -> None:
    demo_app.wait_for(is_range_update)
    tray_icon(tray_desktop)

    demo_app.process.send_signal(signal.SIGTERM)

    assert demo_app.process.wait(timeout=APP_TIMEOUT_S) == 0
    demo_app.wait_for(lambda e: e.get("event") == "app.stopping", timeout=5)
    tray_desktop.wait_until(lambda: not tray_desktop.visible("--class", "^CGM Tray$"), "icon gone")


def test_quit_from_the_tray_menu_exits_with_status_0(
    tray_desktop: TrayDesktop, demo_app: RunningApp
) -> None:
    demo_app.wait_for(is_range_update)
    open_tray_menu(tray_desktop)

    tray_desktop.xdotool("key", "q")  # "&Quit"

    assert demo_app.process.wait(timeout=APP_TIMEOUT_S) == 0
    demo_app.wait_for(lambda e: e.get("event") == "app.stopping", timeout=5)
