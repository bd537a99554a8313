"""A free loopback port that no other process's outgoing connection can take meanwhile."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Final

#: Linux hands out source ports for outgoing connections from 32768-60999 (its default
#: ip_local_port_range): a port below it stays free between this probe and a later bind unless
#: another program binds it on purpose. A port probed with bind(0) comes from that range, and on
#: a busy machine an outgoing connection took one once between the probe and the bind.
_FIRST: Final = 20_000
_END: Final = 32_768


_handed_out = itertools.count()


def free_port() -> int:
    """A loopback port nothing listens on, below the ephemeral range (a refused connection
    there stays refused; a bind there later succeeds). Two calls never give the same port
    (until the range wraps), even when the first has not been bound yet."""
    span = _END - _FIRST
    start = os.getpid() * 7919 + next(_handed_out) * 97  # processes and calls spread apart
    for step in range(span):
        port = _FIRST + (start + step) % span
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free loopback port below the ephemeral range")
