"""One named test per trap of share-protocol.md section 9, through the real code paths.

The client runs against the in-process fake Share over loopback HTTP on a manual clock; the
poll loop below drives the real domain scheduler exactly as the worker does (plan, wait, read,
record), so budgets are read off the fake's request counters.

Trap 17 ("asking the user for follower credentials") has no API behaviour to test: Share offers
the tray app no follower sign-in at all, so the client can only ever send the publisher's
credentials to the publisher endpoints. What is testable is that everything the person reads
asks for the login of the person who wears the sensor, not a follower's (here: the error texts
and the endpoints used; tests/ui/test_protocol_traps_ui.py: the welcome and settings windows).
"""

from __future__ import annotations

import io
import json
import logging
import math
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Final

import pytest
import requests
from tests.support.ports import free_port

from cgmtray import logging_setup
from cgmtray.domain import display, schedule
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import ConnectionStatus, LinkState
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.readings import HIGH_MGDL, LOW_MGDL, Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient, validate_share_url
from cgmtray.share.errors import (
    AccountLocked,
    AccountPasswordInvalid,
    CredentialsRejected,
    IdentityServiceError,
    InvalidRequestError,
    InvalidResponse,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ShareError,
    SignInBlocked,
    SsoCredentialsRejected,
    ZeroIdReturned,
    error_for_code,
)
from cgmtray.share.polling import poll_once
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    SERVICES_PATH,
    Region,
)
from cgmtray.share.wire import WireFormatError, parse_readings, parse_share_date, parse_trend
from cgmtray.storage.settings import one_person_settings, validate

USERNAME: Final = "alice@example.com"
PASSWORD: Final = "s3cret-Passw0rd!"
START: Final = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
MINUTE: Final = timedelta(minutes=1)
HOUR: Final = timedelta(hours=1)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with FakeShare(clock) as server:
        server.add_account(Region.US, USERNAME, PASSWORD)
        yield server


ClientFactory = Callable[..., ShareClient]


@pytest.fixture
def make_client(fake: FakeShare, clock: ManualClock) -> Iterator[ClientFactory]:
    made: list[ShareClient] = []

    def factory(
        *,
        region: Region = Region.US,
        host: Region | None = None,
        username: str = USERNAME,
        password: str = PASSWORD,
        read_timeout_s: float = 5.0,
        session: requests.Session | None = None,
    ) -> ShareClient:
        config = ClientConfig(
            region=region,
            username=username,
            base_url=fake.base_url(host or region),
            connect_timeout_s=2.0,
            read_timeout_s=read_timeout_s,
        )
        client = ShareClient(config, password, clock=clock, session=session)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


def publish(fake: FakeShare, when: datetime, mgdl: int, **extra: Any) -> Reading:
    reading = Reading(when, mgdl, Trend.FLAT)
    fake.publish(Region.US, USERNAME, reading, **extra)
    return reading


# --- the worker's poll loop, on the manual clock -------------------------------------------------


@dataclass
class Loop:
    """What a run of the poll loop did: when each poll started, and the last state."""

    state: schedule.ScheduleState
    polls: list[datetime] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    #: Every reading time any poll returned.
    seen: set[datetime] = field(default_factory=set)


def poll_loop(
    client: ShareClient,
    clock: ManualClock,
    until: datetime,
    state: schedule.ScheduleState | None = None,
) -> Loop:
    """Plans, waits (moves the clock) and polls with share.polling.poll_once, as the worker does."""
    loop = Loop(state if state is not None else schedule.initial_state(seed=7))
    for _ in range(5000):
        plan = schedule.plan(loop.state, clock.now())
        if plan.at is None or plan.at > until:
            break
        clock.set(plan.at)
        now = clock.now()
        loop.polls.append(now)
        outcome = poll_once(client, loop.state, plan, clock.now)
        loop.state = outcome.state
        loop.seen.update(reading.time for reading in outcome.readings)
        if outcome.skipped:
            loop.outcomes.append("no-sign-in-allowed")
        elif isinstance(outcome.error, SignInBlocked):
            loop.outcomes.append("blocked")
        elif outcome.error is not None:
            loop.outcomes.append(type(outcome.error).__name__)
        else:
            loop.outcomes.append("ok")
    else:  # pragma: no cover - a runaway loop is itself the failure
        raise AssertionError("the poll loop never settled")
    clock.set(max(clock.now(), until))
    return loop


