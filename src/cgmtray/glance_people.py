"""`cgm-tray now --person NAME` and `--all`: which people a run reads, and one line each."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cgmtray.domain.clock import Clock
from cgmtray.domain.units import Unit
from cgmtray.glance import (
    EXIT_CREDENTIALS,
    EXIT_INTERNAL,
    EXIT_LOCKED,
    EXIT_NETWORK,
    EXIT_NO_READINGS,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_USAGE,
    Account,
    UsageError,
    fetch,
    person_account,
    reading_json,
    reading_line,
    run_clock,
)
from cgmtray.storage import paths as app_paths
from cgmtray.storage import people
from cgmtray.storage.credentials import CredentialStore
from cgmtray.storage.people import Person

if TYPE_CHECKING:
    from cgmtray.fakeshare.demo import DemoAccount, DemoService

log = logging.getLogger(__name__)

#: `--all`'s exit status when someone could not be read: the first of these any person had.
#: What only you can fix comes first (a rejected password, a lock, a person with no password
#: saved), then an internal error, then what passes by itself (network, rate limit, no readings).
WORST_FIRST = (
    EXIT_CREDENTIALS,
    EXIT_LOCKED,
    EXIT_USAGE,
    EXIT_INTERNAL,
    EXIT_NETWORK,
    EXIT_RATE_LIMITED,
    EXIT_NO_READINGS,
)


@dataclass(frozen=True)
class Entry:
    """One person of an `--all` run: who, and their account or why it cannot be read."""

    name: str
    label: str
    account: Account | None
    problem: str | None = None


def find_person(everyone: Sequence[Person], wanted: str) -> Person:
    """The person called `wanted` (whole name, any case), else the one with that label;
    UsageError naming everyone when there is no such person (or two of that name)."""
    key = wanted.strip().casefold()
    by_name = [p for p in everyone if p.name.strip().casefold() == key]
    by_label = [p for p in everyone if p.label.strip().casefold() == key]
    found = by_name or by_label
    if len(found) == 1:
        return found[0]
    if not everyone:
        raise UsageError(
            "no Dexcom account is set up. Start `cgm-tray` to sign in, or pass --region, "
            "--username and --password-stdin."
        )
    names = ", ".join(p.name for p in everyone)
    if found:
        raise UsageError(f"more than one person is called {wanted!r}; the people are: {names}")
    raise UsageError(f"nobody called {wanted!r} is followed; the people are: {names}")


def _refuse_one_person_options(args: argparse.Namespace) -> None:
    for option, given in (
        ("--username", args.username is not None),
        ("--password-stdin", args.password_stdin),
        ("--region", args.region is not None),
    ):
        if given:
            raise UsageError(f"--all reads every person of the settings: leave out {option}")


@contextmanager
def everyone(
    args: argparse.Namespace, paths: app_paths.AppPaths
) -> Iterator[tuple[list[Entry], Clock]]:
    """Every person in the list's order with their own account and keyring entries (the demo:
    its family); a person who cannot be read is an entry with the reason, never an error."""
    _refuse_one_person_options(args)
    if args.demo:
        from cgmtray.fakeshare.demo import DemoService

        with DemoService() as demo, tempfile.TemporaryDirectory() as folder:
            entries = [
                Entry(a.person.name, a.person.label, _demo_account(demo, a, Path(folder)))
                for a in demo.accounts
            ]
            yield entries, demo.clock
        return
    loaded = people.load(paths.settings_file)
    if loaded.problem:
        log.warning("settings: %s", loaded.problem)
    if not loaded.settings.people:
        raise UsageError(
            "no Dexcom account is set up. Start `cgm-tray` to sign in, or pass --region, "
            "--username and --password-stdin."
        )
    store = CredentialStore()
    entries = []
    for person in loaded.settings.people:
        try:
            account: Account | None = person_account(person, loaded, args, paths, store)
            problem = None
        except UsageError as error:
            account, problem = None, str(error)
        entries.append(Entry(person.name, person.label, account, problem))
    yield entries, run_clock(args)


def _demo_account(demo: DemoService, account: DemoAccount, folder: Path) -> Account:
    return Account(
        account.region,
        account.username,
        demo.password,
        None,
        demo.base_url_of(account),
        Unit.MGDL,
        state_dir=folder,
    )


def demo_person(demo: DemoService, wanted: str, folder: Path) -> Account:
    """`now --demo --person NAME`: that person of the demo family."""
    by_name = {a.person.name.casefold(): a for a in demo.accounts}
    by_label = {a.person.label.casefold(): a for a in demo.accounts}
    key = wanted.strip().casefold()
    found = by_name.get(key) or by_label.get(key)
    if found is None:
        names = ", ".join(a.person.name for a in demo.accounts)
        raise UsageError(f"nobody called {wanted!r} is in the demo; the people are: {names}")
    return _demo_account(demo, found, folder)


def fetch_and_print_all(
    entries: Sequence[Entry], clock: Clock, as_json: bool, stdout: TextIO
) -> int:
    """Reads each person in turn; one line each ("Sam · 142 mg/dL → steady, 2 min ago", or what
    went wrong), or a JSON list. 0 when everyone was read, else the worst code (WORST_FIRST)."""
    codes: list[int] = []
    objects: list[dict[str, object]] = []
    for entry in entries:
        data: dict[str, object] = {"name": entry.name, "label": entry.label}
        if entry.account is None:
            code, text = EXIT_USAGE, entry.problem or "cannot be read"
        else:
            outcome = fetch(entry.account, clock)
            code, text = outcome.code, outcome.problem or ""
            if outcome.latest is not None and outcome.now is not None:
                data |= reading_json(outcome.latest, outcome.previous, outcome.now, None)
                text = reading_line(
                    outcome.latest, outcome.previous, outcome.now, entry.account.unit, None
                )
        codes.append(code)
        data["exit_code"] = code
        if code != EXIT_OK:
            data["error"] = text
        objects.append(data)
        if not as_json:
            stdout.write(f"{entry.name} · {text}\n")
            stdout.flush()
    if as_json:
        stdout.write(json.dumps(objects, ensure_ascii=False) + "\n")
        stdout.flush()
    failed = [code for code in codes if code != EXIT_OK]
    return min(failed, key=WORST_FIRST.index) if failed else EXIT_OK
