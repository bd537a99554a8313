"""Start at login: the entry each platform reads at login appears when on and is gone when off."""

from __future__ import annotations

import plistlib
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray import APP_ID
from cgmtray.storage import autostart
from cgmtray.storage.autostart import (
    WINDOWS_RUN_KEY,
    AutostartError,
    MacLaunchAgent,
    WindowsRunEntry,
    WinRegRunKey,
    XdgAutostart,
    desktop_entry_text,
    desktop_exec_line,
    for_platform,
    launch_command,
    set_enabled,
)

COMMAND = ["/opt/cgm tray/bin/cgm-tray", "--basedir", "/home/ann/My Data"]


class DictRunKey:
    """The Run key of a test: a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def _unescape_desktop_string(value: str) -> str:
    """The string-value unescape of the Desktop Entry spec (\\s \\n \\t \\r \\\\)."""
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def _parse_exec(value: str) -> list[str]:
    """How a desktop reads Exec back: string unescape, %% -> %, then the quoting rules."""
    text = _unescape_desktop_string(value).replace("%%", "\0")
    args: list[str] = []
    current: list[str] = []
    quoted = in_arg = False
    chars = iter(text)
    for char in chars:
        if quoted:
            if char == "\\":
                current.append(next(chars))
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = in_arg = True
        elif char == " ":
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(char)
            in_arg = True
    if in_arg:
        args.append("".join(current))
    return [arg.replace("\0", "%") for arg in args]


# --- Linux / XDG --------------------------------------------------------------------------------


def test_turning_it_on_writes_a_desktop_entry_in_the_autostart_folder(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path / "config")
    assert not entry.is_enabled()
    entry.enable(COMMAND)
    path = tmp_path / "config" / "autostart" / f"{APP_ID}.desktop"
    assert entry.location == str(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\n")
    assert "Type=Application\n" in text
    assert "Name=CGM Tray\n" in text
    exec_value = next(line for line in text.splitlines() if line.startswith("Exec="))[5:]
    assert _parse_exec(exec_value) == COMMAND
    assert entry.is_enabled()


def test_turning_it_off_removes_the_entry_and_is_harmless_twice(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path)
    entry.enable(COMMAND)
    entry.disable()
    assert not entry.is_enabled()
    assert not entry.path.exists()
    entry.disable()  # nothing there: no error


def test_an_entry_a_desktop_switched_off_counts_as_off(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path)
    entry.enable(COMMAND)
    entry.path.write_text(
        entry.path.read_text(encoding="utf-8").replace(
            "X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"
        ),
        encoding="utf-8",
    )
    assert not entry.is_enabled()
    entry.enable(COMMAND)
    assert entry.is_enabled()
    entry.path.write_text(desktop_entry_text(COMMAND) + "Hidden=true\n", encoding="utf-8")
    assert not entry.is_enabled()


def test_set_enabled_switches_both_ways(tmp_path: Path) -> None:
    entry = XdgAutostart(tmp_path)
    set_enabled(entry, True, COMMAND)
    assert entry.is_enabled()
    set_enabled(entry, False, COMMAND)
    assert not entry.is_enabled()


def test_a_folder_that_cannot_be_written_gives_a_plain_error(tmp_path: Path) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(AutostartError, match="Could not write"):
        XdgAutostart(blocker).enable(COMMAND)


def test_percent_signs_and_shell_characters_survive_the_exec_line() -> None:
    command = ["/usr/bin/cgm-tray", "--basedir", '/tmp/100% "sure" $HOME `x` \\ end']
    assert _parse_exec(desktop_exec_line(command)) == command
    assert "%%" in desktop_exec_line(command)


def test_plain_arguments_stay_unquoted() -> None:
    assert desktop_exec_line(["/usr/bin/cgm-tray", "--demo"]) == "/usr/bin/cgm-tray --demo"


@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\0"
            ),
            min_size=1,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_every_printable_command_round_trips_through_exec(command: list[str]) -> None:
    assert _parse_exec(desktop_exec_line(command)) == command


@pytest.mark.parametrize("command", [[], [""], ["/bin/cgm-tray", "two\nlines"]])
def test_an_unusable_command_is_refused(tmp_path: Path, command: list[str]) -> None:
    with pytest.raises(AutostartError):
        XdgAutostart(tmp_path).enable(command)
    assert not XdgAutostart(tmp_path).path.exists()


# --- macOS ---------------------------------------------------------------------------------------


def test_the_launch_agent_runs_the_program_at_login_and_goes_away(tmp_path: Path) -> None:
    entry = MacLaunchAgent(tmp_path)
    entry.enable(COMMAND)
    path = tmp_path / "Library" / "LaunchAgents" / f"{APP_ID}.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == APP_ID
    assert agent["ProgramArguments"] == COMMAND
    assert agent["RunAtLoad"] is True
    assert entry.is_enabled()
    entry.disable()
    assert not path.exists()
    assert not entry.is_enabled()


def test_a_disabled_or_damaged_launch_agent_counts_as_off(tmp_path: Path) -> None:
    entry = MacLaunchAgent(tmp_path)
    entry.enable(COMMAND)
    agent = plistlib.loads(entry.path.read_bytes())
    entry.path.write_bytes(plistlib.dumps({**agent, "Disabled": True}))
    assert not entry.is_enabled()
    entry.path.write_bytes(b"not a plist")
    assert not entry.is_enabled()


# --- Windows -------------------------------------------------------------------------------------


def test_the_run_key_holds_a_quoted_command_line_until_turned_off() -> None:
    run_key = DictRunKey()
    entry = WindowsRunEntry(run_key)
    assert not entry.is_enabled()
    entry.enable([r"C:\Program Files\CGM Tray\cgm-tray.exe", "--basedir", r"D:\my data"])
    assert run_key.values == {
        "CGM Tray": r'"C:\Program Files\CGM Tray\cgm-tray.exe" --basedir "D:\my data"'
    }
    assert entry.is_enabled()
    assert entry.location.endswith(r"CurrentVersion\Run\CGM Tray")
    entry.disable()
    assert run_key.values == {}
    assert not entry.is_enabled()


class _FakeKey:
    def __init__(self, registry: _FakeWinreg, path: str) -> None:
        self.registry, self.path = registry, path

    def __enter__(self) -> _FakeKey:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _FakeWinreg(types.ModuleType):
    """Just enough of `winreg` for the Run key, recording values per key path."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_QUERY_VALUE = 1
    KEY_SET_VALUE = 2
    REG_SZ = 1

    def __init__(self) -> None:
        super().__init__("winreg")
        self.keys: dict[str, dict[str, str]] = {}

    def OpenKey(self, root: str, path: str, reserved: int, access: int) -> _FakeKey:  # noqa: N802
        if f"{root}\\{path}" not in self.keys:
            raise FileNotFoundError(path)
        return _FakeKey(self, f"{root}\\{path}")

    def CreateKeyEx(self, root: str, path: str, reserved: int, access: int) -> _FakeKey:  # noqa: N802
        self.keys.setdefault(f"{root}\\{path}", {})
        return _FakeKey(self, f"{root}\\{path}")

    def QueryValueEx(self, key: _FakeKey, name: str) -> tuple[str, int]:  # noqa: N802
        try:
            return self.keys[key.path][name], self.REG_SZ
        except KeyError:
            raise FileNotFoundError(name) from None

    def SetValueEx(self, key: _FakeKey, name: str, reserved: int, kind: int, value: str) -> None:  # noqa: N802
        self.keys[key.path][name] = value

    def DeleteValue(self, key: _FakeKey, name: str) -> None:  # noqa: N802
        try:
            del self.keys[key.path][name]
        except KeyError:
            raise FileNotFoundError(name) from None


