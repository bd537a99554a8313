"""Desktop-tier fixtures: a private session bus, a recording notification server on it, and an
X display with a real XEmbed tray host (Xvfb + trayer)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy names the helper by its path; pytest puts tests/desktop on sys.path
    from tests.desktop.dbus_fixtures import (
        PrivateBus,
        RecordingNotificationServer,
        read_line,
        stop_process,
    )
    from tests.desktop.sni_host import SniItem, SniMenu, StatusNotifierWatcher
else:
    from dbus_fixtures import PrivateBus, RecordingNotificationServer, read_line, stop_process
    from sni_host import SniItem, SniMenu, StatusNotifierWatcher


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

#: The screen the tray tests use: small (yet tall enough for the demo's menu in one column),
#: 24-bit so grabbed pixels are exact colours.
TRAY_SCREEN = "800x360x24"
#: Height of trayer's panel along the top edge; Qt sizes the tray icon to it.
PANEL_HEIGHT = 28
#: Any helper (Xvfb, trayer, the app) must be up within this long.
DESKTOP_TIMEOUT_S = 20.0


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


class XClient:
    """The two X requests xdotool lacks: who owns the tray selection, and a window manager's
    "close" (WM_DELETE_WINDOW), as when the person clicks a window's close button."""

    def __init__(self, display: str) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = (ctypes.c_char_p,)
        lib.XCloseDisplay.argtypes = (ctypes.c_void_p,)
        lib.XInternAtom.restype = ctypes.c_ulong
        lib.XInternAtom.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
        lib.XGetSelectionOwner.restype = ctypes.c_ulong
        lib.XGetSelectionOwner.argtypes = (ctypes.c_void_p, ctypes.c_ulong)
        lib.XSendEvent.argtypes = (
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.POINTER(_XEvent),
        )
        lib.XFlush.argtypes = (ctypes.c_void_p,)
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
        env = self.bus.environment(
            DISPLAY=self.display,
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        )
        for name in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORMTHEME", "QT_STYLE_OVERRIDE"):
            env.pop(name, None)
        env.update(extra)
        return env

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


@pytest.fixture
def tray_desktop(private_bus: PrivateBus, tmp_path: Path) -> Iterator[TrayDesktop]:
    """Xvfb (800x360, 24-bit), the private bus, and trayer owning the XEmbed tray selection."""
    for tool in ("Xvfb", "trayer", "xdotool", "import"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: xvfb, trayer, xdotool, imagemagick)")
    with contextlib.ExitStack() as stack:
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
        env = self.bus.environment(
            DISPLAY=self.display,
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_STATE_HOME=str(self.home / ".local" / "state"),
            XDG_RUNTIME_DIR=str(runtime),
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
            QT_QPA_PLATFORM="xcb",
            PYTHONUNBUFFERED="1",
        )
        # Under Unity Qt sends an icon file name instead of pixels; no theme or style overrides.
        for name in (
            "XDG_CURRENT_DESKTOP",
            "WAYLAND_DISPLAY",
            "QT_QPA_PLATFORMTHEME",
            "QT_STYLE_OVERRIDE",
        ):
            env.pop(name, None)
        env.update(extra)
        return env

    def menu(self, item: SniItem) -> SniMenu:
        """A host's client for one registered item (close it, or use it in a `with`)."""
        return SniMenu(self.bus.address, item)


@pytest.fixture
def sni_desktop(
    private_bus: PrivateBus, notification_server: RecordingNotificationServer, tmp_path: Path
) -> Iterator[SniDesktop]:
    """Xvfb (no XEmbed tray), the private bus, a StatusNotifierWatcher and a notification server."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian: xvfb)")
    with contextlib.ExitStack() as stack:
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
        watcher = StatusNotifierWatcher(private_bus.address)
        stack.callback(watcher.stop)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        yield SniDesktop(f":{number}", private_bus, home, watcher, notification_server)
