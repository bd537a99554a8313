"""The alarm loops until stopped, the chime plays once, a machine without audio never crashes."""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from PySide6.QtCore import QProcess, QTimer
from pytestqt.qtbot import QtBot

from cgmtray.ui import sound as sound_module
from cgmtray.ui import sound_process
from cgmtray.ui.sound import (
    INFINITE_LOOPS,
    ONCE_GRACE_MS,
    SOUND_NAMES,
    AlarmSound,
    sound_duration_ms,
    sound_file,
)

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
LINUX = sys.platform.startswith("linux")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


class FakePlayer:
    """A real executable standing in for pw-play/paplay/aplay: each run appends "pid args..."."""

    def __init__(self, directory: Path, name: str, body: str, *, python: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / f"{name}.runs"
        self.path = directory / name
        if python:
            script = f"#!{sys.executable} -S\nimport os, sys\nLOG = {str(self.log)!r}\n"
            script += "with open(LOG, 'a') as log:\n"
            script += "    log.write(' '.join([str(os.getpid()), *sys.argv[1:]]) + '\\n')\n"
        else:
            script = f'#!/bin/sh\necho "$$ $*" >> "{self.log}"\n'
        self.path.write_text(script + body)
        self.path.chmod(0o755)

    @property
    def runs(self) -> list[list[str]]:
        """One [pid, arg, ...] per start, oldest first."""
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]


@pytest.fixture
def quick_player(tmp_path: Path) -> FakePlayer:
    """Plays "instantly" and exits 0."""
    return FakePlayer(tmp_path / "bin", "quick-play", "exit 0\n")


@pytest.fixture
def failing_player(tmp_path: Path) -> FakePlayer:
    """Fails at once, the way paplay does with no sound server."""
    return FakePlayer(tmp_path / "bin", "failing-play", "echo 'Connection refused' >&2\nexit 1\n")


@pytest.fixture
def hanging_player(tmp_path: Path) -> FakePlayer:
    """Never ends by itself (a player stuck on a suspended sink)."""
    body = "import signal\nsignal.pause()\n"
    return FakePlayer(tmp_path / "bin", "hanging-play", body, python=True)


@pytest.fixture
def make_sound(qtbot: QtBot) -> Iterator[Callable[..., AlarmSound]]:
    made: list[AlarmSound] = []

    def make(**options: object) -> AlarmSound:
        sound = AlarmSound(**options)  # type: ignore[arg-type]
        made.append(sound)
        return sound

    yield make
    for sound in made:
        sound.stop()
        sound.deleteLater()


@pytest.fixture(params=["player", "qt"])
def alarm(
    request: pytest.FixtureRequest,
    make_sound: Callable[..., AlarmSound],
    quick_player: FakePlayer,
) -> AlarmSound:
    """An AlarmSound on each backend: a (fake) external player, and Qt Multimedia as it is here."""
    if request.param == "player":
        return make_sound(player=[str(quick_player.path)])
    return make_sound(backend="qt")


def nothing_left_running(sound: AlarmSound) -> bool:
    """No player process runs and no timer is set that could start one."""
    timers = sound.findChildren(QTimer)
    processes = sound.findChildren(QProcess)
    return not any(t.isActive() for t in timers) and all(
        p.state() == QProcess.ProcessState.NotRunning for p in processes
    )


def pid_alive(pid: int) -> bool:
    """Whether the process exists at all (a zombie still does)."""
    return Path(f"/proc/{pid}").exists()


def unavailable_events(caplog: pytest.LogCaptureFixture, reason: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "event", "") == "sound.unavailable" and getattr(r, "reason", "") == reason
    ]


def samples(path: Path) -> tuple[int, ...]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        frames = wav.readframes(wav.getnframes())
    return struct.unpack(f"<{len(frames) // 2}h", frames)


@pytest.mark.parametrize("name", SOUND_NAMES)
def test_the_shipped_sounds_are_audible_and_start_and_end_in_silence(name: str) -> None:
    pcm = samples(sound_file(name))

    assert max(abs(s) for s in pcm) > 8000  # loud enough to hear
    assert pcm[0] == 0
    assert pcm[-1] == 0  # no click at the loop seam


def test_the_alarm_lasts_about_a_second_and_the_chime_is_short() -> None:
    assert 900 <= sound_duration_ms("alarm") <= 1100
    assert 500 <= sound_duration_ms("chime") <= 2000


