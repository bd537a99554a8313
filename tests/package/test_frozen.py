"""The frozen app in dist/ as a person runs it: it starts, prints a reading, reads the saved
password from a real Secret Service, shows its badge in a real tray, opens the history chart,
sounds an urgent low through the system's player, and quits cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
import tests.support.processes as e2e
from tests.support.dbus import PrivateBus
from tests.support.processes import quit_and_check, stop_process
from tests.support.xdesktop import (
    MIN_BADGE_PIXELS,
    MIN_BADGE_SIDE,
    ScreenRect,
    TrayDesktop,
    badge_background,
    is_range_update,
    open_tray_menu,
    tray_icons_box,
    wait_until,
)

from cgmtray import __version__
from cgmtray.storage.credentials import SERVICE
from cgmtray.storage.paths import app_paths
from cgmtray.storage.settings import one_person_settings, save_settings

LINUX: Final = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="checks the Linux one-folder layout")
#: A frozen run of `--version` or `now` (start-up unpacks nothing: one-folder) ends within this.
RUN_TIMEOUT_S: Final = 60.0
#: From start to the first alert, the first sound, the history window: generous for a busy CI.
APP_TIMEOUT_S: Final = 30.0
#: SIGTERM to exit, and the badge or a window to show up.
QUIT_TIMEOUT_S: Final = 30.0
IN_RANGE_MGDL: Final = 112
URGENT_LOW_MGDL: Final = 50


def run_frozen(cli: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cli), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def errors_logged(events: list[e2e.Event]) -> list[e2e.Event]:
    return [e for e in events if e.get("level") in ("error", "critical")]


def publish_recent(fake: e2e.FakeShareProcess, values: list[int]) -> None:
    """Readings 5 minutes apart ending just now (by the fake's clock), visible at once."""
    now = fake.now()
    times = [now - (len(values) - k) * timedelta(minutes=5) for k in range(len(values))]
    fake.publish([(when, mgdl, when) for when, mgdl in zip(times, values, strict=True)])


# --- the command line --------------------------------------------------------------------------


def test_the_frozen_app_prints_the_version_of_the_wheel(frozen_cli: Path, tmp_path: Path) -> None:
    done = run_frozen(frozen_cli, "--version", env=e2e.isolated_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"cgm-tray {__version__}"


def test_the_frozen_app_prints_a_demo_reading_as_json(frozen_cli: Path, tmp_path: Path) -> None:
    done = run_frozen(
        frozen_cli,
        "now",
        "--demo",
        "--json",
        "--basedir",
        str(tmp_path / "base"),
        env=e2e.isolated_env(tmp_path / "home"),
    )
    assert done.returncode == 0, done.stderr
    reading = json.loads(done.stdout)
    value = reading["value_mgdl"]
    assert value in ("LOW", "HIGH") or (isinstance(value, int) and 40 <= value <= 400)
    assert reading["freshness"] == "fresh"
    assert reading["trend"]
    assert reading["arrow"] is not None
    assert datetime.fromisoformat(reading["time"]).tzinfo is not None
    assert "Traceback" not in done.stderr


# --- the system keyring ------------------------------------------------------------------------


@pytest.fixture
def secret_service(private_bus: PrivateBus, tmp_path: Path) -> Iterator[dict[str, str]]:
    """gnome-keyring's Secret Service, unlocked, on the test's private bus and in a private home;
    yields the environment to run clients in (no PYTHON_KEYRING_BACKEND: keyring must find the
    Secret Service backend itself)."""
    for tool in ("gnome-keyring-daemon", "secret-tool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: gnome-keyring, libsecret-tools)")
    home, runtime = tmp_path / "keyring-home", tmp_path / "keyring-run"
    for folder in (home, runtime):
        folder.mkdir(mode=0o700)
    env = private_bus.environment(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
    )
    for name in ("PYTHON_KEYRING_BACKEND", "GNOME_KEYRING_CONTROL", "SSH_AUTH_SOCK", "DISPLAY"):
        env.pop(name, None)
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert daemon.stdin is not None
        daemon.stdin.write("login-keyring-password")
        daemon.stdin.close()
        private_bus.wait_for_name("org.freedesktop.secrets")
        yield env
    finally:
        stop_process(daemon)


def test_the_frozen_app_reads_the_saved_password_from_the_secret_service(
    frozen_rig: e2e.Rig, frozen_cli: Path, secret_service: dict[str, str], tmp_path: Path
) -> None:
    """keyring finds its backends through entry points: this fails if the frozen app lacks
    keyring's metadata, its SecretService backend, secretstorage, jeepney or cryptography."""
    fake = frozen_rig.start_fake()
    publish_recent(fake, [IN_RANGE_MGDL - 4, IN_RANGE_MGDL])
    basedir = tmp_path / "base"
    settings_file = app_paths(basedir).settings_file
    settings_file.parent.mkdir(parents=True)
    save_settings(
        one_person_settings(region="us", username=frozen_rig.username, share_url=fake.base_url),
        settings_file,
    )
    stored = subprocess.run(
        ["secret-tool", "store", "--label=CGM Tray test", "service", SERVICE,
         "username", f"us:{frozen_rig.username}"],
        env=secret_service, input=frozen_rig.password, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr

    done = run_frozen(frozen_cli, "now", "--json", "--basedir", str(basedir), env=secret_service)

    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert json.loads(done.stdout)["value_mgdl"] == IN_RANGE_MGDL
    assert frozen_rig.password not in done.stdout + done.stderr


# --- the tray app ------------------------------------------------------------------------------


@pytest.mark.desktop
def test_the_frozen_tray_shows_its_badge_opens_the_chart_and_quits_on_sigterm(
    tray_desktop: TrayDesktop, frozen_cli: Path, tmp_path: Path
) -> None:
    argv = [str(frozen_cli), "--demo", "--basedir", str(tmp_path / "base"), "--log-json"]
    app = e2e.spawn("frozen-tray", argv, tray_desktop.env(QT_QPA_PLATFORM="xcb"))
    try:
        _, update = app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S, what="a reading")
        panel = tray_desktop.panel()
        assert panel is not None
        colour = badge_background(update)
        badge: list[tuple[int, ScreenRect | None]] = [(0, None)]

        def badge_on_screen() -> bool:
            badge[0] = count, box = tray_desktop.grab().colour_box(colour, panel)
            return (
                box is not None
                and count >= MIN_BADGE_PIXELS
                and min(box.width, box.height) >= MIN_BADGE_SIDE
            )

        if not tray_desktop.poll(badge_on_screen, QUIT_TIMEOUT_S):
            shot = tray_desktop.save_screenshot(tmp_path / "screen.png")
            pytest.fail(f"no {colour} badge in the tray {panel}: {badge[0]}; see {shot}")
        box = badge[0][1]
        assert box is not None
        # The demo shows its family (an icon per person): the coloured badges are the app's icons.
        assert tray_icons_box(tray_desktop).contains(box), "the coloured badge is the app's icon"

        open_tray_menu(tray_desktop)
        tray_desktop.xdotool("key", "h")  # "Open &history…": pyqtgraph, numpy, QtOpenGL
        if not tray_desktop.poll(
            lambda: bool(tray_desktop.visible("--name", "History")), APP_TIMEOUT_S
        ):
            pytest.fail(f"no history window; the app said: {app.stderr.lines[-8:]}")
        assert app.popen.poll() is None

        code, took = app.terminate(timeout=QUIT_TIMEOUT_S)
        assert code == 0, f"exit {code} after {took:.1f} s: {app.stderr.lines[-5:]}"
        assert any(e.get("event") == "app.stopping" for e in app.stderr.events)
        assert errors_logged(app.stderr.events) == []
        # the window icon is drawn from the bundled SVG (QtSvg), not a fallback or nothing
        assert [e for e in app.stderr.events if "app icon" in str(e.get("msg", ""))] == []
        assert not [line for line in app.stderr.lines if "Traceback" in line]
    finally:
        app.cleanup()


@linux_only
def test_an_urgent_low_sounds_the_alarm_through_the_system_player_with_system_libraries(
    frozen_rig: e2e.Rig, frozen_folder: Path, tmp_path: Path
) -> None:
    """On Linux the frozen app has no Qt Multimedia: the alarm must go to pw-play (here a
    stand-in that records what it was given), with the bundled WAV and without the bundle's
    libraries on LD_LIBRARY_PATH (they would shadow the player's own)."""
    record = tmp_path / "played.txt"
    players = tmp_path / "bin"
    players.mkdir()
    player = players / "pw-play"
    player.write_text(
        '#!/bin/sh\n{ printf "arg=%s\\n" "$@"; printf "ld=%s\\n" "${LD_LIBRARY_PATH-}"; }'
        ' >>"$PLAYED"\n',
        encoding="utf-8",
    )
    player.chmod(0o755)
    frozen_rig.env.update(PATH=f"{players}{os.pathsep}{frozen_rig.env['PATH']}", PLAYED=str(record))
    fake = frozen_rig.start_fake()
    publish_recent(fake, [IN_RANGE_MGDL] * 12 + [60, URGENT_LOW_MGDL])

    tray = frozen_rig.start_tray(fake)

    tray.log.wait_event("alert.raised", kind="urgent_low", timeout=APP_TIMEOUT_S)
    _, started = tray.log.wait_event("sound.started", sound="alarm", timeout=APP_TIMEOUT_S)
    assert started["backend"] == "player"
    wait_until(lambda: "ld=" in _text(record), APP_TIMEOUT_S, "the player's run recorded")
    lines = _text(record).splitlines()
    wav = Path(next(line for line in lines if line.startswith("arg=")).removeprefix("arg="))
    assert wav.resolve() == (frozen_folder / "_internal/cgmtray/assets/alarm.wav").resolve()
    with wave.open(str(wav), "rb") as sound:
        assert sound.getnframes() > 0
    library_path = next(line for line in lines if line.startswith("ld=")).removeprefix("ld=")
    assert str(frozen_folder) not in library_path
    assert not [e for e in tray.log.events if e.get("event") == "sound.unavailable"]
    quit_and_check(frozen_rig, tray)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


# --- what is in the folder ---------------------------------------------------------------------


@linux_only
def test_the_folder_has_the_qt_plugins_the_tray_needs_and_leaves_out_the_unused(
    frozen_folder: Path,
) -> None:
    internal = frozen_folder / "_internal"
    plugins = internal / "PySide6" / "Qt" / "plugins"
    needed = [
        "platforms/libqxcb.so",  # X11 desktops
        "platforms/libqwayland.so",  # Wayland desktops
        "platforms/libqoffscreen.so",
        "imageformats/libqsvg.so",  # the app icon is an SVG
        "iconengines/libqsvgicon.so",
        "platformthemes/libqxdgdesktopportal.so",
        "networkinformation/libqnetworkmanager.so",  # poll at once when the network returns
        "tls/libqopensslbackend.so",
    ]
    assert [p for p in needed if not (plugins / p).is_file()] == []
    assets = {p.name for p in (internal / "cgmtray" / "assets").iterdir()}
    assert assets >= {"alarm.wav", "chime.wav", "app-icon.svg", "app-icon-256.png"}
    assert list(internal.glob("keyring-*.dist-info/entry_points.txt")), "keyring's backends"

    everything = [p.relative_to(frozen_folder).as_posix() for p in frozen_folder.rglob("*")]
    unused = (
        "QtWebEngine", "Qt3D", "libQt6Quick", "libQt6Qml", "QtMultimedia", "libavcodec",
        "tkinter", "libtk", "libgtk-3", "PySide6/Qt/translations", "qtvirtualkeyboard",
    )  # fmt: skip
    assert [p for p in everything if any(name in p for name in unused)] == []


@linux_only
def test_the_folder_carries_the_desktop_integration_files(frozen_folder: Path) -> None:
    share = frozen_folder / "share"
    desktop = share / "applications" / "io.github.cgmtray.CgmTray.desktop"
    assert "Exec=cgm-tray" in desktop.read_text(encoding="utf-8")
    assert (share / "metainfo" / "io.github.cgmtray.CgmTray.metainfo.xml").is_file()
    assert (share / "icons/hicolor/scalable/apps/io.github.cgmtray.CgmTray.svg").is_file()
    assert (share / "icons/hicolor/48x48/apps/io.github.cgmtray.CgmTray.png").is_file()
