"""E2e fixtures: the real fake-share and tray processes on one virtual clock
(tests/support/processes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.processes import SPEED, Rig, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock that starts now and runs SPEED times faster."""
    return VirtualClock(SPEED, datetime.now(UTC))


@pytest.fixture
def rig(tmp_path: Path, clock: VirtualClock) -> Iterator[Rig]:
    started = Rig(tmp_path, clock)
    try:
        yield started
    finally:
        started.close()
