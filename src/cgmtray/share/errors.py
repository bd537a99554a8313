"""The ShareError taxonomy: one type per row of the Share error catalogue (protocol section 4.2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

from cgmtray.domain.failures import FailureClass

_UUID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.]{1,80}")
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")

#: catalogue_row of errors that are not a row of the catalogue (client-side, unknown codes).
OUTSIDE_CATALOGUE = 0

_CREDENTIALS_MESSAGE = (
    "Dexcom did not accept the username or password. Check them, and check the region: an "
    "account from another region looks like a wrong password. Use the Dexcom app login of the "
    "person who wears the sensor, not a follower's."
)
_TRANSIENT_SUFFIX = "CGM Tray will try again by itself."


def scrub(text: str) -> str:
    """`text` with anything shaped like a UUID (session or account id) replaced by <id>."""
    return _UUID_PATTERN.sub("<id>", text)


def safe_code(code: object) -> str | None:
    """The server's error Code if it looks like an identifier, else None (never free text)."""
    if isinstance(code, str) and _SAFE_CODE.fullmatch(code):
        return code
    return None


class ShareError(Exception):
    """Any failure of a Share request. `str()` names what went wrong, never ids or secrets.

    `failure_class`, `catalogue_row` and `user_message` are class attributes; `SignInBlocked`
    copies them from the error that caused the block.
    """

    failure_class: FailureClass = FailureClass.TRANSIENT
    catalogue_row: int = OUTSIDE_CATALOGUE
    user_message: str = "Something went wrong talking to Dexcom Share. " + _TRANSIENT_SUFFIX
    default_detail: ClassVar[str] = "Dexcom Share request failed"
    #: True when the failing request was a sign-in, not a read (set by the client).
    during_sign_in: bool = False

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.detail = scrub(detail) if detail else self.default_detail
        self.code = safe_code(code)
        self.status = status
        self.endpoint = endpoint
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.detail]
        if self.code is not None:
            parts.append(f"Code {self.code}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.endpoint is not None:
            parts.append(self.endpoint)
        return "; ".join(parts)

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()!r})"


class InvalidRequestError(ShareError, ValueError):
    """A request the client refuses to send (bad argument or setting); no network traffic."""

    failure_class = FailureClass.CLIENT_BUG
    user_message = "CGM Tray was asked to make a request Dexcom Share would not accept."
    default_detail = "invalid request"

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail)
        if user_message is not None:
            self.user_message = user_message


# --- session (rows 1, 2, 12) -------------------------------------------------------------------


