"""Several people in one session: an icon, a worker and a Share account each; one account locked
stops only that person; people added or removed start or stop only themselves; the demo family."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.errors
import pytest
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from tests.support.fake_share import _join_finishing_handlers
from tests.support.memory_keyring import MemoryKeyring as DictKeyring
from tests.support.notifications import SILENT_PLAYER
from tests.support.virtual_time import VirtualTime
from tests.ui import test_people_page as people_page_test

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.alerts import snoozed_until
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.connection import LinkState
from cgmtray.domain.readings import Reading, Trend
from cgmtray.fakeshare import demo as demo_module
from cgmtray.fakeshare.demo import DEMO_FAMILY, DEMO_URGENT_LOW_AFTER
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage import people
from cgmtray.storage.credentials import SERVICE, MemoryCredentialStore
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.settings import Settings, save_settings
from cgmtray.ui import session as session_module
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.person_runtime import PersonRuntime
from cgmtray.ui.session import NO_PASSWORD_PROBLEM, AppSession
from cgmtray.ui.settings_dialog import AccountChange, Page
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.tray_together import TogetherTray

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed

#: Three people on one fake, two on the US service and one outside it.
FAMILY = (
    ("Sam", "S", Region.US, "sam@example.com", "sams-pa55word"),
    ("Mia", "M", Region.US, "mia@example.com", "mias-pa55word"),
    ("Alex", "A", Region.OUS, "alex@example.com", "alexs-pa55word"),
)
#: Two more on the same fake, for a family beyond three (one icon for everyone by default).
MORE = (
    ("Kai", "K", Region.US, "kai@example.com", "kais-pa55word"),
    ("Lee", "L", Region.OUS, "lee@example.com", "lees-pa55word"),
)


class Tally:
    """Requests per account as each person's client made them (read, sign-in, follower list)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads: Counter[str] = Counter()
        self.sign_ins: Counter[str] = Counter()

    def add(self, username: str, client: ShareClient) -> None:
        call = client.last_call
        with self._lock:
            self.reads[username] += call.reads
            self.sign_ins[username] += call.sign_ins

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.reads), dict(self.sign_ins)


def counting_client(tally: Tally) -> type[ShareClient]:
    """A real ShareClient (real HTTP to the fake) that counts each call's requests per account."""

    class CountingClient(ShareClient):
        def __init__(self, config: ClientConfig, password: str, **kwargs: object) -> None:
            super().__init__(config, password, **kwargs)  # type: ignore[arg-type]
            self._counted_as = config.username

        def read(self, minutes: int = 10, max_count: int = 1) -> tuple[object, ...]:  # type: ignore[override]
            try:
                return super().read(minutes, max_count)
            finally:
                tally.add(self._counted_as, self)

        def list_followers(self) -> object:  # type: ignore[override]
            try:
                return super().list_followers()
            finally:
                tally.add(self._counted_as, self)

    return CountingClient


@pytest.fixture(autouse=True)
def backend(monkeypatch: pytest.MonkeyPatch) -> DictKeyring:
    test_keyring = DictKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: test_keyring)
    return test_keyring


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No notification server (alerts go to each person's status window) and a silent alarm."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setattr(
        session_module,
        "AlarmSound",
        lambda parent=None: AlarmSound(parent, player=SILENT_PLAYER),
    )


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime(ManualClock(T0))


@pytest.fixture
def paths(tmp_path: Path) -> app_paths.AppPaths:
    return app_paths.ensure(app_paths.app_paths(tmp_path))


@pytest.fixture
def fake(time: VirtualTime) -> Iterator[FakeShare]:
    """One fake Share on the test's virtual clock, serving the family in two regions."""
    with FakeShare(time.clock, regions=(Region.US, Region.OUS)) as server:
        for seed, (_name, _label, region, username, password) in enumerate(FAMILY + MORE, 1):
            server.add_account(region, username, password)
            sensor = SimulatedSensor(seed=seed, start=T0 - timedelta(hours=3), lag_s=20.0)
            server.attach_sensor(region, username, sensor)
        yield server
    _join_finishing_handlers()


@pytest.fixture
def tally(monkeypatch: pytest.MonkeyPatch) -> Tally:
    counts = Tally()
    monkeypatch.setattr(session_module, "ShareClient", counting_client(counts))
    return counts


def _family(fake: FakeShare, members: tuple[tuple[str, str, Region, str, str], ...]) -> Settings:
    chosen: list[Person] = []
    for name, label, region, username, _password in members:
        source = ShareSource(region.value, username, fake.base_url(region))
        person = people.new_person(chosen, source, name=name)
        chosen.append(dataclasses.replace(person, label=label))
    return Settings(people=tuple(chosen))


