"""Alert sounds: a looping alarm for urgent alerts, a chime; silent but honest without audio."""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import logging
import sys
import wave
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final, Literal, Protocol

from PySide6.QtCore import QObject, QTimer, QUrl, Signal, Slot

from cgmtray.ui import sound_process

if TYPE_CHECKING:
    from PySide6.QtMultimedia import QSoundEffect

logger = logging.getLogger(__name__)

#: The sounds shipped in cgmtray/assets (written by packaging/make_sounds.py).
SOUND_NAMES: Final = ("alarm", "chime")
#: QSoundEffect.Loop.Infinite as the int setLoopCount takes.
INFINITE_LOOPS: Final = -2
#: Sound through an external player process (the default on Linux: no QtMultimedia, no FFmpeg).
BACKEND_PLAYER: Final = "player"
#: Sound through QtMultimedia's QSoundEffect (the default on macOS and Windows).
BACKEND_QT: Final = "qt"
#: How long past its length a chime's player may still run before it is cut off.
ONCE_GRACE_MS: Final = 1500

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


def default_backend() -> Literal["player", "qt"]:
    """The backend for this platform: an external player on Linux, QtMultimedia elsewhere."""
    return BACKEND_PLAYER if sys.platform.startswith("linux") else BACKEND_QT


class _Backend(Protocol):
    """What AlarmSound needs from a way of making sound."""

    @property
    def available(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def start(self, name: str, path: Path, *, loop: bool, period_ms: int) -> bool: ...

    def stop(self) -> None: ...


class _QtSoundEffects(QObject):
    """Sound through QSoundEffect; QtMultimedia is imported at the first use."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._effects: dict[str, QSoundEffect] = {}
        self._warned_silent = False

    @property
    def available(self) -> bool:
        """False when Qt Multimedia or every audio output is missing."""
        multimedia = _multimedia()
        if multimedia is None:
            return False
        try:
            return bool(multimedia.QMediaDevices.audioOutputs())
        except RuntimeError:  # pragma: no cover - a backend that fails to enumerate devices
            return False

    @property
    def busy(self) -> bool:
        """Never: a single play is over when its length has passed."""
        return False

    def start(self, name: str, path: Path, *, loop: bool, period_ms: int) -> bool:
        """Plays the named sound (looping if `loop`). False when there is no audio output."""
        self.stop()
        if not self.available:
            if not self._warned_silent:
                self._warned_silent = True
                logger.warning(
                    "no audio output: the %s sounds silently",
                    name,
                    extra={"event": "sound.unavailable", "reason": "no_audio_output"},
                )
            return False
        effect = self._effect(name, path)
        effect.setLoopCount(INFINITE_LOOPS if loop else 1)
        effect.play()
        return True

    def stop(self) -> None:
        """Stops every effect."""
        for effect in self._effects.values():
            effect.stop()

    def _effect(self, name: str, path: Path) -> QSoundEffect:
        effect = self._effects.get(name)
        if effect is None:
            multimedia = _multimedia()
            assert multimedia is not None
            effect = multimedia.QSoundEffect(self)
            effect.statusChanged.connect(self._on_effect_status_changed)
            effect.setSource(QUrl.fromLocalFile(str(path)))
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


class AlarmSound(QObject):
    """Plays the alarm (looping until stopped) or the chime (once).

    On Linux the sound comes from a short-lived external player (`player`, an argv prefix the
    WAV's path is appended to; by default the first of pw-play, paplay, aplay -q found), so Qt
    Multimedia and its FFmpeg backend are never loaded; elsewhere from QSoundEffect. `backend`
    forces one ("player" or "qt").

    Signals: playing_changed(bool) — the intent to sound changed (True while an alarm should loop
    or a chime is still within its length), whether or not an audio output exists.
    """

    playing_changed = Signal(bool)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        player: Sequence[str] | None = None,
        backend: Literal["player", "qt"] | None = None,
    ) -> None:
        super().__init__(parent)
        if backend is None:
            backend = BACKEND_PLAYER if player is not None else default_backend()
        self._backend: _Backend
        if backend == BACKEND_PLAYER:
            argv = player if player is not None else sound_process.detected_player()
            external = sound_process.ExternalPlayer(argv, self)
            external.ended.connect(self._on_backend_ended)
            self._backend = external
        elif backend == BACKEND_QT:
            if player is not None:
                raise ValueError("a player command goes with the 'player' backend, not 'qt'")
            self._backend = _QtSoundEffects(self)
        else:
            raise ValueError(f"unknown sound backend {backend!r}")
        self._backend_name = backend
        self._current: str | None = None
        self._once_overdue = False  # a single play's length has passed; its player still runs
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
        """False when the sound is silent: no player (or it failed), or no Qt audio output."""
        return self._backend.available

    def play(self, name: str, *, loop: bool) -> None:
        """Starts the named sound; `loop` repeats it until stop(). Replaces what was playing."""
        if name not in SOUND_NAMES:
            raise ValueError(f"unknown sound {name!r}; expected one of {SOUND_NAMES}")
        self._backend.stop()
        self._once_timer.stop()
        self._once_overdue = False
        length_ms = sound_duration_ms(name)
        if not loop:
            self._once_timer.start(length_ms)
        was_playing = self.playing
        self._current = name
        if not was_playing:
            self.playing_changed.emit(True)
        if self._backend.start(name, sound_file(name), loop=loop, period_ms=length_ms):
            logger.info(
                "sound started",
                extra={
                    "event": "sound.started",
                    "sound": name,
                    "loop": loop,
                    "backend": self._backend_name,
                },
            )

    def stop(self) -> None:
        """Silences whatever is playing. Safe to call when nothing is."""
        self._once_timer.stop()
        self._once_overdue = False
        self._backend.stop()
        if self._current is not None:
            self._current = None
            self.playing_changed.emit(False)

    @Slot()
    def _on_once_timer_timeout(self) -> None:
        if not self._once_overdue and self._backend.busy:
            self._once_overdue = True  # let the player finish the chime's tail, within bounds
            self._once_timer.start(ONCE_GRACE_MS)
            return
        self.stop()

    @Slot()
    def _on_backend_ended(self) -> None:
        if self._once_overdue:
            self.stop()
