"""The worker's watchdog: a planned poll happens even when the clock makes its plan recede."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pytestqt.qtbot import QtBot

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import Region
from cgmtray.ui.timers import QtTimers
from cgmtray.ui.worker import WATCHDOG_MARGIN, ShareWorker

T0 = datetime(2026, 12, 3, 2, 0, 0, tzinfo=UTC)
USER, PASSWORD = "parent@example.com", "pa55word-Night"


class Mono(QtTimers):
    """A monotonic clock the test moves (virtual seconds: the worker runs at time scale 1); the
    test fires the worker's timer itself."""

    def __init__(self) -> None:
        self.value = 0.0

    def monotonic(self) -> float:
        return self.value


@pytest.fixture
def share_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(share_clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(share_clock, regions=(Region.US,)) as server:
        server.add_account(Region.US, USER, PASSWORD)
        for minutes in range(0, 60, 5):
            reading = Reading(T0 - timedelta(minutes=minutes), 120, Trend.FLAT)
            server.publish(Region.US, USER, reading)
        yield server


def test_a_clock_set_back_an_hour_cannot_stop_polling(
    qtbot: QtBot, fake: FakeShare, share_clock: ManualClock
) -> None:
    """The computer's clock goes back an hour after a poll: the plan ("aligned in 330 s") moves
    with the clock at every timer fire, so without the watchdog the poll never comes."""
    local = ManualClock(T0)
    mono = Mono()
    config = ClientConfig(region=Region.US, username=USER, base_url=fake.base_url(Region.US))
    worker = ShareWorker(
        lambda: ShareClient(config, PASSWORD, clock=local),
        clock=local,
        store_path=None,
        timers=mono,
    )
    received: list[tuple[Reading, ...]] = []
    worker.readings_received.connect(received.append)
    worker.start()  # plans the start-up poll at once
    try:
        worker._on_timer_timeout()
        assert received
        assert received[-1][0].time == T0
        reads = fake.counters.reads()

        local.advance(timedelta(hours=-1))  # the computer's clock is set back
        fired_at = timedelta(0)
        step = timedelta(seconds=30)
        while fake.counters.reads() == reads:
            assert fired_at < timedelta(minutes=15), "no poll a quarter of an hour after the jump"
            fired_at += step
            share_clock.advance(step)
            local.advance(step)
            mono.value += step.total_seconds()
            worker._on_timer_timeout()  # as the timer would fire
        # The poll came once the planned one (about 5.5 min after the last) was a margin late.
        assert fired_at <= timedelta(minutes=6) + WATCHDOG_MARGIN + step
    finally:
        worker.stop()
