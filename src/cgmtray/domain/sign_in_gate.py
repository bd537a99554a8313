"""The sign-in gate: whether a sign-in may be made now, after rejections, locks and the budget.

Pure. One state per account, shared by every process (storage/sign_in_state.py keeps it):
- after a rejection nothing signs in until the person changes the credentials;
- after a lock nothing signs in until the lock period has passed AND the person asks;
- at most one sign-in per 5 minutes and three per hour (budget.Ledger), whoever makes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cgmtray.domain.budget import HOUR, SIGN_INS_PER_HOUR, Ledger

#: Account locked: no sign-in before this wait has passed (then only when the person asks).
FIRST_LOCK_WAIT = timedelta(minutes=60)
#: A lock that follows a lock (no sign-in worked in between) waits this long.
REPEAT_LOCK_WAIT = timedelta(minutes=120)


class BlockKind(enum.StrEnum):
    """Why sign-ins stand blocked."""

    REJECTED = "rejected"
    LOCKED = "locked"


class Outcome(enum.StrEnum):
    """How a sign-in that was let through ended."""

    OK = "ok"
    REJECTED = "rejected"
    LOCKED = "locked"
    #: No answer from Dexcom's sign-in service (network, timeout, 5xx page, ...): nothing learned.
    OTHER = "other"


class Reason(enum.StrEnum):
    """Why a decision is what it is."""

    ALLOWED = "allowed"
    REJECTED = "rejected"
    LOCKED = "locked"
    #: The lock period has passed: the next sign-in waits for the person to ask.
    LOCK_OVER_ASK = "lock-over-ask"
    #: The shared sign-in budget is spent until `not_before`.
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class GateState:
    """The block (if any), when it began and until when it holds, and recent sign-in times."""

    block: BlockKind | None = None
    since: datetime | None = None
    #: For a lock: the earliest moment a sign-in may be asked for. None for a rejection.
    until: datetime | None = None
    #: Locks in a row with no working sign-in in between.
    lock_count: int = 0
    #: Sign-in attempts of the last hour, oldest first.
    sign_ins: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a sign-in may go ahead; if not, why and from when it may (None: the person must
    change the credentials)."""

    allowed: bool
    reason: Reason
    not_before: datetime | None = None

    @property
    def blocked(self) -> bool:
        """Refused for a rejection or a lock (not just the budget)."""
        return self.reason in (Reason.REJECTED, Reason.LOCKED, Reason.LOCK_OVER_ASK)


def decide(
    state: GateState, now: datetime, *, asked: bool = False, credentials_changed: bool = False
) -> Decision:
    """Whether a sign-in may be made at `now`. `asked`: the person asked for it (Refresh now,
    Save, Test sign-in, a `now` run); `credentials_changed`: a new password or username."""
    if state.block is BlockKind.REJECTED and not credentials_changed:
        return Decision(False, Reason.REJECTED)
    if state.block is BlockKind.LOCKED:
        until = lock_end(state, now)
        if now < until:
            return Decision(False, Reason.LOCKED, until)
        if not asked:
            return Decision(False, Reason.LOCK_OVER_ASK, until)
    earliest = Ledger(sign_ins=_recent(state.sign_ins, now)).earliest_sign_in()
    if earliest is not None and now < earliest:
        return Decision(False, Reason.BUDGET, earliest)
    return Decision(True, Reason.ALLOWED)


def reserve(
    state: GateState, now: datetime, *, asked: bool = False, credentials_changed: bool = False
) -> tuple[Decision, GateState]:
    """`decide`, and when allowed the state with the sign-in counted and the block lifted (the
    person acted; what follows depends on the answer, see `after_outcome`)."""
    decision = decide(state, now, asked=asked, credentials_changed=credentials_changed)
    if not decision.allowed:
        return decision, state
    signed = (*_recent(state.sign_ins, now), now)[-SIGN_INS_PER_HOUR:]
    return decision, replace(state, block=None, since=None, until=None, sign_ins=signed)


def after_outcome(state: GateState, now: datetime, outcome: Outcome) -> GateState:
    """The state after a sign-in (let through by `reserve`) ended with `outcome`."""
    if outcome is Outcome.OK:
        return replace(state, block=None, since=None, until=None, lock_count=0)
    if outcome is Outcome.REJECTED:
        return replace(state, block=BlockKind.REJECTED, since=now, until=None)
    if outcome is Outcome.LOCKED:
        count = state.lock_count + 1
        wait = FIRST_LOCK_WAIT if count == 1 else REPEAT_LOCK_WAIT
        return replace(state, block=BlockKind.LOCKED, since=now, until=now + wait, lock_count=count)
    return state


def credentials_changed(state: GateState) -> GateState:
    """A new password or username was saved: a rejection no longer holds (a lock does: it is
    Dexcom's, on the account)."""
    if state.block is BlockKind.REJECTED:
        return replace(state, block=None, since=None, until=None)
    return state


def lock_end(state: GateState, now: datetime) -> datetime:
    """When the lock of `state` ends; a clock set back never makes it longer than its wait."""
    wait = FIRST_LOCK_WAIT if state.lock_count <= 1 else REPEAT_LOCK_WAIT
    until = state.until if state.until is not None else now
    return min(until, now + wait)


def _recent(times: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
    """Sign-ins of the last hour; one "in the future" (clock set back) counts as now."""
    return tuple(min(t, now) for t in times if t > now - HOUR)
