"""The `cgm-tray` command line: the tray app (default), `now`, `fake-share`, and global options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cgmtray import APP_NAME, __version__
from cgmtray.share.regions import Region


def _add_global_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Options accepted before and after the subcommand (`cgm-tray --basedir D now`, or after)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress_defaults else value

    parser.add_argument(
        "--basedir",
        type=Path,
        metavar="DIR",
        default=default(None),
        help="keep settings, history, logs and cache under DIR instead of the platform folders",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=default(False),
        help="write one JSON object per log line to stderr",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="verbose logging (glucose values appear in logs only with this)",
    )
    parser.add_argument(
        "--share-url",
        metavar="URL",
        default=default(None),
        type=_share_url,
        help="use another Share base URL of the form http://127.0.0.1:PORT/ShareWebServices/Services/"
        " (loopback only: for the fake service)",
    )


def _share_url(text: str) -> str:
    """--share-url by the one rule of the settings file and the client (refused here, at once,
    rather than by a running app that would then never poll)."""
    from cgmtray.share.urls import share_url_problem

    problem = share_url_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _aware_datetime(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time with its UTC offset, e.g. 2026-01-01T00:00Z")
    return when


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cgm-tray",
        description=f"{APP_NAME}: your Dexcom CGM reading, always in sight in the system tray.",
        epilog="Without a command, starts the tray app. See also: cgm-tray now --help, "
        "cgm-tray fake-share --help.",
    )
    parser.add_argument("--version", action="version", version=f"cgm-tray {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help=(
            "run on a simulated Dexcom Share service with a demo sensor (saves no settings or "
            "readings; writes its log)"
        ),
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="run the clock X times faster than real time (for demos and tests)",
    )
    parser.add_argument(
        "--clock-epoch",
        type=_aware_datetime,
        default=None,
        help=argparse.SUPPRESS,  # with --speed: share one accelerated clock with `fake-share`
    )
    parser.add_argument(
        "--clock-file",
        type=Path,
        default=None,
        help=argparse.SUPPRESS,  # with --speed: a JSON {"offset_s"} that moves the clock (soak)
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of the keyring",
    )
    parser.add_argument(
        "--status-window",
        action="store_true",
        help="show a small status window instead of a tray icon",
    )
    _add_global_options(parser, suppress_defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    now = commands.add_parser(
        "now",
        help="print the current reading once and exit (for scripts and status bars)",
        description="Fetch the current reading once and print it. Exit status: 0 ok, "
        "2 usage or no account set up, 3 credentials or region rejected, 4 account locked, "
        "5 network or service problem, 6 no readings, 7 rate limited, 1 internal error.",
    )
    now.add_argument(
        "--json", action="store_true", help="print one JSON object (with --all: a JSON list)"
    )
    who = now.add_mutually_exclusive_group()
    who.add_argument(
        "--person",
        metavar="NAME",
        help="the person of the settings with this name or label (default: the first person)",
    )
    who.add_argument(
        "--all",
        action="store_true",
        help="every person of the settings in order, one line each; exit status 0 when "
        "everyone was read, else the worst of theirs",
    )
    now.add_argument(
        "--demo", action="store_true", default=argparse.SUPPRESS, help="use the simulated service"
    )
    now.add_argument(
        "--region",
        choices=[r.value for r in Region],
        help="us (United States), ous (outside the US), jp (Japan)",
    )
    now.add_argument(
        "--username",
        help="the Dexcom login of the person who wears the sensor (username, e-mail or phone)",
    )
    now.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    _add_global_options(now, suppress_defaults=True)

    from cgmtray.fakeshare import main as fakeshare_main

    fake = commands.add_parser(
        "fake-share",
        help="run a local imitation of the Dexcom Share service (for tests and demos)",
        description="Serve a faithful imitation of Dexcom Share on loopback. The first line "
        "printed is its base URL.",
    )
    fakeshare_main.add_arguments(fake)
    _add_global_options(fake, suppress_defaults=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "clock_file", None) is not None and args.speed == 1.0:
        parser.error("--clock-file needs --speed")
    from cgmtray import logging_setup

    if args.command == "fake-share":
        from cgmtray.fakeshare import main as fakeshare_main

        logging_setup.configure(json_lines=args.log_json, debug=args.debug)
        return fakeshare_main.run(args)
    if args.command == "now":
        from cgmtray import glance

        return glance.run(args, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    return _run_tray(args)


def _run_tray(args: argparse.Namespace) -> int:
    try:
        from cgmtray.ui import app
    except ImportError as error:  # pragma: no cover - the tray arrives with the ui package
        print(f"cgm-tray: the tray app is not available in this build ({error})", file=sys.stderr)
        return 1
    return app.run(args)
