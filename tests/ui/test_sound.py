"""The alarm loops until stopped, the chime plays once, a machine without audio never crashes."""

from __future__ import annotations

import itertools
import logging
import struct
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from pytestqt.qtbot import QtBot

from cgmtray.ui import sound as sound_module
from cgmtray.ui.sound import INFINITE_LOOPS, SOUND_NAMES, AlarmSound, sound_duration_ms, sound_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def alarm(qtbot: QtBot) -> Iterator[AlarmSound]:
    sound = AlarmSound()
    yield sound
    sound.stop()
    sound.deleteLater()


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
    assert not alarm.playing


def test_a_chime_plays_once_and_ends_by_itself(qtbot: QtBot, alarm: AlarmSound) -> None:
    alarm.play("chime", loop=False)
    assert alarm.playing

    with qtbot.waitSignal(alarm.playing_changed, timeout=5000) as changed:
        pass
    assert changed.args == [False]
    assert not alarm.playing


def test_stop_when_silent_and_unknown_sounds(alarm: AlarmSound) -> None:
    alarm.stop()
    assert not alarm.playing
    with pytest.raises(ValueError, match="unknown sound"):
        alarm.play("siren", loop=True)
    assert not alarm.playing


def test_without_an_audio_output_it_stays_silent_and_says_so_once(
    alarm: AlarmSound, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sound_module, "_multimedia", lambda: None)

    with caplog.at_level(logging.WARNING, logger="cgmtray.ui.sound"):
        alarm.play("alarm", loop=True)
        alarm.play("alarm", loop=True)

    assert not alarm.available
    assert alarm.playing  # the intent is kept, so the alarm logic still works
    unavailable = [r for r in caplog.records if getattr(r, "event", "") == "sound.unavailable"]
    assert len(unavailable) == 1


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
    alarm: AlarmSound, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeEffect.made.clear()
    devices = SimpleNamespace(audioOutputs=lambda: ["speakers"])
    fake_qt = SimpleNamespace(QMediaDevices=devices, QSoundEffect=FakeEffect)
    monkeypatch.setattr(sound_module, "_multimedia", lambda: fake_qt)

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


def test_real_qt_multimedia_when_this_machine_has_it(alarm: AlarmSound) -> None:
    try:
        from PySide6 import QtMultimedia
    except ImportError as exc:
        pytest.skip(f"Qt Multimedia cannot load here: {exc}")
    assert QtMultimedia.QSoundEffect.Loop.Infinite.value == INFINITE_LOOPS
    alarm.play("alarm", loop=True)  # with or without an output device: no crash
    assert alarm.playing
