"""Time can't silence an alert: the real worker, controller and client against the fake service
with a reading a year ahead, a lying Date header, and the computer's clock an hour off Share's.
Virtual time is stepped by the test (tests.support.virtual_time), whatever the machine's speed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.alerts import AlertDecision, DecisionAction
from cgmtray.domain.clock import ManualClock, ScaledClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.server_clock import ServerClock
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import ENDPOINT_READ, Region
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0 = datetime(2026, 12, 3, 2, 0, 2, tzinfo=UTC)
USER, PASSWORD = "night@example.com", "pa55word-Night"
#: The first urgent-low reading's time: the app has polled a few times in range before it.
LOW_AT = T0 + timedelta(minutes=20)
LAG = timedelta(seconds=20)


@dataclass
class Run:
    """The fake, the app's parts, and what reached the person."""

    fake: FakeShare
    controller: Controller
    tray: TrayPresenter
    worker: WorkerThread
    time: VirtualTime
    shown: list[NotificationRequest] = field(default_factory=list)
    #: Reads the fake answered after the urgent low became visible, when the alert was raised.
    reads_before_alert: int | None = None


def _publish_night(fake: FakeShare) -> None:
    """Two hours in range, then a fall to 45 mg/dL at LOW_AT (each reading visible LAG later)."""
    when = T0 - timedelta(hours=2)
    while when <= LOW_AT + timedelta(hours=1):
        value = 120 if when < LOW_AT - timedelta(minutes=10) else 70 if when < LOW_AT else 45
        trend = Trend.FLAT if value != 70 else Trend.SINGLE_DOWN
        fake.publish(Region.US, USER, Reading(when, value, trend), available_at=when + LAG)
        when += timedelta(minutes=5)


@pytest.fixture
def run_with(qtbot: QtBot) -> Iterator[object]:
    started: list[Run] = []

    def start(computer_offset: timedelta, fault: Fault | None) -> Run:
        share_time = ManualClock(T0)
        vt = VirtualTime(share_time)
        computer = ScaledClock(
            1.0, virtual_origin=T0 + computer_offset, real_origin=T0, real=share_time
        )
        fake = FakeShare(share_time, regions=(Region.US,))
        fake.start()
        fake.add_account(Region.US, USER, PASSWORD)
        _publish_night(fake)
        if fault is Fault.LYING_DATE:
            fake.inject_fault(fault, endpoint=ENDPOINT_READ, count=1)
        elif fault is not None:
            # Every read carries a reading a year ahead.
            fake.inject_fault(fault, count=None, until=T0 + timedelta(hours=3))
        share_clock = ServerClock(computer)
        config = ClientConfig(region=Region.US, username=USER, base_url=fake.base_url(Region.US))

        def factory() -> ShareClient:
            return ShareClient(config, PASSWORD, clock=computer, server_clock=share_clock)

        worker = ShareWorker(factory, clock=computer, store_path=None, timers=vt)
        thread = WorkerThread(worker)
        tray = TrayPresenter(force_status_window=True, clock=computer)
        shown: list[NotificationRequest] = []
        notifier = Notifier(
            tray=None,
            status_sink=shown.append,
            sound=None,
            bus_address="unix:path=/nonexistent/cgm-tray-test-bus",
        )
        controller = Controller(
            clock=share_clock,
            tray=tray,
            notifier=notifier,
            worker=thread,
            view=ViewSettings(),
            timers=vt,
        )
        run = Run(fake, controller, tray, thread, vt, shown)

        def on_decided(decisions: tuple[AlertDecision, ...]) -> None:
            raised = any(
                d.kind is AlertKind.URGENT_LOW and d.action is DecisionAction.RAISE
                for d in decisions
            )
            if run.reads_before_alert is None and raised:
                run.reads_before_alert = fake.counters.reads(since=LOW_AT + LAG)

        controller.decisions_made.connect(on_decided, Qt.ConnectionType.DirectConnection)
        started.append(run)
        controller.start()
        vt.wait_for_alarms_of(worker)
        return run

    yield start
    for run in started:
        # A busy machine may keep a request in flight past the controller's 2 s: wait it out
        # (generously) rather than fail on how fast the machine is.
        run.controller.stop()
        assert run.worker.thread.wait(30_000)
        run.fake.stop()


CASES = {
    "a reading a year ahead on every read": (timedelta(0), Fault.FUTURE_READING),
    "one answer dated 2001": (timedelta(0), Fault.LYING_DATE),
    "the computer an hour behind Share": (timedelta(hours=-1), None),
    "the computer an hour ahead of Share": (timedelta(hours=1), None),
}


@pytest.mark.parametrize(("offset", "fault"), CASES.values(), ids=CASES.keys())
def test_the_urgent_low_is_raised_by_the_first_read_that_can_see_it(
    qtbot: QtBot, run_with: object, offset: timedelta, fault: Fault | None
) -> None:
    assert callable(run_with)
    run: Run = run_with(offset, fault)
    run.time.run_until(lambda: run.reads_before_alert is not None, within=timedelta(hours=1))
    # The first poll after the 45 mg/dL reading became visible raised the alert (one poll = one
    # read, or two when its session had expired).
    assert run.reads_before_alert in (1, 2)
    # The notifier shows it (falling back to the status window) on its own: wait for that
    # without moving virtual time; the bound only catches a hang.
    qtbot.waitUntil(lambda: any(r.kind == "urgent_low" for r in run.shown), timeout=60_000)
    urgent = [r for r in run.shown if r.kind == "urgent_low"]
    assert "45 mg/dL" in urgent[0].title
    assert not [r for r in run.shown if r.kind == "no_data"], "a false no-data alert"
    model = run.tray.model  # the real value, never the one from the future
    assert model is not None
    assert model.text == "45"
    assert not model.stale
