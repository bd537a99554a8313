"""The demo service: a fake Share, one demo account, a simulated sensor with 24 h of history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final

from cgmtray.domain.clock import Clock, ScaledClock, SystemClock
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region

#: The printed credentials of the demo account.
DEMO_USERNAME: Final = "demo"
DEMO_PASSWORD: Final = "demo-password"
#: How much history the demo sensor has when the service starts.
DEMO_HISTORY: Final = timedelta(hours=24)
#: The publisher's local time of day when a demo starts: mid-morning, after breakfast's rise and
#: before lunch, so a first look opens in range (not in the simulated night low with its alarm),
#: with yesterday's dinner high and night low in the 24 h chart.
DEMO_LOCAL_START_MINUTES: Final = 10 * 60
#: Real UTC offsets are whole quarter hours.
_OFFSET_STEP_MINUTES: Final = 15
_MINUTES_PER_DAY: Final = 24 * 60


def demo_offset_minutes(now: datetime) -> int:
    """The publisher's UTC offset that puts `now` at DEMO_LOCAL_START_MINUTES local time (whole
    quarter hours, within Share's -12:00..+14:00)."""
    utc_minutes = now.hour * 60 + now.minute
    offset = (DEMO_LOCAL_START_MINUTES - utc_minutes) % _MINUTES_PER_DAY
    offset = round(offset / _OFFSET_STEP_MINUTES) * _OFFSET_STEP_MINUTES
    return offset - _MINUTES_PER_DAY if offset > 14 * 60 else offset


def demo_clock(speed: float) -> Clock:
    """The system clock, or a clock running `speed` times faster from now."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    if speed == 1.0:
        return SystemClock()
    now = datetime.now(UTC)
    return ScaledClock(speed, virtual_origin=now, real_origin=now)


class DemoService:
    """A started FakeShare with a demo account on `region`, a SimulatedSensor with 24 h of history
    before now, readings arriving every 5 min (speeded up by `speed`).

    With `speed` > 1 (and no clock given) the fake runs on a ScaledClock, exposed as `.clock`, so
    an in-process app can share it. A given `clock` is used as it is.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        region: Region = Region.US,
        seed: int = 1,
        speed: float = 1.0,
        port: int = 0,
    ) -> None:
        self.clock: Clock = clock if clock is not None else demo_clock(speed)
        self.region = region
        self.username: str = DEMO_USERNAME
        self.password: str = DEMO_PASSWORD
        self.fake = FakeShare(self.clock, regions=(region,), ports={region: port})
        now = self.clock.now()
        self.sensor = SimulatedSensor(
            seed=seed, start=now - DEMO_HISTORY, offset_minutes=demo_offset_minutes(now)
        )
        self.account_id = self.fake.add_account(region, DEMO_USERNAME, DEMO_PASSWORD)
        self.fake.attach_sensor(region, DEMO_USERNAME, self.sensor)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/ShareWebServices/Services/` (once started)."""
        return self.fake.base_url(self.region)

    def start(self) -> None:
        self.fake.start()

    def stop(self) -> None:
        self.fake.stop()

    def __enter__(self) -> DemoService:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DemoService(region={self.region.value}, username={self.username!r})"