def test_the_alarm_alternates_two_tones() -> None:
    pcm = samples(sound_file("alarm"))
    beeps: list[int] = []  # zero crossings per beep: a proxy for each beep's pitch
    crossings = 0
    silent_run = 0
    for previous, current in itertools.pairwise(pcm):
        if current == 0:
            silent_run += 1
            if silent_run == 100 and crossings:
                beeps.append(crossings)
                crossings = 0
            continue
        silent_run = 0
        if (previous < 0) != (current < 0):
            crossings += 1
    if crossings:
        beeps.append(crossings)

    assert len(beeps) == 4
    assert beeps[0] == beeps[2] != beeps[1] == beeps[3]


def test_the_sound_files_are_what_the_script_makes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "packaging" / "make_sounds.py"), "--out", str(tmp_path)],
        check=True,
        timeout=60,
    )
    for name in SOUND_NAMES:
        assert (tmp_path / f"{name}.wav").read_bytes() == sound_file(name).read_bytes()


# --- what every backend does -------------------------------------------------------------------


def test_an_alarm_keeps_playing_until_stopped(qtbot: QtBot, alarm: AlarmSound) -> None:
    with qtbot.waitSignal(alarm.playing_changed) as changed:
        alarm.play("alarm", loop=True)
    assert changed.args == [True]

    with qtbot.assertNotEmitted(alarm.playing_changed, wait=sound_duration_ms("chime") + 300):
        pass
    assert alarm.playing
    assert alarm.current == "alarm"

    with qtbot.waitSignal(alarm.playing_changed) as changed:
        alarm.stop()
    assert changed.args == [False]
    assert nothing_left_running(alarm)
    assert not alarm.playing


def test_a_chime_plays_once_and_ends_by_itself(qtbot: QtBot, alarm: AlarmSound) -> None:
    alarm.play("chime", loop=False)
    assert alarm.playing

    with qtbot.waitSignal(alarm.playing_changed, timeout=60_000) as changed:
        pass
    assert changed.args == [False]
    assert not alarm.playing


def test_stop_when_silent_and_unknown_sounds(alarm: AlarmSound) -> None:
    alarm.stop()
    assert not alarm.playing
    with pytest.raises(ValueError, match="unknown sound"):
        alarm.play("siren", loop=True)
    assert not alarm.playing


# --- Linux: an external player process ---------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ({"pw-play", "paplay", "aplay"}, ("/usr/bin/pw-play",)),
        ({"paplay", "aplay"}, ("/usr/bin/paplay",)),
        ({"aplay"}, ("/usr/bin/aplay", "-q")),
        (set(), None),
    ],
)
def test_pipewire_is_preferred_then_pulseaudio_then_alsa(
    installed: set[str], expected: tuple[str, ...] | None
) -> None:
    def which(program: str) -> str | None:
        return f"/usr/bin/{program}" if program in installed else None

    assert sound_process.find_player(which) == expected


def test_the_alarm_player_is_started_again_each_time_it_ends_until_stopped(
    qtbot: QtBot, make_sound: Callable[..., AlarmSound], quick_player: FakePlayer
) -> None:
    alarm = make_sound(player=[str(quick_player.path)])
    alarm.play("alarm", loop=True)

    qtbot.waitUntil(lambda: len(quick_player.runs) >= 2, timeout=WAIT_MS)
    assert alarm.available
    assert alarm.playing
    assert {tuple(run[1:]) for run in quick_player.runs} == {(str(sound_file("alarm")),)}

    with qtbot.waitSignal(alarm.playing_changed) as changed:
        alarm.stop()
    assert changed.args == [False]
    assert nothing_left_running(alarm)  # so it cannot be started again


def test_stop_kills_the_running_player_and_leaves_no_process(
    qtbot: QtBot, make_sound: Callable[..., AlarmSound], hanging_player: FakePlayer
) -> None:
    alarm = make_sound(player=[str(hanging_player.path)])
    alarm.play("alarm", loop=True)
    qtbot.waitUntil(lambda: len(hanging_player.runs) == 1, timeout=WAIT_MS)
    pid = int(hanging_player.runs[0][0])
    assert pid_alive(pid)

    alarm.stop()

    assert not pid_alive(pid)  # killed and reaped: not even a zombie is left
    assert nothing_left_running(alarm)
    assert len(hanging_player.runs) == 1


def test_a_new_sound_replaces_the_running_player(
    qtbot: QtBot, make_sound: Callable[..., AlarmSound], hanging_player: FakePlayer
) -> None:
    alarm = make_sound(player=[str(hanging_player.path)])
    alarm.play("alarm", loop=True)
    qtbot.waitUntil(lambda: len(hanging_player.runs) == 1, timeout=WAIT_MS)

    alarm.play("chime", loop=False)

    assert not pid_alive(int(hanging_player.runs[0][0]))
    qtbot.waitUntil(lambda: len(hanging_player.runs) == 2, timeout=WAIT_MS)
    assert hanging_player.runs[1][1:] == [str(sound_file("chime"))]
    assert alarm.current == "chime"


