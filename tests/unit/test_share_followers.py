"""ShareClient.list_followers against the fake Share on loopback, and the polls' follower check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cgmtray.domain import schedule
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare.server import FakeShare, Fault
from cgmtray.share import wire
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.errors import (
    InvalidRequestError,
    InvalidResponse,
    RequestTimedOut,
    ServiceUnavailable,
    SessionExpired,
)
from cgmtray.share.followers import FollowerSummary, parse_followers
from cgmtray.share.polling import FollowerCheck, poll_once
from cgmtray.share.regions import ENDPOINT_LIST_SUBSCRIPTIONS, ENDPOINT_READ, Region

USERNAME = "robin@example.com"
PASSWORD = "r0bin-Passw0rd"
START = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
ZERO = "00000000-0000-0000-0000-000000000000"
SUBSCRIBER = "5b1d6c1e-7d4a-4e9b-a1c5-9e8d7c6b5a41"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock, regions=[Region.US]) as server:
        server.add_account(Region.US, USERNAME, PASSWORD)
        yield server


@pytest.fixture
def client(fake: FakeShare, clock: ManualClock) -> Iterator[ShareClient]:
    config = ClientConfig(
        Region.US,
        USERNAME,
        base_url=fake.base_url(Region.US),
        connect_timeout_s=5.0,
        read_timeout_s=5.0,
    )
    with ShareClient(config, PASSWORD, clock=clock) as made:
        yield made


# --- the list as the client sums it up ------------------------------------------------------------


def test_nobody_follows(fake: FakeShare, client: ShareClient) -> None:
    fake.remove_followers(Region.US, USERNAME)
    assert client.read() == ()
    summary = client.list_followers()
    assert summary == FollowerSummary(accepted=0, pending=0)
    assert not summary.anyone_follows
    assert client.last_call.follower_lists == 1
    assert client.last_call.total == 1
    assert fake.counters.subscription_lists() == 1


def test_a_pending_invitation_is_not_a_follower_yet(fake: FakeShare, client: ShareClient) -> None:
    fake.remove_followers(Region.US, USERNAME)
    fake.add_follower(Region.US, USERNAME, "Kim", accepted=False)
    client.read()
    summary = client.list_followers()
    assert summary == FollowerSummary(accepted=0, pending=1)
    assert not summary.anyone_follows


def test_an_accepted_follower_follows(fake: FakeShare, client: ShareClient) -> None:
    fake.add_follower(Region.US, USERNAME, "Kim", accepted=False)
    client.read()
    summary = client.list_followers()
    assert summary == FollowerSummary(accepted=1, pending=1)  # the default one, and Kim
    assert summary.anyone_follows
    assert summary.total == 2
    fake.accept_follower(Region.US, USERNAME, "Kim")
    assert client.list_followers().accepted == 2


def test_the_list_never_signs_in_by_itself(fake: FakeShare, client: ShareClient) -> None:
    with pytest.raises(InvalidRequestError):
        client.list_followers()
    assert fake.counters.total() == 0


def test_an_expired_session_is_raised_without_a_new_sign_in(
    fake: FakeShare, client: ShareClient
) -> None:
    client.read()
    sign_ins = fake.counters.sign_ins()
    fake.expire_sessions()
    with pytest.raises(SessionExpired):
        client.list_followers()
    assert fake.counters.sign_ins() == sign_ins


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.UNAVAILABLE_HTML, ServiceUnavailable),
        (Fault.EMPTY_200, InvalidResponse),
        (Fault.TRUNCATED_JSON, InvalidResponse),
    ],
)
def test_a_broken_answer_is_a_share_error(
    fake: FakeShare, client: ShareClient, fault: Fault, error: type[Exception]
) -> None:
    client.read()
    fake.inject_fault(fault, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS)
    with pytest.raises(error):
        client.list_followers()


def test_the_list_has_the_timeout_of_every_call(fake: FakeShare, clock: ManualClock) -> None:
    config = ClientConfig(
        Region.US,
        USERNAME,
        base_url=fake.base_url(Region.US),
        connect_timeout_s=5.0,
        read_timeout_s=0.05,
    )
    with ShareClient(config, PASSWORD, clock=clock) as slow:
        slow.read()
        fake.inject_fault(Fault.SLOW, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS, delay_s=0.3)
        with pytest.raises(RequestTimedOut):
            slow.list_followers()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([], FollowerSummary(0, 0)),
        ([{"SubscriberId": ZERO, "State": 2}], FollowerSummary(0, 1)),
        ([{"State": 2}], FollowerSummary(0, 1)),
        ([{"SubscriberId": SUBSCRIBER, "State": 7}], FollowerSummary(1, 0)),
        ([{"SubscriberId": SUBSCRIBER, "IsEnabled": False}], FollowerSummary(0, 0)),
        ([{"SubscriberId": "not-an-id"}], FollowerSummary(0, 1)),
    ],
)
def test_accepted_is_told_by_a_real_subscriber_id(
    answer: list[dict[str, object]], expected: FollowerSummary
) -> None:
    assert parse_followers(answer) == expected


@pytest.mark.parametrize("answer", [None, {}, "[]", [1], [None]])
def test_a_list_of_another_shape_is_refused(answer: object) -> None:
    with pytest.raises(wire.WireFormatError):
        parse_followers(answer)


# --- the poll's follower check: once per sign-in, counted, never an error -----------------------


def _poll(
    client: ShareClient, state: schedule.ScheduleState, clock: ManualClock, check: FollowerCheck
) -> tuple[schedule.ScheduleState, bool]:
    plan = schedule.plan(state, clock.now())
    outcome = poll_once(client, state, plan, clock.now, check)
    assert outcome.error is None
    return outcome.state, outcome.nobody_follows


def test_an_empty_read_asks_the_list_once_per_sign_in_and_counts_it(
    fake: FakeShare, client: ShareClient, clock: ManualClock
) -> None:
    fake.remove_followers(Region.US, USERNAME)
    check = FollowerCheck()
    state = schedule.initial_state()
    state, nobody = _poll(client, state, clock, check)
    assert not nobody  # not known yet: the list is the next poll's one request
    assert fake.counters.subscription_lists() == 0
    reads_before = fake.counters.count(ENDPOINT_READ)
    clock.advance(timedelta(minutes=1))
    state, nobody = _poll(client, state, clock, check)
    assert nobody
    assert fake.counters.subscription_lists() == 1
    assert fake.counters.count(ENDPOINT_READ) == reads_before  # instead of a read, not beside it
    # The list's request is in the read budget beside the read itself.
    assert len(state.ledger.reads) == 2
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        state, nobody = _poll(client, state, clock, check)
        assert nobody
    assert fake.counters.subscription_lists() == 1  # not every poll
    fake.expire_sessions()  # the next poll signs in again: one more look at the list
    clock.advance(timedelta(minutes=5))
    state, nobody = _poll(client, state, clock, check)
    clock.advance(timedelta(minutes=1))
    state, nobody = _poll(client, state, clock, check)
    assert nobody
    assert fake.counters.subscription_lists() == 2


def test_no_two_requests_within_a_minute_for_the_list(
    fake: FakeShare, client: ShareClient, clock: ManualClock
) -> None:
    """Share's budget (section 7.1): never more than one request per 60 s, the list included."""
    fake.remove_followers(Region.US, USERNAME)
    check = FollowerCheck()
    state = schedule.initial_state()
    state, _ = _poll(client, state, clock, check)  # sign-in and read: the allowed pair
    for _ in range(6):
        plan = schedule.plan(state, clock.now())
        assert plan.at is not None
        assert plan.at - clock.now() >= timedelta(seconds=60) or plan.at <= clock.now()
        clock.set(max(clock.now() + timedelta(seconds=60), plan.at))
        requests_before = fake.counters.count(ENDPOINT_READ) + fake.counters.subscription_lists()
        state, _ = _poll(client, state, clock, check)
        made = fake.counters.count(ENDPOINT_READ) + fake.counters.subscription_lists()
        assert made - requests_before == 1
    assert fake.counters.subscription_lists() == 1


