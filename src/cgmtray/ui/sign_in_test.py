"""Test sign-in: one attempt with a fresh ShareClient on a thread of its own, and what it means."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot

from cgmtray.domain import display
from cgmtray.domain.clock import Clock, SystemClock
from cgmtray.domain.connection import NO_FOLLOWER_LINE, locked_line
from cgmtray.domain.freshness import Freshness, format_age
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.readings import Reading
from cgmtray.domain.schedule import MAX_RETRY_AFTER
from cgmtray.domain.sign_in_gate import Reason
from cgmtray.domain.units import Unit
from cgmtray.share.client import CallCounts, ClientConfig, ShareClient
from cgmtray.share.errors import (
    AccountLocked,
    CredentialsRejected,
    IdentityServiceError,
    InvalidArgument,
    InvalidRequestError,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ShareError,
)
from cgmtray.share.followers import FollowerSummary
from cgmtray.share.gate import GateBlocked, SignInDeferred
from cgmtray.share.regions import Region
from cgmtray.storage.credentials import CredentialStoreError, PasswordStore
from cgmtray.storage.sign_in_state import PersistedSignInGate
from cgmtray.ui.background import BackgroundTask, TaskResult

log = logging.getLogger(__name__)

#: The test reads the last day (so an old last reading still shows how old it is), two readings.
TEST_READ_MINUTES = 1440
TEST_READ_COUNT = 2


# --- one test sign-in ---------------------------------------------------------------------------


class OutcomeKind(enum.Enum):
    """What a test sign-in found, as the person needs to act on it."""

    OK = "ok"
    NO_READINGS = "no_readings"
    #: Signed in, no readings, and Share's follower list has no one who accepted.
    NO_FOLLOWER = "no_follower"
    NO_RECENT_READINGS = "no_recent_readings"
    CREDENTIALS = "credentials"
    LOCKED = "locked"
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    SERVICE = "service"
    PROBLEM = "problem"

    @property
    def signed_in(self) -> bool:
        """The account and password were accepted (readings or not)."""
        return self in (
            OutcomeKind.OK,
            OutcomeKind.NO_READINGS,
            OutcomeKind.NO_FOLLOWER,
            OutcomeKind.NO_RECENT_READINGS,
        )


@dataclass(frozen=True)
class SignInAttempt:
    """One test: which account, and how to show a reading. Never logged; the password is not
    in the repr. An empty password means "use the one saved for this account"."""

    region: Region
    username: str
    password: str = field(repr=False)
    base_url: str | None = None
    unit: Unit = Unit.MGDL
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class SignInOutcome:
    """What one test sign-in found: a short headline and the plain explanation."""

    kind: OutcomeKind
    headline: str
    message: str
    readings: tuple[Reading, ...] = ()
    #: Learned by a successful sign-in; saving it spares the next sign-in a request.
    account_id: str | None = field(default=None, repr=False)
    #: The requests this test made (one sign-in attempt at most).
    requests: CallCounts = field(default_factory=CallCounts)

    @property
    def signed_in(self) -> bool:
        return self.kind.signed_in


def _other_regions(region: Region) -> str:
    others = [r.display_name for r in Region if r is not region]
    return " or ".join(others)


def _credentials_outcome(region: Region) -> SignInOutcome:
    return SignInOutcome(
        OutcomeKind.CREDENTIALS,
        "Dexcom did not accept this sign-in",
        f"Dexcom Share ({region.display_name}) refused this username and password. Check both "
        "for typing mistakes. Check the region too: an account from another region is refused "
        f"exactly like a wrong password, so if the account was made elsewhere, choose "
        f"{_other_regions(region)}. Use the Dexcom app login of the person who wears the sensor "
        "(username, e-mail or phone number such as +11234567890), not a follower's. "
        "Repeated failed sign-ins can lock the account: change something before you test again.",
    )


_LOCKED = SignInOutcome(
    OutcomeKind.LOCKED,
    "Dexcom has locked this account for now",
    "Dexcom locked the account after too many failed sign-ins. Do not try again now: every "
    "attempt during the lock can make it last longer. Wait at least an hour, then test once. "
    "CGM Tray will not sign in to this account by itself until you ask it to.",
)


def _network_outcome(error: ShareError, region: Region) -> SignInOutcome:
    if isinstance(error, RequestTimedOut):
        detail = f"Dexcom Share ({region.display_name}) did not answer in time."
    else:
        detail = f"CGM Tray could not connect to Dexcom Share ({region.display_name})."
    return SignInOutcome(
        OutcomeKind.NETWORK,
        "Cannot reach Dexcom Share",
        f"{detail} Check this computer's internet connection (and any proxy or firewall), "
        "then test again. The username and password were not checked.",
    )


def _rate_limited_outcome(error: RateLimited) -> SignInOutcome:
    wait_min = 5
    if error.retry_after_s is not None:
        # A Retry-After beyond an hour is not believed (as the schedule does not believe it).
        asked_s = min(error.retry_after_s, MAX_RETRY_AFTER.total_seconds())
        wait_min = max(1, round(asked_s / 60))
    return SignInOutcome(
        OutcomeKind.RATE_LIMITED,
        "Dexcom Share asked to slow down",
        f"Dexcom Share is limiting requests right now. Wait about {wait_min} min before you "
        "test again. The username and password were not checked.",
    )


def _service_outcome(error: ShareError) -> SignInOutcome:
    if isinstance(error, IdentityServiceError):
        what = "Dexcom's sign-in service reported a problem of its own"
    else:
        what = "Dexcom Share answered with an error that is not about this account"
    return SignInOutcome(
        OutcomeKind.SERVICE,
        "Dexcom Share is having trouble",
        f"{what}. Try again in a few minutes. If it lasts, Dexcom Share may be down for "
        "everyone (the Dexcom Follow app would be affected too).",
    )


def _problem_outcome(message: str) -> SignInOutcome:
    return SignInOutcome(OutcomeKind.PROBLEM, "Sign-in could not be tested", message)


def _gate_outcome(
    error: GateBlocked | SignInDeferred, region: Region, now: datetime
) -> SignInOutcome:
    """No request was made: the shared sign-in gate refused (a lock not over, a rejected saved
    password, or a sign-in moments ago by this or another CGM Tray process)."""
    if isinstance(error, SignInDeferred):
        when = error.not_before
        wait = "" if when is None else f" after {when.astimezone().strftime('%H:%M:%S')}"
        return SignInOutcome(
            OutcomeKind.RATE_LIMITED,
            "Signed in moments ago",
            f"CGM Tray signed in to this account moments ago. Test again{wait}: Dexcom allows "
            "only a few sign-ins an hour.",
        )
    if error.decision.reason is Reason.REJECTED:
        return SignInOutcome(
            OutcomeKind.CREDENTIALS,
            "Dexcom rejected the saved password",
            f"Dexcom Share ({region.display_name}) rejected the saved password earlier, so it "
            "is not tried again. Type the password (or change the username or region) and test.",
        )
    return SignInOutcome(
        OutcomeKind.LOCKED,
        _LOCKED.headline,
        f"{locked_line(error.decision.not_before, now)}. Nothing was sent: every attempt "
        "during the lock can make it last longer.",
    )


def outcome_for_error(
    error: BaseException, region: Region, now: datetime | None = None
) -> SignInOutcome:
    """The outcome for whatever the one attempt raised (protocol section 4 catalogue)."""
    if isinstance(error, GateBlocked | SignInDeferred):
        return _gate_outcome(error, region, now if now is not None else datetime.now(UTC))
    if isinstance(error, CredentialsRejected):
        return _credentials_outcome(region)
    if isinstance(error, AccountLocked):
        return _LOCKED
    if isinstance(error, NetworkError | RequestTimedOut):
        return _network_outcome(error, region)
    if isinstance(error, RateLimited):
        return _rate_limited_outcome(error)
    if isinstance(error, InvalidRequestError):
        return _problem_outcome(error.user_message)
    if isinstance(error, InvalidArgument):
        return _problem_outcome(
            "Dexcom Share could not understand the sign-in request. Check the username for "
            "stray spaces or characters. If it looks right, please report this as a bug in "
            "CGM Tray."
        )
    if isinstance(error, ShareError):
        return _service_outcome(error)
    return _problem_outcome(
        f"An unexpected error stopped the test ({type(error).__name__}). Please report this "
        "as a bug in CGM Tray."
    )


def outcome_for_readings(
    readings: tuple[Reading, ...],
    clock: Clock,
    *,
    unit: Unit,
    thresholds: Thresholds,
    server_skew: timedelta | None = None,
    followers: FollowerSummary | None = None,
) -> SignInOutcome:
    """The outcome of a sign-in that worked, by what the read returned. `followers` is what
    Share's follower list said after an empty read (None: not asked, or it failed)."""
    if not readings and followers is not None and not followers.anyone_follows:
        return _no_follower_outcome(followers)
    if not readings:
        return SignInOutcome(
            OutcomeKind.NO_READINGS,
            "Signed in, but there are no readings",
            "The sign-in worked, but Dexcom Share has no readings for this account from the "
            "last 24 hours. In the Dexcom app of the person who wears the sensor, check that "
            "Share is turned on and has at least one follower who accepted the invitation, "
            "that the phone is online, and that the sensor is not warming up.",
        )
    model = display.model(
        readings, clock.now(), unit=unit, thresholds=thresholds, server_skew=server_skew
    )
    if model.freshness is Freshness.NO_DATA and model.age is not None:
        return SignInOutcome(
            OutcomeKind.NO_RECENT_READINGS,
            "Signed in, but no recent readings",
            f"The sign-in worked, but the latest reading is from {format_age(model.age)} and "
            "nothing newer has arrived. Check that the phone of the person who wears the sensor "
            "is online, that the Dexcom app shows current readings, and that Share is still on.",
            readings,
        )
    return SignInOutcome(
        OutcomeKind.OK,
        "Signed in",
        f"Latest reading: {model.status_line}.",
        readings,
    )


