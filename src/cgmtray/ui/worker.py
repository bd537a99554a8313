"""ShareWorker: polls Dexcom Share on its own thread, driven by domain.schedule, into the store."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from cgmtray.domain import schedule
from cgmtray.domain.clock import Clock
from cgmtray.domain.connection import ConnectionStatus, LinkState, state_of_failure
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading
from cgmtray.domain.sign_in_gate import Decision, Reason
from cgmtray.share.client import ShareClient
from cgmtray.share.errors import (
    ShareError,
)
from cgmtray.share.gate import GateBlocked
from cgmtray.share.polling import FollowerCheck, poll_once
from cgmtray.storage.history import HistoryError, HistoryStore
from cgmtray.ui.timers import REAL_TIMERS, Alarm, Timers

log = logging.getLogger(__name__)

#: What the tray says when sign-ins stopped after failing again and again (protocol 7.1).
SIGN_IN_FAILURES_MESSAGE = "Sign-in failed 3 times in a row: stopped until you choose Refresh now"
#: How often the worker checks that wall time and monotonic time still agree (sleep detection).
HEARTBEAT_MS = 30_000
#: A wall-clock jump larger than this between heartbeats counts as a sleep/resume or clock change.
CLOCK_JUMP = timedelta(seconds=90)
#: The longest single timer wait; longer plans are re-planned when it fires (guards clock jumps).
MAX_TIMER_MS = 5 * 60_000
#: The watchdog: a planned poll that has not happened this long (virtual time, measured on the
#: monotonic clock) after it was due happens anyway, whatever the wall clock or a Date header says.
WATCHDOG_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class AccountIdNews:
    """The polling client learned an account id (keep it: protocol 7.2) or dropped a refused one.

    `source` is the factory that made the client, so news from a client that has since been
    replaced (another account) can be told apart. The id is never in the repr.
    """

    source: Callable[[], ShareClient]
    account_id: str | None = field(repr=False)


class ShareWorker(QObject):
    """Fetches readings on a worker thread. Create it, `moveToThread`, then start via `started`.

    Signals:
        readings_received(tuple[Reading, ...]): readings new to this run, newest first.
        status_changed(ConnectionStatus): the link's state after each poll or plan.
        auth_failed(str): a sign-in was rejected or the account locked; the plain message.
        account_id_changed(AccountIdNews): the client learned a new account id, or dropped
            the one it had (InvalidArgument / all-zero answer: then `account_id` is None).
        stopped(): the worker released its timers, client and store (emitted by `stop`).
        store_failed(str): readings could not be kept in the history store (a full or
            read-only disk); the plain sentence. Readings still reach the GUI.
    """

    readings_received = Signal(object)
    status_changed = Signal(object)
    auth_failed = Signal(str)
    account_id_changed = Signal(object)
    stopped = Signal()
    store_failed = Signal(str)

    def __init__(
        self,
        client_factory: Callable[[], ShareClient],
        *,
        clock: Clock,
        store_path: str | None,
        newest_known: datetime | None = None,
        time_scale: float = 1.0,
        seed: int = 0,
        timers: Timers = REAL_TIMERS,
    ) -> None:
        """`timers` is where waiting comes from: real QTimers, or a test's virtual time."""
        super().__init__()
        self._client_factory = client_factory
        self._clock = clock
        self._timers = timers
        self._monotonic = timers.monotonic
        #: When (monotonic seconds) the planned poll is overdue; None while none is planned.
        self._overdue_at: float | None = None
        self._store_path = store_path
        self._time_scale = time_scale
        self._state = schedule.initial_state(newest_reading=newest_known, seed=seed)
        self._client: ShareClient | None = None
        self._reported_account_id: str | None = None
        self._store: HistoryStore | None = None
        self._timer: Alarm | None = None
        self._heartbeat: Alarm | None = None
        self._last_beat: datetime | None = None
        self._status = ConnectionStatus(LinkState.STARTING)
        self._polls = 0
        self._followers = FollowerCheck()

    # --- lifecycle (all on the worker thread) ------------------------------------------------

    @Slot()
    def start(self) -> None:
        """Creates the timers and client on this thread and plans the first poll (at once)."""
        self._timer = self._timers.alarm(self, self._on_timer_timeout)
        self._heartbeat = self._timers.alarm(self, self._on_heartbeat_timeout, repeat=True)
        self._heartbeat.start(HEARTBEAT_MS)
        self._last_beat = self._clock.now()
        if self._store_path is not None:
            try:
                self._store = HistoryStore(self._store_path)
            except HistoryError as error:
                log.warning(
                    "the history store could not be opened; readings are not kept: %s",
                    error,
                    extra={"event": "history.unusable"},
                )
                self._store = None
                self.store_failed.emit(f"History is not being kept: {error}.")
        self._client = self._client_factory()
        self._reported_account_id = self._client.account_id
        self._replan()

    @Slot()
    def stop(self) -> None:
        """Stops timers and closes the client and store; the thread may then quit."""
        for timer in (self._timer, self._heartbeat):
            if timer is not None:
                timer.release()
        self._timer = self._heartbeat = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self.stopped.emit()

    # --- asks from the GUI (queued) ----------------------------------------------------------

    @Slot()
    def poll_now(self) -> None:
        """The person asked to refresh or changed settings: lift stops, poll soon. While the
        shared sign-in gate refuses even an asked-for sign-in (a rejected password, a lock not
        yet over), nothing is tried: the status says what to do and until when."""
        client = self._client
        if client is not None and not client.has_session:
            decision = client.sign_in_decision(asked=True)
            if decision is not None and decision.blocked:
                log.info(
                    "refresh asked while sign-ins are blocked: nothing tried",
                    extra={"event": "poll.gate", "reason": decision.reason.value},
                )
                self._show_gate(decision)
                return
        self._state = schedule.record_user_action(self._state, self._share_now())
        if client is not None:
            client.allow_sign_in()
        self._replan()

    @Slot()
    def note_resume(self) -> None:
        """The computer woke up or the network came back: poll at once and backfill."""
        log.info("resume: polling at once", extra={"event": "poll.resume"})
        self._state = schedule.note_resume(self._state, self._share_now())
        self._replan()

    @Slot(object)
    def replace_client(self, factory: Callable[[], ShareClient]) -> None:
        """The account changed: a new client (new sign-in); the old session is dropped."""
        if self._client is not None:
            self._client.close()
        self._client_factory = factory
        self._client = factory()
        self._followers = FollowerCheck()
        self._reported_account_id = self._client.account_id
        self._state = schedule.record_user_action(
            self._state, self._share_now(), credentials_changed=True
        )
        self._client.allow_sign_in(credentials_changed=True)
        self._replan()

    # --- the poll ----------------------------------------------------------------------------

    def _replan(self, *, keep_due: bool = False) -> None:
        """Plans the next poll and starts the timer. `keep_due` keeps the watchdog's deadline of
        the poll already planned (a long wait split into timer-sized steps, or a plan that moved
        because the clock did): a plan that keeps receding cannot put the poll off for ever."""
        if self._timer is None:
            return
        now = self._share_now()
        plan = schedule.plan(self._state, now)
        self._timer.stop()
        if plan.at is None:
            self._overdue_at = None
            log.info(
                "polling stopped until the person acts",
                extra={"event": "poll.scheduled", "reason": plan.reason.value, "in_s": None},
            )
            if not self._status.needs_user:
                # Stopped for a reason the last failure did not name (sign-ins kept failing):
                # say so, rather than the last failure's "will try again by itself".
                self._status = replace(
                    self._status, state=LinkState.STOPPED, message=SIGN_IN_FAILURES_MESSAGE
                )
            self._set_next_poll(None)
            return
        held = self._gate_hold(plan, now)
        if held is None:
            self._overdue_at = None  # nothing planned: nothing for the watchdog to force
            return
        wait_s = max(0.0, (held - now).total_seconds())
        mono = self._monotonic()
        if not keep_due or self._overdue_at is None:
            margin_s = WATCHDOG_MARGIN.total_seconds()
            self._overdue_at = mono + (wait_s + margin_s) / self._time_scale
        until_overdue_ms = max(0.0, (self._overdue_at - mono) * 1000)
        wait_ms = round(min(MAX_TIMER_MS, wait_s * 1000 / self._time_scale, until_overdue_ms))
        if not keep_due:
            log.info(
                "next poll planned",
                extra={
                    "event": "poll.scheduled",
                    "reason": plan.reason.value,
                    "in_s": round(wait_s),
                },
            )
        self._timer.start(wait_ms)
        self._set_next_poll(self._clock.now() + (held - now))  # on our clock, for the menu

    def _gate_hold(self, plan: schedule.PollPlan, now: datetime) -> datetime | None:
        """When the planned poll may be made as the shared sign-in gate sees it (Share's clock):
        None when it needs a sign-in the gate refuses (then the status says why, and nothing is
        planned: the menu must not promise an attempt that would be refused)."""
        assert plan.at is not None
        client = self._client
        if client is None or self._state.has_session:
            return plan.at
        decision = client.sign_in_decision()
        if decision is None or decision.allowed:
            return plan.at
        if decision.blocked:
            log.info(
                "polling waits for the person: sign-ins are blocked",
                extra={"event": "poll.scheduled", "reason": decision.reason.value, "in_s": None},
            )
            self._show_gate(decision)
            self._set_next_poll(None)
            return None
        # The shared budget (another process signed in): not before it allows one more.
        assert decision.not_before is not None
        return max(plan.at, now + (decision.not_before - self._clock.now()))

    def _show_gate(self, decision: Decision) -> None:
        """The status for a sign-in the gate refuses: rejected (change the password) or locked
        (until when; then Refresh now)."""
        rejected = decision.reason is Reason.REJECTED
        state = LinkState.SIGN_IN_REJECTED if rejected else LinkState.LOCKED
        self._set_status(
            ConnectionStatus(
                state,
                failure=FailureClass.CREDENTIALS if rejected else FailureClass.LOCKED,
                since=self._clock.now(),
                sign_in_after=None if rejected else decision.not_before,
            )
        )

    @Slot()
    def _on_timer_timeout(self) -> None:
        now = self._share_now()
        plan = schedule.plan(self._state, now)
        if plan.at is None:
            self._replan()
            return
        if plan.at > now + timedelta(seconds=1) and not self._overdue():
            self._replan(keep_due=True)  # a long wait split into timer-sized steps
            return
        if plan.at > now + timedelta(seconds=1):
            log.warning(
                "a planned poll is overdue: polling now (the clock or a Date header moved)",
                extra={"event": "poll.watchdog", "reason": plan.reason.value},
            )
        self._poll(plan)
        self._replan()

    def _overdue(self) -> bool:
        """Whether the poll planned is overdue by the monotonic clock (the watchdog)."""
        return self._overdue_at is not None and self._monotonic() >= self._overdue_at

    def _poll(self, plan: schedule.PollPlan) -> None:
        client = self._client
        if client is None:
            return
        try:
            self._poll_with(client, plan)
        finally:
            self._report_account_id(client)

    def _report_account_id(self, client: ShareClient) -> None:
        """Tells the GUI when a sign-in learned a new account id or dropped a refused one."""
        account_id = client.account_id
        if client is not self._client or account_id == self._reported_account_id:
            return
        self._reported_account_id = account_id
        log.info(
            "the Share account id was %s",
            "learned" if account_id else "dropped",
            extra={"event": "share.account_id", "known": account_id is not None},
        )
        self.account_id_changed.emit(AccountIdNews(self._client_factory, account_id))

    def _poll_with(self, client: ShareClient, plan: schedule.PollPlan) -> None:
        self._polls += 1
        try:
            outcome = poll_once(client, self._state, plan, self._share_now, self._followers)
        except Exception:
            # Anything unexpected must not kill the polling thread: back off as transient.
            log.exception("unexpected error while polling")
            self._state = schedule.record_failure(
                self._state, self._share_now(), FailureClass.TRANSIENT, 1, 0
            )
            self._set_status(
                ConnectionStatus(LinkState.UNREACHABLE, failure=FailureClass.TRANSIENT)
            )
            return
        self._state = outcome.state
        if outcome.skipped:
            return
        if outcome.error is not None:
            self._show_failure(outcome.error)
            return
        self._set_status(
            ConnectionStatus(
                LinkState.OK,
                server_skew=client.server_clock_skew,
                since=self._clock.now(),
                no_follower=outcome.nobody_follows,
            )
        )
        if outcome.readings:
            self._keep(outcome.readings)

    def _keep(self, readings: tuple[Reading, ...]) -> None:
        if self._store is not None:
            try:
                added = self._store.add(readings)
            except (sqlite3.Error, OSError, HistoryError) as error:
                # A full or read-only disk: said once per kind of failure, never a traceback.
                reason = str(error) or type(error).__name__
                log.warning(
                    "could not write readings to the history store: %s",
                    reason,
                    extra={"event": "history.write_failed"},
                )
                self.store_failed.emit(
                    f"Readings are not being saved to history ({reason}); "
                    "they are shown and alerts work from memory."
                )
            except Exception:
                log.exception("could not write readings to the history store")
            else:
                times = [r.time for r in readings]
                log.info(  # committed: on disk even if the process dies the next moment
                    "readings stored",
                    extra={
                        "event": "history.stored",
                        "received": len(readings),
                        "new": added,
                        "oldest": min(times).isoformat(),
                        "newest": max(times).isoformat(),
                    },
                )
        # Everything returned goes to the GUI: late or backfilled readings matter to alerts too.
        self.readings_received.emit(tuple(readings))

    def _show_failure(self, error: ShareError) -> None:
        if isinstance(error, GateBlocked):
            self._show_gate(error.decision)
            return
        failure = error.failure_class
        status = ConnectionStatus(
            state_of_failure(failure),
            message=error.user_message,
            failure=failure,
            server_skew=self._client.server_clock_skew if self._client else None,
            since=self._clock.now(),
            sign_in_after=self._lock_end() if failure is FailureClass.LOCKED else None,
        )
        self._set_status(status)
        if failure in (FailureClass.CREDENTIALS, FailureClass.LOCKED):
            self.auth_failed.emit(error.user_message)

    def _lock_end(self) -> datetime | None:
        """Until when the shared gate holds a lock just answered (None without a gate)."""
        client = self._client
        decision = client.sign_in_decision(asked=True) if client is not None else None
        return decision.not_before if decision is not None else None

    def _share_now(self) -> datetime:
        """Share's clock, as the client knows it. Reading times are Share's, so the schedule
        (polls aligned to readings, read windows) runs on it: a computer clock that is off (set
        back, drifting) neither delays polls nor shrinks a backfill window."""
        return self._client.server_now() if self._client is not None else self._clock.now()

    def _set_status(self, status: ConnectionStatus) -> None:
        """Reports a poll's outcome; the planned next poll carries over until the next plan."""
        self._publish(replace(status, next_poll=self._status.next_poll))

    def _set_next_poll(self, at: datetime | None) -> None:
        self._publish(replace(self._status, next_poll=at))

    def _publish(self, status: ConnectionStatus) -> None:
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)

    # --- sleep / clock-jump detection --------------------------------------------------------

    @Slot()
    def _on_heartbeat_timeout(self) -> None:
        if self._overdue():  # the timer was lost or starved: the watchdog's second way in
            self._on_timer_timeout()
            return
        now = self._clock.now()
        last, self._last_beat = self._last_beat, now
        if last is None:
            return
        expected = timedelta(milliseconds=HEARTBEAT_MS * self._time_scale)
        drift = (now - last) - expected
        if abs(drift) > CLOCK_JUMP:
            log.info(
                "the clock jumped (sleep or time change)",
                extra={"event": "clock.jump", "jump_s": round(drift.total_seconds())},
            )
            self.note_resume()