class SessionExpired(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """The session id is unknown, timed out or malformed: sign in again once."""

    failure_class = FailureClass.SESSION
    catalogue_row = 1
    user_message = "The Dexcom Share session ended. CGM Tray signs in again by itself."
    default_detail = "session expired"


class SessionIdNotFound(SessionExpired):
    """Row 1: 500 SessionIdNotFound."""

    catalogue_row = 1
    default_detail = "session id not found"


class SessionNotValid(SessionExpired):
    """Row 2: 500 SessionNotValid."""

    catalogue_row = 2
    default_detail = "session not active or timed out"


class MalformedSessionRejected(SessionExpired):
    """Row 12: 400 plain text (malformed session id), or 403 "Forbidden" on a read."""

    catalogue_row = 12
    default_detail = "session id rejected as malformed"


class SessionRejectedAfterRelogin(SessionExpired):
    """A read failed with a session error again right after a fresh sign-in.

    Still a SessionExpired by type, but classed TRANSIENT (protocol 7.4: a second failure backs
    off); the client has already dropped the session, so the next read signs in again.
    """

    failure_class = FailureClass.TRANSIENT
    user_message = (
        "Dexcom Share keeps refusing a fresh sign-in session. " + _TRANSIENT_SUFFIX + " If this "
        "lasts, Dexcom Share may be having trouble."
    )
    default_detail = "session rejected again after signing in"


# --- credentials (rows 3, 4, 7, 8, 10) ---------------------------------------------------------


class CredentialsRejected(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Username, password or region not accepted: never retried automatically."""

    failure_class = FailureClass.CREDENTIALS
    catalogue_row = 3
    user_message = _CREDENTIALS_MESSAGE
    default_detail = "credentials rejected"


class AccountPasswordInvalid(CredentialsRejected):
    """Row 3: 500 AccountPasswordInvalid (wrong password, user or region)."""

    catalogue_row = 3


class SsoCredentialsRejected(CredentialsRejected):
    """Row 4: 500 SSO_InternalError with "Cannot Authenticate by AccountName/AccountId"."""

    catalogue_row = 4


class LegacyPasswordInvalid(CredentialsRejected):
    """Row 7: 500 SSO_AuthenticatePasswordInvalid (historical form)."""

    catalogue_row = 7


class AccountNotFound(CredentialsRejected):
    """Row 8: 500 SSO_AuthenticateAccountNotFound (historical form)."""

    catalogue_row = 8


class ZeroIdReturned(CredentialsRejected):
    """Row 10: a 200 whose id is the all-zero UUID ("no" without an error)."""

    catalogue_row = 10
    default_detail = "the service answered the all-zero id"


# --- other server answers ----------------------------------------------------------------------


class IdentityServiceError(ShareError):
    """Row 5: 500 SSO_InternalError with any other message (identity back-end trouble)."""

    catalogue_row = 5
    user_message = "Dexcom's sign-in service is having trouble. " + _TRANSIENT_SUFFIX
    default_detail = "identity service error"


class AccountLocked(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 6: SSO_AuthenticateMaxAttempts* (any spelling): stop every sign-in."""

    failure_class = FailureClass.LOCKED
    catalogue_row = 6
    user_message = (
        "Dexcom has locked the account after too many sign-in attempts. Wait at least an hour; "
        "do not retry. CGM Tray will not sign in again until you ask it to."
    )
    default_detail = "account locked after too many sign-in attempts"


class InvalidArgument(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 9: 500 InvalidArgument; `field` is "accountName", "password", "UUID" or None."""

    failure_class = FailureClass.CLIENT_BUG
    catalogue_row = 9
    user_message = (
        "Dexcom Share could not understand a request from CGM Tray. This is probably a bug in "
        "CGM Tray; please report it."
    )
    default_detail = "the service rejected a request argument"

    def __init__(
        self,
        detail: str = "",
        *,
        field: str | None = None,
        code: str | None = None,
        status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.field = field
        if field is not None and not detail:
            detail = f"the service rejected the {field} argument"
        super().__init__(detail, code=code, status=status, endpoint=endpoint)


class InvalidResponse(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 13: an empty, non-JSON, HTML, truncated or oddly shaped body."""

    catalogue_row = 13
    user_message = "Dexcom Share sent an answer CGM Tray could not read. " + _TRANSIENT_SUFFIX
    default_detail = "unreadable response"


class ResponseTooLarge(InvalidResponse):
    """Row 13: an answer larger than any real one could be; it is not read to the end."""

    user_message = (
        "Dexcom Share sent an answer far larger than a real one, so CGM Tray stopped reading "
        "it. " + _TRANSIENT_SUFFIX
    )
    default_detail = "response too large"


class RateLimited(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 14: HTTP 429; `retry_after_s` from the Retry-After header when it had one."""

    failure_class = FailureClass.RATE_LIMIT
    catalogue_row = 14
    user_message = "Dexcom Share asked CGM Tray to slow down. It will wait and try again."
    default_detail = "rate limited"

    def __init__(
        self,
        retry_after_s: float | None = None,
        *,
        status: int | None = 429,
        endpoint: str | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        detail = "rate limited"
        if retry_after_s is not None:
            detail += f", retry after {retry_after_s:g} s"
        super().__init__(detail, status=status, endpoint=endpoint)


class ServiceUnavailable(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 15: a 5xx (or other error status) without a Share error body; an outage."""

    catalogue_row = 15
    user_message = "Dexcom Share is not available right now. " + _TRANSIENT_SUFFIX
    default_detail = "service unavailable"


class NetworkError(ShareError):
    """Row 15: DNS, connection, reset or TLS failure."""

    catalogue_row = 15
    user_message = (
        "CGM Tray cannot reach Dexcom Share. Check the internet connection; " + _TRANSIENT_SUFFIX
    )
    default_detail = "network error"


class RequestTimedOut(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """Row 15: no connection or no answer within the timeout."""

    catalogue_row = 15
    user_message = "Dexcom Share did not answer in time. " + _TRANSIENT_SUFFIX
    default_detail = "request timed out"


class UnknownServerError(ShareError):
    """Any error Code outside the catalogue."""

    catalogue_row = OUTSIDE_CATALOGUE
    user_message = "Dexcom Share reported an unexpected error. " + _TRANSIENT_SUFFIX
    default_detail = "unknown server error"


class SignInBlocked(ShareError):  # noqa: N818 (names from the protocol catalogue)
    """The client refuses to sign in after rejected credentials or a lockout, until the user acts.

    Carries the class, row and user message of the error that caused the block (`reason`).
    """

    default_detail = "sign-in blocked until the user acts"

    def __init__(self, reason: ShareError) -> None:
        self.reason = reason
        self.failure_class = reason.failure_class
        self.catalogue_row = reason.catalogue_row
        self.user_message = reason.user_message
        super().__init__(f"sign-in blocked after {type(reason).__name__}; waiting for the user")


# --- mapping a Share error body to its type ----------------------------------------------------

_CREDENTIAL_CODES: dict[str, type[CredentialsRejected]] = {
    "AccountPasswordInvalid": AccountPasswordInvalid,
    "SSO_AuthenticatePasswordInvalid": LegacyPasswordInvalid,
    "SSO_AuthenticateAccountNotFound": AccountNotFound,
}
_SESSION_CODES: dict[str, type[SessionExpired]] = {
    "SessionIdNotFound": SessionIdNotFound,
    "SessionNotValid": SessionNotValid,
}
_LOCK_CODE_PREFIX = "SSO_AuthenticateMaxAttempts"
_SSO_REJECTION_MARKERS = ("Cannot Authenticate by AccountName", "Cannot Authenticate by AccountId")
_ARGUMENT_MARKERS = ("accountName", "password", "UUID")


def error_for_code(
    code: str, message: str, *, status: int | None = None, endpoint: str | None = None
) -> ShareError:
    """The error for a Share error body: branches on Code, then Message substrings, never SubCode.

    The message is only searched, never kept (it embeds account names and ids).
    """
    session_type = _SESSION_CODES.get(code)
    if session_type is not None:
        return session_type(code=code, status=status, endpoint=endpoint)
    credentials_type = _CREDENTIAL_CODES.get(code)
    if credentials_type is not None:
        return credentials_type(code=code, status=status, endpoint=endpoint)
    if code.startswith(_LOCK_CODE_PREFIX):
        return AccountLocked(code=code, status=status, endpoint=endpoint)
    if code == "SSO_InternalError":
        if any(marker in message for marker in _SSO_REJECTION_MARKERS):
            return SsoCredentialsRejected(code=code, status=status, endpoint=endpoint)
        return IdentityServiceError(code=code, status=status, endpoint=endpoint)
    if code == "InvalidArgument":
        field = next((marker for marker in _ARGUMENT_MARKERS if marker in message), None)
        return InvalidArgument(field=field, code=code, status=status, endpoint=endpoint)
    return UnknownServerError(code=code, status=status, endpoint=endpoint)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None.

    `now` is the moment the HTTP-date form is measured from; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
