"""A blocking call (sign-in, keyring, export) on a thread of its own; the GUI never waits for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from PySide6.QtCore import QObject, Qt, Signal, Slot


@dataclass(frozen=True)
class TaskResult:
    """What a background call returned, or the exception it raised (then `value` is None)."""

    value: object = None
    error: BaseException | None = None


class BackgroundTask(QObject):
    """Runs one blocking call on a thread of its own; the result arrives on the GUI thread.

    The task keeps itself alive until the call returns, even if whoever started it is gone: a
    request in flight is never cut off. The thread is a daemon, so quitting the app never waits
    for it. Create, connect `finished`, then `start()`; one task runs one call once.

    Signals:
        finished(TaskResult): the call returned or raised, and its thread has ended.
    """

    finished = Signal(object)
    _returned = Signal(object)  # emitted on the task's thread, delivered on the owner's

    _running: ClassVar[set[BackgroundTask]] = set()

    def __init__(self, work: Callable[[], object], *, name: str = "background-task") -> None:
        super().__init__()
        self._work = work
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._returned.connect(self._on_returned, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        return self in BackgroundTask._running

    def start(self) -> None:
        if self._started:
            raise RuntimeError("a BackgroundTask runs once")
        self._started = True
        BackgroundTask._running.add(self)
        self._thread.start()

    def wait(self, timeout_ms: int) -> bool:
        """Blocks up to `timeout_ms` for the call to return (tests, shutdown); True if it did."""
        if not self._started:
            return True
        self._thread.join(timeout_ms / 1000)
        return not self._thread.is_alive()

    @classmethod
    def in_flight(cls) -> int:
        """How many tasks have not yet delivered their result (all owners together)."""
        return len(cls._running)

    def _run(self) -> None:
        try:
            result = TaskResult(value=self._work())
        except BaseException as exc:  # handed to the GUI thread, never lost
            result = TaskResult(error=exc)
        self._returned.emit(result)

    @Slot(object)
    def _on_returned(self, result: TaskResult) -> None:
        self._thread.join()  # it has returned; this only waits for the thread to end
        BackgroundTask._running.discard(self)
        self.finished.emit(result)