class WorkerBridge(QObject):
    """Lives on the GUI thread; its signals reach the worker as queued calls.

    Signals:
        poll_requested(): refresh now (lifts stops: the person acted).
        resume_requested(): the computer woke up or the network came back.
        client_replaced(object): a new client factory (the account changed).
        stop_requested(): release everything; the thread then quits.
    """

    poll_requested = Signal()
    resume_requested = Signal()
    client_replaced = Signal(object)
    stop_requested = Signal()


class WorkerThread:
    """Owns a ShareWorker and its QThread: start, ask through `bridge`, stop in bounded time."""

    def __init__(self, worker: ShareWorker) -> None:
        self.worker = worker
        self.bridge = WorkerBridge()
        self.thread = QThread()
        self.thread.setObjectName("share-worker")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.start)
        self.bridge.poll_requested.connect(worker.poll_now)
        self.bridge.resume_requested.connect(worker.note_resume)
        self.bridge.client_replaced.connect(worker.replace_client)
        self.bridge.stop_requested.connect(worker.stop)
        worker.stopped.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(worker.deleteLater)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_ms: int = 2000) -> bool:
        """Asks the worker to stop and waits at most `timeout_ms` for its thread to end.

        A request in flight is not interrupted; if it outlasts the wait, False is returned and
        the caller decides (the app exits anyway: everything committed is already on disk).
        """
        if not self.thread.isRunning():
            return True
        self.bridge.stop_requested.emit()
        finished = bool(self.thread.wait(timeout_ms))
        if not finished:
            log.warning("the worker thread did not stop in time")
        return finished
