"""Virtual time a test drives: Timers whose alarms fire only when the test steps to them."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from cgmtray.domain.clock import ManualClock

#: How long (real seconds) the test waits for a thread to run what it was given: only a bound on
#: a hang, never a measure of speed.
HANG_S = 60.0


class _Job:
    """Something to run on an alarm's thread, and the news that it ran."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.work = work
        self.done = threading.Event()
        self.error: BaseException | None = None


class VirtualAlarm(QObject):
    """An Alarm living on its owner's thread; VirtualTime decides when it fires."""

    _run_requested = Signal(object)

    def __init__(
        self, time: VirtualTime, owner: QObject, callback: Callable[[], None], *, repeat: bool
    ) -> None:
        super().__init__(owner)  # lives (and dies) with its owner, on the owner's thread
        self._time = time
        self.callback = callback
        self.repeat = repeat
        self.interval_s = 0.0
        #: When it fires (virtual monotonic seconds), None while disarmed; the order it was armed.
        self.deadline: float | None = None
        self.armed_as = 0
        self._run_requested.connect(self._on_run_requested, Qt.ConnectionType.QueuedConnection)

    def start(self, ms: int) -> None:
        self._time._arm(self, max(0, ms) / 1000)

    def stop(self) -> None:
        self._time._disarm(self)

    def release(self) -> None:
        self._time._forget(self)
        self.deleteLater()

    def run_here(self, work: Callable[[], None]) -> None:
        """Runs `work` on this alarm's thread and waits (bounded) until it ran."""
        if self.thread() is QThread.currentThread():
            work()
            return
        job = _Job(work)
        self._run_requested.emit(job)
        if not job.done.wait(HANG_S):
            raise AssertionError(f"a thread did not run its work within {HANG_S} s: it hangs")
        if job.error is not None:
            raise job.error

    @Slot(object)
    def _on_run_requested(self, job: _Job) -> None:
        try:
            job.work()
        except BaseException as error:  # handed to the waiting test
            job.error = error
        finally:
            job.done.set()


class VirtualTime:
    """Timers (see cgmtray.ui.timers) on a ManualClock that moves only when the test steps.

    Give it to the worker and controller; start the worker thread with `start`, then `step` or
    `run_until`: each step lets every thread finish what it was asked, moves the clock (and the
    monotonic clock with it) to the earliest armed alarm and fires it on its owner's thread.
    Nothing depends on how fast the machine is: a stall only makes the test take longer.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._mono = 0.0
        self._lock = threading.Condition()
        self._alarms: list[VirtualAlarm] = []
        self._order = itertools.count()

    # --- the Timers protocol --------------------------------------------------------------------

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def alarm(
        self, owner: QObject, callback: Callable[[], None], *, repeat: bool = False
    ) -> VirtualAlarm:
        alarm = VirtualAlarm(self, owner, callback, repeat=repeat)
        with self._lock:
            self._alarms.append(alarm)
            self._lock.notify_all()
        return alarm

    def _arm(self, alarm: VirtualAlarm, after_s: float) -> None:
        with self._lock:
            alarm.interval_s = after_s
            alarm.deadline = self._mono + after_s
            alarm.armed_as = next(self._order)

    def _disarm(self, alarm: VirtualAlarm) -> None:
        with self._lock:
            alarm.deadline = None

    def _forget(self, alarm: VirtualAlarm) -> None:
        with self._lock:
            alarm.deadline = None
            if alarm in self._alarms:
                self._alarms.remove(alarm)

    # --- what the test does ---------------------------------------------------------------------

    def start(self, thread: object) -> None:
        """Starts a WorkerThread and waits (bounded) until its worker has made its alarms."""
        from cgmtray.ui.worker import WorkerThread

        assert isinstance(thread, WorkerThread)
        thread.start()
        self.wait_for_alarms_of(thread.worker)

    def wait_for_alarms_of(self, owner: QObject) -> None:
        """Waits (bounded) until `owner` (started on its thread) has made its alarms."""
        with self._lock:
            made = self._lock.wait_for(
                lambda: any(a.parent() is owner for a in self._alarms), timeout=HANG_S
            )
        assert made, f"no alarm was made within {HANG_S} s: the thread hangs"

    def settle(self) -> None:
        """Lets every thread with alarms finish what it was asked (queued calls, signals)."""
        for _ in range(2):
            with self._lock:
                by_thread = {id(a.thread()): a for a in self._alarms}
            for alarm in by_thread.values():
                alarm.run_here(lambda: None)
            QCoreApplication.processEvents()

    def step(self) -> bool:
        """Fires the next alarm (after moving time to it); False when none is armed."""
        self.settle()
        with self._lock:
            armed = [a for a in self._alarms if a.deadline is not None]
            if not armed:
                return False
            alarm = min(armed, key=lambda a: (a.deadline, a.armed_as))
            assert alarm.deadline is not None
            step_s = max(0.0, alarm.deadline - self._mono)
            self._mono += step_s
            self.clock.advance(timedelta(seconds=step_s))
            if alarm.repeat:
                alarm.deadline = self._mono + max(alarm.interval_s, 0.001)
                alarm.armed_as = next(self._order)
            else:
                alarm.deadline = None
        alarm.run_here(alarm.callback)
        self.settle()
        return True

    def run_until(self, condition: Callable[[], bool], *, within: timedelta) -> None:
        """Steps until `condition` holds; fails if it takes longer than `within` virtual time."""
        began = self.clock.now()
        self.settle()
        while not condition():
            assert self.step(), "nothing left to wait for, and the condition does not hold"
            taken = self.clock.now() - began
            assert taken <= within, f"not within {within} of virtual time ({taken} passed)"

    def advance(self, by: timedelta) -> None:
        """Lets `by` of virtual time pass, firing every alarm due on the way."""
        end = self._mono + by.total_seconds()
        while True:
            self.settle()
            with self._lock:
                due = [a.deadline for a in self._alarms if a.deadline is not None]
                next_due = min(due, default=None)
            if next_due is None or next_due > end:
                break
            self.step()
        with self._lock:
            rest = end - self._mono
            self._mono = end
            self.clock.advance(timedelta(seconds=rest))
