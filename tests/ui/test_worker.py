"""ShareWorker on its own QThread against the fake service over loopback, on a shared fast clock."""

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

from cgmtray.domain.clock import ScaledClock
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

#: Virtual seconds per real second: a reading every 5 virtual minutes arrives every 0.5 s.
SPEED = 600.0
T0 = datetime(2026, 11, 21, 9, 0, 3, tzinfo=UTC)
USER, PASSWORD = "erin@example.com", "pa55word-Erin"


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(SPEED, virtual_origin=T0, real_origin=datetime.now(UTC))


@pytest.fixture
def fake(clock: ScaledClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        server.add_account(Region.US, USER, PASSWORD)
        sensor = SimulatedSensor(seed=7, start=T0 - timedelta(hours=24), lag_s=20.0)
        server.attach_sensor(Region.US, USER, sensor)
        yield server


def _worker(
    fake: FakeShare, clock: ScaledClock, tmp_path: Path, *, gate_dir: Path | None = None
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
        factory, clock=clock, store_path=str(tmp_path / "history.sqlite3"), time_scale=SPEED
    )
    return WorkerThread(worker)


@pytest.fixture
def running(fake: FakeShare, clock: ScaledClock, tmp_path: Path) -> Iterator[WorkerThread]:
    thread = _worker(fake, clock, tmp_path)
    yield thread
    assert thread.stop(5000)


def test_worker_runs_on_its_own_thread_and_backfills_a_day(
    qtbot: QtBot, running: WorkerThread, tmp_path: Path
) -> None:
    emitted_on: list[QThread] = []
    running.worker.readings_received.connect(
        lambda _r: emitted_on.append(QThread.currentThread()), Qt.ConnectionType.DirectConnection
    )
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000) as blocker:
        running.start()
    readings: tuple[Reading, ...] = blocker.args[0]
    assert len(readings) >= 280  # 24 h of 5-minute readings, newest first
    assert readings == tuple(sorted(readings, reverse=True))
    assert emitted_on
    assert emitted_on[0] is running.thread
    assert emitted_on[0] is not QThread.currentThread()
    with HistoryStore(tmp_path / "history.sqlite3", read_only=True) as store:
        assert store.count() == len(readings)


def test_the_next_reading_arrives_by_itself(qtbot: QtBot, running: WorkerThread) -> None:
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000) as first:
        running.start()
    newest = first.args[0][0].time
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000) as second:
        pass
    assert second.args[0][0].time > newest


def test_a_computer_clock_10_minutes_slow_neither_delays_nor_loses_readings(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    """Polls run on Share's clock (learned from its Date header), not the computer's."""
    slow = ScaledClock(
        SPEED, virtual_origin=clock.now() - timedelta(minutes=10), real_origin=datetime.now(UTC)
    )
    thread = _worker(fake, slow, tmp_path)
    arrivals: list[tuple[datetime, tuple[Reading, ...]]] = []
    thread.worker.readings_received.connect(
        lambda readings: arrivals.append((fake.now(), readings)),
        Qt.ConnectionType.DirectConnection,
    )
    try:
        thread.start()
        qtbot.waitUntil(lambda: len(arrivals) >= 4, timeout=15_000)
    finally:
        assert thread.stop(5000)
    newest_seen = arrivals[0][1][0].time
    for received_at, readings in arrivals[1:]:
        newest = readings[0].time
        assert newest - newest_seen < timedelta(minutes=6)  # none skipped
        assert received_at - newest < timedelta(minutes=2)  # and none waited for 10 minutes
        newest_seen = newest


def test_session_expiry_is_renewed_without_the_gui_noticing(
    qtbot: QtBot, running: WorkerThread, fake: FakeShare
) -> None:
    statuses: list[ConnectionStatus] = []
    running.worker.status_changed.connect(statuses.append)
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000):
        running.start()
    statuses.clear()
    fake.expire_sessions()
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000):
        pass
    assert all(s.state is LinkState.OK for s in statuses)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1  # the account id was reused
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 2  # start, then exactly one renewal


def test_the_gui_thread_never_touches_the_network(
    qtbot: QtBot, running: WorkerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    connecting_threads: set[int] = set()
    original = socket.socket.connect

    def recording_connect(self: socket.socket, address: object) -> None:
        connecting_threads.add(threading.get_ident())
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000):
        running.start()
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000):
        running.bridge.poll_requested.emit()
    assert connecting_threads  # the worker did connect...
    assert threading.main_thread().ident not in connecting_threads  # ...never from the GUI thread


