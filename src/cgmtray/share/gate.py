"""The sign-in gate ShareClient asks before every sign-in (storage's persisted one fits it)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cgmtray.domain.failures import FailureClass
from cgmtray.domain.sign_in_gate import Decision, Outcome, Reason
from cgmtray.share.errors import (
    AccountLocked,
    CredentialsRejected,
    ShareError,
    SignInBlocked,
)


class SignInGate(Protocol):
    """Decides whether a sign-in may be made, shared by every process of one account."""

    def check(self, now: datetime, *, asked: bool | None = None) -> Decision:
        """What a sign-in at `now` would meet (nothing reserved)."""
        ...

    def reserve(self, now: datetime) -> Decision:
        """Checks and, when allowed, counts the sign-in about to be made (atomically)."""
        ...

    def record(self, now: datetime, outcome: Outcome) -> None:
        """How the reserved sign-in ended."""
        ...

    def user_acted(self, *, credentials_changed: bool = False) -> None:
        """The person asked for a sign-in (and maybe gave new credentials)."""
        ...


class SignInDeferred(ShareError):  # noqa: N818 (a refusal, like SignInBlocked)
    """No sign-in now: the shared sign-in budget (1 per 5 min, 3 per hour) is spent until
    `not_before`. No request was made."""

    failure_class = FailureClass.RATE_LIMIT
    default_detail = "sign-in deferred by the shared sign-in budget"

    def __init__(self, not_before: datetime | None) -> None:
        self.not_before = not_before
        super().__init__(self.default_detail)
        self.user_message = "Signed in only moments ago: wait a few minutes before trying again"


class GateBlocked(SignInBlocked):
    """The shared gate refuses the sign-in: credentials rejected (until they change) or the
    account locked (until `not_before`, then until the person asks). No request was made."""

    def __init__(self, decision: Decision) -> None:
        reason: ShareError = (
            CredentialsRejected() if decision.reason is Reason.REJECTED else AccountLocked()
        )
        super().__init__(reason)
        self.decision = decision
        self.not_before = decision.not_before


def refusal(decision: Decision) -> ShareError:
    """The error for a sign-in the gate refused; a block carries its `not_before` (lock end)."""
    if decision.reason is Reason.BUDGET:
        return SignInDeferred(decision.not_before)
    return GateBlocked(decision)


def outcome_of(error: ShareError | None) -> Outcome:
    """The gate's outcome of a sign-in that ended with `error` (None: it worked)."""
    if error is None:
        return Outcome.OK
    if isinstance(error, CredentialsRejected):
        return Outcome.REJECTED
    if isinstance(error, AccountLocked):
        return Outcome.LOCKED
    return Outcome.OTHER
