"""Request counters of the fake Share service, so tests can assert budgets and sign-in behaviour."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cgmtray.share.regions import (
    ENDPOINT_AUTHENTICATE,
    ENDPOINT_CONTACT_EXISTS,
    ENDPOINT_CREATE_CONTACT,
    ENDPOINT_CREATE_INVITATION,
    ENDPOINT_DELETE_CONTACT,
    ENDPOINT_LIST_SUBSCRIPTIONS,
    ENDPOINT_LOGIN_BY_ID,
    ENDPOINT_LOGIN_BY_NAME,
    ENDPOINT_READ,
    Region,
)

SIGN_IN_ENDPOINTS: Final = frozenset(
    {ENDPOINT_AUTHENTICATE, ENDPOINT_LOGIN_BY_ID, ENDPOINT_LOGIN_BY_NAME}
)
#: The publisher's follower endpoints (protocol 2.5).
FOLLOWER_ENDPOINTS: Final = frozenset(
    {
        ENDPOINT_CONTACT_EXISTS,
        ENDPOINT_CREATE_CONTACT,
        ENDPOINT_CREATE_INVITATION,
        ENDPOINT_LIST_SUBSCRIPTIONS,
        ENDPOINT_DELETE_CONTACT,
    }
)
#: The `code` of a sign-in answered 200 with the all-zero UUID (a "no" without an error).
ZERO_UUID_CODE: Final = "ZeroUuid"
#: The `code` of a request answered with a connection reset (fault or outage).
RESET_CODE: Final = "ConnectionReset"
#: The status recorded for requests that got no HTTP answer at all.
NO_ANSWER_STATUS: Final = 0


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it. `time` is the fake's clock; `status` 0 = no answer.

    `code` is the Share error Code of the answer, the fault's name, `ZeroUuid`, or "" on success.
    `account` is whose request it was (the username key, as `service.account_key` makes it): the
    account a sign-in names, or the account of the session a read or list call carries; None when
    unknown (an unknown account id or session, no body, an unknown endpoint).
    """

    time: datetime
    region: Region
    endpoint: str
    status: int
    code: str = ""
    account: str | None = None

    @property
    def is_sign_in(self) -> bool:
        return self.endpoint in SIGN_IN_ENDPOINTS

    @property
    def is_failed_sign_in(self) -> bool:
        """A sign-in that did not yield a usable id (any non-200, or the zero UUID)."""
        return self.is_sign_in and (self.status != 200 or self.code == ZERO_UUID_CODE)


class Counters:
    """Every request the fake answered (or reset), thread-safe."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock if lock is not None else threading.RLock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def count(
        self,
        endpoint: str,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """Requests to `endpoint` (a regions.py ENDPOINT_* constant), optionally per region, from
        `since` (fake clock) on, and for one `account` (a username key; with a region, since the
        same name may be two accounts in two regions)."""
        return sum(1 for r in self._select(region, since, account) if r.endpoint == endpoint)

    def sign_ins(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """AuthenticatePublisherAccount + LoginPublisherAccountById requests."""
        return sum(1 for r in self._select(region, since, account) if r.is_sign_in)

    def failed_sign_ins(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """Sign-ins answered with anything but a usable id."""
        return sum(1 for r in self._select(region, since, account) if r.is_failed_sign_in)

    def reads(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """ReadPublisherLatestGlucoseValues requests."""
        return self.count(ENDPOINT_READ, region, since=since, account=account)

    def subscription_lists(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """ListPublisherAccountSubscriptions requests (the only follower call the app makes)."""
        return self.count(ENDPOINT_LIST_SUBSCRIPTIONS, region, since=since, account=account)

    def follower_requests(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """Requests to any of the five follower endpoints."""
        return sum(
            1 for r in self._select(region, since, account) if r.endpoint in FOLLOWER_ENDPOINTS
        )

    def total(
        self,
        region: Region | None = None,
        *,
        since: datetime | None = None,
        account: str | None = None,
    ) -> int:
        """All requests, known endpoints or not."""
        return len(self._select(region, since, account))

    @property
    def log(self) -> tuple[RequestRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def accounts(self, *, since: datetime | None = None) -> list[tuple[Region, str]]:
        """Every (region, account) some request was for, in the order first seen."""
        records = self._select(None, since, None)
        return list(dict.fromkeys((r.region, r.account) for r in records if r.account))

    def _select(
        self, region: Region | None, since: datetime | None, account: str | None
    ) -> list[RequestRecord]:
        with self._lock:
            return [
                r
                for r in self._records
                if (region is None or r.region is region)
                and (since is None or r.time >= since)
                and (account is None or r.account == account)
            ]
