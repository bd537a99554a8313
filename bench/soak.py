"""The soak: the real tray app through a simulated day of Share faults against the real fake
service; prints the figures, the last line a JSON verdict (all zeros when all is well).

    .venv/bin/python bench/soak.py --short      # about 7 h of running world time (~2 min)
    .venv/bin/python bench/soak.py              # the full 24 h day (~5 min at 300x)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds the bench package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soakday import full_day, short_day
from bench.soakfigures import figures, report
from bench.soaklib import DEFAULT_SPEED, run_day


def _speed(text: str) -> float:
    value = float(text)
    if not 1 < value <= 600:
        raise argparse.ArgumentTypeError("give a speed above 1 and at most 600")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--short", action="store_true", help="the short day (as in make test)")
    parser.add_argument("--seed", type=int, default=1, help="readings and timing seed")
    parser.add_argument(
        "--speed",
        type=_speed,
        default=DEFAULT_SPEED,
        help=f"virtual seconds per real second (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="do not narrate the steps")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the run's files (the apps' JSON logs, history) in this new folder",
    )
    args = parser.parse_args(argv)
    day = short_day() if args.short else full_day()

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    if args.workdir is not None:
        record = run_day(day, args.workdir, seed=args.seed, speed=args.speed, say=say)
    else:
        with tempfile.TemporaryDirectory(prefix="cgm-soak-") as folder:
            record = run_day(day, Path(folder), seed=args.seed, speed=args.speed, say=say)
    found = figures(record)
    report(record, found, sys.stdout)
    return 0 if not any(found.verdict().values()) and not record.problems else 1


if __name__ == "__main__":
    sys.exit(main())
