"""The demo service: a fake Share holding a family of three, each with a simulated day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final, NamedTuple

from cgmtray.domain.clock import Clock, ScaledClock, SystemClock
from cgmtray.fakeshare.sensor import DayProfile, LowPlan, MealPlan, SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region

#: The printed credentials of the demo account (the family's first person).
DEMO_USERNAME: Final = "demo"
#: One password for every demo account (it is a demo: the credentials are printed).
DEMO_PASSWORD: Final = "demo-password"


class DemoPerson(NamedTuple):
    """One person of the demo family, as the app's demo mode turns them into people."""

    name: str
    label: str
    region: Region
    username: str


#: The demo family, in list order. Sam is today's single-account demo (opens in range
#: mid-morning); Mia's day crosses urgent low DEMO_URGENT_LOW_AFTER into the demo; Alex, on the
#: outside-the-US service, stays mostly in range.
DEMO_FAMILY: Final[tuple[DemoPerson, ...]] = (
    DemoPerson("Sam", "S", Region.US, DEMO_USERNAME),
    DemoPerson("Mia", "M", Region.US, "demo-mia"),
    DemoPerson("Alex", "A", Region.OUS, "demo-alex"),
)

#: When Mia's first reading at or below 55 mg/dL (the default urgent-low threshold) is taken,
#: counted from the demo's start: between 25 and 65 virtual minutes (25-65 s at --speed 60).
DEMO_URGENT_LOW_AFTER: Final = (timedelta(minutes=25), timedelta(minutes=65))

#: Each person's kind of day. Sam, a teen: the default day (breakfast and lunch rises, a dinner
#: high above 250 mg/dL, a night low below 40). Mia, a child: smaller meals and a low after morning
#: sport at about 10:50 local time, down to 44-49 mg/dL (the demo starts at 10:00). Alex, an
#: adult: small rises, a shallow dip at night, mostly within 70-180 mg/dL.
_DAYS: Final[dict[str, DayProfile]] = {
    DEMO_USERNAME: DayProfile(),
    "demo-mia": DayProfile(
        base_mgdl=125.0,
        drift_mgdl=(12.0, 6.0),
        dawn_rise_mgdl=12.0,
        meals=(
            MealPlan(7.25, 15, (50, 70), 50),
            MealPlan(12.5, 20, (80, 105), 60),
            MealPlan(18.25, 25, (95, 125), 70),
        ),
        lows=(LowPlan(10.85, 4, (44.0, 49.0), width_minutes=20.0),),
        noise_sd_mgdl=1.5,
    ),
    "demo-alex": DayProfile(
        base_mgdl=108.0,
        drift_mgdl=(8.0, 4.0),
        dawn_rise_mgdl=14.0,
        meals=(
            MealPlan(7.5, 30, (25, 40), 55),
            MealPlan(13.0, 30, (30, 45), 60),
            MealPlan(19.5, 30, (45, 60), 75),
        ),
        lows=(LowPlan(3.5, 45, (84.0, 92.0), width_minutes=45.0),),
        noise_sd_mgdl=1.0,
    ),
}

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


def day_of(person: DemoPerson) -> DayProfile:
    """The kind of day `person` has (the default day for anyone not in DEMO_FAMILY)."""
    return _DAYS.get(person.username, DayProfile())


@dataclass(frozen=True)
class DemoAccount:
    """A demo person as the fake serves them: where, their Dexcom account id and their sensor."""

    person: DemoPerson
    region: Region
    account_id: str
    sensor: SimulatedSensor

    @property
    def username(self) -> str:
        return self.person.username

    @property
    def password(self) -> str:
        return DEMO_PASSWORD


def add_family(
    fake: FakeShare,
    *,
    seed: int = 1,
    regions: Sequence[Region] | None = None,
    family: Sequence[DemoPerson] = DEMO_FAMILY,
    sensors: bool = True,
) -> tuple[DemoAccount, ...]:
    """Adds `family` to `fake` (each on `regions[i]`, default their own region) with 24 h of
    history before the fake's now, in a day whose local time is DEMO_LOCAL_START_MINUTES now.
    Person i's sensor has seed `seed + i`; `sensors=False` adds the accounts without readings."""
    if regions is not None and len(regions) != len(family):
        raise ValueError("give one region per person")
    now = fake.now()
    offset = demo_offset_minutes(now)
    added: list[DemoAccount] = []
    for index, person in enumerate(family):
        region = regions[index] if regions is not None else person.region
        account_id = fake.add_account(region, person.username, DEMO_PASSWORD)
        sensor = SimulatedSensor(
            seed=seed + index,
            start=now - DEMO_HISTORY,
            offset_minutes=offset,
            profile=day_of(person),
        )
        if sensors:
            fake.attach_sensor(region, person.username, sensor)
        added.append(DemoAccount(person, region, account_id, sensor))
    return tuple(added)


class DemoService:
    """A started FakeShare holding DEMO_FAMILY, each person with a SimulatedSensor with 24 h of
    history before now, readings arriving every 5 min (speeded up by `speed`).

    Each person is on their own region (two on us, one on ous) unless `region` is given: then
    all of them are on that one. `.region`, `.username`, `.password`, `.account_id`, `.sensor`
    and `.base_url` are the first person's (today's single demo account); `.accounts` has them
    all, and `base_url_of` says where each one is served.

    With `speed` > 1 (and no clock given) the fake runs on a ScaledClock, exposed as `.clock`, so
    an in-process app can share it. A given `clock` is used as it is.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        region: Region | None = None,
        seed: int = 1,
        speed: float = 1.0,
        port: int = 0,
    ) -> None:
        self.clock: Clock = clock if clock is not None else demo_clock(speed)
        family = DEMO_FAMILY
        places = [region] * len(family) if region is not None else [p.region for p in family]
        served = tuple(dict.fromkeys(places))
        self.fake = FakeShare(self.clock, regions=served, ports={served[0]: port})
        self.accounts = add_family(self.fake, seed=seed, regions=places, family=family)
        first = self.accounts[0]
        self.region: Region = first.region
        self.username: str = first.username
        self.password: str = DEMO_PASSWORD
        self.account_id: str = first.account_id
        self.sensor: SimulatedSensor = first.sensor

    @property
    def base_url(self) -> str:
        """The first person's `http://127.0.0.1:PORT/ShareWebServices/Services/` (once started)."""
        return self.fake.base_url(self.region)

    def base_url_of(self, account: DemoAccount) -> str:
        """Where `account` is served (once started)."""
        return self.fake.base_url(account.region)

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
