"""Share refusing one stored account id (protocol 4.2 rows 9, 10), in front of the in-process fake.

The fake only refuses ids a client would never send (empty, all-zero, not a UUID), so a test that
needs Share to refuse a well-formed stored id puts this transport between the client and the fake:
LoginPublisherAccountById with that id gets the chosen refusal; every other request goes through.
"""

from __future__ import annotations

import enum
import io
import json
import threading
from collections.abc import Callable, Mapping

import requests
from requests.adapters import HTTPAdapter

from cgmtray.domain.clock import Clock
from cgmtray.domain.server_clock import ServerClock
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.gate import SignInGate
from cgmtray.share.regions import ENDPOINT_LOGIN_BY_ID

#: A well-formed account id that no fake account has.
STALE_ACCOUNT_ID = "5f0c6a7e-3b1d-4c8e-9a2f-7d6e5c4b3a21"
_ZERO_ID = "00000000-0000-0000-0000-000000000000"


class Refusal(enum.Enum):
    """How Share says no to an account id."""

    ZERO_ID = "zero-id"  # 200 with the all-zero UUID (row 10)
    INVALID_ARGUMENT = "invalid-argument"  # 500 InvalidArgument naming the UUID (row 9)


class RefusingTransport(HTTPAdapter):
    """Refuses sign-ins by `account_id`; counts them; sends everything else on unchanged."""

    def __init__(self, account_id: str, refusal: Refusal) -> None:
        super().__init__()
        self._account_id = account_id
        self._refusal = refusal
        self._lock = threading.Lock()
        self._refused = 0

    @property
    def refused(self) -> int:
        with self._lock:
            return self._refused

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if self._is_refused(request):
            with self._lock:
                self._refused += 1
            return self._refusal_for(request)
        return super().send(request, stream, timeout, verify, cert, proxies)

    def _is_refused(self, request: requests.PreparedRequest) -> bool:
        path = (request.path_url or "").split("?", 1)[0]
        if not path.endswith("/" + ENDPOINT_LOGIN_BY_ID) or not isinstance(request.body, bytes):
            return False
        body = json.loads(request.body.decode("utf-8"))
        return isinstance(body, dict) and body.get("accountId") == self._account_id

    def _refusal_for(self, request: requests.PreparedRequest) -> requests.Response:
        if self._refusal is Refusal.ZERO_ID:
            status, answer = 200, json.dumps(_ZERO_ID).encode()
        else:
            message = (
                "Missing required field(s): JSON parse error: Cannot deserialize value of type "
                "`java.util.UUID`: UUID has to be represented by standard 36-char representation"
            )
            status = 500
            answer = json.dumps({"Code": "InvalidArgument", "Message": message}).encode()
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response._content = answer
        response.raw = io.BytesIO(answer)
        response.url = request.url or ""
        response.request = request
        return response


def client_factory(
    transport: RefusingTransport,
) -> tuple[Callable[..., ShareClient], requests.Session]:
    """A stand-in for `ShareClient(config, password, clock=...)` whose requests go through
    `transport`, and the HTTP session it uses (the test closes it)."""
    http = requests.Session()
    http.trust_env = False  # loopback only: no proxies from the environment
    http.mount("http://", transport)

    def make(
        config: ClientConfig,
        password: str,
        *,
        clock: Clock | None = None,
        server_clock: ServerClock | None = None,
        gate: SignInGate | None = None,
    ) -> ShareClient:
        return ShareClient(
            config, password, clock=clock, server_clock=server_clock, session=http, gate=gate
        )

    return make, http
