"""The demo family: three people with different simulated days, on two regions, one of them
reaching urgent low soon after the demo starts while the first opens in range."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import requests

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.ranges import GlucoseRange, Thresholds
from cgmtray.domain.readings import LOW_MGDL, Reading
from cgmtray.fakeshare.demo import (
    DEMO_FAMILY,
    DEMO_PASSWORD,
    DEMO_URGENT_LOW_AFTER,
    DEMO_USERNAME,
    DemoAccount,
    DemoService,
)
from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_READ,
    Region,
)

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TIMEOUT = 5.0
#: Starts spread over the day (the demo's local start is mid-morning whatever the hour).
STARTS = [
    datetime(2026, 6, 15, hour, minute, tzinfo=UTC)
    for hour, minute in ((0, 7), (6, 52), (13, 23), (19, 38), (23, 59))
]


def _urgent_low() -> int:
    """The app's default urgent-low threshold (mg/dL): a reading at or below it alerts."""
    threshold = int(AlertSettings()[AlertKind.URGENT_LOW].threshold)
    assert threshold == Thresholds().urgent_low == 55
    return threshold


def _sign_in(base_url: str, username: str, region: Region) -> requests.Response:
    return requests.post(
        base_url + ENDPOINT_AUTHENTICATE,
        json={
            "accountName": username,
            "password": DEMO_PASSWORD,
            "applicationId": region.application_id,
        },
        timeout=TIMEOUT,
    )


