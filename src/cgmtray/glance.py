"""`cgm-tray now`: one fetch of the current reading, printed as a line or as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cgmtray import logging_setup
from cgmtray.domain import freshness, units
from cgmtray.domain.clock import Clock, SystemClock, shared_clock
from cgmtray.domain.connection import REJECTED_LINE, locked_line
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.readings import Reading, delta_mgdl
from cgmtray.domain.units import Unit
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.errors import InvalidRequestError, ShareError
from cgmtray.share.gate import SignInDeferred
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage import people
from cgmtray.storage.credentials import CredentialStore, CredentialStoreError, PasswordStore
from cgmtray.storage.people import Person, ShareSource
from cgmtray.storage.sign_in_state import PersistedSignInGate

if TYPE_CHECKING:
    from cgmtray.storage.settings import LoadResult

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CREDENTIALS = 3
EXIT_LOCKED = 4
EXIT_NETWORK = 5
EXIT_NO_READINGS = 6
EXIT_RATE_LIMITED = 7

_EXIT_BY_FAILURE: dict[FailureClass, int] = {
    FailureClass.CREDENTIALS: EXIT_CREDENTIALS,
    FailureClass.LOCKED: EXIT_LOCKED,
    FailureClass.RATE_LIMIT: EXIT_RATE_LIMITED,
    FailureClass.TRANSIENT: EXIT_NETWORK,
    FailureClass.SESSION: EXIT_NETWORK,
    FailureClass.CLIENT_BUG: EXIT_INTERNAL,
}

#: One read: a day back so a stale last reading is still shown with its age, two for the delta.
READ_MINUTES = 1440
READ_MAX_COUNT = 2


class UsageError(Exception):
    """Something the person has to fix on the command line or in the settings."""


@dataclass(frozen=True)
class Account:
    """Who to sign in as; the password and account id never show in the repr."""

    region: Region
    username: str
    password: str = field(repr=False)
    account_id: str | None = field(repr=False)
    base_url: str | None
    unit: Unit
    #: The keyring the password came from: a learned or dropped account id is kept in step.
    keyring: KeyringIds | None = None
    #: Where the shared sign-in state lives (the data folder; demo: its temporary folder).
    state_dir: Path | None = None
    #: The password came on standard input: a change the person made (lifts a rejection).
    password_given: bool = False


@dataclass(frozen=True)
class KeyringIds:
    """The keyring entry of one account's id, and what it held when `now` started."""

    store: PasswordStore
    source: ShareSource
    stored: str | None = field(repr=False)

    def keep(self, account_id: str | None) -> None:
        """Stores a newly learned id or forgets a refused one (storage.people); a keyring that
        cannot is left as it is (the next run signs in by name)."""
        if account_id != self.stored:
            people.keep_account_id(self.store, self.source, account_id, only_with_password=False)


