"""The sign-in gate's state on disk: one small JSON file per data folder, shared by every process.

Each account (a hash of region, username and any loopback URL: no secret, no plain username) has
its block and recent sign-in times. Every check-and-reserve runs under an exclusive lock on a lock
file (fcntl.flock on POSIX, msvcrt.locking on Windows), so two processes started at the same
instant make at most one sign-in. Writes are atomic (temp file + rename, 0600); a corrupt file is
read as empty (and logged), never as a reason to crash or to sign in more.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, Final, TypeVar

from cgmtray.domain import sign_in_gate
from cgmtray.domain.sign_in_gate import BlockKind, Decision, GateState, Outcome
from cgmtray.storage.atomic import write_atomically
from cgmtray.storage.safe_open import open_fd, read_capped

log = logging.getLogger(__name__)

_T = TypeVar("_T")

STATE_FILE_NAME: Final = "sign-in-state.json"
LOCK_FILE_NAME: Final = "sign-in-state.lock"
_VERSION: Final = 1
_FILE_MODE: Final = 0o600
#: The state of a few accounts is a few hundred bytes; a larger file is not read.
_MAX_STATE_BYTES: Final = 1024 * 1024
#: The person's ask lets through a sign-in made this soon after it, not one hours later.
ASK_VALID_S: Final = 600.0


def account_key(region: str, username: str, base_url: str | None = None) -> str:
    """The file's key for one account: a hash, so the file names no one."""
    text = "\n".join((region, username.strip().casefold(), base_url or ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PersistedSignInGate:
    """The sign-in gate of one account, kept in `data_dir` (satisfies share.gate.SignInGate).

    `asked`: this process runs because the person asked (a `cgm-tray now` run, Test sign-in):
    its first sign-in counts as asked for. `user_acted` marks a later ask (Refresh now, Save).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        region: str,
        username: str,
        base_url: str | None = None,
        asked: bool = False,
        credentials_changed: bool = False,
    ) -> None:
        self._dir = Path(data_dir)
        self._key = account_key(region, username, base_url)
        self._asked_at: float | None = time.monotonic() if asked else None
        self._changed = credentials_changed
        #: The last state seen; the only one when the folder cannot be used.
        self._memory = GateState()
        self._degraded = False

    @property
    def state_file(self) -> Path:
        return self._dir / STATE_FILE_NAME

    def state(self) -> GateState:
        """This account's state as stored now."""
        return self._transact(lambda state: (state, state))

    def check(self, now: datetime, *, asked: bool | None = None) -> Decision:
        """What a sign-in at `now` would meet, without reserving it (`asked`: as if the person
        asked; None: whether they did, as this gate knows)."""
        state = self.state()
        ask = self._asked() if asked is None else asked
        return sign_in_gate.decide(state, now, asked=ask, credentials_changed=self._changed)

    def reserve(self, now: datetime) -> Decision:
        """Check-and-reserve under the file lock: when allowed, the sign-in is counted before it
        is made. A pending ask or credentials change is spent by the attempt it let through."""
        asked, changed = self._asked(), self._changed
        decision = self._transact(
            lambda state: sign_in_gate.reserve(state, now, asked=asked, credentials_changed=changed)
        )
        if decision.allowed:
            self._asked_at, self._changed = None, False
        log.info(
            "sign-in gate: %s",
            decision.reason.value,
            extra={"event": "share.sign_in_gate", "reason": decision.reason.value},
        )
        return decision

    def record(self, now: datetime, outcome: Outcome) -> None:
        """How the reserved sign-in ended (a rejection or a lock now holds for every process)."""
        self._transact(lambda state: (None, sign_in_gate.after_outcome(state, now, outcome)))

    def user_acted(self, *, credentials_changed: bool = False) -> None:
        """The person asked (Refresh now, Save, Test sign-in); with new credentials a rejection
        is lifted for every process at once (a lock stays: it is Dexcom's)."""
        self._asked_at = time.monotonic()
        if not credentials_changed:
            return
        self._changed = True
        self._transact(lambda state: (None, sign_in_gate.credentials_changed(state)))

    def _transact(self, change: Callable[[GateState], tuple[_T, GateState]]) -> _T:
        """Reads this account's state, applies `change` and writes the result back, all under
        the file lock. A data folder that cannot be used (read-only, full) must not stop the
        app signing in: the state is then kept in this process only (logged once)."""
        try:
            with self._locked():
                states = self._read_all()
                state = states.get(self._key, GateState())
                result, after = change(state)
                if after != state:
                    states[self._key] = after
                    self._write_all(states)
        except OSError as error:
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "the sign-in state cannot be kept in the data folder (%s); it is kept in "
                    "this process only",
                    type(error).__name__,
                )
            result, after = change(self._memory)
        self._memory = after
        return result

    def _asked(self) -> bool:
        asked_at = self._asked_at
        return asked_at is not None and time.monotonic() - asked_at < ASK_VALID_S

    # --- the file ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self._dir / LOCK_FILE_NAME
        fd = open_fd(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)  # never via a symlink
        with os.fdopen(fd, "r+b") as handle:
            _lock(handle)
            try:
                yield
            finally:
                _unlock(handle)

    def _read_all(self) -> dict[str, GateState]:
        try:
            text = read_capped(self.state_file, _MAX_STATE_BYTES).decode("utf-8")
        except FileNotFoundError:
            return {}
        except OSError as error:
            log.warning("the sign-in state could not be read (%s)", type(error).__name__)
            return {}
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("version") != _VERSION:
                raise ValueError("unknown layout")
            accounts = raw["accounts"]
            if not isinstance(accounts, dict):
                raise ValueError("unknown layout")
            return {str(key): _state_from(value) for key, value in accounts.items()}
        except (ValueError, KeyError, TypeError) as error:
            log.warning(
                "the sign-in state file is unreadable (%s); starting from an empty one",
                type(error).__name__,
            )
            return {}

    def _write_all(self, states: dict[str, GateState]) -> None:
        payload = {
            "version": _VERSION,
            "accounts": {key: _state_json(state) for key, state in states.items()},
        }
        data = json.dumps(payload, sort_keys=True).encode("utf-8")
        write_atomically(self.state_file, data, mode=_FILE_MODE)


def _state_json(state: GateState) -> dict[str, object]:
    return {
        "block": None if state.block is None else state.block.value,
        "since": _iso(state.since),
        "until": _iso(state.until),
        "lock_count": state.lock_count,
        "sign_ins": [t.isoformat() for t in state.sign_ins],
    }


def _state_from(value: object) -> GateState:
    if not isinstance(value, dict):
        raise ValueError("an entry is not an object")
    block = value.get("block")
    lock_count = value.get("lock_count", 0)
    sign_ins = value.get("sign_ins", [])
    if not isinstance(lock_count, int) or not isinstance(sign_ins, list):
        raise ValueError("bad entry")
    state = GateState(
        block=None if block is None else BlockKind(block),
        since=_time(value.get("since")),
        until=_time(value.get("until")),
        lock_count=max(0, lock_count),
        sign_ins=tuple(t for t in (_time(s) for s in sign_ins) if t is not None),
    )
    if state.block is BlockKind.LOCKED and state.until is None:
        # A lock with no end would be read as over: keep it for a first lock's wait.
        when = state.since
        if when is not None:
            state = replace(state, until=when + sign_in_gate.FIRST_LOCK_WAIT)
    return state


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a time is not text")
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError("a time without zone")
    return when


if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI only
    import msvcrt

    def _lock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