def _keep_passwords(
    backend: DictKeyring, members: tuple[tuple[str, str, Region, str, str], ...]
) -> None:
    for _name, _label, region, username, password in members:
        backend.entries[(SERVICE, f"{region.value}:{username}")] = password


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "demo": False,
        "share_url": None,
        "password_stdin": False,
        "speed": 1.0,
        "clock_epoch": T0,
        "status_window": True,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


@contextlib.contextmanager
def _running(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    **overrides: object,
) -> Iterator[AppSession]:
    """The session started (keyring read off-thread), with `count` people's workers running on
    the test's virtual time; stopped (every worker ended) on exit."""
    monkeypatch.setattr(session_module, "shared_clock", lambda *_args: time.clock)
    with contextlib.ExitStack() as stack:
        session = AppSession(_args(**overrides), paths, stack, timers=time)
        session.begin()
        qtbot.waitUntil(lambda: len(session.runtimes) == count, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        try:
            yield session
        finally:
            qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
            assert session.stop()


def _wait_for_workers(time: VirtualTime, session: AppSession) -> None:
    for runtime in session.runtimes:
        worker = runtime.controller._worker
        if worker.thread.isRunning():
            time.wait_for_alarms_of(worker.worker)


def _by_name(session: AppSession) -> dict[str, PersonRuntime]:
    return {runtime.person.name: runtime for runtime in session.runtimes}


def _shows_a_reading(tray: TrayPresenter) -> bool:
    return tray.model is not None and tray.model.reading is not None and not tray.model.stale


def _menu_texts(tray: TrayPresenter) -> list[str]:
    tray.menu.aboutToShow.emit()
    return [a.text() for a in tray.menu.actions() if not a.isSeparator()]


def test_three_people_in_two_regions_get_an_icon_a_badge_and_an_account_each(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_settings(_family(fake, FAMILY), paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 3) as session:
        trays = [runtime.tray for runtime in session.runtimes]
        time.run_until(lambda: all(_shows_a_reading(t) for t in trays), within=timedelta(minutes=6))
        time.advance(timedelta(hours=1))

        assert [r.person.name for r in session.runtimes] == ["Sam", "Mia", "Alex"]
        assert len({id(tray) for tray in trays}) == 3
        for runtime in session.runtimes:
            tray = runtime.tray
            assert tray.person_badge is not None
            assert tray.person_badge.label == runtime.person.label
            assert tray.person_badge.colour == runtime.person.colour
            assert tray.model is not None
            assert tray.tooltip_of(tray.model) == f"{runtime.person.name} · {tray.model.tooltip}"
            window = tray.status_window  # (no tray here: each person's status window)
            assert window is not None
            assert window.windowTitle() == f"CGM Tray — {runtime.person.name}"
            status = _menu_texts(tray)[0]
            assert status.startswith(f"{runtime.person.name} · ")
            assert {"S&ettings…", "&About", "&Quit", "Open &history…"} <= set(_menu_texts(tray))
        # "Open history…" in Mia's menu opens the app's one history window on Mia; its
        # selector offers everyone.
        by_name = _by_name(session)
        mia_menu = by_name["Mia"].tray
        mia_menu.menu.aboutToShow.emit()
        opener = next(a for a in mia_menu.menu.actions() if a.text() == "Open &history…")
        opener.trigger()
        history = session._history
        assert history is not None
        history_window = history.window
        assert history_window is not None
        qtbot.waitUntil(history_window.isVisible, timeout=WAIT_MS)
        assert history_window.person_id == by_name["Mia"].person.id
        assert [p.name for p in history_window.people] == ["Sam", "Mia", "Alex"]
        assert history_window.selector.isVisible()
        assert by_name["Mia"].history_path != by_name["Sam"].history_path
        # Each person's own readings: the three sensors differ.
        values = {r.person.name: r.controller.recent[0].mgdl for r in session.runtimes}
        fake_values = {
            name: fake.readings(region, username, minutes=10, max_count=1)[0].reading.mgdl
            for name, _label, region, username, _password in FAMILY
        }
        assert values == fake_values
        reads, sign_ins = tally.snapshot()
        for _name, _label, _region, username, _password in FAMILY:
            # Each account signed in once, by itself: by name (Authenticate), then by id.
            assert sign_ins[username] == 2
            # One read a reading (12 readings an hour, each polled once after it arrives) and the
            # follower check at most once a session.
            assert 10 <= reads[username] <= 16
        # A sign-in gate (the shared sign-in ledger) per account.
        assert {r.account.config.username for r in session.runtimes if r.account} == {
            username for *_rest, username, _password in FAMILY
        }


def test_a_locked_account_stops_only_its_person(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_settings(_family(fake, FAMILY), paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 3) as session:
        by_name = _by_name(session)
        trays = [runtime.tray for runtime in session.runtimes]
        time.run_until(lambda: all(_shows_a_reading(t) for t in trays), within=timedelta(minutes=6))

        mia = by_name["Mia"]
        fake.lock_account(Region.US, "mia@example.com")
        fake.expire_sessions(Region.US)  # Sam's session goes too: he simply signs in again
        time.run_until(
            lambda: mia.controller.status.state is LinkState.LOCKED, within=timedelta(minutes=10)
        )
        stopped_reads, stopped_sign_ins = tally.snapshot()
        newest = {name: r.controller.recent[0].time for name, r in by_name.items()}
        time.advance(timedelta(hours=1))
        reads, sign_ins = tally.snapshot()

        assert reads["mia@example.com"] == stopped_reads["mia@example.com"]
        assert sign_ins["mia@example.com"] == stopped_sign_ins["mia@example.com"]
        for name, username in (("Sam", "sam@example.com"), ("Alex", "alex@example.com")):
            assert reads[username] - stopped_reads.get(username, 0) >= 10
            assert by_name[name].controller.status.state is LinkState.OK
            assert by_name[name].controller.recent[0].time > newest[name] + timedelta(minutes=50)
        # Sam: the first sign-in (two requests), then once by id for the expired session.
        assert sign_ins["sam@example.com"] == 3
        assert sign_ins["alex@example.com"] == 2
        assert mia.controller.recent[0].time == newest["Mia"]
        assert mia.tray.model is not None
        assert "locked" in mia.tray.model.status_line.lower()
        notifier = session._notifier
        assert notifier is not None
        titles = [
            request.title
            for key in notifier.open_keys
            if (request := notifier.request_for(key)) is not None
        ]
        assert any(title.startswith("Mia · ") for title in titles)
        assert not any(title.startswith(("Sam · ", "Alex · ")) for title in titles)


def test_a_person_without_a_saved_password_says_so_on_their_icon_and_the_others_run(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_settings(_family(fake, FAMILY), paths.settings_file)
    _keep_passwords(backend, (FAMILY[0], FAMILY[2]))  # Mia's password is not in the keyring
    with _running(qtbot, time, paths, monkeypatch, 3) as session:
        by_name = _by_name(session)
        sam, alex = by_name["Sam"].tray, by_name["Alex"].tray
        time.run_until(
            lambda: _shows_a_reading(sam) and _shows_a_reading(alex), within=timedelta(minutes=6)
        )
        mia = by_name["Mia"]
        assert mia.account is None
        assert mia.tray.model is not None
        assert NO_PASSWORD_PROBLEM in mia.tray.model.status_line
        assert not mia.controller._worker.thread.isRunning()
        reads, sign_ins = tally.snapshot()
        assert "mia@example.com" not in reads
        assert "mia@example.com" not in sign_ins


def test_adding_renaming_and_removing_a_person_starts_redraws_and_stops_only_them(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two = (FAMILY[0], FAMILY[2])
    settings = _family(fake, two)
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 2) as session:
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        before = {r.person.name: (r.controller, r.client_source) for r in session.runtimes}

        # Mia is added (Settings › People saves her; her password is in the keyring).
        name, label, region, username, _password = FAMILY[1]
        mia = people.new_person(
            settings.people, ShareSource(region.value, username, fake.base_url(region)), name=name
        )
        settings = people.add_person(settings, dataclasses.replace(mia, label=label))
        session._on_settings_saved(settings)
        qtbot.waitUntil(lambda: len(session.runtimes) == 3, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        added = _by_name(session)["Mia"]
        time.run_until(lambda: _shows_a_reading(added.tray), within=timedelta(minutes=6))
        assert [r.person.name for r in session.runtimes] == ["Sam", "Alex", "Mia"]
        for runtime in session.runtimes:
            if runtime.person.name in before:
                assert (runtime.controller, runtime.client_source) == before[runtime.person.name]

        # Mia's high alert is turned off: her controller applies it; nobody else's redraws.
        redraws: Counter[str] = Counter()
        for runtime in session.runtimes:
            runtime.controller.refreshed.connect(
                lambda name=runtime.person.name: redraws.update([name])
            )
        mias = people.find(settings, mia.id)
        high = dataclasses.replace(mias.alerts[AlertKind.HIGH], enabled=False)
        quieter = dataclasses.replace(mias, alerts=mias.alerts.with_kind(AlertKind.HIGH, high))
        settings = people.update_person(settings, quieter)
        session._on_settings_saved(settings)
        assert redraws == Counter({"Mia": 1})
        assert not added.controller._view.alerts[AlertKind.HIGH].enabled

        # Sam is renamed "Samuel" with the label "Sa": his icon and menu say so, his worker runs on.
        sam = _by_name(session)["Sam"]
        reads_before, _sign_ins = tally.snapshot()
        settings = people.rename_person(settings, sam.person.id, "Samuel", "Sa")
        session._on_settings_saved(settings)
        assert sam in session.runtimes
        assert sam.controller is before["Sam"][0]
        assert sam.tray.person_badge is not None
        assert sam.tray.person_badge.label == "Sa"
        assert _menu_texts(sam.tray)[0].startswith("Samuel · ")
        time.advance(timedelta(minutes=15))
        reads, sign_ins = tally.snapshot()
        assert reads["sam@example.com"] > reads_before["sam@example.com"]
        assert sign_ins["sam@example.com"] == 2  # never signed in again

        # Alex is removed: his worker ends and his icon goes; the others keep running.
        alex = _by_name(session)["Alex"]
        settings = dataclasses.replace(
            settings, people=tuple(p for p in settings.people if p.id != alex.person.id)
        )
        session._on_settings_saved(settings)
        assert [r.person.name for r in session.runtimes] == ["Samuel", "Mia"]
        assert not alex.controller._worker.thread.isRunning()
        window = alex.tray.status_window
        assert window is None or not window.isVisible()
        stopped, _sign_ins = tally.snapshot()
        time.advance(timedelta(minutes=30))
        reads, _sign_ins = tally.snapshot()
        assert reads["alex@example.com"] == stopped["alex@example.com"]
        assert reads["mia@example.com"] > stopped["mia@example.com"]
        assert reads["sam@example.com"] > stopped["sam@example.com"]


def test_the_demo_follows_three_people_and_mias_urgent_low_names_her(
    qtbot: QtBot, time: VirtualTime, paths: app_paths.AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo service runs on the test's virtual clock (at --speed 60 it would run 60 times
    # faster on the real one; the simulated day is the same).
    monkeypatch.setattr(demo_module, "demo_clock", lambda _speed: time.clock)
    with _running(qtbot, time, paths, monkeypatch, 3, demo=True) as session:
        by_name = _by_name(session)
        assert list(by_name) == [member.name for member in DEMO_FAMILY]
        for member in DEMO_FAMILY:
            tray = by_name[member.name].tray
            assert tray.demo
            assert tray.person_badge is not None
            assert tray.person_badge.label == member.label
        notifier = session._notifier
        assert notifier is not None

        def mias_urgent_low() -> list[str]:
            return [
                request.title
                for key in notifier.open_keys
                if (request := notifier.request_for(key)) is not None
                and request.kind == "urgent_low"
            ]

        began = time.clock.now()
        time.run_until(
            lambda: bool(mias_urgent_low()), within=DEMO_URGENT_LOW_AFTER[1] + timedelta(minutes=6)
        )
        assert time.clock.now() - began >= DEMO_URGENT_LOW_AFTER[0]
        assert all(title.startswith("Demo: Mia · Urgent low") for title in mias_urgent_low())
        mia = by_name["Mia"]
        window = mia.tray.status_window
        assert window is not None
        assert "Mia · Urgent low" in window.message
        assert all(_shows_a_reading(r.tray) for r in session.runtimes)


def test_one_person_looks_as_before_and_a_second_one_names_both(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _family(fake, (FAMILY[0],))
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 1) as session:
        (sam,) = session.runtimes
        time.run_until(lambda: _shows_a_reading(sam.tray), within=timedelta(minutes=6))
        assert sam.controller.person is None
        assert sam.tray.person_badge is None
        assert sam.tray.model is not None
        assert sam.tray.tooltip_of(sam.tray.model) == sam.tray.model.tooltip
        assert not _menu_texts(sam.tray)[0].startswith("Sam")

        name, label, region, username, _password = FAMILY[1]
        mia = people.new_person(
            settings.people, ShareSource(region.value, username, fake.base_url(region)), name=name
        )
        session._on_settings_saved(
            people.add_person(settings, dataclasses.replace(mia, label=label))
        )
        qtbot.waitUntil(lambda: len(session.runtimes) == 2, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        for runtime in session.runtimes:
            assert runtime.controller.person is not None
            assert runtime.tray.person_badge is not None
            assert runtime.tray.person_badge.label == runtime.person.label
            assert _menu_texts(runtime.tray)[0].startswith(f"{runtime.person.name} · ")


def _person_lines(together: TogetherTray) -> list[str]:
    """The one icon's menu: the name on each person's line (their submenu), in order."""
    together.menu.aboutToShow.emit()
    return [
        action.text().split(" ", 1)[1].split(" · ")[0]
        for action in together.menu.actions()
        if action.menu() is not None and action.menu().objectName().startswith("person-")
    ]


def _one_icon(session: AppSession) -> bool:
    return session.together is not None


def _together_shows_everyone(session: AppSession) -> bool:
    together = session.together
    return (
        together is not None
        and len(together.ports) == len(session.runtimes)
        and all(
            port.model is not None and port.model.reading is not None and not port.model.stale
            for port in together.ports
        )
    )


def test_four_people_share_one_icon_whose_menu_lists_them_and_opens_each_ones_history(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    four = FAMILY + MORE[:1]
    save_settings(_family(fake, four), paths.settings_file)
    _keep_passwords(backend, four)
    with _running(qtbot, time, paths, monkeypatch, 4) as session:
        time.run_until(lambda: _together_shows_everyone(session), within=timedelta(minutes=6))
        together = session.together
        assert together is not None
        # One icon (here its status window): nobody has an icon of their own.
        assert all(runtime.icon is None for runtime in session.runtimes)
        assert session._tray is None
        assert together.status_window is not None
        assert _person_lines(together) == ["Sam", "Mia", "Alex", "Kai"]
        assert together.badge is not None  # the shown person's label is on the badge
        # Each one's own readings reach their own line.
        reads, _sign_ins = tally.snapshot()
        assert {username for *_rest, username, _password in four} <= set(reads)
        # "Open history…" in Mia's submenu: the one history window, on Mia, offering all four.
        mia = _by_name(session)["Mia"]
        together.menu.aboutToShow.emit()
        submenu = together.menu.findChild(QMenu, f"person-{mia.person.id}")
        assert submenu is not None
        next(a for a in submenu.actions() if a.objectName() == "open-history").trigger()
        history = session._history
        assert history is not None
        window = history.window
        assert window is not None
        qtbot.waitUntil(window.isVisible, timeout=WAIT_MS)
        assert window.person_id == mia.person.id
        assert [p.name for p in window.people] == ["Sam", "Mia", "Alex", "Kai"]


def test_the_tray_setting_and_the_number_of_people_switch_between_one_icon_and_one_each(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two = (FAMILY[0], FAMILY[2])
    settings = dataclasses.replace(_family(fake, two), tray_icons="together")
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY + MORE)
    with _running(qtbot, time, paths, monkeypatch, 2) as session:
        # "One icon for everyone" with two people: one icon.
        time.run_until(lambda: _together_shows_everyone(session), within=timedelta(minutes=6))
        together = session.together
        assert together is not None
        assert _person_lines(together) == ["Sam", "Alex"]
        assert all(runtime.icon is None for runtime in session.runtimes)

        # "One icon per person": an icon each, the shared one gone.
        settings = dataclasses.replace(settings, tray_icons="per_person")
        session._on_settings_saved(settings)
        qtbot.waitUntil(lambda: len(session.runtimes) == 2, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        assert not _one_icon(session)
        time.run_until(
            lambda: all(r.icon is not None and _shows_a_reading(r.icon) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        assert len({id(r.icon) for r in session.runtimes}) == 2

        # Automatic: up to three people an icon each; a fourth makes one icon for everyone.
        settings = dataclasses.replace(settings, tray_icons="auto")
        session._on_settings_saved(settings)
        assert not _one_icon(session)
        assert len(session.runtimes) == 2
        for name, label, region, username, _password in (FAMILY[1], MORE[0]):
            person = people.new_person(
                settings.people,
                ShareSource(region.value, username, fake.base_url(region)),
                name=name,
            )
            settings = people.add_person(settings, dataclasses.replace(person, label=label))
            session._on_settings_saved(settings)
        qtbot.waitUntil(lambda: len(session.runtimes) == 4, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        time.run_until(lambda: _together_shows_everyone(session), within=timedelta(minutes=6))
        together = session.together
        assert together is not None
        assert _person_lines(together) == ["Sam", "Alex", "Mia", "Kai"]
        assert all(runtime.icon is None for runtime in session.runtimes)

        # Back to three: an icon each again.
        kai = _by_name(session)["Kai"]
        settings = dataclasses.replace(
            settings, people=tuple(p for p in settings.people if p.id != kai.person.id)
        )
        session._on_settings_saved(settings)
        qtbot.waitUntil(lambda: len(session.runtimes) == 3, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        assert not _one_icon(session)
        assert not kai.controller._worker.thread.isRunning()
        time.run_until(
            lambda: all(r.icon is not None and _shows_a_reading(r.icon) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        assert [r.person.name for r in session.runtimes] == ["Sam", "Alex", "Mia"]


def test_one_icon_per_person_chosen_with_five_people_gives_five_icons(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    five = FAMILY + MORE
    settings = dataclasses.replace(_family(fake, five), tray_icons="per_person")
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, five)
    with _running(qtbot, time, paths, monkeypatch, 5) as session:
        assert session.together is None
        time.run_until(
            lambda: all(r.icon is not None and _shows_a_reading(r.icon) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        icons = [runtime.tray for runtime in session.runtimes]
        assert len({id(icon) for icon in icons}) == 5
        for runtime in session.runtimes:
            assert runtime.tray.person_badge is not None
            assert runtime.tray.person_badge.label == runtime.person.label


def test_a_person_added_from_the_tray_gets_an_icon_and_removed_in_settings_takes_it_away(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _family(fake, (FAMILY[0],))
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, (FAMILY[0],))  # Mia's password comes from the Add window
    # (the Add window names no server: --share-url sends both to the fake's US service)
    share_url = fake.base_url(Region.US)
    with _running(qtbot, time, paths, monkeypatch, 1, share_url=share_url) as session:
        (sam,) = session.runtimes
        time.run_until(lambda: _shows_a_reading(sam.tray), within=timedelta(minutes=6))

        # "Add a person…" in the tray menu: Settings opens with the Add window on top.
        sam.tray.menu.aboutToShow.emit()
        item = next(a for a in sam.tray.menu.actions() if a.objectName() == "add-person")
        assert item.isEnabled()
        item.trigger()
        dialog = session._dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
        page = dialog.people_page
        add = page.add_dialog
        assert add is not None
        qtbot.waitUntil(add.isVisible, timeout=WAIT_MS)
        name, _label, region, username, password = FAMILY[1]
        people_page_test._fill(add, name, region, username, password)
        people_page_test._click(add.add_button)
        qtbot.waitUntil(lambda: page.add_dialog is None, timeout=WAIT_MS)
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        people_page_test._click(dialog.save_button)

        # A second icon appears and follows Mia's own account; both are named now.
        qtbot.waitUntil(lambda: len(session.runtimes) == 2, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        mia = _by_name(session)["Mia"]
        assert mia.account is not None
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        assert len({id(r.tray) for r in session.runtimes}) == 2
        assert _menu_texts(mia.tray)[0].startswith("Mia · ")
        assert mia.controller.recent[0].mgdl == (
            fake.readings(region, username, minutes=10, max_count=1)[0].reading.mgdl
        )
        reads, _sign_ins = tally.snapshot()
        assert reads[username] >= 1

        # Her account is locked: an alert naming her is open.
        fake.lock_account(region, username)
        fake.expire_sessions(region)
        time.run_until(
            lambda: mia.controller.status.state is LinkState.LOCKED, within=timedelta(minutes=10)
        )
        notifier = session._notifier
        assert notifier is not None

        def titles() -> list[str]:
            return [
                request.title
                for key in notifier.open_keys
                if (request := notifier.request_for(key)) is not None
            ]

        assert any(title.startswith("Mia · ") for title in titles())

        # Settings › People: Mia is removed with her history. Her icon and alerts go.
        history_file = paths.data_dir / mia.person.history_file
        assert history_file.exists()
        session.open_settings()
        dialog = session._dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
        dialog.show_page(Page.PEOPLE)
        page = dialog.people_page
        people_page_test._choose(page, "Mia")
        assert page.remove_button.isEnabled()
        people_page_test._click(page.remove_button)
        people_page_test._answer(qtbot, page, "&Delete history")
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        people_page_test._click(dialog.save_button)
        qtbot.waitUntil(lambda: len(session.runtimes) == 1, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not history_file.exists(), timeout=WAIT_MS)
        _wait_for_workers(time, session)
        assert [r.person.name for r in session.runtimes] == ["Sam"]
        assert not mia.controller._worker.thread.isRunning()
        window = mia.tray.status_window
        assert window is None or not window.isVisible()
        assert not any(title.startswith("Mia") for title in titles())
        # Sam alone again looks as before: no name on his menu's status line.
        (sam,) = session.runtimes
        time.run_until(lambda: _shows_a_reading(sam.tray), within=timedelta(minutes=6))
        assert not _menu_texts(sam.tray)[0].startswith("Sam")


def test_a_person_added_while_the_keyring_refuses_runs_on_the_password_typed(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    save_settings(_family(fake, (FAMILY[0],)), paths.settings_file)
    _keep_passwords(backend, (FAMILY[0],))
    share_url = fake.base_url(Region.US)
    with _running(qtbot, time, paths, monkeypatch, 1, share_url=share_url) as session:
        session.add_person()
        dialog = session._dialog
        assert dialog is not None
        page = dialog.people_page
        add = page.add_dialog
        assert add is not None
        qtbot.waitUntil(add.isVisible, timeout=WAIT_MS)
        name, _label, region, username, password = FAMILY[1]
        people_page_test._fill(add, name, region, username, password)
        people_page_test._click(add.add_button)
        qtbot.waitUntil(lambda: page.add_dialog is None, timeout=WAIT_MS)

        def refuse(_service: str, _username: str, _password: str) -> None:
            raise keyring.errors.PasswordSetError("the keyring is locked")

        monkeypatch.setattr(backend, "set_password", refuse)
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        people_page_test._click(dialog.save_button)
        qtbot.waitUntil(
            lambda: "nothing was saved" in dialog.problems_label.text(), timeout=WAIT_MS
        )
        assert len(session.runtimes) == 1
        # Save again: kept only while the app runs; Mia starts on the password she typed.
        people_page_test._click(dialog.save_button)
        qtbot.waitUntil(lambda: len(session.runtimes) == 2, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: _by_name(session)["Mia"].account is not None, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        mia = _by_name(session)["Mia"]
        time.run_until(lambda: _shows_a_reading(mia.tray), within=timedelta(minutes=6))
        assert (SERVICE, f"{region.value}:{username}") not in backend.entries
        assert password not in caplog.text


def test_a_new_password_for_the_second_person_starts_them_and_leaves_the_first_running(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _family(fake, FAMILY[:2])
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY[:1])  # Mia's password is not in the keyring
    with _running(qtbot, time, paths, monkeypatch, 2) as session:
        sam, mia = session.runtimes
        time.run_until(lambda: _shows_a_reading(sam.tray), within=timedelta(minutes=6))
        assert mia.account is None
        _name, _label, _region, mia_username, mia_password = FAMILY[1]

        # The Account page, on Mia, saved her password.
        session._on_account_changed(
            AccountChange(settings, mia_password, remembered=False, person_id=mia.person.id)
        )
        _wait_for_workers(time, session)
        started = _by_name(session)["Mia"]
        assert started.account is not None
        assert started.account.config.username == mia_username
        # The keyring in use stays in use (a removal later must reach Sam's real entries).
        assert not isinstance(session._password_store, MemoryCredentialStore)
        time.run_until(lambda: _shows_a_reading(started.tray), within=timedelta(minutes=6))
        # Sam runs on, on his own account, never restarted.
        assert session.runtimes[0] is sam
        assert sam.account is not None
        assert sam.account.config.username == FAMILY[0][3]
        _reads, sign_ins = tally.snapshot()
        assert sign_ins[FAMILY[0][3]] == 2


def test_a_held_person_given_a_password_in_people_adjust_account_starts_following(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_settings(_family(fake, FAMILY[:2]), paths.settings_file)
    _keep_passwords(backend, FAMILY[:1])  # Mia's password is not in the keyring
    with _running(qtbot, time, paths, monkeypatch, 2) as session:
        sam, mia = session.runtimes
        time.run_until(lambda: _shows_a_reading(sam.tray), within=timedelta(minutes=6))
        assert mia.account is None
        assert mia.tray.model is not None
        # Her icon says where the password goes.
        assert "Settings › People › Adjust account…" in mia.tray.model.status_line

        # Settings… in her menu opens Settings › People with her chosen and her Adjust
        # account window on top: her password typed, OK, Save.
        mia.tray.menu.aboutToShow.emit()
        item = next(a for a in mia.tray.menu.actions() if a.text() == "S&ettings…")
        assert item.isEnabled()
        item.trigger()
        dialog = session._dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
        assert dialog.tabs.currentIndex() == int(Page.PEOPLE)
        page = dialog.people_page
        assert page.current_id() == mia.person.id
        window = page.account_dialog
        assert window is not None
        qtbot.waitUntil(window.isVisible, timeout=WAIT_MS)
        _name, _label, region, username, password = FAMILY[1]
        assert window.username_edit.text() == username
        people_page_test._type(window.password_edit, password)
        people_page_test._click(window.add_button)
        qtbot.waitUntil(lambda: page.account_dialog is None, timeout=WAIT_MS)
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        people_page_test._click(dialog.save_button)

        # She starts on it (the keyring keeps it); Sam runs on, never restarted.
        qtbot.waitUntil(lambda: _by_name(session)["Mia"].account is not None, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        started = _by_name(session)["Mia"]
        assert started.account is not None
        assert started.account.config.username == username
        assert backend.entries[(SERVICE, f"{region.value}:{username}")] == password
        time.run_until(lambda: _shows_a_reading(started.tray), within=timedelta(minutes=6))
        assert started.controller.recent[0].mgdl == (
            fake.readings(region, username, minutes=10, max_count=1)[0].reading.mgdl
        )
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        time.run_until(lambda: _shows_a_reading(started.tray), within=timedelta(minutes=6))
        # One icon and one sign-in (two requests) for her, however the save's signals raced.
        assert [r.person.name for r in session.runtimes] == ["Sam", "Mia"]
        assert session.runtimes[0] is sam
        assert _by_name(session)["Mia"] is started
        reads, sign_ins = tally.snapshot()
        assert reads[username] >= 1
        assert sign_ins[username] == 2
        assert sign_ins[FAMILY[0][3]] == 2


def test_a_running_person_moved_to_another_account_in_adjust_account_follows_it(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_settings(_family(fake, FAMILY[:2]), paths.settings_file)
    _keep_passwords(backend, FAMILY[:2])
    with _running(qtbot, time, paths, monkeypatch, 2) as session:
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        sam = session.runtimes[0]
        session.open_settings()
        dialog = session._dialog
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
        dialog.show_page(Page.PEOPLE)
        page = dialog.people_page
        people_page_test._choose(page, "Mia")
        window = people_page_test._account_dialog(qtbot, page)
        _name, _label, region, username, password = MORE[0]  # Kai's account, for Mia now
        people_page_test._type(window.username_edit, username)
        people_page_test._type(window.password_edit, password)
        people_page_test._click(window.add_button)
        qtbot.waitUntil(lambda: page.account_dialog is None, timeout=WAIT_MS)
        qtbot.waitUntil(dialog.save_button.isEnabled, timeout=WAIT_MS)
        people_page_test._click(dialog.save_button)

        def follows_kai() -> bool:
            mia = _by_name(session).get("Mia")
            return (
                mia is not None
                and mia.account is not None
                and (mia.account.config.username == username)
            )

        qtbot.waitUntil(follows_kai, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        _wait_for_workers(time, session)
        mia = _by_name(session)["Mia"]
        time.run_until(
            lambda: (
                bool(mia.controller.recent)
                and mia.controller.recent[0].mgdl
                == fake.readings(region, username, minutes=10, max_count=1)[0].reading.mgdl
            ),
            within=timedelta(minutes=6),
        )
        assert [r.person.name for r in session.runtimes] == ["Sam", "Mia"]
        assert session.runtimes[0] is sam
        assert backend.entries[(SERVICE, f"{region.value}:{username}")] == password
        old = FAMILY[1]
        assert (SERVICE, f"{old[2].value}:{old[3]}") not in backend.entries
        _reads, sign_ins = tally.snapshot()
        assert sign_ins[username] == 2  # one sign-in for Kai's account
        assert sign_ins[FAMILY[0][3]] == 2  # Sam never signed in again


def test_a_removed_persons_late_reading_raises_no_alert_and_no_alarm(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll in flight when Mia is removed answers after her controller stopped: it must not
    raise "Mia · Urgent low" with a looping alarm that no icon or menu can reach any more."""
    settings = _family(fake, FAMILY)
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 3) as session:
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        mia_id = settings.people[1].id
        old_mia = next(r for r in session.runtimes if r.person.id == mia_id)
        kept = (settings.people[0], settings.people[2])
        session._on_settings_saved(dataclasses.replace(settings, people=kept))
        qtbot.waitUntil(lambda: len(session.runtimes) == 2, timeout=WAIT_MS)
        notifier = session._notifier
        assert notifier is not None
        before = notifier.open_keys
        now = time.clock.now()
        # What the worker had queued for her controller before it stopped arrives now.
        old_mia.controller._on_worker_readings_received(
            tuple(Reading(now - timedelta(minutes=5 * i), 45, Trend.FLAT) for i in range(3))
        )
        old_mia.controller._on_tick_timeout()
        assert notifier.open_keys == before
        assert not any(key.startswith(f"{mia_id}/") for key in notifier.open_keys)


def test_a_snooze_survives_the_tray_switching_to_one_icon_for_everyone(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _family(fake, FAMILY)
    save_settings(settings, paths.settings_file)
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 3) as session:
        time.run_until(
            lambda: all(_shows_a_reading(r.tray) for r in session.runtimes),
            within=timedelta(minutes=6),
        )
        sam = _by_name(session)["Sam"]
        assert sam.controller.snooze(AlertKind.HIGH, timedelta(hours=1)) == timedelta(hours=1)
        until = snoozed_until(sam.controller.alert_state, AlertKind.HIGH)
        assert until is not None
        session._on_settings_saved(dataclasses.replace(settings, tray_icons="together"))
        qtbot.waitUntil(
            lambda: len(session.runtimes) == 3 and _by_name(session)["Sam"] is not sam,
            timeout=WAIT_MS,
        )
        again = _by_name(session)["Sam"].controller
        assert snoozed_until(again.alert_state, AlertKind.HIGH) == until


def test_a_person_left_out_of_a_hand_edited_file_is_said_and_the_file_kept(
    qtbot: QtBot,
    time: VirtualTime,
    paths: app_paths.AppPaths,
    fake: FakeShare,
    backend: DictKeyring,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same account twice (a hand edit, no ids): one is followed; the person is told, in
    the status window, and the file as it was is kept before it is rewritten."""
    name, _label, region, username, _password = FAMILY[0]
    base = fake.base_url(region)
    text = "".join(
        f'[[people]]\nname = "{who}"\n[people.share]\nregion = "{region.value}"\n'
        f'username = "{username}"\nshare_url = "{base}"\n'
        for who in (name, "Twin")
    )
    paths.settings_file.parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text("version = 2\n" + text, encoding="utf-8")
    _keep_passwords(backend, FAMILY)
    with _running(qtbot, time, paths, monkeypatch, 1) as session:
        notices = " ".join(session._notices)
        assert "Person 2 in your settings file has the same Dexcom account" in notices
        kept = sorted(paths.settings_file.parent.glob("settings.toml.kept-*"))
        assert len(kept) == 1
        assert kept[0].read_text(encoding="utf-8") == "version = 2\n" + text
        assert str(kept[0]) in notices
        icon = session.runtimes[0].icon
        assert icon is not None
        assert any("Person 2" in line for line in icon.notices)  # on screen, not only logged
        saved = people.load(paths.settings_file).settings
        assert [person.name for person in saved.people] == [name]
