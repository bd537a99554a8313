"""The sign-in gate: a rejection waits for new credentials, a lock for time and an ask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cgmtray.domain import schedule
from cgmtray.domain.sign_in_gate import (
    FIRST_LOCK_WAIT,
    REPEAT_LOCK_WAIT,
    BlockKind,
    Decision,
    GateState,
    Outcome,
    Reason,
    after_outcome,
    credentials_changed,
    decide,
    lock_end,
    reserve,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def signed(state: GateState, now: datetime, outcome: Outcome, **kw: bool) -> GateState:
    decision, reserved = reserve(state, now, **kw)
    assert decision.allowed
    return after_outcome(reserved, now, outcome)


def test_a_fresh_account_may_sign_in() -> None:
    assert decide(GateState(), T0) == Decision(True, Reason.ALLOWED)


def test_the_schedule_keeps_the_gates_lock_waits() -> None:
    assert (schedule.FIRST_LOCK_WAIT, schedule.REPEAT_LOCK_WAIT) == (
        FIRST_LOCK_WAIT,
        REPEAT_LOCK_WAIT,
    )
    assert timedelta(minutes=60) == FIRST_LOCK_WAIT
    assert timedelta(minutes=120) == REPEAT_LOCK_WAIT


def test_a_rejection_blocks_every_sign_in_until_the_credentials_change() -> None:
    state = signed(GateState(), T0, Outcome.REJECTED)
    for later in (T0, T0 + 15 * MINUTE, T0 + timedelta(days=3)):
        for asked in (False, True):
            decision = decide(state, later, asked=asked)
            assert decision == Decision(False, Reason.REJECTED, None)
            assert decision.blocked
            assert reserve(state, later, asked=asked) == (decision, state)
    later = T0 + 10 * MINUTE
    assert decide(state, later, credentials_changed=True).allowed
    assert decide(credentials_changed(state), later).allowed


def test_a_change_of_credentials_does_not_lift_a_lock() -> None:
    state = signed(GateState(), T0, Outcome.LOCKED)
    assert credentials_changed(state) == state
    assert not decide(state, T0 + MINUTE, asked=True, credentials_changed=True).allowed
    assert credentials_changed(GateState()) == GateState()


def test_a_lock_waits_an_hour_then_for_the_person_to_ask() -> None:
    state = signed(GateState(), T0, Outcome.LOCKED)
    assert (state.block, state.since, state.until, state.lock_count) == (
        BlockKind.LOCKED,
        T0,
        T0 + FIRST_LOCK_WAIT,
        1,
    )
    during = decide(state, T0 + 59 * MINUTE, asked=True)
    assert during == Decision(False, Reason.LOCKED, T0 + FIRST_LOCK_WAIT)
    over = T0 + FIRST_LOCK_WAIT
    assert decide(state, over) == Decision(False, Reason.LOCK_OVER_ASK, T0 + FIRST_LOCK_WAIT)
    assert decide(state, over + timedelta(hours=5)).reason is Reason.LOCK_OVER_ASK
    decision, reserved = reserve(state, over, asked=True)
    assert decision.allowed
    assert reserved.block is None
    assert reserved.sign_ins[-1] == over


def test_a_repeat_lock_waits_two_hours_and_a_working_sign_in_resets_the_count() -> None:
    state = signed(GateState(), T0, Outcome.LOCKED)
    again = T0 + FIRST_LOCK_WAIT
    state = signed(state, again, Outcome.LOCKED, asked=True)
    assert (state.until, state.lock_count) == (again + REPEAT_LOCK_WAIT, 2)
    assert lock_end(state, again) == again + REPEAT_LOCK_WAIT
    ok_at = again + REPEAT_LOCK_WAIT
    state = signed(state, ok_at, Outcome.OK, asked=True)
    assert (state.block, state.lock_count) == (None, 0)
    state = signed(state, ok_at + timedelta(hours=2), Outcome.LOCKED)
    assert state.until == ok_at + timedelta(hours=2) + FIRST_LOCK_WAIT


def test_a_clock_set_back_never_stretches_a_lock() -> None:
    state = signed(GateState(), T0, Outcome.LOCKED)
    back = T0 - timedelta(hours=5)
    assert decide(state, back).not_before == back + FIRST_LOCK_WAIT
    assert lock_end(GateState(block=BlockKind.LOCKED), T0) == T0  # a lock with no end: over


def test_an_unanswered_sign_in_changes_no_block() -> None:
    decision, reserved = reserve(GateState(), T0)
    assert after_outcome(reserved, T0, Outcome.OTHER) == reserved
    assert decision.allowed


def test_one_sign_in_per_five_minutes_and_three_per_hour_whoever_asks() -> None:
    state = signed(GateState(), T0, Outcome.OK)
    soon = decide(state, T0 + 2 * MINUTE, asked=True, credentials_changed=True)
    assert soon == Decision(False, Reason.BUDGET, T0 + 5 * MINUTE)
    assert not soon.blocked
    state = signed(state, T0 + 5 * MINUTE, Outcome.OTHER)
    state = signed(state, T0 + 10 * MINUTE, Outcome.OTHER)
    assert decide(state, T0 + 30 * MINUTE) == Decision(False, Reason.BUDGET, T0 + 60 * MINUTE)
    assert decide(state, T0 + 60 * MINUTE).allowed
    state = signed(state, T0 + 60 * MINUTE, Outcome.OK)
    assert len(state.sign_ins) == 3  # the ledger keeps no more than the rule needs


def test_sign_ins_stamped_in_the_future_count_as_now() -> None:
    state = GateState(sign_ins=(T0 + timedelta(hours=2),))
    assert decide(state, T0) == Decision(False, Reason.BUDGET, T0 + 5 * MINUTE)


@pytest.mark.parametrize("outcome", [Outcome.REJECTED, Outcome.LOCKED])
def test_a_block_is_lifted_for_the_attempt_the_person_allowed(outcome: Outcome) -> None:
    state = signed(GateState(), T0, outcome)
    later = T0 + 2 * FIRST_LOCK_WAIT
    decision, reserved = reserve(state, later, asked=True, credentials_changed=True)
    assert decision.allowed
    assert (reserved.block, reserved.since, reserved.until) == (None, None, None)
