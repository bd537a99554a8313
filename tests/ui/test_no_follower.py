"""Share on but nobody follows: the real worker and controller against the fake, in virtual time,
put it in the tray's status line; Test sign-in says it; readings make it go away."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from tests.support.fake_share import PASSWORD, USER, running_fake
from tests.support.virtual_time import VirtualTime

from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import NO_FOLLOWER_LINE
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import ENDPOINT_LIST_SUBSCRIPTIONS, Region
from cgmtray.ui.controller import Controller, ViewSettings
from cgmtray.ui.notifier import Notifier
from cgmtray.ui.sign_in_test import OutcomeKind, SignInAttempt, SignInOutcome, SignInTester
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

T0 = datetime(2026, 11, 21, 9, 0, 3, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    """Share on for the account, nobody follows it (and a reading that cannot flow yet)."""
    with running_fake(clock) as server:
        server.remove_followers(Region.US, USER)
        server.publish(Region.US, USER, Reading(T0 - timedelta(minutes=2), 118, Trend.FLAT))
        yield server


class Tray:
    """The real worker (virtual time), controller, tray presenter and notifier."""

    def __init__(self, fake: FakeShare, clock: ManualClock, tmp_path: Path) -> None:
        self.vt = VirtualTime(clock)
        config = ClientConfig(Region.US, USER, base_url=fake.base_url(Region.US))

        def factory() -> ShareClient:
            return ShareClient(config, PASSWORD, clock=clock)

        worker = ShareWorker(
            factory, clock=clock, store_path=str(tmp_path / "history.sqlite3"), timers=self.vt
        )
        self.worker = WorkerThread(worker)
        self.tray = TrayPresenter(force_status_window=True, clock=clock)
        self.controller = Controller(
            clock=clock,
            tray=self.tray,
            notifier=Notifier(
                tray=None,
                status_sink=lambda _request: None,
                sound=None,
                bus_address="unix:path=/nonexistent/cgm-tray-test-bus",
            ),
            worker=self.worker,
            view=ViewSettings(),
            timers=self.vt,
        )

    def status_line(self) -> str:
        model = self.tray.model
        return "" if model is None else model.status_line


@pytest.fixture
def tray(qtbot: QtBot, fake: FakeShare, clock: ManualClock, tmp_path: Path) -> Iterator[Tray]:
    made = Tray(fake, clock, tmp_path)
    made.controller.start()
    made.vt.wait_for_alarms_of(made.worker.worker)
    yield made
    assert made.controller.stop()


def test_the_status_line_says_nobody_follows_and_asks_once_per_sign_in(
    tray: Tray, fake: FakeShare
) -> None:
    # The list is the poll after the empty read (one request a minute at most; with no
    # reading ever seen that retry comes after 5 min).
    tray.vt.run_until(lambda: NO_FOLLOWER_LINE in tray.status_line(), within=timedelta(minutes=6))
    assert tray.status_line().startswith("No readings yet")
    assert fake.counters.subscription_lists() == 1
    before = fake.counters.reads()
    # Retries keep finding nothing: the line stays, the list is not asked again.
    tray.vt.run_until(lambda: fake.counters.reads() >= before + 4, within=timedelta(minutes=30))
    assert NO_FOLLOWER_LINE in tray.status_line()
    assert fake.counters.subscription_lists() == 1

    # Someone follows: readings flow at the next check and the line goes.
    fake.add_follower(Region.US, USER, "Kim")
    fake.publish(Region.US, USER, Reading(fake.now() - timedelta(minutes=1), 121, Trend.FLAT))
    tray.vt.run_until(lambda: "121" in tray.status_line(), within=timedelta(minutes=10))
    assert NO_FOLLOWER_LINE not in tray.status_line()


def test_a_failed_list_says_no_recent_readings_as_before(tray: Tray, fake: FakeShare) -> None:
    fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS)
    tray.vt.run_until(
        lambda: fake.counters.subscription_lists() == 1 and tray.status_line() != "",
        within=timedelta(minutes=6),  # the poll after the empty read
    )
    tray.vt.run_until(lambda: fake.counters.reads() >= 3, within=timedelta(minutes=10))
    assert tray.status_line() == "No readings yet"  # not an error, not the follower line
    assert fake.counters.subscription_lists() == 1


# --- Test sign-in ---------------------------------------------------------------------------------


def _test(qtbot: QtBot, fake: FakeShare, clock: ManualClock) -> SignInOutcome:
    tester = SignInTester(clock=clock)
    attempt = SignInAttempt(Region.US, USER, PASSWORD, base_url=fake.base_url(Region.US))
    with qtbot.waitSignal(tester.finished, timeout=WAIT_MS) as blocker:
        assert tester.test(attempt)
    outcome = blocker.args[0]
    assert isinstance(outcome, SignInOutcome)
    return outcome


def test_sign_in_test_says_share_is_on_but_nobody_follows(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    outcome = _test(qtbot, fake, clock)
    assert outcome.kind is OutcomeKind.NO_FOLLOWER
    assert outcome.signed_in
    assert outcome.headline == "Signed in, but nobody follows this account"
    assert NO_FOLLOWER_LINE in outcome.message
    assert "invite a follower" in outcome.message
    assert outcome.requests.follower_lists == 1
    assert fake.counters.subscription_lists() == 1
    assert fake.counters.reads() == 1


def test_sign_in_test_says_an_invitation_waits(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.add_follower(Region.US, USER, "Kim", accepted=False)
    outcome = _test(qtbot, fake, clock)
    assert outcome.kind is OutcomeKind.NO_FOLLOWER
    assert "An invitation is waiting" in outcome.message


def test_sign_in_test_with_a_follower_asks_no_list(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.add_follower(Region.US, USER, "Kim")
    outcome = _test(qtbot, fake, clock)
    assert outcome.kind is OutcomeKind.OK
    assert fake.counters.subscription_lists() == 0


def test_sign_in_test_falls_back_to_no_readings_when_the_list_fails(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS)
    outcome = _test(qtbot, fake, clock)
    assert outcome.kind is OutcomeKind.NO_READINGS
    assert outcome.signed_in
    assert fake.counters.subscription_lists() == 1
