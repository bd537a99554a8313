"""Test sign-in against the fake Share: one attempt per click, off the GUI thread, a plain answer
for every outcome of the protocol's catalogue."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from tests.support.fake_share import PASSWORD, USER, running_fake

from cgmtray.domain.clock import ManualClock, SystemClock
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.faults import Fault
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.errors import (
    AccountLocked,
    AccountPasswordInvalid,
    IdentityServiceError,
    InvalidArgument,
    InvalidRequestError,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ServiceUnavailable,
    SessionRejectedAfterRelogin,
    ZeroIdReturned,
)
from cgmtray.share.regions import ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, Region
from cgmtray.storage.credentials import CredentialStoreError, MemoryCredentialStore
from cgmtray.ui.background import BackgroundTask, TaskResult
from cgmtray.ui.sign_in_test import (
    OutcomeKind,
    SignInAttempt,
    SignInOutcome,
    SignInTester,
    attempt_sign_in,
    outcome_for_error,
)

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeShare]:
    with running_fake(clock) as server:
        yield server


def _publish(fake: FakeShare, minutes_ago: float, mgdl: int, trend: Trend = Trend.FLAT) -> None:
    when = fake.now() - timedelta(minutes=minutes_ago)
    fake.publish(Region.US, USER, Reading(when, mgdl, trend))


def _attempt(
    fake: FakeShare,
    *,
    region: Region = Region.US,
    username: str = USER,
    password: str = PASSWORD,
    unit: Unit = Unit.MGDL,
) -> SignInAttempt:
    return SignInAttempt(region, username, password, base_url=fake.base_url(region), unit=unit)


def _busy(tester: SignInTester) -> bool:
    return tester.busy


def _click(qtbot: QtBot, tester: SignInTester, attempt: SignInAttempt) -> SignInOutcome:
    with qtbot.waitSignal(tester.finished, timeout=WAIT_MS) as blocker:
        assert tester.test(attempt)
    outcome = blocker.args[0]
    assert isinstance(outcome, SignInOutcome)
    return outcome


def _tester(
    clock: ManualClock | SystemClock, password_store: MemoryCredentialStore | None = None
) -> SignInTester:
    return SignInTester(clock=clock, password_store=password_store)


# --- the outcomes a person sees, through the real client and the fake service --------------------


def test_success_shows_the_latest_reading_with_its_age(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    _publish(fake, 7, 138)
    _publish(fake, 2, 142, Trend.FLAT)
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.OK
    assert outcome.signed_in
    assert outcome.headline == "Signed in"
    assert "142 mg/dL → steady" in outcome.message
    assert "+4" in outcome.message
    assert "2 min ago" in outcome.message
    assert outcome.account_id == fake.account_id(Region.US, USER)
    assert fake.counters.count(ENDPOINT_AUTHENTICATE) == 1
    assert fake.counters.count(ENDPOINT_LOGIN_BY_ID) == 1
    assert fake.counters.reads() == 1


def test_success_in_mmol_shows_mmol(qtbot: QtBot, fake: FakeShare, clock: ManualClock) -> None:
    _publish(fake, 1, 142)
    outcome = _click(qtbot, _tester(clock), _attempt(fake, unit=Unit.MMOL))
    assert "7.9 mmol/L" in outcome.message


def test_wrong_password_says_check_password_and_region_after_one_attempt(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    outcome = _click(qtbot, _tester(clock), _attempt(fake, password="wrong-password"))
    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert not outcome.signed_in
    assert "refused this username and password" in outcome.message
    assert "region" in outcome.message
    assert "Outside the US or Japan" in outcome.message
    assert "not a follower's" in outcome.message
    assert fake.counters.sign_ins() == 1
    assert fake.counters.failed_sign_ins() == 1
    assert fake.counters.reads() == 0


def test_wrong_region_looks_like_a_wrong_password_and_says_so(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    outcome = _click(qtbot, _tester(clock), _attempt(fake, region=Region.OUS))
    assert outcome.kind is OutcomeKind.CREDENTIALS
    assert "Dexcom Share (Outside the US)" in outcome.message
    assert "United States or Japan" in outcome.message
    assert fake.counters.sign_ins(Region.OUS) == 1
    assert fake.counters.sign_ins(Region.US) == 0


def test_a_locked_account_says_wait_and_do_not_retry(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.lock_account(Region.US, USER)
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.LOCKED
    assert outcome.headline == "Dexcom has locked this account for now"
    assert "Do not try again now" in outcome.message
    assert "Wait at least an hour" in outcome.message
    assert fake.counters.sign_ins() == 1


def test_no_readings_says_what_to_check_in_the_dexcom_app(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.NO_READINGS
    assert outcome.signed_in
    assert "Share is turned on" in outcome.message
    assert "at least one follower" in outcome.message
    assert fake.counters.reads() == 1


def test_only_old_readings_say_signed_in_but_nothing_recent(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    _publish(fake, 185, 120)
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.NO_RECENT_READINGS
    assert outcome.signed_in
    assert "3 h 5 min ago" in outcome.message
    assert "phone" in outcome.message


def test_an_unreachable_service_says_check_the_connection(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    attempt = _attempt(fake)
    fake.set_outage(True, refuse=True)
    try:
        outcome = _click(qtbot, _tester(clock), attempt)
    finally:
        fake.set_outage(False)
    assert outcome.kind is OutcomeKind.NETWORK
    assert outcome.headline == "Cannot reach Dexcom Share"
    assert "internet connection" in outcome.message
    assert "were not checked" in outcome.message


def test_a_rate_limit_says_how_long_to_wait(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.inject_fault(Fault.RATE_LIMIT, retry_after_s=240)
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert "about 4 min" in outcome.message
    assert fake.counters.sign_ins() == 1


def test_an_absurd_retry_after_is_not_repeated_to_the_person() -> None:
    outcome = outcome_for_error(RateLimited(10**12, status=429), Region.US)
    assert "about 60 min" in outcome.message


def test_an_outage_page_is_not_blamed_on_the_account(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    fake.inject_fault(Fault.UNAVAILABLE_HTML)
    outcome = _click(qtbot, _tester(clock), _attempt(fake))
    assert outcome.kind is OutcomeKind.SERVICE
    assert "not about this account" in outcome.message
    assert fake.counters.sign_ins() == 1


# --- one attempt per click, never on the GUI thread ---------------------------------------------


def test_each_click_is_exactly_one_attempt_and_a_double_click_is_one(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    tester = _tester(clock)
    attempt = _attempt(fake, password="wrong-password")
    with qtbot.waitSignal(tester.finished, timeout=WAIT_MS):
        assert tester.test(attempt)
        assert _busy(tester)
        assert not tester.test(attempt)  # the second click while the first runs does nothing
    assert not _busy(tester)
    assert fake.counters.sign_ins() == 1
    _click(qtbot, tester, attempt)
    assert fake.counters.sign_ins() == 2
    assert fake.counters.failed_sign_ins() == 2
    assert not fake.is_locked(Region.US, USER)


def test_the_attempt_and_the_keyring_read_run_off_the_gui_thread(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    _publish(fake, 2, 150)
    seen: list[int] = []

    class RecordingStore(MemoryCredentialStore):
        def get(self, region: str, username: str) -> str | None:
            seen.append(threading.get_ident())
            return super().get(region, username)

    store = RecordingStore()
    store.set("us", USER, PASSWORD)
    tester = _tester(clock, password_store=store)
    outcome = _click(qtbot, tester, _attempt(fake, password=""))  # empty: use the saved one
    assert outcome.kind is OutcomeKind.OK
    assert seen
    assert seen[0] != threading.get_ident()


def test_no_password_anywhere_asks_for_one_without_any_request(
    qtbot: QtBot, fake: FakeShare, clock: ManualClock
) -> None:
    tester = _tester(clock, password_store=MemoryCredentialStore())
    outcome = _click(qtbot, tester, _attempt(fake, password=""))
    assert outcome.kind is OutcomeKind.PROBLEM
    assert "Type the password" in outcome.message
    assert fake.counters.total() == 0


def test_an_unreadable_keyring_asks_to_type_the_password(clock: ManualClock) -> None:
    class BrokenStore(MemoryCredentialStore):
        def get(self, region: str, username: str) -> str | None:
            raise CredentialStoreError("Could not read the password from the system keyring.")

    attempt = SignInAttempt(Region.US, USER, "", base_url="http://127.0.0.1:9/x/")
    outcome = attempt_sign_in(attempt, clock=clock, password_store=BrokenStore())
    assert outcome.kind is OutcomeKind.PROBLEM
    assert "Type the password" in outcome.message


def test_a_share_url_off_this_computer_is_refused_before_any_request(clock: ManualClock) -> None:
    attempt = SignInAttempt(
        Region.US, USER, PASSWORD, base_url="http://example.com/ShareWebServices/Services/"
    )
    outcome = attempt_sign_in(attempt, clock=clock)
    assert outcome.kind is OutcomeKind.PROBLEM
    assert "this computer" in outcome.message


def test_no_secret_is_in_reprs_or_outcomes(
    qtbot: QtBot,
    fake: FakeShare,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    _publish(fake, 2, 150)
    attempt = _attempt(fake)
    assert PASSWORD not in repr(attempt)
    for password in (PASSWORD, "wrong-password"):
        outcome = _click(qtbot, _tester(clock), _attempt(fake, password=password))
        account_id = fake.account_id(Region.US, USER)
        for text in (repr(outcome), outcome.message, outcome.headline, caplog.text):
            assert password not in text
            assert account_id not in text
            assert USER not in text


# --- the catalogue, error by error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            AccountPasswordInvalid(code="AccountPasswordInvalid", status=500),
            OutcomeKind.CREDENTIALS,
        ),
        (ZeroIdReturned(status=200), OutcomeKind.CREDENTIALS),
        (AccountLocked(code="SSO_AuthenticateMaxAttemptsExceeded"), OutcomeKind.LOCKED),
        (NetworkError("connection failed"), OutcomeKind.NETWORK),
        (RequestTimedOut("no answer"), OutcomeKind.NETWORK),
        (RateLimited(None), OutcomeKind.RATE_LIMITED),
        (ServiceUnavailable(status=503), OutcomeKind.SERVICE),
        (IdentityServiceError(code="SSO_InternalError"), OutcomeKind.SERVICE),
        (SessionRejectedAfterRelogin(), OutcomeKind.SERVICE),
        (InvalidArgument(field="accountName"), OutcomeKind.PROBLEM),
        (InvalidRequestError("x", user_message="Enter the Dexcom password."), OutcomeKind.PROBLEM),
        (KeyError("boom"), OutcomeKind.PROBLEM),
    ],
)
def test_every_error_class_has_its_own_plain_outcome(error: Exception, kind: OutcomeKind) -> None:
    outcome = outcome_for_error(error, Region.JP)
    assert outcome.kind is kind
    assert outcome.message.endswith(".")
    assert "Traceback" not in outcome.message


def test_timeouts_and_refusals_are_told_apart() -> None:
    assert "did not answer in time" in outcome_for_error(RequestTimedOut(), Region.US).message
    assert "could not connect" in outcome_for_error(NetworkError(), Region.US).message
    assert "about 5 min" in outcome_for_error(RateLimited(None), Region.US).message


def test_identity_trouble_is_named() -> None:
    outcome = outcome_for_error(IdentityServiceError(), Region.US)
    assert "sign-in service" in outcome.message


# --- the background helper ------------------------------------------------------------------------


def test_a_background_task_hands_back_its_value_or_its_error(qtbot: QtBot) -> None:
    ran_on: list[int] = []

    def work() -> int:
        ran_on.append(threading.get_ident())
        return 42

    task = BackgroundTask(work)
    with qtbot.waitSignal(task.finished, timeout=WAIT_MS) as blocker:
        task.start()
    result = blocker.args[0]
    assert isinstance(result, TaskResult)
    assert result.value == 42
    assert result.error is None
    assert ran_on[0] != threading.get_ident()
    assert BackgroundTask.in_flight() == 0
    with pytest.raises(RuntimeError):
        task.start()

    def fail() -> None:
        raise ValueError("nope")

    failing = BackgroundTask(fail)
    with qtbot.waitSignal(failing.finished, timeout=WAIT_MS) as blocker:
        failing.start()
    assert isinstance(blocker.args[0].error, ValueError)


def test_a_task_outlives_the_one_who_started_it(qtbot: QtBot) -> None:
    done = threading.Event()
    release = threading.Event()

    def work() -> str:
        release.wait(60)
        done.set()
        return "ok"

    task = BackgroundTask(work)
    task.start()
    del task  # the owner is gone; the task keeps itself alive until the call returns
    assert BackgroundTask.in_flight() == 1
    release.set()
    qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
    assert done.is_set()


# --- against the real `cgm-tray fake-share` process ---------------------------------------------


@pytest.fixture
def fake_share_process(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["HOME"] = str(tmp_path / "home")
    process = subprocess.Popen(
        [sys.executable, "-m", "cgmtray", "fake-share", "--account", "dave:pa55-word!"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        urls = {"us": process.stdout.readline().strip()}
        while len(urls) < 3:  # then "ous: URL" and "jp: URL", among other lines
            line = process.stdout.readline()
            assert line, "fake-share ended early"
            key, _, url = line.strip().partition(": ")
            if key in ("ous", "jp"):
                urls[key] = url
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_against_the_fake_share_process(qtbot: QtBot, fake_share_process: dict[str, str]) -> None:
    urls = fake_share_process
    assert set(urls) == {"us", "ous", "jp"}
    tester = SignInTester(clock=SystemClock())

    def attempt(region: Region, password: str) -> SignInAttempt:
        return SignInAttempt(region, "dave", password, base_url=urls[region.value])

    wrong_password = _click(qtbot, tester, attempt(Region.US, "not-it"))
    assert wrong_password.kind is OutcomeKind.CREDENTIALS
    assert wrong_password.requests.sign_ins == 1
    assert wrong_password.requests.reads == 0

    wrong_region = _click(qtbot, tester, attempt(Region.OUS, "pa55-word!"))
    assert wrong_region.kind is OutcomeKind.CREDENTIALS
    assert "Dexcom Share (Outside the US)" in wrong_region.message

    success = _click(qtbot, tester, attempt(Region.US, "pa55-word!"))
    assert success.kind is OutcomeKind.OK, success.message
    assert "mg/dL" in success.message or "LOW" in success.message or "HIGH" in success.message
    assert success.requests.sign_ins == 2  # Authenticate + LoginById: one sign-in
    assert success.requests.reads == 1
