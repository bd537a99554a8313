"""The password really lands in a Secret Service keyring (gnome-keyring on a private D-Bus), through
the settings dialog's Save, and `secret-tool` finds it there; removing it really removes it.

Everything runs in a child process under `dbus-run-session` with HOME, XDG dirs and the runtime
dir in a temp folder, so the real keyring and the real session bus are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cgmtray.storage.credentials import SERVICE

pytestmark = pytest.mark.desktop

USER, PASSWORD = "erin@example.com", "pa55word-Erin: with spaces & ünïcode"
TOOLS = ("dbus-run-session", "gnome-keyring-daemon", "secret-tool", "dbus-send")

#: Inside the private session: start gnome-keyring (unlocked), wait for it on the bus, run the
#: steps, and stop the daemon by its own process id.
_SESSION_SCRIPT = """\
set -u
printf 'login-keyring-password' | gnome-keyring-daemon --foreground --unlock \\
    --components=secrets >"$WORK/keyring.out" 2>"$WORK/keyring.err" &
KEYRING_PID=$!
trap 'kill "$KEYRING_PID" 2>/dev/null; wait "$KEYRING_PID" 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
       org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \\
       | grep -q 'boolean true'; then break; fi
  sleep 0.1
done
"$PYTHON" "$WORK/save_with_dialog.py" || exit 10
echo "lookup-after-save: $(secret-tool lookup service "$SERVICE" username "$KEY")"
"$PYTHON" "$WORK/forget.py" || exit 11
if secret-tool lookup service "$SERVICE" username "$KEY" >/dev/null 2>&1; then
  echo "lookup-after-delete: found"
else
  echo "lookup-after-delete: gone"
fi
"""

_SAVE_WITH_DIALOG = """\
import os, sys
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import keyring
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from cgmtray.storage.credentials import CredentialStore
from cgmtray.storage.settings import Settings
from cgmtray.ui.settings_dialog import SettingsDialog

backend = keyring.get_keyring()
print("backend:", type(backend).__module__)
app = QApplication([])
store = CredentialStore()
dialog = SettingsDialog(
    Settings(), settings_path=Path(os.environ["WORK"]) / "settings.toml", password_store=store
)
saved = []
dialog.account_changed.connect(lambda change: saved.append(change))
dialog.finished.connect(lambda _code: app.quit())

def fill_in_and_save():
    if dialog.keyring_label.text().startswith("Checking"):
        QTimer.singleShot(50, fill_in_and_save)
        return
    print("keyring-label:", dialog.keyring_label.text())
    dialog.username_edit.setText(os.environ["USER_NAME"])
    dialog.password_edit.setText(os.environ["THE_PASSWORD"])
    dialog.save_button.click()

QTimer.singleShot(0, fill_in_and_save)
QTimer.singleShot(60_000, app.quit)
dialog.show()
app.exec()
print("remembered:", saved[0].remembered if saved else None)
print("read-back-matches:", store.get("us", os.environ["USER_NAME"]) == os.environ["THE_PASSWORD"])
"""

_FORGET = """\
import os
from cgmtray.storage.credentials import CredentialStore
CredentialStore().delete("us", os.environ["USER_NAME"])
print("deleted")
"""


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _private_env(tmp_path: Path, work: Path) -> dict[str, str]:
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    for folder in (home, runtime):
        folder.mkdir(mode=0o700)
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "DBUS_SESSION_BUS_ADDRESS",
            "PYTHON_KEYRING_BACKEND",
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "GNOME_KEYRING_CONTROL",
            "SSH_AUTH_SOCK",
        )
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
        WORK=str(work),
        PYTHON=sys.executable,
        SERVICE=SERVICE,
        KEY=f"us:{USER}",
        USER_NAME=USER,
        THE_PASSWORD=PASSWORD,
    )
    return env


def test_the_dialog_saves_the_password_where_secret_tool_finds_it(tmp_path: Path) -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: dbus, gnome-keyring, libsecret-tools)")
    work = tmp_path / "work"
    work.mkdir()
    (work / "session.sh").write_text(_SESSION_SCRIPT, encoding="utf-8")
    (work / "save_with_dialog.py").write_text(textwrap.dedent(_SAVE_WITH_DIALOG), encoding="utf-8")
    (work / "forget.py").write_text(_FORGET, encoding="utf-8")
    result = subprocess.run(
        ["dbus-run-session", "--", "bash", str(work / "session.sh")],
        env=_private_env(tmp_path, work),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    lines = result.stdout.splitlines()
    assert "backend: keyring.backends.SecretService" in lines, report
    assert any(line.startswith("keyring-label: The password will be saved") for line in lines)
    assert "remembered: True" in lines, report
    assert "read-back-matches: True" in lines, report
    assert f"lookup-after-save: {PASSWORD}" in lines, report
    assert "lookup-after-delete: gone" in lines, report
    settings_text = (work / "settings.toml").read_text(encoding="utf-8")
    assert USER in settings_text
    assert PASSWORD not in settings_text
    assert PASSWORD not in result.stderr
