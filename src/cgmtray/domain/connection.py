"""What the app knows about its link to Share: a value the worker reports and the UI shows."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from cgmtray.domain.failures import FailureClass


class LinkState(enum.Enum):
    """The state of the connection to Dexcom Share, as a person would name it."""

    STARTING = "starting"
    OK = "ok"
    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate_limited"
    SIGN_IN_REJECTED = "sign_in_rejected"
    LOCKED = "locked"
    INTERNAL_ERROR = "internal_error"
    STOPPED = "stopped"


_STATE_OF_FAILURE: dict[FailureClass, LinkState] = {
    FailureClass.SESSION: LinkState.UNREACHABLE,
    FailureClass.TRANSIENT: LinkState.UNREACHABLE,
    FailureClass.RATE_LIMIT: LinkState.RATE_LIMITED,
    FailureClass.CREDENTIALS: LinkState.SIGN_IN_REJECTED,
    FailureClass.LOCKED: LinkState.LOCKED,
    FailureClass.CLIENT_BUG: LinkState.INTERNAL_ERROR,
}


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """The worker's latest news: state, a plain message when not OK, and the next planned poll."""

    state: LinkState
    message: str = ""
    failure: FailureClass | None = None
    next_poll: datetime | None = None
    server_skew: timedelta | None = None
    since: datetime | None = None
    #: Locked: from when asking for a sign-in may help (our clock); None when unknown.
    sign_in_after: datetime | None = None
    #: OK, but the last read returned nothing and Share's follower list has no one who
    #: accepted: readings only flow once someone follows (protocol 2.5).
    no_follower: bool = False

    @property
    def ok(self) -> bool:
        return self.state in (LinkState.OK, LinkState.STARTING)

    @property
    def needs_user(self) -> bool:
        """Polling stopped until the person acts (sign-in rejected, locked, internal error)."""
        return self.state in (
            LinkState.SIGN_IN_REJECTED,
            LinkState.LOCKED,
            LinkState.INTERNAL_ERROR,
            LinkState.STOPPED,
        )

    @property
    def problem(self) -> str | None:
        """A short plain problem for the tooltip and status line, None when all is well. Signed
        in with no readings and nobody following, it says so (reads will stay empty)."""
        if self.ok:
            return NO_FOLLOWER_LINE if self.no_follower else None
        return self.message or _DEFAULT_MESSAGES[self.state]


#: What the status line adds when Share is on for the account but nobody follows it.
NO_FOLLOWER_LINE = (
    "Share is on but nobody follows this account — readings only flow once someone follows"
)

_DEFAULT_MESSAGES: dict[LinkState, str] = {
    LinkState.STARTING: "",
    LinkState.OK: "",
    LinkState.UNREACHABLE: "Can't reach Dexcom Share",
    LinkState.RATE_LIMITED: "Dexcom Share asked us to slow down",
    LinkState.SIGN_IN_REJECTED: "Sign-in failed: check username, password and region",
    LinkState.LOCKED: "Dexcom locked the account after too many sign-in attempts",
    LinkState.INTERNAL_ERROR: "Internal error: see the log",
    LinkState.STOPPED: "Stopped",
}


def state_of_failure(failure: FailureClass) -> LinkState:
    """The link state a failure of this class puts the app in."""
    return _STATE_OF_FAILURE[failure]


#: Up to this close, the next check counts as happening now.
_NOW_WINDOW = timedelta(seconds=2)


#: What a rejected password needs: nothing signs in until it changes.
REJECTED_LINE = "Dexcom rejected the password: change it in Settings"


def locked_line(until: datetime | None, now: datetime) -> str:
    """What a lock needs: to wait until `until`, then to ask (Refresh now)."""
    if until is None or until <= now:
        return "Dexcom locked the account: the wait is over, Refresh now tries again"
    minutes = math.ceil((until - now).total_seconds() / 60)
    local = until.astimezone().strftime("%H:%M")
    return f"Dexcom locked the account: try again after {local} (in {minutes} min)"


def next_check_line(status: ConnectionStatus, now: datetime) -> str | None:
    """When the app looks again, for the menu: "Next check in 18 s", "Checking now…", or that
    checks wait for the person (and what to do); None when nothing is planned yet."""
    if status.state is LinkState.SIGN_IN_REJECTED:
        return REJECTED_LINE
    if status.state is LinkState.LOCKED:
        return locked_line(status.sign_in_after, now)
    if status.needs_user:
        return "Automatic checks paused: Refresh now tries again"
    if status.next_poll is None:
        return None
    wait = status.next_poll - now
    if wait <= _NOW_WINDOW:
        return "Checking now…"
    seconds = math.ceil(wait.total_seconds())
    if seconds < 60:
        return f"Next check in {seconds} s"
    return f"Next check in {math.ceil(seconds / 60)} min"