def _no_follower_outcome(followers: FollowerSummary) -> SignInOutcome:
    if followers.pending:
        waiting = (
            "An invitation is waiting: readings start once the follower accepts it in the "
            "Dexcom Follow app."
        )
    else:
        waiting = (
            "In the Dexcom app of the person who wears the sensor, invite a follower under "
            "Share; readings start once they accept the invitation in the Dexcom Follow app."
        )
    return SignInOutcome(
        OutcomeKind.NO_FOLLOWER,
        "Signed in, but nobody follows this account",
        f"The sign-in worked. {NO_FOLLOWER_LINE}. {waiting}",
    )


def attempt_sign_in(
    attempt: SignInAttempt,
    *,
    clock: Clock | None = None,
    password_store: PasswordStore | None = None,
    state_dir: Path | None = None,
) -> SignInOutcome:
    """Signs in once and reads once, with a fresh client; never retries. Blocking: run it on a
    worker thread (SignInTester does). Never raises. With `state_dir` the shared sign-in gate
    of that data folder decides first (a typed password counts as a change of credentials)."""
    used_clock: Clock = clock if clock is not None else SystemClock()
    password = attempt.password
    if not password and password_store is not None:
        try:
            password = password_store.get(attempt.region.value, attempt.username) or ""
        except CredentialStoreError as error:
            return _problem_outcome(
                f"The saved password could not be read ({error}). Type the password and test again."
            )
        except ValueError:
            password = ""
    if not password:
        return _problem_outcome("Type the password of this Dexcom account first.")
    gate = None
    if state_dir is not None:
        gate = PersistedSignInGate(
            state_dir,
            region=attempt.region.value,
            username=attempt.username,
            base_url=attempt.base_url,
            asked=True,
            credentials_changed=bool(attempt.password),
        )
    outcome = _one_attempt(attempt, password, used_clock, gate)
    log.info(
        "test sign-in: %s",
        outcome.kind.value,
        extra={
            "event": "share.test_sign_in",
            "outcome": outcome.kind.value,
            "sign_ins": outcome.requests.sign_ins,
            "reads": outcome.requests.reads,
            "follower_lists": outcome.requests.follower_lists,
        },
    )
    return outcome