def test_a_chime_runs_its_player_once_with_the_chime_wav(
    qtbot: QtBot, make_sound: Callable[..., AlarmSound], quick_player: FakePlayer
) -> None:
    chime = make_sound(player=[str(quick_player.path), "--quiet"])
    with qtbot.waitSignal(chime.playing_changed, timeout=WAIT_MS) as changed:
        chime.play("chime", loop=False)
    assert changed.args == [True]

    with qtbot.waitSignal(chime.playing_changed, timeout=WAIT_MS) as changed:
        pass
    assert changed.args == [False]
    assert [run[1:] for run in quick_player.runs] == [["--quiet", str(sound_file("chime"))]]
    assert nothing_left_running(chime)


def test_a_chime_whose_player_hangs_is_cut_off_soon_after_its_length(
    qtbot: QtBot, make_sound: Callable[..., AlarmSound], hanging_player: FakePlayer
) -> None:
    chime = make_sound(player=[str(hanging_player.path)])
    chime.play("chime", loop=False)
    qtbot.waitUntil(lambda: len(hanging_player.runs) == 1, timeout=WAIT_MS)

    limit = sound_duration_ms("chime") + ONCE_GRACE_MS + WAIT_MS
    with qtbot.waitSignal(chime.playing_changed, timeout=limit) as changed:
        pass
    assert changed.args == [False]
    assert not pid_alive(int(hanging_player.runs[0][0]))
    assert len(hanging_player.runs) == 1