def test_readings_need_no_list_and_a_failed_list_falls_back_quietly(
    fake: FakeShare, client: ShareClient, clock: ManualClock
) -> None:
    check = FollowerCheck()
    fake.publish(Region.US, USERNAME, Reading(START - timedelta(minutes=2), 110, Trend.FLAT))
    state, nobody = _poll(client, schedule.initial_state(), clock, check)
    assert not nobody
    assert fake.counters.subscription_lists() == 0

    fake.remove_followers(Region.US, USERNAME)
    fake.expire_sessions()
    fake.inject_fault(Fault.UNAVAILABLE_HTML, endpoint=ENDPOINT_LIST_SUBSCRIPTIONS)
    clock.advance(timedelta(minutes=6))
    state, nobody = _poll(client, state, clock, check)  # a late reading: an empty read
    clock.advance(timedelta(minutes=1))
    state, nobody = _poll(client, state, clock, check)  # its retry reads: no list in its place
    assert fake.counters.subscription_lists() == 0
    clock.advance(timedelta(minutes=30))
    state, nobody = _poll(client, state, clock, check)  # no data for 30 min: the list is due
    clock.advance(timedelta(minutes=1))
    state, nobody = _poll(client, state, clock, check)  # the list, which fails
    assert not nobody  # not known: just "no recent readings"
    assert fake.counters.subscription_lists() == 1
    clock.advance(timedelta(minutes=5))
    state, nobody = _poll(client, state, clock, check)
    assert not nobody
    assert fake.counters.subscription_lists() == 1  # not asked again on this session
    # one, a session error and its retry, the late one's retry, the no-data one, one
    assert fake.counters.count(ENDPOINT_READ) == 6
