"""ShareWorker on its own QThread against the fake service over loopback, in virtual time the
test steps (tests.support.virtual_time): nothing depends on how fast the machine is."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from pytestqt.qtbot import QtBot
from tests.support.refused_account_id import (
    STALE_ACCOUNT_ID,
    Refusal,
    RefusingTransport,
    client_factory,
)
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.clock import ManualClock, ScaledClock
from cgmtray.domain.connection import ConnectionStatus, LinkState, next_check_line
from cgmtray.domain.readings import Reading
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region
from cgmtray.storage.history import HistoryStore
from cgmtray.storage.sign_in_state import PersistedSignInGate
from cgmtray.ui.worker import AccountIdNews, ShareWorker, WorkerThread

T0 = datetime(2026, 11, 21, 9, 0, 3, tzinfo=UTC)
USER, PASSWORD = "erin@example.com", "pa55word-Erin"


#: How long a test waits for a stopping worker thread (real time): only a bound on a hang.
STOP_MS = 30_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def vt(clock: ManualClock) -> VirtualTime:
    return VirtualTime(clock)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        server.add_account(Region.US, USER, PASSWORD)
        sensor = SimulatedSensor(seed=7, start=T0 - timedelta(hours=24), lag_s=20.0)
        server.attach_sensor(Region.US, USER, sensor)
        yield server


def _worker(
    fake: FakeShare,
    clock: ManualClock | ScaledClock,
    vt: VirtualTime,
    tmp_path: Path,
    *,
    gate_dir: Path | None = None,
) -> WorkerThread:
    config = ClientConfig(region=Region.US, username=USER, base_url=fake.base_url(Region.US))

    def factory() -> ShareClient:
        gate = None
        if gate_dir is not None:  # the persisted gate the tray uses (ui/session.py)
            gate = PersistedSignInGate(
                gate_dir, region="us", username=USER, base_url=config.base_url
            )
        return ShareClient(config, PASSWORD, clock=clock, gate=gate)

    worker = ShareWorker(
        factory, clock=clock, store_path=str(tmp_path / "history.sqlite3"), timers=vt
    )
    return WorkerThread(worker)


@pytest.fixture
def running(
    fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> Iterator[WorkerThread]:
    thread = _worker(fake, clock, vt, tmp_path)
    yield thread
    assert thread.stop(STOP_MS)


def _collect(signal: object) -> list[object]:
    """Everything `signal` carries from now on (delivered on the GUI thread)."""
    received: list[object] = []
    signal.connect(received.append)  # type: ignore[attr-defined]
    return received


def test_worker_runs_on_its_own_thread_and_backfills_a_day(
    qtbot: QtBot, running: WorkerThread, vt: VirtualTime, tmp_path: Path
) -> None:
    emitted_on: list[QThread] = []
    running.worker.readings_received.connect(
        lambda _r: emitted_on.append(QThread.currentThread()), Qt.ConnectionType.DirectConnection
    )
    received = _collect(running.worker.readings_received)
    vt.start(running)
    vt.run_until(lambda: bool(received), within=timedelta(seconds=1))  # polled at once
    readings: tuple[Reading, ...] = received[0]  # type: ignore[assignment]
    assert len(readings) >= 280  # 24 h of 5-minute readings, newest first
    assert readings == tuple(sorted(readings, reverse=True))
    assert emitted_on
    assert emitted_on[0] is running.thread
    assert emitted_on[0] is not QThread.currentThread()
    with HistoryStore(tmp_path / "history.sqlite3", read_only=True) as store:
        assert store.count() == len(readings)


def test_the_next_reading_arrives_by_itself(
    qtbot: QtBot, running: WorkerThread, vt: VirtualTime
) -> None:
    received = _collect(running.worker.readings_received)
    vt.start(running)
    vt.run_until(lambda: bool(received), within=timedelta(seconds=1))
    newest = received[0][0].time  # type: ignore[index]
    vt.run_until(lambda: len(received) >= 2, within=timedelta(minutes=6))
    assert received[1][0].time > newest  # type: ignore[index]


def test_a_computer_clock_10_minutes_slow_neither_delays_nor_loses_readings(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    """Polls run on Share's clock (learned from its Date header), not the computer's."""
    slow = ScaledClock(1.0, virtual_origin=T0 - timedelta(minutes=10), real_origin=T0, real=clock)
    thread = _worker(fake, slow, vt, tmp_path)
    arrivals: list[tuple[datetime, tuple[Reading, ...]]] = []
    thread.worker.readings_received.connect(
        lambda readings: arrivals.append((fake.now(), readings)),
        Qt.ConnectionType.DirectConnection,
    )
    try:
        vt.start(thread)
        vt.run_until(lambda: len(arrivals) >= 4, within=timedelta(minutes=30))
    finally:
        assert thread.stop(STOP_MS)
    newest_seen = arrivals[0][1][0].time
    for received_at, readings in arrivals[1:]:
        newest = readings[0].time
        assert newest - newest_seen < timedelta(minutes=6)  # none skipped
        assert received_at - newest < timedelta(minutes=2)  # and none waited for 10 minutes
        newest_seen = newest


def test_session_expiry_is_renewed_without_the_gui_noticing(
    qtbot: QtBot, running: WorkerThread, fake: FakeShare, vt: VirtualTime
) -> None:
    statuses: list[ConnectionStatus] = []
    running.worker.status_changed.connect(statuses.append)
    received = _collect(running.worker.readings_received)
    vt.start(running)
    vt.run_until(lambda: bool(received), within=timedelta(seconds=1))
    statuses.clear()
    fake.expire_sessions()
    vt.run_until(lambda: len(received) >= 2, within=timedelta(minutes=6))
    assert all(s.state is LinkState.OK for s in statuses)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1  # the account id was reused
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 2  # start, then exactly one renewal


def test_the_gui_thread_never_touches_the_network(
    qtbot: QtBot, running: WorkerThread, vt: VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    connecting_threads: set[int] = set()
    original = socket.socket.connect

    def recording_connect(self: socket.socket, address: object) -> None:
        connecting_threads.add(threading.get_ident())
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    received = _collect(running.worker.readings_received)
    vt.start(running)
    vt.run_until(lambda: bool(received), within=timedelta(seconds=1))
    running.bridge.poll_requested.emit()
    vt.run_until(lambda: len(received) >= 2, within=timedelta(minutes=1))
    assert connecting_threads  # the worker did connect...
    assert threading.main_thread().ident not in connecting_threads  # ...never from the GUI thread


def test_rejected_password_stops_polling_and_says_so(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    fake.add_account(Region.US, USER, "a-new-password")
    thread = _worker(fake, clock, vt, tmp_path)
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    failed = _collect(thread.worker.auth_failed)
    try:
        vt.start(thread)
        vt.run_until(lambda: bool(failed), within=timedelta(seconds=1))
        assert "region" in str(failed[0])
        vt.run_until(
            lambda: (
                bool(statuses)
                and statuses[-1].state is LinkState.SIGN_IN_REJECTED
                and statuses[-1].next_poll is None
            ),
            within=timedelta(seconds=1),
        )
        vt.advance(timedelta(hours=2))  # and nothing more by itself
        assert fake.counters.sign_ins() == 1  # one attempt, and nothing is planned after it
        assert fake.counters.failed_sign_ins() == 1
    finally:
        assert thread.stop(STOP_MS)


def test_sign_ins_answered_with_errors_stop_after_three_and_say_so(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    """Protocol 7.1: a third failed sign-in in a row stops automatic sign-ins until the person
    acts; the tray then says so, not "will try again by itself". Answered means a Share error
    Code (a proxy's 5xx page is not an answer of the sign-in service: test_share_polling)."""
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE, count=1000)
    thread = _worker(fake, clock, vt, tmp_path)
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    try:
        vt.start(thread)
        vt.run_until(
            lambda: (
                bool(statuses)
                and statuses[-1].state is LinkState.STOPPED
                and statuses[-1].next_poll is None
            ),
            within=timedelta(minutes=100),
        )
        assert "Refresh now" in (statuses[-1].problem or "")
        vt.advance(timedelta(hours=2))  # stopped means stopped
        assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 3
    finally:
        assert thread.stop(STOP_MS)


