"""The link status the tray shows: which states need the person, and the plain problem text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cgmtray.domain.clock import ManualClock, ScaledClock, SystemClock, shared_clock
from cgmtray.domain.connection import (
    NO_FOLLOWER_LINE,
    ConnectionStatus,
    LinkState,
    next_check_line,
    state_of_failure,
)
from cgmtray.domain.failures import FailureClass


@pytest.mark.parametrize(
    ("failure", "state"),
    [
        (FailureClass.SESSION, LinkState.UNREACHABLE),
        (FailureClass.TRANSIENT, LinkState.UNREACHABLE),
        (FailureClass.RATE_LIMIT, LinkState.RATE_LIMITED),
        (FailureClass.CREDENTIALS, LinkState.SIGN_IN_REJECTED),
        (FailureClass.LOCKED, LinkState.LOCKED),
        (FailureClass.CLIENT_BUG, LinkState.INTERNAL_ERROR),
    ],
)
def test_every_failure_class_has_a_state(failure: FailureClass, state: LinkState) -> None:
    assert state_of_failure(failure) is state


@pytest.mark.parametrize(
    ("state", "ok", "needs_user"),
    [
        (LinkState.STARTING, True, False),
        (LinkState.OK, True, False),
        (LinkState.UNREACHABLE, False, False),
        (LinkState.RATE_LIMITED, False, False),
        (LinkState.SIGN_IN_REJECTED, False, True),
        (LinkState.LOCKED, False, True),
        (LinkState.INTERNAL_ERROR, False, True),
        (LinkState.STOPPED, False, True),
    ],
)
def test_ok_and_needs_user(state: LinkState, ok: bool, needs_user: bool) -> None:
    status = ConnectionStatus(state)
    assert status.ok is ok
    assert status.needs_user is needs_user
    assert (status.problem is None) is ok


def test_problem_prefers_the_specific_message() -> None:
    assert ConnectionStatus(LinkState.LOCKED, message="Wait an hour.").problem == "Wait an hour."
    assert ConnectionStatus(LinkState.UNREACHABLE).problem == "Can't reach Dexcom Share"
    assert "region" in (ConnectionStatus(LinkState.SIGN_IN_REJECTED).problem or "")


def test_signed_in_with_nobody_following_says_so_and_nothing_else_does() -> None:
    assert ConnectionStatus(LinkState.OK, no_follower=True).problem == NO_FOLLOWER_LINE
    assert "nobody follows this account" in NO_FOLLOWER_LINE
    assert ConnectionStatus(LinkState.OK).problem is None
    # A real problem outranks it: the list was only read on a working session anyway.
    unreachable = ConnectionStatus(LinkState.UNREACHABLE, no_follower=True)
    assert unreachable.problem == "Can't reach Dexcom Share"


def test_shared_clock_agrees_across_instances_and_runs_fast() -> None:
    epoch = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    real = ManualClock(epoch + timedelta(seconds=10))
    first = ScaledClock(60, virtual_origin=epoch, real_origin=epoch, real=real)
    assert first.now() == epoch + timedelta(minutes=10)
    assert first.speed == 60
    made = shared_clock(60, epoch)
    assert isinstance(made, ScaledClock)
    assert made.speed == 60


def test_shared_clock_at_speed_one_is_the_system_clock() -> None:
    assert isinstance(shared_clock(1.0, datetime(2026, 1, 1, tzinfo=UTC)), SystemClock)


def test_scaled_clock_refuses_a_non_positive_speed() -> None:
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0, virtual_origin=epoch, real_origin=epoch)


NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wait", "line"),
    [
        (timedelta(seconds=-30), "Checking now…"),
        (timedelta(seconds=2), "Checking now…"),
        (timedelta(seconds=2.5), "Next check in 3 s"),
        (timedelta(seconds=18), "Next check in 18 s"),
        (timedelta(seconds=59.5), "Next check in 1 min"),
        (timedelta(seconds=60), "Next check in 1 min"),
        (timedelta(seconds=61), "Next check in 2 min"),
        (timedelta(minutes=5), "Next check in 5 min"),
    ],
)
def test_the_menu_says_when_the_app_looks_next(wait: timedelta, line: str) -> None:
    status = ConnectionStatus(LinkState.OK, next_poll=NOW + wait)
    assert next_check_line(status, NOW) == line


def test_nothing_planned_yet_says_nothing() -> None:
    assert next_check_line(ConnectionStatus(LinkState.STARTING), NOW) is None


@pytest.mark.parametrize("state", [LinkState.LOCKED, LinkState.INTERNAL_ERROR, LinkState.STOPPED])
def test_paused_checks_say_how_to_resume(state: LinkState) -> None:
    line = next_check_line(ConnectionStatus(state, next_poll=NOW), NOW)
    assert line is not None
    assert "Refresh now" in line


def test_a_rejected_password_says_to_change_it_not_to_refresh() -> None:
    # Refresh now cannot help a rejected password (the sign-in gate refuses it): say what does.
    line = next_check_line(ConnectionStatus(LinkState.SIGN_IN_REJECTED), NOW)
    assert line == "Dexcom rejected the password: change it in Settings"


def test_a_lock_says_until_when_and_how_long() -> None:
    until = NOW + timedelta(minutes=47, seconds=10)
    status = ConnectionStatus(LinkState.LOCKED, sign_in_after=until)
    local = until.astimezone().strftime("%H:%M")
    assert next_check_line(status, NOW) == (
        f"Dexcom locked the account: try again after {local} (in 48 min)"
    )
    assert "Refresh now tries again" in (next_check_line(status, until) or "")