def sensor_account(fake: FakeShare, **sensor: Any) -> None:
    fake.attach_sensor(
        Region.US,
        USERNAME,
        SimulatedSensor(seed=11, start=START - timedelta(hours=2), lag_s=20.0, **sensor),
    )


# --- 1: every 500 is not transient ---------------------------------------------------------------


def test_trap_01_every_500_is_not_transient(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(password="an-old-password")
    with pytest.raises(AccountPasswordInvalid) as caught:
        client.read()
    assert caught.value.status == 500
    assert caught.value.failure_class is FailureClass.CREDENTIALS
    # Not retried: the client refuses by itself, and the scheduler stops.
    with pytest.raises(SignInBlocked):
        client.read()
    assert fake.counters.failed_sign_ins() == 1
    stopped = schedule.record_failure(
        schedule.initial_state(), clock.now(), FailureClass.CREDENTIALS, 0, 1
    )
    assert schedule.plan(stopped, clock.now()).at is None


def test_trap_01_a_wrong_password_never_walks_the_account_into_a_lockout(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(password="an-old-password")
    loop = poll_loop(client, clock, START + 12 * HOUR)
    assert fake.counters.failed_sign_ins() == 1  # one attempt in 12 hours
    assert not fake.is_locked(Region.US, USERNAME)
    assert loop.state.block is not None


def test_trap_01_the_2024_credential_form_and_the_lock_are_500s_too(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    fake.set_credential_error_style("2024")
    with pytest.raises(SsoCredentialsRejected) as rejected:
        make_client(password="wrong").sign_in()
    assert (rejected.value.status, rejected.value.failure_class) == (500, FailureClass.CREDENTIALS)
    fake.lock_account(Region.US, USERNAME)
    with pytest.raises(AccountLocked) as locked:
        make_client().sign_in()
    assert (locked.value.status, locked.value.failure_class) == (500, FailureClass.LOCKED)
    # Only a 500 that is not about the account backs off as transient.
    fake.unlock_account(Region.US, USERNAME)
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE)
    with pytest.raises(IdentityServiceError) as trouble:
        make_client().sign_in()
    assert (trouble.value.status, trouble.value.failure_class) == (500, FailureClass.TRANSIENT)


# --- 2: no re-login on every error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault.BAD_GATEWAY_HTML, ShareError),
        (Fault.UNAVAILABLE_HTML, ShareError),
        (Fault.EMPTY_200, InvalidResponse),
        (Fault.TRUNCATED_JSON, InvalidResponse),
        (Fault.RESET, NetworkError),
        (Fault.SERVER_ERROR_JSON, IdentityServiceError),
        (Fault.RATE_LIMIT, RateLimited),
    ],
    ids=lambda value: getattr(value, "value", getattr(value, "__name__", str(value))),
)
def test_trap_02_no_relogin_on_every_error(
    fake: FakeShare,
    make_client: ClientFactory,
    clock: ManualClock,
    fault: Fault,
    error_type: type[ShareError],
) -> None:
    publish(fake, clock.now() - 2 * MINUTE, 120)
    client = make_client()
    client.read()
    sign_ins = fake.counters.sign_ins()
    fake.inject_fault(fault, endpoint=ENDPOINT_READ)
    with pytest.raises(error_type):
        client.read()
    assert client.last_call.sign_ins == 0
    assert client.has_session  # the session is kept through a network or service blip
    assert [r.mgdl for r in client.read()] == [120]
    assert fake.counters.sign_ins() == sign_ins