def _one_attempt(
    attempt: SignInAttempt, password: str, clock: Clock, gate: PersistedSignInGate | None
) -> SignInOutcome:
    config = ClientConfig(
        region=attempt.region, username=attempt.username, base_url=attempt.base_url
    )
    try:
        client = ShareClient(config, password, clock=clock, gate=gate)
    except Exception as error:
        return outcome_for_error(error, attempt.region)
    with client:
        try:
            readings = client.read(TEST_READ_MINUTES, TEST_READ_COUNT)
        except Exception as error:
            outcome = outcome_for_error(error, attempt.region, clock.now())
            return _with_counts(outcome, client.last_call)
        counts = client.last_call
        followers = None
        if not readings:
            followers, listed = _ask_followers(client)
            counts = replace(counts, follower_lists=counts.follower_lists + listed)
        outcome = outcome_for_readings(
            readings,
            clock,
            unit=attempt.unit,
            thresholds=attempt.thresholds,
            server_skew=client.server_clock_skew,
            followers=followers,
        )
        return _with_counts(outcome, counts, client.account_id)


def _ask_followers(client: ShareClient) -> tuple[FollowerSummary | None, int]:
    """Share's follower list after an empty read (one request); None if it could not be read:
    then the test says what it says without it ("no readings")."""
    try:
        summary: FollowerSummary | None = client.list_followers()
    except ShareError as error:
        log.info(
            "test sign-in: the follower list could not be read: %s",
            type(error).__name__,
            extra={"event": "share.followers", "outcome": type(error).__name__},
        )
        summary = None
    return summary, client.last_call.follower_lists


