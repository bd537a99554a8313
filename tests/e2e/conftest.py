"""E2e fixtures: the real fake-share and tray processes on one virtual clock (see bench/rig.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.rig import (
    CGM_TRAY,
    CONTROL_TIMEOUT_S,
    PASSWORD,
    READING_INTERVAL,
    SPEED,
    START_TIMEOUT_S,
    USERNAME,
    Event,
    FakeShareProcess,
    LogLines,
    NotSeenError,
    Process,
    Rig,
    TrayProcess,
    VirtualClock,
    is_event,
    isolated_env,
    spawn,
)

__all__ = [
    "CGM_TRAY",
    "CONTROL_TIMEOUT_S",
    "PASSWORD",
    "READING_INTERVAL",
    "SPEED",
    "START_TIMEOUT_S",
    "USERNAME",
    "Event",
    "FakeShareProcess",
    "LogLines",
    "NotSeenError",
    "Process",
    "Rig",
    "TrayProcess",
    "VirtualClock",
    "is_event",
    "isolated_env",
    "spawn",
]


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
