"""A private X desktop for benchmarks and screenshots: Xvfb, a session bus, trayer, screen grabs."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:  # mypy names the helper by its path; bench/ is on sys.path at run time
    from bench.appproc import poll_until, stop_process
else:
    from appproc import poll_until, stop_process  # also puts the repository root on sys.path

from tests.support.dbus import PrivateBus, own_name
from tests.support.processes import read_line
from tests.support.xdesktop import libx11

#: How long a helper process (Xvfb, dbus-daemon, trayer) may take to come up.
STARTUP_TIMEOUT_S: Final = 15.0
#: Panel (trayer) height in pixels; Qt sizes the tray icon to fit it.
PANEL_HEIGHT: Final = 28
#: The panel's tint per look (trayer `--tint`).
PANEL_TINT: Final = {"light": 0xE8E8E8, "dark": 0x2B2B2B}
#: The desktop's background per look (so a light menu stands out from it as on a real desktop).
DESKTOP_BACKGROUND: Final = {"light": 0x9DB0C2, "dark": 0x3B4654}
#: org.freedesktop.appearance color-scheme values: 1 prefers dark, 2 prefers light.
COLOR_SCHEME: Final = {"dark": 1, "light": 2}

Look = Literal["light", "dark"]
Rgb = tuple[int, int, int]

# -- small helpers ---------------------------------------------------------------------------


def hex_rgb(colour: str) -> Rgb:
    """ "#1b6e34" -> (27, 110, 52)."""
    text = colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def require_tools(*names: str) -> None:
    """Exits with a plain message when a needed program is missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        sys.exit(
            f"missing programs: {', '.join(missing)} "
            "(Debian: xvfb trayer dbus xdotool; see docs/testing.md)"
        )


# -- Xlib through ctypes (selection owner, fast grabs) ---------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def united(self, other: Rect) -> Rect:
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Rect(x, y, max(self.right, other.right) - x, max(self.bottom, other.bottom) - y)

    def adjusted(self, margin: int, bounds: Rect) -> Rect:
        """Grown by `margin` on every side, clipped to `bounds`."""
        x, y = max(bounds.x, self.x - margin), max(bounds.y, self.y - margin)
        right = min(bounds.right, self.right + margin)
        bottom = min(bounds.bottom, self.bottom + margin)
        return Rect(x, y, right - x, bottom - y)


