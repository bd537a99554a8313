"""The error taxonomy: every catalogue row maps to one type, class and plain-language message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.failures import FailureClass
from cgmtray.share import errors
from cgmtray.share.errors import (
    AccountLocked,
    AccountNotFound,
    AccountPasswordInvalid,
    CredentialsRejected,
    IdentityServiceError,
    InvalidArgument,
    InvalidRequestError,
    InvalidResponse,
    LegacyPasswordInvalid,
    MalformedSessionRejected,
    NetworkError,
    RateLimited,
    RequestTimedOut,
    ServiceUnavailable,
    SessionExpired,
    SessionIdNotFound,
    SessionNotValid,
    SessionRejectedAfterRelogin,
    ShareError,
    SignInBlocked,
    SsoCredentialsRejected,
    UnknownServerError,
    ZeroIdReturned,
    error_for_code,
    parse_retry_after,
)

SESSION_ID = "5c2a9e7d-1234-4abc-8def-0123456789ab"
ACCOUNT_ID = "99999999-9999-9999-9999-999999999999"
USERNAME = "alice@example.com"

SSO_2024_MESSAGE = (
    "Synchronization of SSO account during authenticate call failed Time out issue.  "
    f"AccountName={USERNAME} Error encountered accessing Keycloak endpoint: UAM_ERROR: "
    f"HttpStatus='401 UNAUTHORIZED(401)' Msg=Cannot Authenticate by AccountName='{USERNAME}'"
)
UUID_MESSAGE = (
    "Missing required field(s): JSON parse error: Cannot deserialize value of type "
    '`java.util.UUID` from String "1": UUID has to be represented by standard 36-char '
    "representation"
)


@pytest.mark.parametrize(
    ("code", "message", "expected_type", "row", "failure_class"),
    [
        (
            "SessionIdNotFound",
            f"Failed to find session object. [SessionId = {SESSION_ID}]",
            SessionIdNotFound,
            1,
            FailureClass.SESSION,
        ),
        (
            "SessionNotValid",
            f"Session not active or timed out. [SessionId = {SESSION_ID}]",
            SessionNotValid,
            2,
            FailureClass.SESSION,
        ),
        (
            "AccountPasswordInvalid",
            "Publisher account password failed",
            AccountPasswordInvalid,
            3,
            FailureClass.CREDENTIALS,
        ),
        (
            "SSO_InternalError",
            SSO_2024_MESSAGE,
            SsoCredentialsRejected,
            4,
            FailureClass.CREDENTIALS,
        ),
        (
            "SSO_InternalError",
            f"... Msg=Cannot Authenticate by AccountId='{ACCOUNT_ID}'",
            SsoCredentialsRejected,
            4,
            FailureClass.CREDENTIALS,
        ),
        (
            "SSO_InternalError",
            "Keycloak endpoint unreachable",
            IdentityServiceError,
            5,
            FailureClass.TRANSIENT,
        ),
        ("SSO_AuthenticateMaxAttemptsExceeded", "", AccountLocked, 6, FailureClass.LOCKED),
        ("SSO_AuthenticateMaxAttemptsExceeed", "", AccountLocked, 6, FailureClass.LOCKED),
        (
            "SSO_AuthenticatePasswordInvalid",
            f"Simulate SSO: Authentication failed. AccountId={ACCOUNT_ID}",
            LegacyPasswordInvalid,
            7,
            FailureClass.CREDENTIALS,
        ),
        ("SSO_AuthenticateAccountNotFound", "", AccountNotFound, 8, FailureClass.CREDENTIALS),
        ("InvalidArgument", UUID_MESSAGE, InvalidArgument, 9, FailureClass.CLIENT_BUG),
        ("MonitoredReceiverNotAssigned", "", UnknownServerError, 0, FailureClass.TRANSIENT),
    ],
)
def test_each_server_code_maps_to_its_catalogue_row(
    code: str,
    message: str,
    expected_type: type[ShareError],
    row: int,
    failure_class: FailureClass,
) -> None:
    error = error_for_code(code, message, status=500, endpoint="General/Somewhere")
    assert type(error) is expected_type
    assert error.catalogue_row == row
    assert error.failure_class is failure_class
    assert error.code == code
    assert error.status == 500
    for secret in (SESSION_ID, ACCOUNT_ID, USERNAME, "alice"):
        assert secret not in str(error)
        assert secret not in repr(error)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Missing required field(s): accountName", "accountName"),
        ("Missing required field(s): password", "password"),
        (UUID_MESSAGE, "UUID"),
        ("something else entirely", None),
    ],
)
def test_invalid_argument_says_which_field(message: str, field: str | None) -> None:
    error = error_for_code("InvalidArgument", message)
    assert isinstance(error, InvalidArgument)
    assert error.field == field


def test_row_10_and_the_zero_id_is_a_credentials_problem() -> None:
    assert ZeroIdReturned.catalogue_row == 10
    assert ZeroIdReturned.failure_class is FailureClass.CREDENTIALS
    assert issubclass(ZeroIdReturned, CredentialsRejected)


@pytest.mark.parametrize(
    ("error_type", "row", "failure_class"),
    [
        (MalformedSessionRejected, 12, FailureClass.SESSION),
        (InvalidResponse, 13, FailureClass.TRANSIENT),
        (RateLimited, 14, FailureClass.RATE_LIMIT),
        (ServiceUnavailable, 15, FailureClass.TRANSIENT),
        (NetworkError, 15, FailureClass.TRANSIENT),
        (RequestTimedOut, 15, FailureClass.TRANSIENT),
        (SessionRejectedAfterRelogin, 1, FailureClass.TRANSIENT),
        (InvalidRequestError, 0, FailureClass.CLIENT_BUG),
    ],
)
def test_client_side_rows(
    error_type: type[ShareError], row: int, failure_class: FailureClass
) -> None:
    assert error_type.catalogue_row == row
    assert error_type.failure_class is failure_class


def test_session_errors_share_a_base_so_the_client_can_relogin_on_any_of_them() -> None:
    for session_type in (SessionIdNotFound, SessionNotValid, MalformedSessionRejected):
        assert issubclass(session_type, SessionExpired)


def test_credential_subtypes_share_a_base() -> None:
    for credentials_type in (
        AccountPasswordInvalid,
        SsoCredentialsRejected,
        LegacyPasswordInvalid,
        AccountNotFound,
        ZeroIdReturned,
    ):
        assert issubclass(credentials_type, CredentialsRejected)
    assert not issubclass(AccountLocked, CredentialsRejected)


def _all_error_types() -> list[type[ShareError]]:
    found: list[type[ShareError]] = []
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, ShareError):
            found.append(value)
    return found


def test_every_error_type_has_a_plain_message_for_people() -> None:
    types = _all_error_types()
    assert len(types) >= 20
    for error_type in types:
        message = error_type.user_message
        assert message.endswith(".")
        assert len(message) > 30
        assert "Exception" not in message


def test_the_credentials_message_mentions_the_region() -> None:
    assert "region" in CredentialsRejected.user_message
    assert "password" in CredentialsRejected.user_message


def test_the_locked_message_says_wait_and_do_not_retry() -> None:
    assert "hour" in AccountLocked.user_message
    assert "do not retry" in AccountLocked.user_message


def test_sign_in_blocked_carries_the_cause() -> None:
    cause = AccountLocked(code="SSO_AuthenticateMaxAttemptsExceeded", status=500)
    blocked = SignInBlocked(cause)
    assert blocked.reason is cause
    assert blocked.failure_class is FailureClass.LOCKED
    assert blocked.catalogue_row == 6
    assert blocked.user_message == AccountLocked.user_message
    assert "AccountLocked" in str(blocked)
    assert SignInBlocked(AccountPasswordInvalid()).failure_class is FailureClass.CREDENTIALS


def test_invalid_request_error_is_a_value_error_and_a_share_error() -> None:
    error = InvalidRequestError("minutes must be in 1..1440", user_message="Pick a window.")
    assert isinstance(error, ValueError)
    assert isinstance(error, ShareError)
    assert error.user_message == "Pick a window."
    assert InvalidRequestError().user_message == InvalidRequestError.user_message


def test_ids_never_survive_into_the_text_of_an_error() -> None:
    error = InvalidResponse(f"odd answer to session {SESSION_ID} for {ACCOUNT_ID.upper()}")
    assert SESSION_ID not in str(error)
    assert ACCOUNT_ID.upper() not in repr(error)
    assert "<id>" in str(error)


@pytest.mark.parametrize("code", [f"Bad {USERNAME}", "x" * 200, 42, None, "<html>"])
def test_free_text_in_place_of_a_code_is_not_kept(code: object) -> None:
    assert errors.safe_code(code) is None


def test_str_and_repr_are_short_and_name_the_problem() -> None:
    error = RateLimited(120.0, endpoint="Publisher/ReadPublisherLatestGlucoseValues")
    assert error.retry_after_s == 120.0
    assert "retry after 120 s" in str(error)
    assert repr(error).startswith("RateLimited(")
    assert "HTTP 429" in str(error)


NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 60 ", 60.0),
        ("0", 0.0),
        ("Sun, 15 Jun 2025 12:01:30 GMT", 90.0),
        ("Sun, 15 Jun 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("¹", None),
        ("1234567890123456", None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@given(st.text(max_size=60))
def test_retry_after_never_crashes(header: str) -> None:
    result = parse_retry_after(header, NOW)
    assert result is None or result >= 0


@given(st.integers(min_value=0, max_value=10**6))
def test_retry_after_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)
    http_date = (NOW + timedelta(seconds=seconds)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, NOW) == float(seconds)
