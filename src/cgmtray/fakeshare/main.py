"""`cgm-tray fake-share`: the fake Share service on its own, printing its base and control URLs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TextIO

from cgmtray.domain.clock import shared_clock
from cgmtray.fakeshare import control
from cgmtray.fakeshare.control import FaultSpec
from cgmtray.fakeshare.demo import (
    DEMO_FAMILY,
    DEMO_HISTORY,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DemoAccount,
    add_family,
)
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region

__all__ = ["FaultSpec", "add_arguments", "main", "parse_account", "parse_fault_spec", "run"]


def parse_fault_spec(text: str) -> FaultSpec:
    """`NAME[:SECONDS][:xN]`, e.g. "unavailable:x3", "slow:35", "rate-limit:60:x2"."""
    try:
        return control.parse_fault_spec(text)
    except control.FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_account(text: str) -> tuple[str, str]:
    """`USER:PASSWORD` (split at the first colon; the password may contain colons)."""
    username, separator, password = text.partition(":")
    if not separator or not username.strip() or not password:
        raise argparse.ArgumentTypeError("an account is USER:PASSWORD")
    return username.strip(), password


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _aware_datetime(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise argparse.ArgumentTypeError("give a time with its UTC offset, e.g. 2026-01-01T00:00Z")
    return when.astimezone(UTC)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0..65535")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cgm-tray fake-share`."""
    parser.add_argument(
        "--port", type=_port, default=0, help="port for the chosen region (default: a free one)"
    )
    parser.add_argument(
        "--account",
        type=parse_account,
        action="append",
        default=None,
        metavar="USER:PASSWORD",
        help=(
            "an account with a simulated sensor (repeatable; default: the demo family, its "
            "first person on --region)"
        ),
    )
    parser.add_argument(
        "--region",
        choices=[region.value for region in Region],
        default=Region.US.value,
        help=(
            "the region whose URL is printed and where the accounts (or the demo family's first "
            "person) go (default: us)"
        ),
    )
    parser.add_argument(
        "--control-port",
        type=_port,
        default=0,
        help="port of the /_fake/ control listener for tests (default: a free one)",
    )
    parser.add_argument(
        "--speed", type=_positive_float, default=1.0, help="run the clock X times faster"
    )
    parser.add_argument(
        "--clock-epoch",
        type=_aware_datetime,
        default=None,
        metavar="ISO",
        help=(
            "with --speed: the moment virtual and real time agree (default: now); give the tray "
            "app the same --speed and --clock-epoch and both run on one clock"
        ),
    )
    parser.add_argument(
        "--clock-file",
        type=Path,
        default=None,
        help=argparse.SUPPRESS,  # with --speed: a JSON {"offset_s"} that moves the clock (soak)
    )
    parser.add_argument(
        "--session-ttl",
        type=_positive_float,
        default=24 * 3600.0,
        metavar="S",
        help="session lifetime in seconds (default: 86400)",
    )
    parser.add_argument(
        "--lockout-after",
        type=int,
        default=5,
        metavar="N",
        help="failed sign-ins before the account locks (0: never; default: 5)",
    )
    parser.add_argument(
        "--lockout-period",
        type=_positive_float,
        default=30 * 60.0,
        metavar="S",
        help="lockout length in seconds, restarted by each attempt (default: 1800)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulated sensor seed (default: 1)")
    parser.add_argument(
        "--no-sensor",
        action="store_true",
        help="accounts start without readings (publish them through the control listener)",
    )
    parser.add_argument(
        "--fault",
        type=parse_fault_spec,
        action="append",
        default=None,
        metavar="SPEC",
        help=(
            "answer the next requests with a fault: rate-limit[:RETRY_AFTER], "
            "rate-limit-no-header, bad-gateway, unavailable, empty, truncated, slow:SECONDS, "
            "reset, server-error, future-reading, lying-date, drip[:SECONDS_PER_BYTE], "
            "endless[:SECONDS], huge[:MB]; each optionally :xN for N requests (repeatable, "
            "in order)"
        ),
    )
    parser.add_argument(
        "--error-style",
        choices=["2025", "2024"],
        default="2025",
        help="how rejected credentials are answered (default: 2025, AccountPasswordInvalid)",
    )
    parser.add_argument(
        "--subcode-style",
        choices=["xml", "json"],
        default="xml",
        help=(
            "the SubCode of error bodies: xml (the OnlineException element, as recorded to "
            "2025-06) or json (typed and pretty-printed, as recorded since 2025-11; default: xml)"
        ),
    )
    parser.add_argument(
        "--legacy-format",
        action="store_true",
        help="answer reads in the pre-2021 format (/Date(ms)/ and integer trends)",
    )


