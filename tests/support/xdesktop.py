"""A real X desktop for the desktop and package tiers: Xvfb with an XEmbed tray (trayer) or a
StatusNotifierWatcher, the private session bus, screen grabs, and finding the app's icon."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support.dbus import PrivateBus, RecordingNotificationServer
from tests.support.processes import read_line, stop_process
from tests.support.sni_host import SniItem, SniMenu, StatusNotifierWatcher

from cgmtray.domain.ranges import GlucoseRange
from cgmtray.ui.icon import RANGE_COLOURS

Event = Mapping[str, Any]

#: The screen the tray tests use: small, 24-bit so grabbed pixels are exact colours.
TRAY_SCREEN = "800x360x24"
#: Height of trayer's panel along the top edge; Qt sizes the tray icon to it.
PANEL_HEIGHT = 28
#: Any helper (Xvfb, trayer, the app) must be up within this long.
DESKTOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ScreenRect:
    x: int
    y: int
    width: int
    height: int

    def contains(self, other: ScreenRect) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.x + other.width <= self.x + self.width
            and other.y + other.height <= self.y + self.height
        )


@dataclass(frozen=True)
class ScreenGrab:
    """The root window's pixels as packed RGB888 rows."""

    width: int
    height: int
    rgb: bytes

    def colour_box(
        self, colour: str, area: ScreenRect, tolerance: int = 6
    ) -> tuple[int, ScreenRect | None]:
        """How many pixels in `area` are within `tolerance` of "#rrggbb", and their bounding box."""
        want = bytes.fromhex(colour.lstrip("#"))
        xs: list[int] = []
        ys: list[int] = []
        for y in range(max(0, area.y), min(self.height, area.y + area.height)):
            for x in range(max(0, area.x), min(self.width, area.x + area.width)):
                at = 3 * (y * self.width + x)
                if all(abs(self.rgb[at + i] - want[i]) <= tolerance for i in range(3)):
                    xs.append(x)
                    ys.append(y)
        if not xs:
            return 0, None
        box = ScreenRect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
        return len(xs), box


class _ClientMessage(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    )


class _XEvent(ctypes.Union):
    _fields_ = (("xclient", _ClientMessage), ("pad", ctypes.c_long * 24))


_CLIENT_MESSAGE = 33


class XImage(ctypes.Structure):
    _fields_ = (
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.POINTER(ctypes.c_ubyte)),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
        ("red_mask", ctypes.c_ulong),
        ("green_mask", ctypes.c_ulong),
        ("blue_mask", ctypes.c_ulong),
    )


def libx11() -> ctypes.CDLL:
    """libX11 with the argument and result types of every call tests and benchmarks make."""
    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = (ctypes.c_char_p,)
    lib.XCloseDisplay.argtypes = (ctypes.c_void_p,)
    lib.XInternAtom.restype = ctypes.c_ulong
    lib.XInternAtom.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
    lib.XGetSelectionOwner.restype = ctypes.c_ulong
    lib.XGetSelectionOwner.argtypes = (ctypes.c_void_p, ctypes.c_ulong)
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = (ctypes.c_void_p,)
    lib.XGetImage.restype = ctypes.POINTER(XImage)
    lib.XGetImage.argtypes = (
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_ulong,
        ctypes.c_int,
    )
    lib.XDestroyImage.argtypes = (ctypes.POINTER(XImage),)
    lib.XSetWindowBackground.argtypes = (ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)
    lib.XClearWindow.argtypes = (ctypes.c_void_p, ctypes.c_ulong)
    lib.XSendEvent.argtypes = (
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_int,
        ctypes.c_long,
        ctypes.POINTER(_XEvent),
    )
    lib.XFlush.argtypes = (ctypes.c_void_p,)
    return lib


class XClient:
    """The two X requests xdotool lacks: who owns the tray selection, and a window manager's
    "close" (WM_DELETE_WINDOW), as when the person clicks a window's close button."""

    def __init__(self, display: str) -> None:
        lib = libx11()
        self._lib = lib
        self._display = lib.XOpenDisplay(display.encode())
        if not self._display:
            raise RuntimeError(f"cannot open X display {display}")

    def _atom(self, name: str) -> int:
        return int(self._lib.XInternAtom(self._display, name.encode(), 0))

    def tray_owner(self) -> int:
        """The XEmbed tray manager's window, 0 while there is none."""
        return int(self._lib.XGetSelectionOwner(self._display, self._atom("_NET_SYSTEM_TRAY_S0")))

    def close_window(self, window: int) -> None:
        event = _XEvent()
        event.xclient.type = _CLIENT_MESSAGE
        event.xclient.window = window
        event.xclient.message_type = self._atom("WM_PROTOCOLS")
        event.xclient.format = 32
        event.xclient.data[0] = self._atom("WM_DELETE_WINDOW")
        event.xclient.data[1] = 0  # CurrentTime
        self._lib.XSendEvent(self._display, window, 0, 0, ctypes.byref(event))
        self._lib.XFlush(self._display)

    def close(self) -> None:
        if self._display:
            self._lib.XCloseDisplay(self._display)
            self._display = None