def _with_counts(
    outcome: SignInOutcome, counts: CallCounts, account_id: str | None = None
) -> SignInOutcome:
    return SignInOutcome(
        outcome.kind,
        outcome.headline,
        outcome.message,
        outcome.readings,
        account_id=account_id,
        requests=counts,
    )


class SignInTester(QObject):
    """Runs one test sign-in at a time off the GUI thread; never starts one by itself.

    Signals:
        started(): a test began (the button should show it and stay disabled).
        finished(SignInOutcome): the test ended; exactly one per `test()` that returned True.
    """

    started = Signal()
    finished = Signal(object)

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        password_store: PasswordStore | None = None,
        state_dir: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._store = password_store
        self._state_dir = state_dir
        self._task: BackgroundTask | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None

    def test(self, attempt: SignInAttempt) -> bool:
        """Starts one test; False (and nothing happens) while another is still running."""
        if self._task is not None:
            return False
        clock, store, state_dir = self._clock, self._store, self._state_dir

        def work() -> SignInOutcome:
            return attempt_sign_in(attempt, clock=clock, password_store=store, state_dir=state_dir)

        task = BackgroundTask(work, name="test-sign-in")
        task.finished.connect(self._on_task_finished, Qt.ConnectionType.QueuedConnection)
        self._task = task
        task.start()
        self.started.emit()
        return True

    def wait(self, timeout_ms: int) -> bool:
        """Blocks up to `timeout_ms` for a running test's thread (shutdown, tests)."""
        task = self._task
        return task is None or task.wait(timeout_ms)

    @Slot(object)
    def _on_task_finished(self, result: TaskResult) -> None:
        self._task = None
        if isinstance(result.value, SignInOutcome):
            outcome = result.value
        else:
            outcome = outcome_for_error(result.error or RuntimeError(), Region.US)
        self.finished.emit(outcome)