def run(args: argparse.Namespace, *, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    paths = app_paths.app_paths(args.basedir)
    logging_setup.configure(json_lines=args.log_json, debug=args.debug, stream=stderr)
    try:
        if getattr(args, "all", False):
            from cgmtray import glance_people

            with glance_people.everyone(args, paths) as (entries, clock):
                return glance_people.fetch_and_print_all(entries, clock, args.json, stdout)
        with _account(args, paths, stdin) as (account, clock):
            code = _fetch_and_print(account, clock, args.json, stdout, stderr)
    except UsageError as problem:
        print(f"cgm-tray: {problem}", file=stderr)
        return EXIT_USAGE
    except InvalidRequestError as problem:
        print(f"cgm-tray: {problem}", file=stderr)
        return EXIT_USAGE
    return code


@contextmanager
def _account(
    args: argparse.Namespace, paths: app_paths.AppPaths, stdin: TextIO
) -> Iterator[tuple[Account, Clock]]:
    chosen = getattr(args, "person", None)
    if args.demo:
        from cgmtray.fakeshare.demo import DemoService

        with DemoService() as demo, tempfile.TemporaryDirectory() as folder:
            if chosen is not None:
                from cgmtray import glance_people

                yield glance_people.demo_person(demo, chosen, Path(folder)), demo.clock
                return
            yield (
                Account(
                    demo.region,
                    demo.username,
                    demo.password,
                    None,
                    demo.base_url,
                    Unit.MGDL,
                    state_dir=Path(folder),
                ),
                demo.clock,
            )
        return

    if args.username is not None or args.password_stdin:
        if chosen is not None:
            raise UsageError("--person reads the saved settings: leave out --username")
        if not (args.username and args.password_stdin):
            raise UsageError("--username needs --password-stdin (and the other way round)")
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input")
        logging_setup.register_secret(password)
        region = Region(args.region or "us")
        yield (
            Account(
                region,
                args.username,
                password,
                None,
                args.share_url,
                Unit.MGDL,
                state_dir=paths.data_dir,
                password_given=True,
            ),
            run_clock(args),
        )
        return

    loaded = people.load(paths.settings_file)
    if loaded.problem:
        log.warning("settings: %s", loaded.problem)
    if chosen is not None:
        from cgmtray import glance_people

        person = glance_people.find_person(loaded.settings.people, chosen)
    else:
        person = loaded.settings.first_person  # without --person: the first of the list
    yield person_account(person, loaded, args, paths, CredentialStore()), run_clock(args)


def person_account(
    person: Person,
    loaded: LoadResult,
    args: argparse.Namespace,
    paths: app_paths.AppPaths,
    store: PasswordStore,
) -> Account:
    """The account of a person of the settings, their password from the keyring (UsageError
    when there is none to use); --region and --share-url, when given, win over the settings."""
    if not person.source.username:
        raise UsageError(
            "no Dexcom account is set up. Start `cgm-tray` to sign in, or pass --region, "
            "--username and --password-stdin."
        )
    region = Region(getattr(args, "region", None) or person.source.region)
    source = ShareSource(region.value, person.source.username, person.source.share_url)
    try:
        saved = people.read_password(store, source)
    except CredentialStoreError as error:
        raise UsageError(f"the system keyring could not be read: {error}") from None
    if not saved:
        raise UsageError(
            "no password is saved in the system keyring for this account. Start `cgm-tray` to "
            "sign in, or use --password-stdin."
        )
    logging_setup.register_secret(saved)
    stored_id = people.read_account_id(store, source)  # None: a sign-in by name instead
    legacy_id = loaded.legacy_account_ids.get(person.id)
    return Account(
        region,
        source.username,
        saved,
        stored_id or legacy_id,
        args.share_url or source.share_url,
        loaded.settings.unit,
        KeyringIds(store, source, stored_id),
        state_dir=paths.data_dir,
    )


def run_clock(args: argparse.Namespace) -> Clock:
    """The computer's clock, or the accelerated one a test shares with the tray and the fake
    (`--speed`, `--clock-epoch`, `--clock-file`): the shared sign-in state is on that clock."""
    speed = float(getattr(args, "speed", None) or 1.0)
    offset_file = getattr(args, "clock_file", None)
    if speed == 1.0 and offset_file is None:
        return SystemClock()
    epoch = getattr(args, "clock_epoch", None) or datetime.now(UTC)
    return shared_clock(speed, epoch, offset_file)


@dataclass(frozen=True)
class Outcome:
    """What one fetch came to: the reading (with the one before and Share's now), or a code
    and the plain line that says what went wrong."""

    code: int
    problem: str | None = None
    latest: Reading | None = None
    previous: Reading | None = None
    now: datetime | None = None


NO_READINGS_LINE = (
    "Dexcom Share has no readings from the last 24 hours. Check that Share is on in the Dexcom "
    "app and has at least one follower, and that the phone is online."
)


def fetch(account: Account, clock: Clock) -> Outcome:
    """One read of `account` through its persisted sign-in gate; never raises a ShareError."""
    logging_setup.register_secret(account.username)
    config = ClientConfig(
        region=account.region,
        username=account.username,
        base_url=account.base_url,
        account_id=account.account_id,
    )
    gate = None
    if account.state_dir is not None:
        # A `now` run is the person asking; a password on stdin is a change they made.
        gate = PersistedSignInGate(
            account.state_dir,
            region=account.region.value,
            username=account.username,
            base_url=account.base_url,
            asked=True,
            credentials_changed=account.password_given,
        )
    client = ShareClient(config, account.password, clock=clock, gate=gate)
    try:
        readings = client.read(minutes=READ_MINUTES, max_count=READ_MAX_COUNT)
    except ShareError as error:
        code = _EXIT_BY_FAILURE.get(error.failure_class, EXIT_INTERNAL)
        return Outcome(code, _guidance(error, gate, clock))
    finally:
        if account.keyring is not None:
            account.keyring.keep(client.account_id)
        client.close()
    if not readings:
        return Outcome(EXIT_NO_READINGS, NO_READINGS_LINE)
    # Ages on Share's steadied clock (a wrong computer clock or one lying Date header moves
    # nothing), the same "now" the tray's alerts use; it is already corrected: no skew on top.
    previous = readings[1] if len(readings) > 1 else None
    return Outcome(EXIT_OK, latest=readings[0], previous=previous, now=client.server_now())


def _fetch_and_print(
    account: Account,
    clock: Clock,
    as_json: bool,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    outcome = fetch(account, clock)
    if outcome.latest is None or outcome.now is None:
        print(f"cgm-tray: {outcome.problem}", file=stderr)
        return outcome.code
    if as_json:
        data = reading_json(outcome.latest, outcome.previous, outcome.now, None)
        stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        line = reading_line(outcome.latest, outcome.previous, outcome.now, account.unit, None)
        stdout.write(line + "\n")
    stdout.flush()
    return EXIT_OK


def _guidance(error: ShareError, gate: PersistedSignInGate | None, clock: Clock) -> str:
    """What a failed run says: for a rejection or a lock, what to do and how long to wait (the
    tray menu's words); for a sign-in the shared budget defers, from when to try."""
    now = clock.now()
    if isinstance(error, SignInDeferred):
        if error.not_before is None:
            return error.user_message
        local = error.not_before.astimezone().strftime("%H:%M:%S")
        seconds = max(1, math.ceil((error.not_before - now).total_seconds()))
        return f"signed in moments ago: try again after {local} (in {seconds} s)"
    if error.failure_class is FailureClass.CREDENTIALS:
        return f"{error.user_message} {REJECTED_LINE}."
    if error.failure_class is FailureClass.LOCKED:
        until = gate.state().until if gate is not None else None
        return f"{locked_line(until, now)}."
    return error.user_message


def reading_json(
    latest: Reading, previous: Reading | None, now: datetime, skew: timedelta | None
) -> dict[str, object]:
    """The JSON of `cgm-tray now --json`: value (or LOW/HIGH), mmol, trend, arrow, time, age."""
    value: int | str = "LOW" if latest.is_low else "HIGH" if latest.is_high else latest.mgdl
    mmol = float(units.mgdl_to_mmol(latest.mgdl)) if latest.is_numeric else value
    age = freshness.age(latest.time, now, skew)
    delta = delta_mgdl(latest, previous) if previous is not None else None
    return {
        "value_mgdl": value,
        "mmol": mmol,
        "trend": latest.trend.wire_name,
        "arrow": latest.trend.arrow,
        "delta_mgdl": delta,
        "time": latest.time.isoformat().replace("+00:00", "Z"),
        "age_s": round(age.total_seconds()),
        "freshness": freshness.classify(latest, now, skew).name.lower(),
    }


def reading_line(
    latest: Reading, previous: Reading | None, now: datetime, unit: Unit, skew: timedelta | None
) -> str:
    """The one line of `cgm-tray now`: "142 mg/dL → steady, 2 min ago"."""
    text = units.format_value(latest, unit)
    if latest.is_numeric:
        text += f" {unit.value}"
    if latest.trend.arrow:
        text += f" {latest.trend.arrow} {latest.trend.description}"
    delta = delta_mgdl(latest, previous) if previous is not None else None
    if delta is not None:
        text += f" ({units.format_delta(delta, unit)})"
    text += f", {freshness.format_age(freshness.age(latest.time, now, skew))}"
    if freshness.classify(latest, now, skew) in (
        freshness.Freshness.STALE,
        freshness.Freshness.NO_DATA,
    ):
        text += " (stale)"
    return text
