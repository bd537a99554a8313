"""Shared unit-test fixtures: a started fake Share service on a manual clock with one US account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

import pytest

from cgmtray.domain.clock import ManualClock
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region

#: The account every `fake_share` has (region US).
FAKE_USERNAME: Final = "alice@example.com"
FAKE_PASSWORD: Final = "s3cret-Passw0rd!"
FAKE_REGION: Final = Region.US
#: Where the `fake_clock` starts: a fixed, aware, whole-second time.
FAKE_START: Final = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def fake_clock() -> ManualClock:
    """The clock of `fake_share`: advance it to move the fake's time (sessions, lockout, reads)."""
    return ManualClock(FAKE_START)


@pytest.fixture
def fake_share(fake_clock: ManualClock) -> Iterator[FakeShare]:
    """A started FakeShare (all regions) on `fake_clock` with FAKE_USERNAME / FAKE_PASSWORD in
    the US store; stopped after the test."""
    with FakeShare(fake_clock) as fake:
        fake.add_account(FAKE_REGION, FAKE_USERNAME, FAKE_PASSWORD)
        yield fake


@pytest.fixture
def fake_account_id(fake_share: FakeShare) -> str:
    """The account id (a UUID) of FAKE_USERNAME in `fake_share`."""
    return fake_share.account_id(FAKE_REGION, FAKE_USERNAME)