def test_rejected_password_stops_polling_and_says_so(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    fake.add_account(Region.US, USER, "a-new-password")
    thread = _worker(fake, clock, tmp_path)
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    try:
        with qtbot.waitSignal(thread.worker.auth_failed, timeout=10_000) as failed:
            thread.start()
        assert "region" in failed.args[0]
        qtbot.waitUntil(
            lambda: (
                bool(statuses)
                and statuses[-1].state is LinkState.SIGN_IN_REJECTED
                and statuses[-1].next_poll is None
            ),
            timeout=5000,
        )
        assert fake.counters.sign_ins() == 1  # one attempt, and nothing is planned after it
        assert fake.counters.failed_sign_ins() == 1
    finally:
        assert thread.stop(5000)


def test_sign_ins_answered_with_errors_stop_after_three_and_say_so(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    """Protocol 7.1: a third failed sign-in in a row stops automatic sign-ins until the person
    acts; the tray then says so, not "will try again by itself". Answered means a Share error
    Code (a proxy's 5xx page is not an answer of the sign-in service: test_share_polling)."""
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE, count=1000)
    thread = _worker(fake, clock, tmp_path)
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    try:
        thread.start()
        qtbot.waitUntil(
            lambda: (
                bool(statuses)
                and statuses[-1].state is LinkState.STOPPED
                and statuses[-1].next_poll is None
            ),
            timeout=10_000,
        )
        assert "Refresh now" in (statuses[-1].problem or "")
        assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 3
    finally:
        assert thread.stop(5000)


def _last(statuses: list[ConnectionStatus], state: LinkState) -> bool:
    return bool(statuses) and statuses[-1].state is state and statuses[-1].next_poll is None


def test_a_rejected_password_is_tried_by_no_restart_and_no_refresh(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    fake.add_account(Region.US, USER, "a-new-password")
    gate_dir = tmp_path / "data"
    for run in range(3):  # the first start, then two restarts
        thread = _worker(fake, clock, tmp_path, gate_dir=gate_dir)
        statuses: list[ConnectionStatus] = []
        thread.worker.status_changed.connect(statuses.append)
        rejected = functools.partial(_last, statuses, LinkState.SIGN_IN_REJECTED)
        try:
            thread.start()
            qtbot.waitUntil(rejected, timeout=10_000)
            for _ in range(3):
                thread.bridge.poll_requested.emit()  # Refresh now
            qtbot.waitUntil(rejected, timeout=10_000)
            line = next_check_line(statuses[-1], clock.now())
            assert line == "Dexcom rejected the password: change it in Settings"
        finally:
            assert thread.stop(5000)
        assert fake.counters.sign_ins() == 1, run  # the first start's one attempt, only


def test_a_lock_waits_its_hour_says_until_when_then_a_refresh_signs_in_once(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    fake.lock_account(Region.US, USER)
    thread = _worker(fake, clock, tmp_path, gate_dir=tmp_path / "data")
    statuses: list[ConnectionStatus] = []
    thread.worker.status_changed.connect(statuses.append)
    try:
        thread.start()
        qtbot.waitUntil(lambda: _last(statuses, LinkState.LOCKED), timeout=10_000)
        until = statuses[-1].sign_in_after
        assert until is not None
        assert until - clock.now() > timedelta(minutes=30)
        thread.bridge.poll_requested.emit()  # Refresh now during the lock: nothing tried
        qtbot.waitUntil(lambda: _last(statuses, LinkState.LOCKED), timeout=10_000)
        line = next_check_line(statuses[-1], clock.now()) or ""
        assert line.startswith("Dexcom locked the account: try again after ")
        assert until.astimezone().strftime("%H:%M") in line
        assert fake.counters.sign_ins() == 1
        # The hour passes (6 real seconds at this speed): still nothing by itself.
        qtbot.waitUntil(lambda: clock.now() > until + timedelta(minutes=5), timeout=30_000)
        assert fake.counters.sign_ins() == 1
        assert "Refresh now tries again" in (next_check_line(statuses[-1], clock.now()) or "")
        with qtbot.waitSignal(thread.worker.readings_received, timeout=10_000):
            thread.bridge.poll_requested.emit()
        assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 2  # the lock's, and this one
    finally:
        assert thread.stop(5000)


def test_stop_ends_the_thread_quickly(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
) -> None:
    thread = _worker(fake, clock, tmp_path)
    with qtbot.waitSignal(thread.worker.readings_received, timeout=10_000):
        thread.start()
    assert thread.stop(2000)
    assert not thread.thread.isRunning()


# --- the account id ------------------------------------------------------------------------------


def _news(worker: ShareWorker) -> list[AccountIdNews]:
    received: list[AccountIdNews] = []
    worker.account_id_changed.connect(received.append)
    return received


def test_a_learned_account_id_is_reported_once_and_never_in_a_repr(
    qtbot: QtBot, running: WorkerThread, fake: FakeShare
) -> None:
    news = _news(running.worker)
    with qtbot.waitSignal(running.worker.account_id_changed, timeout=10_000):
        running.start()
    fake.expire_sessions()
    with qtbot.waitSignal(running.worker.readings_received, timeout=10_000):
        pass
    account_id = fake.account_id(Region.US, USER)
    assert [n.account_id for n in news] == [account_id]  # the re-login by id learned nothing new
    assert news[0].source is running.worker._client_factory
    assert account_id not in repr(news[0])


def test_a_known_account_id_is_used_without_being_reported_again(
    qtbot: QtBot, fake: FakeShare, clock: ScaledClock, tmp_path: Path
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
        time_scale=SPEED,
    )
    thread = WorkerThread(worker)
    news = _news(worker)
    try:
        with qtbot.waitSignal(worker.readings_received, timeout=10_000):
            thread.start()
    finally:
        assert thread.stop(5000)
    assert news == []
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 0
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 1


@pytest.mark.parametrize("refusal", list(Refusal), ids=[r.value for r in Refusal])
def test_a_refused_account_id_is_reported_as_dropped(
    qtbot: QtBot, refusal: Refusal, fake: FakeShare, clock: ScaledClock, tmp_path: Path
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
        time_scale=SPEED,
    )
    thread = WorkerThread(worker)
    news = _news(worker)
    # The sign-in by name after the refusal fails too (an outage): no id is known any more.
    fake.inject_fault(Fault.BAD_GATEWAY_HTML, endpoint=ENDPOINT_AUTHENTICATE)
    try:
        with qtbot.waitSignal(worker.account_id_changed, timeout=10_000):
            thread.start()
    finally:
        assert thread.stop(5000)
        http.close()
    assert transport.refused == 1
    assert [n.account_id for n in news] == [None]
