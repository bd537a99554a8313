"""A real notification daemon (dunst under Xvfb, on a private bus) takes and answers our alerts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from tests.support.dbus import NOTIFICATIONS_NAME, STARTUP_TIMEOUT_S, PrivateBus
from tests.support.notifications import URGENT_LOW, quiet_alarm
from tests.support.processes import read_line, stop_process

from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound

pytestmark = pytest.mark.desktop


#: A rule that marks what dunst itself classed as critical, so the history can show it.
DUNSTRC = """[global]
    follow = none

[critical_marker]
    msg_urgency = critical
    format = "critical: %s"
"""


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def x_display() -> Iterator[str]:
    """A private Xvfb server (dunst draws on X); it picks a free display number itself."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package: xvfb)")
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as numbers:
            display = read_line(numbers, STARTUP_TIMEOUT_S).strip()
        if not display:
            raise RuntimeError("Xvfb did not start")
        yield f":{display}"
    finally:
        stop_process(process)


@pytest.fixture
def dunst(private_bus: PrivateBus, x_display: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """dunst owning org.freedesktop.Notifications on the private bus; yields dunstctl's env."""
    if shutil.which("dunst") is None or shutil.which("dunstctl") is None:
        pytest.skip("dunst is not installed (Debian package: dunst)")
    config = tmp_path / "dunstrc"
    config.write_text(DUNSTRC, encoding="utf-8")
    env = private_bus.environment(
        DISPLAY=x_display, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config")
    )
    env.pop("WAYLAND_DISPLAY", None)
    with (tmp_path / "dunst.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            ["dunst", "-config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            private_bus.wait_for_name(NOTIFICATIONS_NAME)
            yield env
        finally:
            stop_process(process)


def dunstctl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["dunstctl", *args], env=env, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def history(env: dict[str, str]) -> list[dict[str, Any]]:
    """dunst's closed notifications, newest first, as {field: value}."""
    entries = json.loads(dunstctl(env, "history"))["data"][0]
    return [{name: field["data"] for name, field in entry.items()} for entry in entries]


@pytest.fixture
def sound(qtbot: QtBot) -> Iterator[AlarmSound]:
    with quiet_alarm() as alarm:
        yield alarm


@pytest.fixture
def notifier(
    qtbot: QtBot, private_bus: PrivateBus, dunst: dict[str, str], sound: AlarmSound
) -> Iterator[Notifier]:
    sink: list[NotificationRequest] = []
    shown = Notifier(
        tray=None, status_sink=sink.append, sound=sound, bus_address=private_bus.address
    )
    yield shown
    shown.shutdown()
    assert sink == []  # everything went to dunst


def test_dunst_shows_an_urgent_low_updates_it_in_place_and_closes_it(
    qtbot: QtBot, notifier: Notifier, dunst: dict[str, str]
) -> None:
    with qtbot.waitSignal(notifier.delivered, timeout=5000) as delivered:
        notifier.show(URGENT_LOW)
    assert delivered.args == [URGENT_LOW.key, "dbus"]
    assert dunstctl(dunst, "count", "displayed") == "1"

    update = NotificationRequest(
        key=URGENT_LOW.key,
        kind="urgent_low",
        title="Urgent low: 48 mg/dL ↓",
        body="Still urgently low.",
        urgent=True,
        sound="alarm",
    )
    with qtbot.waitSignal(notifier.delivered, timeout=5000):
        notifier.show(update)
    assert dunstctl(dunst, "count", "displayed") == "1"  # replaced, not stacked

    notifier.close(URGENT_LOW.key)
    qtbot.waitUntil(lambda: dunstctl(dunst, "count", "history") == "1", timeout=5000)
    assert dunstctl(dunst, "count", "displayed") == "0"
    [closed] = history(dunst)
    assert closed["summary"] == "Urgent low: 48 mg/dL ↓"
    assert closed["appname"] == "CGM Tray"
    assert closed["message"] == "critical: Urgent low: 48 mg/dL ↓"  # urgency 2 reached dunst
    assert closed["timeout"] == 0  # stays until dismissed
    assert closed["category"] == "device"


def test_dismissing_in_dunst_acknowledges_and_silences_the_alarm(
    qtbot: QtBot, notifier: Notifier, dunst: dict[str, str], sound: AlarmSound
) -> None:
    with qtbot.waitSignal(notifier.delivered, timeout=5000):
        notifier.show(URGENT_LOW)
    assert sound.playing
    # The answer as the controller's apply_control gives it (the notifier only reports).
    notifier.acknowledged.connect(lambda _key, kind: notifier.close_kinds({kind}))

    with qtbot.waitSignal(notifier.acknowledged, timeout=5000) as acknowledged:
        dunstctl(dunst, "close")

    assert acknowledged.args == [URGENT_LOW.key, "urgent_low"]
    assert not sound.playing
