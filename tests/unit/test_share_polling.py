"""One scheduled poll (share.polling.poll_once) against the fake service: what it records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cgmtray.domain import schedule
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare, Fault
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.polling import poll_once
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_READ, Region

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
USER, PASSWORD = "erin@example.com", "pa55word-Erin"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        server.add_account(Region.US, USER, PASSWORD)
        server.publish(Region.US, USER, Reading(START - timedelta(minutes=2), 120, Trend.FLAT))
        yield server


@pytest.fixture
def client(fake: FakeShare, clock: ManualClock) -> Iterator[ShareClient]:
    config = ClientConfig(region=Region.US, username=USER, base_url=fake.base_url(Region.US))
    with ShareClient(config, PASSWORD, clock=clock) as made:
        yield made


def test_a_poll_brings_readings_and_records_the_sign_in(
    client: ShareClient, clock: ManualClock
) -> None:
    state = schedule.initial_state()
    outcome = poll_once(client, state, schedule.plan(state, clock.now()), clock.now)
    assert outcome.error is None
    assert not outcome.skipped
    assert [r.mgdl for r in outcome.readings] == [120]
    assert outcome.state.has_session
    assert outcome.state.last_sign_in_ok_at == START
    assert outcome.state.newest_reading == START - timedelta(minutes=2)


def test_a_failed_sign_in_counts_as_one_and_a_failed_read_does_not(
    client: ShareClient, fake: FakeShare, clock: ManualClock
) -> None:
    # An answer of Dexcom's sign-in service (a Share error Code) counts; a proxy's page would
    # not (see the Cloudflare test below).
    state = schedule.initial_state()
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE)
    failed = poll_once(client, state, schedule.plan(state, clock.now()), clock.now)
    assert failed.error is not None
    assert failed.error.during_sign_in
    assert (failed.state.sign_in_failures, failed.state.has_session) == (1, False)
    assert failed.state.last_sign_in_ok_at is None
    clock.advance(timedelta(minutes=10))
    fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_READ)
    read_failed = poll_once(
        client, failed.state, schedule.plan(failed.state, clock.now()), clock.now
    )
    assert read_failed.error is not None
    assert not read_failed.error.during_sign_in
    assert (read_failed.state.sign_in_failures, read_failed.state.has_session) == (0, True)


def test_no_request_when_a_session_is_needed_and_no_sign_in_is_allowed(
    client: ShareClient, fake: FakeShare, clock: ManualClock
) -> None:
    stopped = schedule.ScheduleState(sign_in_failures=schedule.MAX_SIGN_IN_FAILURES)
    plan = schedule.plan(stopped, clock.now())
    outcome = poll_once(client, stopped, plan, clock.now)
    assert outcome.skipped
    assert outcome.error is None
    assert fake.counters.sign_ins() == 0
    assert fake.counters.reads() == 0


def test_three_cloudflare_pages_at_sign_in_do_not_stop_polling(
    client: ShareClient, fake: FakeShare, clock: ManualClock
) -> None:
    # Protocol 7.1's "3 failed sign-ins stop" means answers of Dexcom's sign-in service only.
    state = schedule.initial_state()
    for _ in range(3):
        fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_AUTHENTICATE)
        plan = schedule.plan(state, clock.now())
        assert plan.at is not None
        assert plan.sign_in_allowed
        clock.set(max(plan.at, clock.now()))
        failed = poll_once(client, state, plan, clock.now)
        assert failed.error is not None
        assert failed.error.during_sign_in
        state = failed.state
    assert state.sign_in_failures == 0
    assert fake.counters.sign_ins() == 3
    plan = schedule.plan(state, clock.now())
    assert plan.at is not None
    assert plan.sign_in_allowed
    clock.set(plan.at)
    outcome = poll_once(client, state, plan, clock.now)
    assert outcome.error is None
    assert [r.mgdl for r in outcome.readings] == [120]
