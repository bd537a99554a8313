"""Start at login: XDG autostart .desktop (Linux), LaunchAgent (macOS), Run key (Windows)."""

from __future__ import annotations

import importlib
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from cgmtray import APP_ID, APP_NAME
from cgmtray.storage.atomic import write_atomically

#: The registry key (under HKEY_CURRENT_USER) whose values Windows starts at login.
WINDOWS_RUN_KEY: Final = r"Software\Microsoft\Windows\CurrentVersion\Run"

#: Characters that make the Desktop Entry spec require an Exec argument to be quoted.
_DESKTOP_RESERVED: Final = frozenset(" \t\n\"'\\><~|&;$*?#()`")
#: Characters that must be backslash-escaped inside a quoted Exec argument.
_DESKTOP_QUOTED_ESCAPES: Final = frozenset('"`$\\')


class AutostartError(Exception):
    """Start at login could not be changed; the message is plain and names the place."""


class AutostartEntry(Protocol):
    """One platform's way of starting CGM Tray at login."""

    @property
    def location(self) -> str:
        """Where the entry lives, for people ("~/.config/autostart/…desktop")."""
        ...

    def is_enabled(self) -> bool: ...

    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> None: ...


def set_enabled(entry: AutostartEntry, enabled: bool, command: Sequence[str]) -> None:
    """Turns start at login on (writing the entry for `command`) or off (removing it)."""
    if enabled:
        entry.enable(command)
    else:
        entry.disable()


def _checked_command(command: Sequence[str]) -> list[str]:
    arguments = [str(argument) for argument in command]
    if not arguments or not arguments[0]:
        raise AutostartError("Start at login needs the program to start.")
    for argument in arguments:
        if any(ord(char) < 0x20 for char in argument):
            raise AutostartError("Start at login cannot use a command with control characters.")
    return arguments


def _write_atomically(path: Path, data: bytes) -> None:
    # A launcher entry others (the desktop) read: world-readable, in an ordinary folder.
    write_atomically(path, data, mode=0o644, dir_mode=0o777)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AutostartError(
            f"Could not remove {path} ({exc.strerror or type(exc).__name__})."
        ) from None


# --- Linux and other XDG desktops ------------------------------------------------------------


def desktop_exec_argument(argument: str) -> str:
    """One argument as the Desktop Entry spec wants it in Exec (before the string escape)."""
    text = argument
    if any(char in _DESKTOP_RESERVED for char in text):
        escaped = "".join(f"\\{c}" if c in _DESKTOP_QUOTED_ESCAPES else c for c in text)
        text = f'"{escaped}"'
    return text.replace("%", "%%")


def desktop_exec_line(command: Sequence[str]) -> str:
    """The value of an Exec key that runs `command` (quoting, then the string-value escape)."""
    joined = " ".join(desktop_exec_argument(a) for a in _checked_command(command))
    return joined.replace("\\", "\\\\")


def desktop_entry_text(command: Sequence[str]) -> str:
    """The autostart .desktop file that starts `command` at login."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_NAME}\n"
        "Comment=Your Dexcom CGM reading in the system tray\n"
        f"Exec={desktop_exec_line(command)}\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "Categories=Utility;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def _desktop_entry_keys(text: str) -> dict[str, str]:
    """The keys of the [Desktop Entry] group (other groups and comments ignored)."""
    keys: dict[str, str] = {}
    in_entry = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            in_entry = line == "[Desktop Entry]"
            continue
        if in_entry and "=" in line:
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), value.strip())
    return keys


class XdgAutostart:
    """`$XDG_CONFIG_HOME/autostart/<app id>.desktop` (freedesktop Desktop Application Autostart)."""

    def __init__(self, config_home: Path) -> None:
        self.path = Path(config_home) / "autostart" / f"{APP_ID}.desktop"

    def __repr__(self) -> str:
        return f"XdgAutostart({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        """True when the file exists and a desktop has not switched it off (Hidden and the like)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        keys = _desktop_entry_keys(text)
        return (
            keys.get("Hidden", "false").lower() != "true"
            and keys.get("X-GNOME-Autostart-enabled", "true").lower() != "false"
        )

    def enable(self, command: Sequence[str]) -> None:
        data = desktop_entry_text(command).encode("utf-8")
        try:
            _write_atomically(self.path, data)
        except OSError as exc:
            raise AutostartError(
                f"Could not write {self.path} ({exc.strerror or type(exc).__name__})."
            ) from None

    def disable(self) -> None:
        _remove(self.path)