def _last(statuses: list[ConnectionStatus], state: LinkState) -> bool:
    return bool(statuses) and statuses[-1].state is state and statuses[-1].next_poll is None


def test_a_rejected_password_is_tried_by_no_restart_and_no_refresh(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    fake.add_account(Region.US, USER, "a-new-password")
    gate_dir = tmp_path / "data"
    for run in range(3):  # the first start, then two restarts
        thread = _worker(fake, clock, vt, tmp_path, gate_dir=gate_dir)
        statuses: list[ConnectionStatus] = []
        thread.worker.status_changed.connect(statuses.append)
        rejected = functools.partial(_last, statuses, LinkState.SIGN_IN_REJECTED)
        try:
            vt.start(thread)
            vt.run_until(rejected, within=timedelta(minutes=100))
            for _ in range(3):
                thread.bridge.poll_requested.emit()  # Refresh now
            vt.advance(timedelta(minutes=10))
            assert rejected()
            line = next_check_line(statuses[-1], clock.now())
            assert line == "Dexcom rejected the password: change it in Settings"
        finally:
            assert thread.stop(STOP_MS)
        assert fake.counters.sign_ins() == 1, run  # the first start's one attempt, only


def test_a_lock_waits_its_hour_says_until_when_then_a_refresh_signs_in_once(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    fake.lock_account(Region.US, USER)
    thread = _worker(fake, clock, vt, tmp_path, gate_dir=tmp_path / "data")
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    received = _collect(thread.worker.readings_received)
    try:
        vt.start(thread)
        vt.run_until(lambda: _last(statuses, LinkState.LOCKED), within=timedelta(minutes=100))
        until = statuses[-1].sign_in_after
        assert until is not None
        assert until - clock.now() > timedelta(minutes=30)
        thread.bridge.poll_requested.emit()  # Refresh now during the lock: nothing tried
        vt.advance(timedelta(minutes=1))
        assert _last(statuses, LinkState.LOCKED)
        line = next_check_line(statuses[-1], clock.now()) or ""
        assert line.startswith("Dexcom locked the account: try again after ")
        assert until.astimezone().strftime("%H:%M") in line
        assert fake.counters.sign_ins() == 1
        # The hour passes: still nothing by itself.
        vt.advance(until + timedelta(minutes=5) - clock.now())
        assert fake.counters.sign_ins() == 1
        assert "Refresh now tries again" in (next_check_line(statuses[-1], clock.now()) or "")
        thread.bridge.poll_requested.emit()
        vt.run_until(lambda: bool(received), within=timedelta(minutes=1))
        assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # the lock's, and this one
    finally:
        assert thread.stop(STOP_MS)


def test_stop_ends_the_thread_without_waiting_for_its_timers(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    """Virtual time stands still while the thread stops: no timer can fire, so a thread that
    ends at all (the bound only catches a hang) ended without waiting for one."""
    thread = _worker(fake, clock, vt, tmp_path)
    received = _collect(thread.worker.readings_received)
    vt.start(thread)
    vt.run_until(lambda: bool(received), within=timedelta(seconds=1))
    assert thread.stop(STOP_MS)
    assert not thread.thread.isRunning()


# --- the account id ------------------------------------------------------------------------------


def _news(worker: ShareWorker) -> list[AccountIdNews]:
    received: list[AccountIdNews] = []
    worker.account_id_changed.connect(received.append)
    return received


def test_a_learned_account_id_is_reported_once_and_never_in_a_repr(
    qtbot: QtBot, running: WorkerThread, fake: FakeShare, vt: VirtualTime
) -> None:
    news = _news(running.worker)
    received = _collect(running.worker.readings_received)
    vt.start(running)
    vt.run_until(lambda: bool(news) and bool(received), within=timedelta(seconds=1))
    fake.expire_sessions()
    vt.run_until(lambda: len(received) >= 2, within=timedelta(minutes=6))
    account_id = fake.account_id(Region.US, USER)
    assert [n.account_id for n in news] == [account_id]  # the re-login by id learned nothing new
    assert news[0].source is running.worker._client_factory
    assert account_id not in repr(news[0])


def test_a_known_account_id_is_used_without_being_reported_again(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock, vt: VirtualTime, tmp_path: Path
) -> None:
    config = ClientConfig(
        region=Region.US,
        username=USER,
        base_url=fake.base_url(Region.US),
        account_id=fake.account_id(Region.US, USER),
    )
    worker = ShareWorker(
        lambda: ShareClient(config, PASSWORD, clock=clock),
        clock=clock,
        store_path=str(tmp_path / "history.sqlite3"),
        timers=vt,
    )
    thread = WorkerThread(worker)
    news = _news(worker)
    received = _collect(worker.readings_received)
    try:
        vt.start(thread)
        vt.run_until(lambda: bool(received), within=timedelta(seconds=1))
    finally:
        assert thread.stop(STOP_MS)
    assert news == []
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 0
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 1


@pytest.mark.parametrize("refusal", list(Refusal), ids=[r.value for r in Refusal])
def test_a_refused_account_id_is_reported_as_dropped(
    qtbot: QtBot,
    refusal: Refusal,
    fake: FakeShare,
    clock: ManualClock,
    vt: VirtualTime,
    tmp_path: Path,
) -> None:
    transport = RefusingTransport(STALE_ACCOUNT_ID, refusal)
    make_client, http = client_factory(transport)
    config = ClientConfig(
        region=Region.US,
        username=USER,
        base_url=fake.base_url(Region.US),
        account_id=STALE_ACCOUNT_ID,
    )
    worker = ShareWorker(
        lambda: make_client(config, PASSWORD, clock=clock),
        clock=clock,
        store_path=str(tmp_path / "history.sqlite3"),
        timers=vt,
    )
    thread = WorkerThread(worker)
    news = _news(worker)
    # The sign-in by name after the refusal fails too (an outage): no id is known any more.
    fake.inject_fault(Fault.BAD_GATEWAY_HTML, endpoint=ENDPOINT_AUTHENTICATE)
    try:
        vt.start(thread)
        vt.run_until(lambda: bool(news), within=timedelta(seconds=1))
    finally:
        assert thread.stop(STOP_MS)
        http.close()
    assert transport.refused == 1
    assert [n.account_id for n in news] == [None]