def run(
    args: argparse.Namespace, *, stop_event: threading.Event | None = None, out: TextIO = sys.stdout
) -> int:
    """Serves until SIGINT / SIGTERM or `stop_event`. The first printed line is the base URL, the
    second `control: http://127.0.0.1:PORT/_fake/`."""
    region = Region(args.region)
    stop = stop_event if stop_event is not None else threading.Event()
    epoch = args.clock_epoch if args.clock_epoch is not None else datetime.now(UTC)
    clock_file: Path | None = getattr(args, "clock_file", None)
    if clock_file is not None and args.speed == 1.0:
        sys.stderr.write("cgm-tray fake-share: --clock-file needs --speed\n")
        return 2
    fake = FakeShare(
        shared_clock(args.speed, epoch, clock_file),
        regions=(region, *(other for other in Region if other is not region)),
        ports={region: args.port},
        control_port=args.control_port,
        session_ttl=timedelta(seconds=args.session_ttl),
        lockout_after=args.lockout_after,
        lockout_period=timedelta(seconds=args.lockout_period),
        credential_error_style=args.error_style,
        subcode_style=args.subcode_style,
    )
    try:
        fake.start()
    except OSError as error:
        reason = error.strerror or str(error)
        ports = f"{args.port} or {args.control_port}" if args.control_port else str(args.port)
        sys.stderr.write(f"cgm-tray fake-share: cannot listen on port {ports}: {reason}\n")
        return 1
    try:
        family: tuple[DemoAccount, ...] = ()
        accounts: list[tuple[str, str]] = args.account or []
        history_start = fake.now() - DEMO_HISTORY
        for index, (username, password) in enumerate(accounts):
            fake.add_account(region, username, password)
            if not args.no_sensor:
                sensor = SimulatedSensor(seed=args.seed + index, start=history_start)
                fake.attach_sensor(region, username, sensor)
        if not accounts:
            places = [region, *(person.region for person in DEMO_FAMILY[1:])]
            family = add_family(fake, seed=args.seed, regions=places, sensors=not args.no_sensor)
        fake.set_legacy_format(args.legacy_format)
        for spec in args.fault or []:
            control.inject(fake, spec)
        print(fake.base_url(region), file=out, flush=True)
        print(f"control: {fake.control_url}", file=out, flush=True)
        if args.account:
            names = ", ".join(username for username, _password in accounts)
            print(f"accounts ({region.value}): {names}", file=out, flush=True)
        else:
            print(f"account: {DEMO_USERNAME} / {DEMO_PASSWORD}", file=out, flush=True)
        others = [r for r in fake.regions if r is not region]
        for other in others:
            print(f"{other.value}: {fake.base_url(other)}", file=out, flush=True)
        if family:
            print(f"family: {_family_line(family)}", file=out, flush=True)
        with _stop_on_signals(stop.set):
            while not stop.wait(timeout=1.0):
                pass
    finally:
        fake.stop()
    return 0


def _family_line(family: tuple[DemoAccount, ...]) -> str:
    """ "Sam (S) demo on us, …, password demo-password": who the demo family are and where."""
    people = ", ".join(
        f"{a.person.name} ({a.person.label}) {a.username} on {a.region.value}" for a in family
    )
    return f"{people}; password {DEMO_PASSWORD}"


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call `stop` while inside (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    """Runs the fake service as a program (`python -m cgmtray.fakeshare.main`)."""
    parser = argparse.ArgumentParser(
        prog="cgm-tray fake-share", description="A fake Dexcom Share service on loopback."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