def _read_over_http(base_url: str, account: DemoAccount) -> list[dict[str, object]]:
    """Signs in as `account` at `base_url` the way the app does and reads a day."""
    app_id = account.region.application_id
    with requests.Session() as http:
        account_id = _sign_in(base_url, account.username, account.region).json()
        session_id = http.post(
            base_url + ENDPOINT_LOGIN_BY_ID,
            json={"accountId": account_id, "password": DEMO_PASSWORD, "applicationId": app_id},
            timeout=TIMEOUT,
        ).json()
        response = http.post(
            base_url + ENDPOINT_READ,
            params={"sessionId": session_id, "minutes": 1440, "maxCount": 288},
            json={},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        readings = response.json()
        assert isinstance(readings, list)
        return readings


def _day(demo: DemoService, account: DemoAccount) -> list[Reading]:
    """What a read returns now, oldest first."""
    published = demo.fake.readings(account.region, account.username)
    return [p.reading for p in reversed(published)]


def test_the_family_is_data_the_app_can_turn_into_people() -> None:
    assert len(DEMO_FAMILY) == 3
    for person in DEMO_FAMILY:
        name, label, region, username = person  # (display name, label, region, username)
        assert name
        assert username
        assert 1 <= len(label) <= 2
        assert isinstance(region, Region)
    assert DEMO_FAMILY[0].username == DEMO_USERNAME  # today's demo account comes first
    assert len({p.name for p in DEMO_FAMILY}) == 3
    assert len({p.label for p in DEMO_FAMILY}) == 3
    assert len({p.username for p in DEMO_FAMILY}) == 3
    assert [p.region for p in DEMO_FAMILY].count(Region.US) == 2
    assert [p.region for p in DEMO_FAMILY].count(Region.OUS) == 1


def test_each_person_has_a_day_of_history_and_a_reading_every_five_minutes() -> None:
    clock = ManualClock(T0)
    with DemoService(clock=clock) as demo:
        assert [a.person for a in demo.accounts] == list(DEMO_FAMILY)
        for account in demo.accounts:
            served = _read_over_http(demo.base_url_of(account), account)
            assert 285 <= len(served) <= 288, account.person.name
            day = _day(demo, account)
            assert len(day) == len(served)
            assert T0 - day[0].time > timedelta(hours=23, minutes=50)
            assert T0 - day[-1].time < timedelta(minutes=6)
            for older, newer in pairwise(day):
                assert abs((newer.time - older.time) - timedelta(minutes=5)) < timedelta(seconds=4)
        newest = {a.username: _day(demo, a)[-1] for a in demo.accounts}
        clock.advance(timedelta(minutes=5))
        for account in demo.accounts:
            arrived = _day(demo, account)[-1]
            assert arrived.time > newest[account.username].time, account.person.name


@pytest.mark.parametrize("start", STARTS, ids=lambda when: when.strftime("%H%M"))
@pytest.mark.parametrize("seed", [1, 7])
def test_one_person_crosses_urgent_low_in_the_stated_window(start: datetime, seed: int) -> None:
    """Mia's first reading at or below 55 mg/dL is taken 25-65 virtual minutes after the start
    (under a minute at --speed 60); Sam and Alex stay above low meanwhile."""
    urgent_low = _urgent_low()
    earliest, latest = DEMO_URGENT_LOW_AFTER
    assert timedelta(minutes=10) <= earliest < latest <= timedelta(hours=3)
    clock = ManualClock(start)
    demo = DemoService(clock=clock, seed=seed)
    mia, others = demo.accounts[1], (demo.accounts[0], demo.accounts[2])
    assert _day(demo, mia)[-1].mgdl > urgent_low  # not in urgent low when the demo opens
    crossed: Reading | None = None
    while clock.now() - start < timedelta(hours=3) and crossed is None:
        clock.advance(timedelta(minutes=1))
        newest = _day(demo, mia)[-1]
        if newest.mgdl <= urgent_low:
            crossed = newest
        for other in others:
            assert _day(demo, other)[-1].mgdl > 70, other.person.name
    assert crossed is not None, "nobody reached urgent low within 3 virtual hours"
    assert earliest <= crossed.time - start <= latest
    assert Thresholds().classify(crossed) is GlucoseRange.URGENT_LOW


@pytest.mark.parametrize("start", STARTS, ids=lambda when: when.strftime("%H%M"))
def test_the_first_person_opens_in_range(start: datetime) -> None:
    demo = DemoService(clock=ManualClock(start))
    first = demo.accounts[0]
    assert (demo.username, demo.region) == (DEMO_USERNAME, Region.US)
    assert first.username == demo.username
    assert Thresholds().classify(_day(demo, first)[-1]) is GlucoseRange.IN_RANGE


def test_the_three_days_differ() -> None:
    demo = DemoService(clock=ManualClock(T0))
    sam, mia, alex = ([r.mgdl for r in _day(demo, a)] for a in demo.accounts)
    figures = [(min(day), max(day), round(statistics.mean(day))) for day in (sam, mia, alex)]
    assert len({f[0] for f in figures}) == 3
    assert len({f[1] for f in figures}) == 3
    assert len(set(figures)) == 3
    # Sam: a night low down to LOW and a dinner high.
    assert min(sam) == LOW_MGDL
    assert max(sam) > 250
    # Mia: yesterday's urgent low after morning sport, no LOW, no high above 250.
    assert LOW_MGDL < min(mia) <= _urgent_low()
    assert max(mia) < 300
    # Alex: mostly in range, never low.
    in_range = sum(70 <= value <= 180 for value in alex) / len(alex)
    assert in_range >= 0.9
    assert min(alex) > 70


def test_the_two_regions_answer_for_their_accounts_only() -> None:
    with DemoService(clock=ManualClock(T0)) as demo:
        assert demo.fake.regions == (Region.US, Region.OUS)
        for account in demo.accounts:
            here = demo.base_url_of(account)
            answer = _sign_in(here, account.username, account.region)
            assert answer.json() == account.account_id
            other = Region.OUS if account.region is Region.US else Region.US
            there = demo.fake.base_url(other)
            refused = _sign_in(there, account.username, other)
            assert refused.json()["Code"] == "AccountPasswordInvalid", account.person.name
        assert demo.base_url == demo.fake.base_url(Region.US)


def test_a_region_given_serves_the_whole_family_there() -> None:
    with DemoService(clock=ManualClock(T0), region=Region.JP) as demo:
        assert demo.fake.regions == (Region.JP,)
        assert {a.region for a in demo.accounts} == {Region.JP}
        for account in demo.accounts:
            assert _read_over_http(demo.base_url, account)
