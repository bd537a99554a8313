"""Alert sounds: a looping alarm for urgent alerts, a chime; silent but honest without audio."""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import logging
import wave
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import QObject, QTimer, QUrl, Signal, Slot

if TYPE_CHECKING:
    from PySide6.QtMultimedia import QSoundEffect

logger = logging.getLogger(__name__)

#: The sounds shipped in cgmtray/assets (written by packaging/make_sounds.py).
SOUND_NAMES: Final = ("alarm", "chime")
#: QSoundEffect.Loop.Infinite as the int setLoopCount takes.
INFINITE_LOOPS: Final = -2

_extracted_files = contextlib.ExitStack()
atexit.register(_extracted_files.close)


@cache
def sound_file(name: str) -> Path:
    """A real file for the named WAV (extracted to a temp file when the package is zipped)."""
    if name not in SOUND_NAMES:
        raise ValueError(f"unknown sound {name!r}; expected one of {SOUND_NAMES}")
    resource = importlib.resources.files("cgmtray.assets") / f"{name}.wav"
    if isinstance(resource, Path):
        return resource
    return _extracted_files.enter_context(importlib.resources.as_file(resource))


@cache
def sound_duration_ms(name: str) -> int:
    """How long one play of the named sound lasts."""
    with wave.open(str(sound_file(name)), "rb") as wav:
        return max(1, round(1000 * wav.getnframes() / wav.getframerate()))


@cache
def _multimedia() -> ModuleType | None:
    """PySide6.QtMultimedia, or None where it (or a library it needs, e.g. libpulse) is missing."""
    try:
        from PySide6 import QtMultimedia
    except ImportError as exc:
        logger.warning(
            "Qt Multimedia is not usable (%s); alert sounds are silent",
            exc,
            extra={"event": "sound.unavailable", "reason": "qtmultimedia"},
        )
        return None
    return QtMultimedia


class AlarmSound(QObject):
    """Plays the alarm (looping until stopped) or the chime (once).

    Signals: playing_changed(bool) — the intent to sound changed (True while an alarm should loop
    or a chime is still within its length), whether or not an audio output exists.
    """

    playing_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._effects: dict[str, QSoundEffect] = {}
        self._current: str | None = None
        self._warned_silent = False
        self._once_timer = QTimer(self)
        self._once_timer.setSingleShot(True)
        self._once_timer.timeout.connect(self._on_once_timer_timeout)

    @property
    def playing(self) -> bool:
        """True while a sound should be heard: an alarm until stop(), a chime for its length."""
        return self._current is not None

    @property
    def current(self) -> str | None:
        """The name of the sound meant to be playing, if any."""
        return self._current

    @property
    def available(self) -> bool:
        """False when Qt Multimedia or every audio output is missing: the sound is then silent."""
        multimedia = _multimedia()
        if multimedia is None:
            return False
        try:
            return bool(multimedia.QMediaDevices.audioOutputs())
        except RuntimeError:  # pragma: no cover - a backend that fails to enumerate devices
            return False

    def play(self, name: str, *, loop: bool) -> None:
        """Starts the named sound; `loop` repeats it until stop(). Replaces what was playing."""
        if name not in SOUND_NAMES:
            raise ValueError(f"unknown sound {name!r}; expected one of {SOUND_NAMES}")
        self._stop_effects()
        self._once_timer.stop()
        if not loop:
            self._once_timer.start(sound_duration_ms(name))
        was_playing = self.playing
        self._current = name
        if not was_playing:
            self.playing_changed.emit(True)
        self._start_effect(name, loop=loop)

    def stop(self) -> None:
        """Silences whatever is playing. Safe to call when nothing is."""
        self._once_timer.stop()
        self._stop_effects()
        if self._current is not None:
            self._current = None
            self.playing_changed.emit(False)

    @Slot()
    def _on_once_timer_timeout(self) -> None:
        self.stop()

    def _start_effect(self, name: str, *, loop: bool) -> None:
        if not self.available:
            if not self._warned_silent:
                self._warned_silent = True
                logger.warning(
                    "no audio output: the %s sounds silently",
                    name,
                    extra={"event": "sound.unavailable", "reason": "no_audio_output"},
                )
            return
        effect = self._effect(name)
        effect.setLoopCount(INFINITE_LOOPS if loop else 1)
        effect.play()
        logger.info("sound started", extra={"event": "sound.started", "sound": name, "loop": loop})

    def _effect(self, name: str) -> QSoundEffect:
        effect = self._effects.get(name)
        if effect is None:
            multimedia = _multimedia()
            assert multimedia is not None
            effect = multimedia.QSoundEffect(self)
            effect.statusChanged.connect(self._on_effect_status_changed)
            effect.setSource(QUrl.fromLocalFile(str(sound_file(name))))
            effect.setVolume(1.0)
            self._effects[name] = effect
        return effect

    @Slot()
    def _on_effect_status_changed(self) -> None:
        for name, effect in self._effects.items():
            if effect.status() == effect.Status.Error:
                logger.warning(
                    "the %s sound could not be loaded; it is silent",
                    name,
                    extra={"event": "sound.unavailable", "reason": "load_error", "sound": name},
                )

    def _stop_effects(self) -> None:
        for effect in self._effects.values():
            effect.stop()
