"""An in-process fake Share with one account, stopped without leaving a handler thread behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from cgmtray.domain.clock import Clock
from cgmtray.fakeshare.server import FakeShare
from cgmtray.share.regions import Region

#: The account the in-process tests sign in with.
USER: Final = "erin@example.com"
PASSWORD: Final = "pa55word-Erin"
#: Real seconds a finishing request handler may take to close its socket.
_HANDLER_JOIN_S: Final = 5.0


@contextmanager
def running_fake(
    clock: Clock, *, region: Region = Region.US, username: str = USER, password: str = PASSWORD
) -> Iterator[FakeShare]:
    """A started fake Share on `clock` with one account; stopped (handlers ended) on exit."""
    with FakeShare(clock) as server:
        server.add_account(region, username, password)
        yield server
    _join_finishing_handlers()


def _join_finishing_handlers() -> None:
    """The fake's stop() joins the handlers it still tracks; one that untracked itself may
    still be closing its socket. Let it end, so leak checks see only real leaks."""
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(_HANDLER_JOIN_S)
