"""The tray keeps polling after a hostile answer: a trickle, an endless body, a huge body.

Virtual time is stepped by the test; only the client's request deadline runs on real time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.readings import Reading
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import ENDPOINT_READ, Region
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0 = datetime(2026, 12, 3, 3, 0, 3, tzinfo=UTC)
USER, PASSWORD = "erin@example.com", "pa55word-Erin"
#: A short overall deadline (real time), so the test waits seconds, not the real 45.
DEADLINE_S = 3.0


@pytest.fixture
def fake() -> Iterator[FakeShare]:
    with FakeShare(ManualClock(T0), regions=(Region.US,)) as server:
        server.add_account(Region.US, USER, PASSWORD)
        sensor = SimulatedSensor(seed=3, start=T0 - timedelta(hours=3), lag_s=20.0)
        server.attach_sensor(Region.US, USER, sensor)
        yield server


HOSTILE = {
    "one byte a second": (Fault.DRIP, {"delay_s": 1.0}),
    "an endless chunked body": (Fault.ENDLESS, {"delay_s": 60.0}),
    "a 500 MB body": (Fault.HUGE, {"size_mb": 500.0}),
}


@pytest.mark.parametrize(("fault", "options"), HOSTILE.values(), ids=HOSTILE.keys())
def test_after_a_hostile_answer_the_next_polls_bring_readings(
    qtbot: QtBot, fake: FakeShare, tmp_path: Path, fault: Fault, options: dict[str, float]
) -> None:
    clock = fake.clock
    assert isinstance(clock, ManualClock)
    vt = VirtualTime(clock)
    config = ClientConfig(
        region=Region.US,
        username=USER,
        base_url=fake.base_url(Region.US),
        deadline_s=DEADLINE_S,
    )

    def factory() -> ShareClient:
        return ShareClient(config, PASSWORD, clock=clock)

    worker = ShareWorker(factory, clock=clock, store_path=None, timers=vt)
    thread = WorkerThread(worker)
    statuses: list[ConnectionStatus] = []
    batches: list[tuple[int, tuple[Reading, ...]]] = []
    direct = Qt.ConnectionType.DirectConnection
    worker.status_changed.connect(statuses.append, direct)
    worker.readings_received.connect(lambda r: batches.append((len(statuses), r)), direct)
    try:
        vt.start(thread)
        # Within a backoff or two: a stalled machine may make even a sane answer miss the
        # short deadline.
        vt.run_until(lambda: bool(batches), within=timedelta(minutes=10))
        fake.inject_fault(fault, endpoint=ENDPOINT_READ, **options)  # type: ignore[arg-type]
        vt.run_until(
            lambda: any(s.state is LinkState.UNREACHABLE for s in statuses),
            within=timedelta(minutes=10),
        )
        failed_at = next(i for i, s in enumerate(statuses) if s.state is LinkState.UNREACHABLE)
        vt.run_until(lambda: any(at > failed_at for at, _ in batches), within=timedelta(minutes=10))
    finally:
        assert thread.stop(30_000)
    assert fake.pending_faults() == 0
