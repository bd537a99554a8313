"""The classes of failure the polling policy tells apart (share-protocol.md section 7.4)."""

from __future__ import annotations

import enum


class FailureClass(enum.Enum):
    """How a failed Share request is handled; each error type of the client maps to one."""

    #: Session unknown or timed out (catalogue rows 1, 2, 12): one re-login, one retried read.
    SESSION = "session"
    #: Credentials or region rejected (rows 3, 4, 7, 8, 10): stop; never retried automatically.
    CREDENTIALS = "credentials"
    #: Too many failed sign-ins (row 6): stop all sign-ins; wait, then at most one attempt.
    LOCKED = "locked"
    #: HTTP 429 (row 14): wait at least Retry-After / 60 s, doubling to 10 min; keep the session.
    RATE_LIMIT = "rate_limit"
    #: Outages, bad bodies, timeouts, identity back-end trouble (rows 5, 13, 15): backoff.
    TRANSIENT = "transient"
    #: Our own malformed request (row 9): stop automatic polling and report an internal error.
    CLIENT_BUG = "client_bug"