# --- macOS -----------------------------------------------------------------------------------


def launch_agent_plist(command: Sequence[str]) -> bytes:
    """The LaunchAgent property list that starts `command` when the person logs in."""
    agent: dict[str, Any] = {
        "Label": APP_ID,
        "ProgramArguments": _checked_command(command),
        "RunAtLoad": True,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML)


class MacLaunchAgent:
    """`~/Library/LaunchAgents/<app id>.plist`, loaded by launchd at the next login."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / "Library" / "LaunchAgents" / f"{APP_ID}.plist"

    def __repr__(self) -> str:
        return f"MacLaunchAgent({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        try:
            agent = plistlib.loads(self.path.read_bytes())
        except (OSError, plistlib.InvalidFileException, ValueError):
            return False
        return isinstance(agent, dict) and agent.get("Disabled") is not True

    def enable(self, command: Sequence[str]) -> None:
        try:
            _write_atomically(self.path, launch_agent_plist(command))
        except OSError as exc:
            raise AutostartError(
                f"Could not write {self.path} ({exc.strerror or type(exc).__name__})."
            ) from None

    def disable(self) -> None:
        _remove(self.path)


# --- Windows ---------------------------------------------------------------------------------


class RunKey(Protocol):
    """String values of HKEY_CURRENT_USER\\...\\CurrentVersion\\Run, by name."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class WinRegRunKey:
    """The real Run key through `winreg`, imported only when first used (it exists on Windows)."""

    @staticmethod
    def _winreg() -> Any:
        return importlib.import_module("winreg")

    def get(self, name: str) -> str | None:
        winreg = self._winreg()
        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_QUERY_VALUE
            ) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return value if isinstance(value, str) else None

    def set(self, name: str, value: str) -> None:
        winreg = self._winreg()
        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        winreg = self._winreg()
        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE
            ) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return


class WindowsRunEntry:
    """A value named after the app under the current user's Run key."""

    def __init__(self, run_key: RunKey | None = None, *, value_name: str = APP_NAME) -> None:
        self._run_key: RunKey = run_key if run_key is not None else WinRegRunKey()
        self.value_name = value_name

    def __repr__(self) -> str:
        return f"WindowsRunEntry({self.value_name!r})"

    @property
    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{WINDOWS_RUN_KEY}\\{self.value_name}"

    def is_enabled(self) -> bool:
        try:
            return bool(self._run_key.get(self.value_name))
        except OSError:
            return False

    def enable(self, command: Sequence[str]) -> None:
        line = subprocess.list2cmdline(_checked_command(command))
        try:
            self._run_key.set(self.value_name, line)
        except OSError as exc:
            raise AutostartError(
                f"Could not write the Run key ({exc.strerror or type(exc).__name__})."
            ) from None

    def disable(self) -> None:
        try:
            self._run_key.delete(self.value_name)
        except OSError as exc:
            raise AutostartError(
                f"Could not remove the Run key value ({exc.strerror or type(exc).__name__})."
            ) from None


# --- choosing ----------------------------------------------------------------------------------


def xdg_config_home(environ: Mapping[str, str], home: Path) -> Path:
    """$XDG_CONFIG_HOME when it is an absolute path (as the spec says), else ~/.config."""
    configured = environ.get("XDG_CONFIG_HOME", "")
    if configured and Path(configured).is_absolute():
        return Path(configured)
    return home / ".config"


def for_platform(
    platform: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    run_key: RunKey | None = None,
) -> AutostartEntry:
    """The entry for `platform` (default: this one). Tests pass `home` / `environ` / `run_key`."""
    name = platform if platform is not None else sys.platform
    env = environ if environ is not None else os.environ
    user_home = home if home is not None else Path.home()
    if name.startswith("win"):
        return WindowsRunEntry(run_key)
    if name == "darwin":
        return MacLaunchAgent(user_home)
    return XdgAutostart(xdg_config_home(env, user_home))


def launch_command(extra: Sequence[str] = ()) -> list[str]:
    """How to start this CGM Tray from a login session: the frozen app, the installed
    `cgm-tray-gui` / `cgm-tray` next to this interpreter, or `python -m cgmtray`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *extra]
    scripts = Path(sys.executable).parent
    for script in ("cgm-tray-gui", "cgm-tray"):
        for candidate in (scripts / script, scripts / f"{script}.exe"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate), *extra]
    found = shutil.which("cgm-tray")
    if found:
        return [found, *extra]
    return [sys.executable, "-m", "cgmtray", *extra]