@dataclass(frozen=True, slots=True)
class RgbImage:
    """Pixels as packed RGB888 rows, top-left origin at `origin` in screen coordinates."""

    origin: Rect
    rgb: bytes

    def pixel(self, x: int, y: int) -> Rgb:
        at = 3 * (y * self.origin.width + x)
        return self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]

    def crop(self, rect: Rect) -> RgbImage:
        """The part inside `rect` (screen coordinates, within this image)."""
        left, top = rect.x - self.origin.x, rect.y - self.origin.y
        stride = 3 * self.origin.width
        rows = (
            self.rgb[(top + r) * stride + 3 * left : (top + r) * stride + 3 * (left + rect.width)]
            for r in range(rect.height)
        )
        return RgbImage(rect, b"".join(rows))

    def scaled(self, factor: int) -> RgbImage:
        """Every pixel as a `factor` x `factor` block (nearest neighbour: no new colours)."""
        width = self.origin.width
        out = bytearray()
        for r in range(self.origin.height):
            row = self.rgb[3 * width * r : 3 * width * (r + 1)]
            wide = b"".join(row[3 * c : 3 * c + 3] * factor for c in range(width))
            out += wide * factor
        origin = Rect(0, 0, width * factor, self.origin.height * factor)
        return RgbImage(origin, bytes(out))

    def png(self) -> bytes:
        """The image as an 8-bit RGB PNG with no metadata (same pixels, same bytes)."""
        width, height = self.origin.width, self.origin.height
        raw = b"".join(
            b"\x00" + self.rgb[3 * width * r : 3 * width * (r + 1)] for r in range(height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


@dataclass(frozen=True, slots=True)
class Cluster:
    """Pixels of one colour: how many, and the screen box around them (None if none)."""

    count: int
    box: Rect | None

    def is_badge(self, min_pixels: int = 40, min_side: int = 10) -> bool:
        """Big enough to be the tray badge (a 16 px badge has ~150 background pixels)."""
        return (
            self.box is not None
            and self.count >= min_pixels
            and min(self.box.width, self.box.height) >= min_side
        )


def find_colour(image: RgbImage, colour: Rgb, tolerance: int = 6) -> Cluster:
    """Every pixel within `tolerance` (per channel) of `colour`, and their bounding box."""
    r0, g0, b0 = colour
    width = image.origin.width
    data = image.rgb
    count = 0
    xs: list[int] = []
    ys: list[int] = []
    for index in range(0, len(data), 3):
        if (
            abs(data[index] - r0) <= tolerance
            and abs(data[index + 1] - g0) <= tolerance
            and abs(data[index + 2] - b0) <= tolerance
        ):
            count += 1
            pixel = index // 3
            xs.append(pixel % width)
            ys.append(pixel // width)
    if not count:
        return Cluster(0, None)
    left, top = min(xs), min(ys)
    box = Rect(image.origin.x + left, image.origin.y + top, max(xs) - left + 1, max(ys) - top + 1)
    return Cluster(count, box)


_Z_PIXMAP: Final = 2
_ALL_PLANES: Final = 0xFFFFFFFFFFFFFFFF


class XConnection:
    """One Xlib connection to a display: tray selection owner and screen grabs."""

    def __init__(self, display: str) -> None:
        self._x = libx11()
        handle = self._x.XOpenDisplay(display.encode())
        if not handle:
            raise RuntimeError(f"cannot open X display {display}")
        self._display: int = handle
        self._root: int = self._x.XDefaultRootWindow(handle)

    def paint_background(self, rgb: int) -> None:
        """Fills the root window (the desktop behind every window) with 0xRRGGBB."""
        self._x.XSetWindowBackground(self._display, self._root, rgb)
        self._x.XClearWindow(self._display, self._root)
        self._x.XFlush(self._display)

    def close(self) -> None:
        if self._display:
            self._x.XCloseDisplay(self._display)
            self._display = 0

    def tray_owner(self, screen: int = 0) -> int:
        """The window owning `_NET_SYSTEM_TRAY_S<screen>` (0 while there is no XEmbed tray)."""
        atom = self._x.XInternAtom(self._display, f"_NET_SYSTEM_TRAY_S{screen}".encode(), 0)
        return int(self._x.XGetSelectionOwner(self._display, atom))

    def grab(self, rect: Rect) -> RgbImage:
        """The screen's pixels in `rect` (24-bit TrueColor, as Xvfb -screen WxHx24 gives)."""
        image = self._x.XGetImage(
            self._display,
            self._root,
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            _ALL_PLANES,
            _Z_PIXMAP,
        )
        if not image:
            raise RuntimeError(f"XGetImage failed for {rect}")
        try:
            info = image.contents
            if info.bits_per_pixel != 32 or info.red_mask != 0xFF0000 or info.byte_order != 0:
                raise RuntimeError("expected a 24-bit little-endian TrueColor screen")
            stride = info.bytes_per_line
            raw = ctypes.string_at(info.data, stride * info.height)
        finally:
            self._x.XDestroyImage(image)
        row_bytes = 4 * rect.width
        if stride != row_bytes:
            raw = b"".join(raw[r * stride : r * stride + row_bytes] for r in range(rect.height))
        rgb = bytearray(3 * rect.width * rect.height)
        rgb[0::3] = raw[2::4]
        rgb[1::3] = raw[1::4]
        rgb[2::3] = raw[0::4]
        return RgbImage(rect, bytes(rgb))


# -- a colour-scheme portal on the private bus -----------------------------------------------


class ColourSchemePortal:
    """Owns org.freedesktop.portal.Desktop and answers Settings reads of
    org.freedesktop.appearance color-scheme: what a real desktop does to tell apps "dark" or
    "light". Qt's xdgdesktopportal theme picks Fusion's dark or light palette from it."""

    NAME: Final = "org.freedesktop.portal.Desktop"
    SETTINGS: Final = "org.freedesktop.portal.Settings"

    def __init__(self, address: str, look: Look) -> None:
        from jeepney.io.threading import open_dbus_connection

        self._value = COLOR_SCHEME[look]
        self._conn = open_dbus_connection(address)
        try:
            own_name(self._conn, self.NAME, STARTUP_TIMEOUT_S)
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="colour-scheme-portal")
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_error, new_method_return
        from jeepney.io.threading import ReceiveStopped

        appearance = {"color-scheme": ("u", self._value)}
        try:
            while True:
                call = self._conn.receive()
                if call.header.message_type != MessageType.method_call:
                    continue
                fields = call.header.fields
                interface = fields.get(HeaderFields.interface)
                member = fields.get(HeaderFields.member)
                if interface == self.SETTINGS and member == "ReadAll":
                    answer = {"org.freedesktop.appearance": appearance}
                    self._conn.send(new_method_return(call, "a{sa{sv}}", (answer,)))
                elif (
                    interface == self.SETTINGS
                    and member in ("Read", "ReadOne")
                    and tuple(call.body) == ("org.freedesktop.appearance", "color-scheme")
                ):
                    value = ("u", self._value)
                    wrapped = value if member == "ReadOne" else ("v", value)
                    self._conn.send(new_method_return(call, "v", (wrapped,)))
                else:
                    error = "org.freedesktop.DBus.Error.UnknownMethod"
                    self._conn.send(new_error(call, error, "s", (str(member),)))
        except (ReceiveStopped, OSError, ValueError):
            return

    def stop(self) -> None:
        self._conn.interrupt()
        self._thread.join(timeout=10)
        self._conn.close()


# -- the desktop -----------------------------------------------------------------------------

#: Variables a child must not inherit from the machine's own desktop.
_FOREIGN_ENV_PREFIXES: Final = ("DBUS_", "QT_", "XDG_", "GTK_", "WAYLAND_")


class Desktop:
    """Xvfb (screen `width`x`height`x24), a private session bus with no service activation,
    optionally a colour-scheme portal, and trayer as an XEmbed tray along the top edge.

    Use as a context manager; everything started is stopped on exit, in reverse order.
    """

    def __init__(
        self,
        width: int = 800,
        height: int = 200,
        *,
        look: Look = "light",
        portal: bool = False,
        full_width_panel: bool = True,
    ) -> None:
        self.size = Rect(0, 0, width, height)
        self.look: Look = look
        self._portal_wanted = portal
        self._full_width = full_width_panel
        self._stack = contextlib.ExitStack()
        self.home = Path(tempfile.mkdtemp(prefix="cgm-desktop-"))
        self.display = ""
        self.bus_address = ""
        self.x: XConnection | None = None

    # lifecycle

    def __enter__(self) -> Desktop:
        require_tools("Xvfb", "dbus-daemon", "trayer", "xdotool")
        try:
            self._start()
        except BaseException:
            self._stack.close()
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def _start(self) -> None:
        self.display = self._start_xvfb()
        self.bus_address = self._start_bus()
        if self._portal_wanted:
            portal = ColourSchemePortal(self.bus_address, self.look)
            self._stack.callback(portal.stop)
        connection = XConnection(self.display)
        self._stack.callback(connection.close)
        self.x = connection
        connection.paint_background(DESKTOP_BACKGROUND[self.look])
        self._start_trayer()
        poll_until(lambda: connection.tray_owner() != 0, STARTUP_TIMEOUT_S, what="trayer")
        poll_until(lambda: self.panel() is not None, STARTUP_TIMEOUT_S, what="trayer's panel")

    def _start_xvfb(self) -> str:
        read_end, write_end = os.pipe()
        screen = f"{self.size.width}x{self.size.height}x24"
        command = ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"]
        process = subprocess.Popen(
            [*command, "-screen", "0", screen],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_end)
        self._stack.callback(stop_process, process)
        with os.fdopen(read_end) as numbers:
            number = read_line(numbers, STARTUP_TIMEOUT_S).strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        return f":{number}"

    def _start_bus(self) -> str:
        bus = PrivateBus()
        self._stack.callback(bus.stop)
        return bus.address

    def _start_trayer(self) -> None:
        width = ["--widthtype", "percent", "--width", "100"]
        if not self._full_width:
            width = ["--widthtype", "request"]
        tint = f"0x{PANEL_TINT[self.look]:06x}"
        look = ["--transparent", "true", "--alpha", "0", "--tint", tint]
        place = ["--edge", "top", "--align", "right", "--height", str(PANEL_HEIGHT)]
        command = ["trayer", *place, *width, *look, "--SetDockType", "true"]
        log = (self.home / "trayer.log").open("w", encoding="utf-8")
        self._stack.callback(log.close)
        process = subprocess.Popen(command, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self._stack.callback(stop_process, process)

    # for the processes we start

    def env(self, **extra: str) -> dict[str, str]:
        """A child environment on this display and bus, with a private home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV_PREFIXES)}
        env.pop("DISPLAY", None)
        runtime = self.home / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env.update(
            DISPLAY=self.display,
            DBUS_SESSION_BUS_ADDRESS=self.bus_address,
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_RUNTIME_DIR=str(runtime),
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        )
        env.update(extra)
        return env

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(
            ["xdotool", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()

    def panel(self) -> Rect | None:
        """Where trayer's panel is on screen (None until it is mapped)."""
        for window in self.xdotool("search", "--onlyvisible", "--class", "trayer").split():
            geometry = self.window_rect(window)
            if geometry is not None and geometry.height >= PANEL_HEIGHT // 2:
                return geometry
        return None

    def window_rect(self, window: str) -> Rect | None:
        shell = self.xdotool("getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in shell.splitlines() if "=" in line)
        try:
            return Rect(
                int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])
            )
        except KeyError:
            return None

    def app_windows(self) -> list[Rect]:
        """Mapped top-level windows of cgm-tray (the tray icon's own window excluded)."""
        rects = []
        for window in self.xdotool("search", "--onlyvisible", "--class", "^CGM Tray$").split():
            rect = self.window_rect(window)
            if rect is not None and rect.width > PANEL_HEIGHT and rect.height > PANEL_HEIGHT:
                rects.append(rect)
        return rects

    def grab(self, rect: Rect | None = None) -> RgbImage:
        assert self.x is not None
        return self.x.grab(rect or self.size)