def test_trap_02_a_session_error_costs_one_relogin_not_a_loop(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    publish(fake, clock.now() - 2 * MINUTE, 120)
    client = make_client()
    client.read()
    fake.expire_sessions()
    assert [r.mgdl for r in client.read()] == [120]
    assert client.last_call.sign_ins == 1  # LoginById with the cached account id, once
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1


# --- 3: no login on every poll -------------------------------------------------------------------


def test_trap_03_no_login_on_every_poll(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    sensor_account(fake)
    loop = poll_loop(make_client(), clock, START + 3 * HOUR)
    assert loop.outcomes.count("ok") >= 30
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 1
    assert fake.counters.reads() == len(loop.polls)


def test_trap_03_a_day_of_polling_signs_in_about_once_a_day(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    sensor_account(fake)
    poll_loop(make_client(), clock, START + 25 * HOUR)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 2  # the start, the 23 h renewal
    assert fake.counters.reads() <= 25 * 15


def test_trap_03_a_sign_in_that_keeps_failing_is_not_taken_for_a_working_one(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    # Answers of Dexcom's sign-in service (a Share error Code) that keep failing.
    fake.inject_fault(Fault.SERVER_ERROR_JSON, endpoint=ENDPOINT_AUTHENTICATE, count=1000)
    loop = poll_loop(make_client(), clock, START + 6 * HOUR)
    assert loop.state.last_sign_in_ok_at is None
    assert not loop.state.has_session
    # Protocol 7.1: a third failed sign-in in a row stops automatic sign-ins.
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 3


def test_trap_03_proxy_pages_at_sign_in_keep_the_sign_in_budget_but_do_not_stop(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    # A Cloudflare 502 page never reached the sign-in service: it is no answered failure, so
    # polling goes on, within the sign-in budget (3 an hour).
    fake.inject_fault(Fault.BAD_GATEWAY_HTML, endpoint=ENDPOINT_AUTHENTICATE, count=1000)
    loop = poll_loop(make_client(), clock, START + 6 * HOUR)
    assert loop.state.last_sign_in_ok_at is None
    assert loop.state.block is None
    assert 6 < fake.counters.count(ENDPOINT_AUTHENTICATE) <= 6 * 3 + 1


# --- 4: trusting a 200 ---------------------------------------------------------------------------


class BlankAccountIdSession(requests.Session):
    """Sends LoginById an empty account id, which the service answers with 200 + the zero id."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        url = str(args[1] if len(args) > 1 else kwargs["url"])
        if url.endswith(ENDPOINT_LOGIN_BY_ID):
            body = json.loads(kwargs["data"])
            body["accountId"] = ""
            kwargs["data"] = json.dumps(body).encode()
        return super().request(*args, **kwargs)


def test_trap_04_a_zero_id_with_200_is_not_a_session(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    with BlankAccountIdSession() as http:
        client = make_client(session=http)
        with pytest.raises(ZeroIdReturned) as caught:
            client.sign_in()
    assert caught.value.status == 200
    assert caught.value.failure_class is FailureClass.CREDENTIALS
    assert not client.has_session
    assert [r.code for r in fake.counters.log if r.endpoint == ENDPOINT_LOGIN_BY_ID][-1] == (
        "ZeroUuid"
    )


@pytest.mark.parametrize("fault", [Fault.EMPTY_200, Fault.TRUNCATED_JSON])
@pytest.mark.parametrize("endpoint", [ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ])
def test_trap_04_an_empty_or_cut_200_is_not_data(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock, fault: Fault, endpoint: str
) -> None:
    publish(fake, clock.now() - 2 * MINUTE, 120)
    fake.inject_fault(fault, endpoint=endpoint)
    client = make_client()
    with pytest.raises(InvalidResponse) as caught:
        client.read()
    assert caught.value.status == 200
    assert caught.value.failure_class is FailureClass.TRANSIENT  # never "wrong password"
    assert client.sign_in_blocked is None


# --- 5: one date form only -----------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["2021-form", "legacy-form"])
@pytest.mark.parametrize("offset_minutes", [-240, 0, 330, -720, 840])
def test_trap_05_every_date_form_and_offset_gives_the_same_utc_instant(
    fake: FakeShare,
    make_client: ClientFactory,
    clock: ManualClock,
    legacy: bool,
    offset_minutes: int,
) -> None:
    fake.set_legacy_format(legacy)
    when = clock.now() - 3 * MINUTE
    publish(fake, when, 131, offset_minutes=offset_minutes)
    (reading,) = make_client().read()
    assert reading.time == when  # the offset is the publisher's zone, never added to the instant
    assert reading.time.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "Date(1745081013817)",
        "Date(1745081013817-0400)",
        "Date(1745081013817+0000)",
        "/Date(1745081013817-0700)/",
        "\\/Date(1745081013817)\\/",
        "DT: Date(1745081013817+0530) (local)",  # not anchored
    ],
)
def test_trap_05_the_date_parser_is_not_anchored_and_needs_no_offset(text: str) -> None:
    assert parse_share_date(text) == datetime(2025, 4, 19, 16, 43, 33, 817000, tzinfo=UTC)


def test_trap_05_time_falls_back_from_wt_to_dt_to_st_without_applying_offsets() -> None:
    ms = 1745081013817
    (from_dt,) = parse_readings([{"DT": f"Date({ms}-0400)", "Value": 100, "Trend": "Flat"}])
    (from_st,) = parse_readings([{"ST": f"Date({ms})", "Value": 100}])
    assert from_dt.time == from_st.time == datetime.fromtimestamp(ms / 1000, UTC)


# --- 6: integer-only or name-only trends ---------------------------------------------------------


def test_trap_06_integer_trends_from_legacy_answers(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    fake.set_legacy_format(True)
    for minutes_ago, trend in ((12, Trend.DOUBLE_DOWN), (7, Trend.FORTY_FIVE_UP)):
        reading = Reading(clock.now() - minutes_ago * MINUTE, 150, trend)
        fake.publish(Region.US, USERNAME, reading)
    readings = make_client().read(minutes=30, max_count=6)
    assert [r.trend for r in readings] == [Trend.FORTY_FIVE_UP, Trend.DOUBLE_DOWN]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FortyFiveUp", Trend.FORTY_FIVE_UP),
        ("fortyfiveup", Trend.FORTY_FIVE_UP),
        ("Forty Five Up", Trend.FORTY_FIVE_UP),
        (3, Trend.FORTY_FIVE_UP),
        ("NotComputable", Trend.NOT_COMPUTABLE),
        ("NonComputable", Trend.NOT_COMPUTABLE),
        ("RateOutOfRange", Trend.RATE_OUT_OF_RANGE),
        ("SidewaysWobble", Trend.NONE),
        (42, Trend.NONE),
        (None, Trend.NONE),
    ],
)
def test_trap_06_trend_names_in_any_spelling_and_unknowns_never_crash(
    value: object, expected: Trend
) -> None:
    assert parse_trend(value) is expected
    (reading,) = parse_readings([{"WT": "Date(1745081013817)", "Value": 120, "Trend": value}])
    assert reading.trend is expected  # the reading is kept, only the arrow is dropped


# --- 7: LOW and HIGH shown as numbers ------------------------------------------------------------


@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize(
    ("mgdl", "word", "wrong"),
    [(LOW_MGDL, "LOW", ("39", "2.2")), (HIGH_MGDL, "HIGH", ("401", "22.3"))],
)
def test_trap_07_low_and_high_are_shown_as_words_in_every_unit(
    fake: FakeShare,
    make_client: ClientFactory,
    clock: ManualClock,
    unit: Unit,
    mgdl: int,
    word: str,
    wrong: tuple[str, str],
) -> None:
    publish(fake, clock.now() - 2 * MINUTE, mgdl)
    readings = make_client().read()
    model = display.model(readings, clock.now(), unit=unit, thresholds=Thresholds())
    assert model.text == word
    assert model.tooltip.startswith(word)
    assert word.lower() in model.accessible.lower()
    for number in wrong:
        assert number not in model.text
        assert not model.tooltip.startswith(number)
    assert display.compact_text(readings[0], unit, max_chars=3) in ("LOW", "HI")


# --- 8: [] taken for an error --------------------------------------------------------------------


def test_trap_08_an_empty_answer_is_not_an_error(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    assert client.read(minutes=1440, max_count=288) == ()
    state = schedule.record_success(schedule.initial_state(), clock.now(), [], 1, True)
    plan = schedule.plan(state, clock.now())
    assert plan.reason not in (
        schedule.PollReason.BACKOFF_TRANSIENT,
        schedule.PollReason.BACKOFF_SESSION,
    )
    assert plan.at is not None
    assert plan.at - clock.now() >= MINUTE
    status = ConnectionStatus(LinkState.OK)
    model = display.model(
        (), clock.now(), unit=Unit.MGDL, thresholds=Thresholds(), connection=status.problem
    )
    assert model.severity is display.Severity.NO_DATA  # "no readings yet", not an error
    assert model.text == display.NO_DATA_TEXT
    assert "No readings yet" in model.tooltip
    assert fake.counters.sign_ins() == 2  # and it did not sign in again over it


# --- 9: wrong region shown as wrong password -----------------------------------------------------


def test_trap_09_wrong_region_says_check_region(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(region=Region.OUS)  # a US account, signed in outside the US
    with pytest.raises(CredentialsRejected) as caught:
        client.read()
    message = caught.value.user_message
    assert "region" in message
    assert "password" in message
    status = ConnectionStatus(
        LinkState.SIGN_IN_REJECTED, message=message, failure=caught.value.failure_class
    )
    default = ConnectionStatus(LinkState.SIGN_IN_REJECTED)
    assert default.problem is not None
    assert "region" in default.problem
    model = display.model(
        (),
        clock.now(),
        unit=Unit.MGDL,
        thresholds=Thresholds(),
        connection=status.problem,
        failure=status.failure,
    )
    assert "region" in model.tooltip
    assert "region" in model.accessible
    assert model.text == display.ERROR_TEXT


# --- 10: no timeouts -----------------------------------------------------------------------------


class RecordingSession(requests.Session):
    """A real session that notes the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.calls: list[dict[str, Any]] = []

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append(dict(kwargs))
        return super().request(*args, **kwargs)


def test_trap_10_every_request_has_a_connect_and_a_read_timeout(fake: FakeShare) -> None:
    config = ClientConfig(region=Region.US, username=USERNAME, base_url=fake.base_url())
    assert (config.connect_timeout_s, config.read_timeout_s) == (10.0, 30.0)  # not 10 s in all
    with RecordingSession() as http, ShareClient(config, PASSWORD, session=http) as client:
        client.read()
    assert len(http.calls) == 3
    assert all(call["timeout"] == (10.0, 30.0) for call in http.calls)


def test_trap_10_a_service_that_never_answers_times_out(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    fake.inject_fault(Fault.SLOW, endpoint=ENDPOINT_AUTHENTICATE, delay_s=60)
    client = make_client(read_timeout_s=0.3)
    with pytest.raises(RequestTimedOut) as caught:
        client.sign_in()
    assert caught.value.failure_class is FailureClass.TRANSIENT


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf])
def test_trap_10_a_missing_or_endless_timeout_is_refused(fake: FakeShare, seconds: float) -> None:
    for name in ("connect_timeout_s", "read_timeout_s"):
        config = ClientConfig(
            region=Region.US,
            username=USERNAME,
            base_url=fake.base_url(),
            **{name: seconds},  # type: ignore[arg-type]
        )
        with pytest.raises(InvalidRequestError):
            ShareClient(config, PASSWORD)


# --- 11: fixed short interval or a tight loop ----------------------------------------------------


def test_trap_11_polls_follow_the_readings_not_a_fixed_short_interval(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    gap = (START + 60 * MINUTE, START + 100 * MINUTE)
    sensor_account(fake, gaps=[gap])
    loop = poll_loop(make_client(), clock, START + 3 * HOUR)
    spacing = [later - earlier for earlier, later in zip(loop.polls, loop.polls[1:], strict=False)]
    assert min(spacing) >= MINUTE  # never faster than one request a minute
    steady = [p for p in loop.polls if START + 2 * HOUR <= p < START + 3 * HOUR]
    assert 12 <= len(steady) <= 16  # about one poll per reading (a fixed 30 s poller: 120)
    in_gap = [p for p in loop.polls if gap[0] <= p < gap[1]]
    assert len(in_gap) <= 16  # 40 minutes without data: backing off, not a tight loop
    assert fake.counters.reads() == len(loop.polls)


def test_trap_11_the_next_poll_after_a_reading_is_aligned_to_the_next_one(
    clock: ManualClock,
) -> None:
    newest = clock.now() - 40 * timedelta(seconds=1)
    state = schedule.record_success(schedule.initial_state(), clock.now(), [newest], 1, True)
    plan = schedule.plan(state, clock.now())
    assert plan.at is not None
    assert newest + timedelta(minutes=5) <= plan.at <= newest + timedelta(minutes=7)


# --- 12: maxCount=1 only -------------------------------------------------------------------------


def test_trap_12_readings_backfilled_after_a_gap_are_all_fetched(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    known = publish(fake, clock.now() - 2 * MINUTE, 110)
    state = schedule.record_success(
        schedule.initial_state(), clock.now(), [r.time for r in client.read()], 1, True
    )
    # The phone was offline for an hour, then uploaded everything at once.
    clock.advance(HOUR)
    backfilled = [
        publish(fake, known.time + 5 * i * MINUTE, 110 + i, available_at=clock.now())
        for i in range(1, 13)
    ]
    plan = schedule.plan(state, clock.now())
    assert plan.max_count >= len(backfilled)
    assert plan.minutes >= 60
    readings = client.read(minutes=plan.minutes, max_count=plan.max_count)
    assert {r.time for r in backfilled} <= {r.time for r in readings}
    assert len(client.read(minutes=plan.minutes, max_count=1)) == 1  # what maxCount=1 would miss


def test_trap_12_a_reading_uploaded_after_a_newer_one_is_still_fetched(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    """The phone uploads the current reading first and the missed one from its queue minutes
    later: the polls that follow keep reading back to the gap until it fills."""
    start = clock.now()
    first = publish(fake, start - 2 * MINUTE, 110)
    late = publish(fake, first.time + 5 * MINUTE, 112, available_at=first.time + 22 * MINUTE)
    after = publish(fake, first.time + 10 * MINUTE, 114)
    later = [publish(fake, first.time + k * 5 * MINUTE, 115) for k in range(3, 8)]
    loop = poll_loop(make_client(), clock, start + 45 * MINUTE)
    assert {first.time, late.time, after.time, *(r.time for r in later)} <= loop.seen
    assert loop.state.gap_from is None  # filled, windows back to normal


# --- 13: TLS verification ------------------------------------------------------------------------


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the openssl command is not available to make a test certificate")
    return key, cert


class _RecordingHandler(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        payload = b'"6a3c0e2d-1b4f-4c8a-9d7e-2f1a0b9c8d7e"'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _QuietTlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A refused handshake is what the test expects."""


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key, cert = _self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _RecordingHandler.bodies = []
    httpd = _QuietTlsServer(("127.0.0.1", 0), _RecordingHandler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="tls-share", daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}{SERVICES_PATH}", cert
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_trap_13_a_certificate_nobody_vouches_for_is_refused(
    https_server: tuple[str, Path],
) -> None:
    url, cert = https_server
    config = ClientConfig(region=Region.US, username=USERNAME, base_url=url, read_timeout_s=5)
    with ShareClient(config, PASSWORD) as client, pytest.raises(NetworkError) as caught:
        client.sign_in()
    assert PASSWORD not in str(caught.value)
    assert _RecordingHandler.bodies == []  # the password never left over the untrusted link
    # The same server is fine for a client that trusts its certificate: the refusal above
    # was the verification, not a broken server.
    with requests.Session() as trusting:
        trusting.trust_env = False
        answer = trusting.post(url + ENDPOINT_AUTHENTICATE, data=b"{}", verify=str(cert), timeout=5)
    assert answer.status_code == 200


def test_trap_13_verification_is_always_on_and_credentials_go_only_to_share_or_loopback(
    fake: FakeShare,
) -> None:
    config = ClientConfig(region=Region.US, username=USERNAME, base_url=fake.base_url())
    with RecordingSession() as http, ShareClient(config, PASSWORD, session=http) as client:
        http.verify = False  # even a session told not to verify is overruled
        client.read()
    assert http.calls
    assert all(call["verify"] is True for call in http.calls)
    for url in (
        "https://share2.dexcom.example/ShareWebServices/Services/",
        "http://10.0.0.7:8080/ShareWebServices/Services/",
        "http://127.0.0.1.evil.example:80/ShareWebServices/Services/",
        "http://user:pw@127.0.0.1:80/ShareWebServices/Services/",
    ):
        with pytest.raises(InvalidRequestError):
            validate_share_url(url)
    for region in Region:
        assert region.base_url.startswith("https://")


# --- 14: logging request bodies ------------------------------------------------------------------


def test_trap_14_debug_logs_of_a_sign_in_hold_no_password_or_ids(
    fake: FakeShare, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger, urllib3 included (whatever level an earlier test left it at), unredacted.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="urllib3"):
        client = make_client()
        client.sign_in()
    account_id = fake.account_id(Region.US, USERNAME)
    assert client.account_id == account_id
    assert caplog.records  # it did log
    ours = [r for r in caplog.records if not r.name.startswith("cgmtray.fakeshare")]
    assert {r.name for r in ours} >= {"cgmtray.share.client", "urllib3.connectionpool"}
    for text in (*(r.getMessage() for r in ours), *(repr(vars(r)) for r in ours)):
        assert PASSWORD not in text
        assert account_id not in text
        assert USERNAME not in text


def test_trap_14_the_apps_debug_log_of_sign_in_and_reads_holds_no_secrets(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock
) -> None:
    publish(fake, clock.now() - 2 * MINUTE, 120)
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("urllib3").level)
    try:
        logging_setup.configure(json_lines=True, debug=True, stream=stream)
        client = make_client()
        client.read()
        fake.expire_sessions()
        client.read()
        with pytest.raises(ShareError):
            make_client(password="wrong-" + PASSWORD).sign_in()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)
        logging.getLogger("urllib3").setLevel(saved[2])
    text = stream.getvalue()
    assert '"event": "share.login"' in text
    sessions = {line for line in text.splitlines() if "sessionId" in line}
    assert sessions == set()
    for secret in (PASSWORD, fake.account_id(Region.US, USERNAME)):
        assert secret not in text


# --- 15: one spelling of an error code, or parsing SubCode ---------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "SSO_AuthenticateMaxAttemptsExceeded",
        "SSO_AuthenticateMaxAttemptsExceeed",
        "SSO_AuthenticateMaxAttemptsReached",
    ],
)
def test_trap_15_every_spelling_of_the_lock_code_is_a_lock(code: str) -> None:
    error = error_for_code(code, "", status=500)
    assert isinstance(error, AccountLocked)
    assert error.failure_class is FailureClass.LOCKED


@pytest.mark.parametrize("subcode_style", ["xml", "json"])
def test_trap_15_the_subcode_form_does_not_change_the_meaning(
    clock: ManualClock, subcode_style: str
) -> None:
    with FakeShare(clock, subcode_style=subcode_style) as server:  # type: ignore[arg-type]
        server.add_account(Region.US, USERNAME, PASSWORD)
        config = ClientConfig(region=Region.US, username=USERNAME, base_url=server.base_url())
        with (
            ShareClient(config, "wrong", clock=clock) as client,
            pytest.raises(AccountPasswordInvalid),
        ):
            client.sign_in()
        server.lock_account(Region.US, USERNAME)
        with ShareClient(config, PASSWORD, clock=clock) as client, pytest.raises(AccountLocked):
            client.sign_in()


def test_trap_15_the_code_decides_not_the_subcode_or_message() -> None:
    misleading = "SessionIdNotFound SSO_AuthenticateMaxAttemptsExceeded"
    assert isinstance(error_for_code("AccountPasswordInvalid", misleading), CredentialsRejected)
    assert isinstance(error_for_code("SomethingNew", misleading), ShareError)
    assert error_for_code("SomethingNew", misleading).failure_class is FailureClass.TRANSIENT


# --- 16: over-validated usernames ----------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["glucose_dad_2015", "alice+cgm@example.co.uk", "+11234567890", "Émilie.Ødegård", "ABC"],
)
def test_trap_16_usernames_emails_and_phone_numbers_are_all_accepted(
    fake: FakeShare, make_client: ClientFactory, clock: ManualClock, username: str
) -> None:
    fake.add_account(Region.US, username, PASSWORD)
    reading = Reading(clock.now() - 2 * MINUTE, 140, Trend.FLAT)
    fake.publish(Region.US, username, reading)
    assert make_client(username=username).read() == (reading,)
    assert validate(one_person_settings(region="us", username=username)) == []


# --- 17: follower credentials --------------------------------------------------------------------


def test_trap_17_the_texts_ask_for_the_login_of_the_person_who_wears_the_sensor(
    fake: FakeShare, make_client: ClientFactory
) -> None:
    with pytest.raises(CredentialsRejected) as caught:
        make_client(password="a-follower's-password").read()
    message = caught.value.user_message
    assert "person who wears the sensor" in message
    assert "not a follower's" in message
    # Only the publisher endpoints are ever used: there is no follower sign-in to ask for.
    used = {record.endpoint for record in fake.counters.log}
    assert used <= {ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_READ}
    assert "Publisher" in ENDPOINT_AUTHENTICATE


# --- guards --------------------------------------------------------------------------------------


def test_every_trap_of_section_9_has_a_test() -> None:
    names = {name for name in globals() if name.startswith("test_trap_")}
    numbers = {int(name.split("_")[2]) for name in names}
    assert numbers == set(range(1, 18))


def test_junk_and_a_refused_connection_raise_only_share_errors() -> None:
    with pytest.raises(WireFormatError):
        parse_readings("<html>")
    port = free_port()  # nothing listens there
    config = ClientConfig(
        region=Region.US,
        username=USERNAME,
        base_url=f"http://127.0.0.1:{port}{SERVICES_PATH}",
        connect_timeout_s=1,
        read_timeout_s=1,
    )
    with ShareClient(config, PASSWORD) as client, pytest.raises(NetworkError):
        client.sign_in()