def test_the_real_run_key_adapter_speaks_winreg(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", fake)
    entry = WindowsRunEntry(WinRegRunKey())
    assert not entry.is_enabled()
    entry.disable()  # no key yet: nothing to do
    entry.enable([r"C:\Apps\cgm-tray.exe"])
    assert fake.keys == {f"HKCU\\{WINDOWS_RUN_KEY}": {"CGM Tray": r"C:\Apps\cgm-tray.exe"}}
    assert entry.is_enabled()
    entry.disable()
    entry.disable()
    assert fake.keys[f"HKCU\\{WINDOWS_RUN_KEY}"] == {}
    assert not entry.is_enabled()


def test_winreg_is_not_imported_until_used() -> None:
    assert "winreg" not in sys.modules or sys.platform == "win32"


def test_a_registry_failure_is_a_plain_error() -> None:
    class BrokenRunKey(DictRunKey):
        def set(self, name: str, value: str) -> None:
            raise PermissionError(13, "Access is denied")

        def delete(self, name: str) -> None:
            raise PermissionError(13, "Access is denied")

    entry = WindowsRunEntry(BrokenRunKey())
    with pytest.raises(AutostartError, match="Access is denied"):
        entry.enable(["cgm-tray.exe"])
    with pytest.raises(AutostartError, match="Access is denied"):
        entry.disable()


# --- choosing the entry and the command -----------------------------------------------------------


def test_each_platform_gets_its_own_kind_of_entry(tmp_path: Path) -> None:
    linux = for_platform("linux", environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, home=tmp_path)
    assert isinstance(linux, XdgAutostart)
    assert linux.path == tmp_path / "xdg" / "autostart" / f"{APP_ID}.desktop"
    fallback = for_platform("linux", environ={"XDG_CONFIG_HOME": "relative"}, home=tmp_path)
    assert isinstance(fallback, XdgAutostart)
    assert fallback.path == tmp_path / ".config" / "autostart" / f"{APP_ID}.desktop"
    mac = for_platform("darwin", environ={}, home=tmp_path)
    assert isinstance(mac, MacLaunchAgent)
    assert mac.path.parent == tmp_path / "Library" / "LaunchAgents"
    assert isinstance(for_platform("win32", run_key=DictRunKey()), WindowsRunEntry)


def test_the_launch_command_starts_this_installation() -> None:
    command = launch_command(["--status-window"])
    assert command[-1] == "--status-window"
    assert Path(command[0]).is_absolute()
    result = subprocess.run(
        [*command[:-1], "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "cgm-tray" in result.stdout


def test_a_frozen_app_starts_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launch_command(["--x"]) == [sys.executable, "--x"]


def test_the_desktop_entry_text_is_what_a_shell_would_run() -> None:
    line = desktop_exec_line(COMMAND)
    # Without %% or backslashes the quoting matches the shell's, a quick cross-check.
    assert shlex.split(line) == COMMAND


def test_module_exposes_one_entry_per_platform() -> None:
    assert {
        type(autostart.for_platform(p, environ={}, home=Path("/h"), run_key=DictRunKey()))
        for p in ("linux", "darwin", "win32", "freebsd14")
    } == {XdgAutostart, MacLaunchAgent, WindowsRunEntry}
