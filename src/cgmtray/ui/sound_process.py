"""Alert sounds through a short-lived external player (pw-play, paplay, aplay) in a QProcess."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, QProcess, QTimer, Signal, Slot

logger = logging.getLogger(__name__)

#: The players tried, best first, as argv prefixes (the WAV's path is appended).
PLAYER_COMMANDS: Final = (("pw-play",), ("paplay",), ("aplay", "-q"))
#: A player that fails sooner than this after its start is broken, not unlucky: it is not rerun.
QUICK_FAILURE_S: Final = 0.5
#: A looping player that fails twice within this span is not rerun either.
FAILURE_SPAN_S: Final = 10.0
#: How long stop() waits for a killed player to be reaped.
STOP_WAIT_MS: Final = 1000
#: At most this much of a failed player's error output is logged.
DETAIL_CHARS: Final = 200


def find_player(which: Callable[[str], str | None] = shutil.which) -> tuple[str, ...] | None:
    """The argv prefix of the best player installed (its program as a full path), or None."""
    for program, *options in PLAYER_COMMANDS:
        path = which(program)
        if path is not None:
            return (path, *options)
    return None


@cache
def detected_player() -> tuple[str, ...] | None:
    """find_player() on this machine, looked up once per process."""
    return find_player()


class ExternalPlayer(QObject):
    """Plays a WAV with an external player: once, or again each time the player ends until stop().

    A looping run is started again no sooner than one sound's length after the previous start, so
    a player that returns early cannot spin. A player that cannot start, fails quickly, or fails
    twice within FAILURE_SPAN_S is given up on (one warning) until the next start().

    Signals: ended() — the sound will not play again by itself: a single play finished, or the
    player was given up on.
    """

    ended = Signal()

    def __init__(self, argv: Sequence[str] | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if argv is not None and not argv:
            raise ValueError("a player command needs at least a program")
        self._argv = tuple(argv) if argv is not None else None
        self._wav: Path | None = None  # what should sound now; None when nothing should
        self._loop = False
        self._period_s = 0.0
        self._process: QProcess | None = None
        self._started_at = 0.0
        self._last_failure_at: float | None = None
        self._failing = False  # the latest run failed: warned once, until a run succeeds
        self._warned_missing = False
        self._rerun_timer = QTimer(self)
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.timeout.connect(self._run)

    @property
    def program(self) -> str | None:
        """The player's program name (e.g. "paplay"), or None when there is none."""
        return Path(self._argv[0]).name if self._argv is not None else None

    @property
    def available(self) -> bool:
        """False when no player exists or the latest run of it failed."""
        return self._argv is not None and not self._failing

    @property
    def busy(self) -> bool:
        """True while a player process runs."""
        return self._process is not None

    def start(self, name: str, path: Path, *, loop: bool, period_ms: int) -> bool:
        """Plays `path` (the sound `name`), again and again if `loop`; False if nothing started."""
        self.stop()
        if self._argv is None:
            if not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "no sound player (pw-play, paplay or aplay) found: the %s sounds silently",
                    name,
                    extra={"event": "sound.unavailable", "reason": "no_player", "sound": name},
                )
            return False
        self._wav, self._loop, self._period_s = path, loop, period_ms / 1000
        self._last_failure_at = None
        self._run()
        return self._process is not None

    def stop(self) -> None:
        """Ends the sound: kills the running player and waits (briefly) until it is reaped."""
        self._wav = None
        self._rerun_timer.stop()
        process, self._process = self._process, None
        if process is None:
            return
        process.blockSignals(True)  # its end is ours, not a failure to report
        process.kill()
        reaped = process.waitForFinished(STOP_WAIT_MS)
        if not reaped and process.state() != QProcess.ProcessState.NotRunning:
            logger.warning(
                "the sound player did not end within %d ms of being killed",
                STOP_WAIT_MS,
                extra={"event": "sound.stop_slow", "player": self.program},
            )
        process.deleteLater()

    @Slot()
    def _run(self) -> None:
        if self._wav is None or self._argv is None:
            return
        process = QProcess(self)
        process.setStandardInputFile(QProcess.nullDevice())
        process.setStandardOutputFile(QProcess.nullDevice())
        process.finished.connect(partial(self._on_finished, process))
        process.errorOccurred.connect(partial(self._on_error, process))
        self._process = process
        self._started_at = time.monotonic()
        process.start(self._argv[0], [*self._argv[1:], str(self._wav)])

    def _on_error(self, process: QProcess, error: QProcess.ProcessError) -> None:
        # A crash also arrives as finished(); only a failure to start comes alone.
        if process is not self._process or error != QProcess.ProcessError.FailedToStart:
            return
        self._forget(process)
        self._give_up(process.errorString())

    def _on_finished(
        self, process: QProcess, exit_code: int, exit_status: QProcess.ExitStatus
    ) -> None:
        if process is not self._process:
            return
        self._forget(process)
        now = time.monotonic()
        ran_s = now - self._started_at
        if exit_status == QProcess.ExitStatus.CrashExit or exit_code != 0:
            previous, self._last_failure_at = self._last_failure_at, now
            again = previous is not None and now - previous < FAILURE_SPAN_S
            if not self._loop or ran_s < QUICK_FAILURE_S or again:
                self._give_up(_failure_detail(process, exit_code, exit_status))
                return
        else:
            self._failing = False
        if self._loop and self._wav is not None:
            self._rerun_timer.start(max(0, round((self._period_s - ran_s) * 1000)))
            return
        self._wav = None
        self.ended.emit()

    def _forget(self, process: QProcess) -> None:
        self._process = None
        process.deleteLater()

    def _give_up(self, detail: str) -> None:
        self._wav = None
        self._rerun_timer.stop()
        if not self._failing:
            self._failing = True
            logger.warning(
                "the sound player %s failed (%s): alert sounds are silent until the next alert",
                self.program,
                detail,
                extra={
                    "event": "sound.unavailable",
                    "reason": "player_failed",
                    "player": self.program,
                },
            )
        self.ended.emit()


def _failure_detail(process: QProcess, exit_code: int, exit_status: QProcess.ExitStatus) -> str:
    """How the player ended, with the last line it wrote to stderr."""
    how = "crashed" if exit_status == QProcess.ExitStatus.CrashExit else f"exit code {exit_code}"
    output = bytes(process.readAllStandardError().data()).decode(errors="replace").strip()
    last_line = output.splitlines()[-1][:DETAIL_CHARS] if output else ""
    return f"{how}: {last_line}" if last_line else how