def test_a_player_that_fails_at_once_is_not_rerun_and_warns_once(
    qtbot: QtBot,
    make_sound: Callable[..., AlarmSound],
    failing_player: FakePlayer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alarm = make_sound(player=[str(failing_player.path)])
    with caplog.at_level(logging.WARNING):
        alarm.play("alarm", loop=True)
        qtbot.waitUntil(lambda: bool(unavailable_events(caplog, "player_failed")), timeout=WAIT_MS)

        assert nothing_left_running(alarm)  # no rerun is running or planned
        assert len(failing_player.runs) <= 2
        assert alarm.playing  # the intent is kept, so the alarm logic still works
        assert not alarm.available  # a notification server may sound instead
        [warning] = unavailable_events(caplog, "player_failed")
        assert "Connection refused" in warning.getMessage()

        alarm.play("chime", loop=False)  # the next sound tries the player again ...
        qtbot.waitUntil(lambda: len(failing_player.runs) >= 2, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: nothing_left_running(alarm), timeout=WAIT_MS)

    assert len(unavailable_events(caplog, "player_failed")) == 1  # ... without a second warning


def test_a_looping_player_that_fails_twice_in_a_row_is_given_up(
    qtbot: QtBot,
    make_sound: Callable[..., AlarmSound],
    failing_player: FakePlayer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sound_process, "QUICK_FAILURE_S", 0.0)  # its failures look slow
    alarm = make_sound(player=[str(failing_player.path)])
    with caplog.at_level(logging.WARNING):
        alarm.play("alarm", loop=True)
        qtbot.waitUntil(lambda: bool(unavailable_events(caplog, "player_failed")), timeout=WAIT_MS)

    assert len(failing_player.runs) == 2
    assert nothing_left_running(alarm)
    assert alarm.playing


def test_a_player_that_cannot_start_warns_once(
    qtbot: QtBot,
    make_sound: Callable[..., AlarmSound],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alarm = make_sound(player=[str(tmp_path / "uninstalled-play")])
    with caplog.at_level(logging.WARNING):
        alarm.play("alarm", loop=True)
        qtbot.waitUntil(lambda: bool(unavailable_events(caplog, "player_failed")), timeout=WAIT_MS)

    assert nothing_left_running(alarm)
    assert not alarm.available
    assert alarm.playing


def test_without_a_player_it_stays_silent_and_says_so_once(
    make_sound: Callable[..., AlarmSound],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sound_process, "detected_player", lambda: None)
    alarm = make_sound(backend="player")

    with caplog.at_level(logging.WARNING):
        alarm.play("alarm", loop=True)
        alarm.play("chime", loop=False)
        alarm.play("alarm", loop=True)

    assert not alarm.available
    assert alarm.playing
    assert len(unavailable_events(caplog, "no_player")) == 1
    assert alarm.findChildren(QProcess) == []


def test_a_player_command_needs_a_program_and_the_player_backend(
    make_sound: Callable[..., AlarmSound],
) -> None:
    with pytest.raises(ValueError, match="at least a program"):
        make_sound(player=[])
    with pytest.raises(ValueError, match="'player' backend"):
        make_sound(player=["/usr/bin/paplay"], backend="qt")


SUBPROCESS_CHECK = """
import json, sys
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
from cgmtray.ui.sound import AlarmSound

app = QCoreApplication([])
sound = AlarmSound()
runs = sys.argv[1]

def played_twice() -> bool:
    try:
        with open(runs) as log:
            return len(log.readlines()) >= 2
    except FileNotFoundError:
        return False

waiting = QEventLoop()
poll = QTimer(interval=20, timeout=lambda: played_twice() and waiting.quit())
give_up = QTimer(singleShot=True, interval=20_000, timeout=waiting.quit)
sound.play("alarm", loop=True)
poll.start()
give_up.start()
waiting.exec()
poll.stop()
give_up.stop()
sound.stop()
report = {"multimedia": "PySide6.QtMultimedia" in sys.modules, "available": sound.available}
print(json.dumps(report))
"""


@pytest.mark.skipif(not LINUX, reason="the external player is the Linux backend")
def test_on_linux_the_alarm_uses_the_player_on_path_and_never_loads_qt_multimedia(
    tmp_path: Path,
) -> None:
    paplay = FakePlayer(tmp_path / "bin", "paplay", "exit 0\n")  # no pw-play on this PATH
    env = {
        **os.environ,
        "PATH": str(tmp_path / "bin"),
        "HOME": str(tmp_path),
        "QT_QPA_PLATFORM": "offscreen",
    }
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_CHECK, str(paplay.log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(done.stdout.splitlines()[-1]) == {"multimedia": False, "available": True}
    assert len(paplay.runs) >= 2
    assert {tuple(run[1:]) for run in paplay.runs} == {(str(sound_file("alarm")),)}


# --- macOS and Windows: QSoundEffect (forced here with backend="qt") ---------------------------


def test_without_an_audio_output_it_stays_silent_and_says_so_once(
    make_sound: Callable[..., AlarmSound],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sound_module, "_multimedia", lambda: None)
    alarm = make_sound(backend="qt")

    with caplog.at_level(logging.WARNING, logger="cgmtray.ui.sound"):
        alarm.play("alarm", loop=True)
        alarm.play("alarm", loop=True)

    assert not alarm.available
    assert alarm.playing  # the intent is kept, so the alarm logic still works
    assert len(unavailable_events(caplog, "no_audio_output")) == 1


class FakeEffect:
    """Stands in for QSoundEffect where Qt Multimedia cannot load (no libpulse here)."""

    made: ClassVar[list[FakeEffect]] = []

    class Status:
        Error = "error"

    def __init__(self, parent: object) -> None:
        self.source = ""
        self.loops = 0
        self.playing = False
        self.statusChanged = SimpleNamespace(connect=lambda slot: None)
        FakeEffect.made.append(self)

    def setSource(self, url: object) -> None:  # noqa: N802 - Qt's name
        self.source = str(getattr(url, "toLocalFile", lambda: url)())

    def setVolume(self, volume: float) -> None:  # noqa: N802 - Qt's name
        pass

    def setLoopCount(self, loops: int) -> None:  # noqa: N802 - Qt's name
        self.loops = loops

    def play(self) -> None:
        self.playing = True

    def stop(self) -> None:
        self.playing = False

    def status(self) -> str:
        return "ready"


def test_with_an_audio_output_the_alarm_loops_the_shipped_wav(
    make_sound: Callable[..., AlarmSound], monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeEffect.made.clear()
    devices = SimpleNamespace(audioOutputs=lambda: ["speakers"])
    fake_qt = SimpleNamespace(QMediaDevices=devices, QSoundEffect=FakeEffect)
    monkeypatch.setattr(sound_module, "_multimedia", lambda: fake_qt)
    alarm = make_sound(backend="qt")

    alarm.play("alarm", loop=True)
    assert alarm.available
    [effect] = FakeEffect.made
    assert Path(effect.source) == sound_file("alarm")
    assert (effect.loops, effect.playing) == (INFINITE_LOOPS, True)

    alarm.play("chime", loop=False)
    assert not effect.playing  # one sound at a time
    chime = FakeEffect.made[-1]
    assert (chime.loops, chime.playing) == (1, True)

    alarm.stop()
    assert not chime.playing


def test_real_qt_multimedia_when_this_machine_has_it(
    make_sound: Callable[..., AlarmSound],
) -> None:
    try:
        from PySide6 import QtMultimedia
    except ImportError as exc:
        pytest.skip(f"Qt Multimedia cannot load here: {exc}")
    alarm = make_sound(backend="qt")
    assert QtMultimedia.QSoundEffect.Loop.Infinite.value == INFINITE_LOOPS
    alarm.play("alarm", loop=True)  # with or without an output device: no crash
    assert alarm.playing
