"""The request ledger behind the Share budgets: reads per hour, sign-ins per 5 min and per hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: At most this many read requests in any hour (share-protocol.md section 7.1).
READS_PER_HOUR = 60
#: A poll makes at most this many reads: the read and the one retry after a session error.
MAX_READS_PER_POLL = 2
#: At most this many sign-ins in any hour, whatever the cause.
SIGN_INS_PER_HOUR = 3
#: At most one sign-in in any window this long.
SIGN_IN_SPACING = timedelta(minutes=5)
#: The window the hourly budgets are counted over.
HOUR = timedelta(hours=1)
#: The ledger never holds more entries than this per kind, however the caller misbehaves.
_LEDGER_LIMIT = 2 * READS_PER_HOUR


@dataclass(frozen=True, slots=True)
class Budget:
    """What has been spent, for the status window and the logs."""

    reads_last_hour: int
    sign_ins_last_5_min: int
    sign_ins_last_hour: int
    consecutive_sign_in_failures: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """When the recent reads and sign-ins happened, oldest first, never older than an hour."""

    reads: tuple[datetime, ...] = ()
    sign_ins: tuple[datetime, ...] = ()

    def normalized(self, now: datetime) -> Ledger:
        """Drops entries an hour old; an entry "in the future" (clock set back) counts as now."""
        return Ledger(_normalized(self.reads, now), _normalized(self.sign_ins, now))

    def recorded(self, now: datetime, reads: int, sign_ins: int) -> Ledger:
        """The ledger after `reads` read requests and `sign_ins` sign-ins made just now."""
        base = self.normalized(now)
        return Ledger(
            (base.reads + (now,) * reads)[-_LEDGER_LIMIT:],
            (base.sign_ins + (now,) * sign_ins)[-_LEDGER_LIMIT:],
        )

    def earliest_poll(self) -> datetime | None:
        """From when a poll of up to MAX_READS_PER_POLL reads keeps the hourly read budget."""
        room = READS_PER_HOUR - MAX_READS_PER_POLL
        if len(self.reads) <= room:
            return None
        return self.reads[-(room + 1)] + HOUR

    def earliest_sign_in(self) -> datetime | None:
        """From when one more sign-in keeps both sign-in budgets."""
        if not self.sign_ins:
            return None
        earliest = self.sign_ins[-1] + SIGN_IN_SPACING
        if len(self.sign_ins) >= SIGN_INS_PER_HOUR:
            earliest = max(earliest, self.sign_ins[-SIGN_INS_PER_HOUR] + HOUR)
        return earliest

    def sign_in_allowed_at(self, when: datetime) -> bool:
        """Whether one more sign-in at `when` (not before the newest entry) keeps the budgets."""
        earliest = self.earliest_sign_in()
        return earliest is None or when >= earliest

    def report(self, now: datetime, consecutive_sign_in_failures: int) -> Budget:
        """The budget spent as seen at `now`."""
        base = self.normalized(now)
        return Budget(
            reads_last_hour=len(base.reads),
            sign_ins_last_5_min=sum(1 for t in base.sign_ins if t > now - SIGN_IN_SPACING),
            sign_ins_last_hour=len(base.sign_ins),
            consecutive_sign_in_failures=consecutive_sign_in_failures,
        )


def _normalized(entries: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
    return tuple(min(t, now) for t in entries if t > now - HOUR)