def start_xvfb(stack: contextlib.ExitStack) -> str:
    """Starts Xvfb (TRAY_SCREEN) on a free display, stopped by `stack`; returns its number."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", TRAY_SCREEN],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    stack.callback(stop_process, xvfb)
    with os.fdopen(read_end) as numbers:
        number = read_line(numbers, DESKTOP_TIMEOUT_S).strip()
    if not number:
        pytest.fail("Xvfb did not start")
    return number


def poll(check: Callable[[], bool], timeout: float) -> bool:
    """Calls `check` every 20 ms until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls `check` until true; fails the test after `timeout` seconds."""
    if not poll(check, timeout):
        pytest.fail(f"{what}: not within {timeout} s")


def desktop_env(
    bus: PrivateBus,
    display: str,
    home: Path,
    extra: Mapping[str, str],
    drop: tuple[str, ...] = (),
) -> dict[str, str]:
    """A child environment on `display` and `bus` only, with `home` as its home and no keyring;
    no Wayland, theme or style of the machine's own (nor the variables in `drop`)."""
    env = bus.environment(
        DISPLAY=display,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    for name in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORMTHEME", "QT_STYLE_OVERRIDE", *drop):
        env.pop(name, None)
    env.update(extra)
    return env


class TrayDesktop:
    """An X display with an XEmbed tray (trayer, top edge) and a private session bus."""

    timeout_s = DESKTOP_TIMEOUT_S

    def __init__(self, display: str, bus: PrivateBus, home: Path, x: XClient) -> None:
        self.display = display
        self.bus = bus
        self.home = home
        self.x = x

    @staticmethod
    def wait_until(
        check: Callable[[], bool], what: str, timeout: float = DESKTOP_TIMEOUT_S
    ) -> None:
        wait_until(check, timeout, what)

    @staticmethod
    def poll(check: Callable[[], bool], timeout: float) -> bool:
        return poll(check, timeout)

    def env(self, **extra: str) -> dict[str, str]:
        """A child environment on this display and bus, with a private home and no keyring."""
        return desktop_env(self.bus, self.display, self.home, extra)

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(
            ["xdotool", *args], env=self.env(), capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()

    def geometry(self, window: str) -> ScreenRect | None:
        shell = self.xdotool("getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in shell.splitlines() if "=" in line)
        if not {"X", "Y", "WIDTH", "HEIGHT"} <= set(values):
            return None
        return ScreenRect(
            int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])
        )

    def visible(self, *search: str) -> dict[str, ScreenRect]:
        """Mapped windows matching an `xdotool search` (e.g. "--class", "^CGM Tray$")."""
        found = {}
        for window in self.xdotool("search", "--onlyvisible", *search).split():
            rect = self.geometry(window)
            if rect is not None:
                found[window] = rect
        return found

    def panel(self) -> ScreenRect | None:
        panels = [r for r in self.visible("--class", "trayer").values() if r.height > 10]
        return panels[0] if panels else None

    def grab(self) -> ScreenGrab:
        """The whole screen, as the person sees it (ImageMagick's `import`)."""
        done = subprocess.run(
            ["import", "-window", "root", "-depth", "8", "rgb:-"],
            env=self.env(),
            capture_output=True,
            timeout=20,
            check=True,
        )
        width, height = (int(n) for n in TRAY_SCREEN.split("x")[:2])
        assert len(done.stdout) == 3 * width * height, "unexpected grab size"
        return ScreenGrab(width, height, done.stdout)

    def save_screenshot(self, path: Path) -> Path:
        subprocess.run(
            ["import", "-window", "root", str(path)], env=self.env(), timeout=20, check=False
        )
        return path


class SniDesktop:
    """Xvfb with no XEmbed tray, and a private bus where a StatusNotifierWatcher (the panel's
    half of the StatusNotifierItem protocol) and a recording notification server run."""

    timeout_s = DESKTOP_TIMEOUT_S

    def __init__(
        self,
        display: str,
        bus: PrivateBus,
        home: Path,
        watcher: StatusNotifierWatcher,
        notifications: RecordingNotificationServer,
    ) -> None:
        self.display = display
        self.bus = bus
        self.home = home
        self.watcher = watcher
        self.notifications = notifications

    @staticmethod
    def wait_until(
        check: Callable[[], bool], what: str, timeout: float = DESKTOP_TIMEOUT_S
    ) -> None:
        wait_until(check, timeout, what)

    def env(self, **extra: str) -> dict[str, str]:
        """A child environment on this display and bus (Qt's xcb platform, which exports its tray
        icon over D-Bus because the watcher is there), a private home, no keyring."""
        runtime = self.home / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        settings = {
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_RUNTIME_DIR": str(runtime),
            "QT_QPA_PLATFORM": "xcb",
            "PYTHONUNBUFFERED": "1",
        }
        # Under Unity Qt sends an icon file name instead of pixels.
        return desktop_env(
            self.bus, self.display, self.home, settings | extra, drop=("XDG_CURRENT_DESKTOP",)
        )

    def menu(self, item: SniItem) -> SniMenu:
        """A host's client for one registered item (close it, or use it in a `with`)."""
        return SniMenu(self.bus.address, item)


# --- the app's icon in the XEmbed tray --------------------------------------------------------

#: Fewer badge-coloured pixels than this is not a badge (a 22 px badge shows ~300).
MIN_BADGE_PIXELS = 60
#: The badge's coloured area is at least this wide and tall, in pixels.
MIN_BADGE_SIDE = 12


def is_range_update(event: Event) -> bool:
    """A tray update that shows a current value (coloured by its range)."""
    return event.get("event") == "tray.updated" and str(event.get("severity", "")).upper() in (
        GlucoseRange.__members__
    )


def badge_background(event: Event) -> str:
    """The badge colour the icon must show for a `tray.updated` event's severity."""
    return RANGE_COLOURS[GlucoseRange[str(event["severity"]).upper()]].background


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


def tray_icons_box(desktop: TrayDesktop) -> ScreenRect:
    """The box around all the app's icons embedded in trayer's panel (the demo shows one per
    person of its family, side by side)."""
    tray_icon(desktop)  # (waits until one is embedded)
    panel = desktop.panel()
    icons = [
        rect
        for rect in desktop.visible("--class", "^CGM Tray$").values()
        if panel is not None and panel.contains(rect)
    ]
    left, top = min(r.x for r in icons), min(r.y for r in icons)
    right = max(r.x + r.width for r in icons)
    bottom = max(r.y + r.height for r in icons)
    return ScreenRect(left, top, right - left, bottom - top)


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


# --- the fixtures (tests/desktop and tests/package import them into their conftest) ---------


@pytest.fixture
def private_bus() -> Iterator[PrivateBus]:
    """A dbus-daemon of the test's own; stopped when the test ends."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (Debian package: dbus)")
    bus = PrivateBus()
    yield bus
    bus.stop()


@pytest.fixture
def notification_server(private_bus: PrivateBus) -> Iterator[RecordingNotificationServer]:
    """A recording org.freedesktop.Notifications that advertises actions."""
    server = RecordingNotificationServer(private_bus.address)
    yield server
    server.stop()


# --- a real X desktop with an XEmbed tray (Xvfb + trayer) ------------------------------------


@pytest.fixture
def tray_desktop(private_bus: PrivateBus, tmp_path: Path) -> Iterator[TrayDesktop]:
    """Xvfb (800x360, 24-bit), the private bus, and trayer owning the XEmbed tray selection."""
    for tool in ("Xvfb", "trayer", "xdotool", "import"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: xvfb, trayer, xdotool, imagemagick)")
    with contextlib.ExitStack() as stack:
        number = start_xvfb(stack)
        x = XClient(f":{number}")
        stack.callback(x.close)
        home = tmp_path / "home"
        home.mkdir()
        desktop = TrayDesktop(f":{number}", private_bus, home, x)
        trayer_log = stack.enter_context((tmp_path / "trayer.log").open("w", encoding="utf-8"))
        trayer = subprocess.Popen(
            [
                "trayer",
                "--edge", "top",
                "--align", "right",
                "--widthtype", "request",
                "--height", str(PANEL_HEIGHT),
                "--SetDockType", "true",
            ],
            env=desktop.env(),
            stdout=trayer_log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        stack.callback(stop_process, trayer)
        wait_until(lambda: x.tray_owner() != 0, DESKTOP_TIMEOUT_S, "trayer owns the tray")
        wait_until(lambda: desktop.panel() is not None, DESKTOP_TIMEOUT_S, "trayer's panel")
        yield desktop


# --- an X display whose only tray is a StatusNotifierWatcher on the private bus --------------


@pytest.fixture
def sni_desktop(
    private_bus: PrivateBus, notification_server: RecordingNotificationServer, tmp_path: Path
) -> Iterator[SniDesktop]:
    """Xvfb (no XEmbed tray), the private bus, a StatusNotifierWatcher and a notification server."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian: xvfb)")
    with contextlib.ExitStack() as stack:
        number = start_xvfb(stack)
        watcher = StatusNotifierWatcher(private_bus.address)
        stack.callback(watcher.stop)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        yield SniDesktop(f":{number}", private_bus, home, watcher, notification_server)
