"""A running accelerated clock moved by its offset file: how soak runs simulate sleep and clock
changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cgmtray.domain.clock import (
    ManualClock,
    OffsetFile,
    ScaledClock,
    SystemClock,
    shared_clock,
    write_offset_file,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeMonotonic:
    """A monotonic clock the test moves by hand (real seconds)."""

    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_without_a_file_the_offset_is_zero(tmp_path: Path) -> None:
    offset = OffsetFile(tmp_path / "missing.json")
    assert offset.path == tmp_path / "missing.json"
    assert offset() == timedelta(0)


def test_a_written_offset_is_seen_and_a_replaced_one_after_the_check_interval(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clock.json"
    write_offset_file(path, timedelta(hours=3))
    monotonic = FakeMonotonic()
    offset = OffsetFile(path, check_interval_s=0.05, monotonic=monotonic)
    assert offset() == timedelta(hours=3)

    write_offset_file(path, timedelta(minutes=-10))
    monotonic.value += 0.01
    assert offset() == timedelta(hours=3)  # not looked at again so soon
    monotonic.value += 0.05
    assert offset() == timedelta(minutes=-10)
    monotonic.value += 1
    assert offset() == timedelta(minutes=-10)  # unchanged file: same answer
    assert not (tmp_path / "clock.json.partial").exists()


@pytest.mark.parametrize(
    "text",
    ["not json", '{"other": 1}', '{"offset_s": "3"}', '{"offset_s": true}', "[1]", ""],
)
def test_an_unreadable_file_keeps_the_last_offset(tmp_path: Path, text: str) -> None:
    path = tmp_path / "clock.json"
    write_offset_file(path, timedelta(seconds=90))
    monotonic = FakeMonotonic()
    offset = OffsetFile(path, monotonic=monotonic)
    assert offset() == timedelta(seconds=90)
    path.write_text(text, encoding="utf-8")
    monotonic.value += 1
    assert offset() == timedelta(seconds=90)
    path.unlink()
    monotonic.value += 1
    assert offset() == timedelta(seconds=90)


def test_the_scaled_clock_adds_the_offset_to_its_time(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    real = ManualClock(T0)
    monotonic = FakeMonotonic()
    offset = OffsetFile(path, monotonic=monotonic)
    clock = ScaledClock(60, virtual_origin=T0, real_origin=T0, real=real, offset=offset)
    real.advance(1)
    assert clock.now() == T0 + timedelta(minutes=1)
    write_offset_file(path, timedelta(hours=3))
    monotonic.value += 1
    assert clock.now() == T0 + timedelta(hours=3, minutes=1)
    path.write_text(json.dumps({"offset_s": -600}), encoding="utf-8")
    monotonic.value += 1
    assert clock.now() == T0 + timedelta(minutes=-9)


def test_shared_clock_with_an_offset_file_is_scaled_even_at_speed_one(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    write_offset_file(path, timedelta(days=1))
    assert isinstance(shared_clock(1.0, T0), SystemClock)
    clock = shared_clock(1.0, T0, offset_file=path)
    assert isinstance(clock, ScaledClock)
    ahead = clock.now() - datetime.now(UTC)
    assert timedelta(hours=23) < ahead <= timedelta(days=1)
    fast = shared_clock(10.0, datetime.now(UTC), offset_file=path)
    assert isinstance(fast, ScaledClock)
    assert fast.speed == 10.0
