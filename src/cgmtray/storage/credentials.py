"""The Dexcom password and account id in the OS keyring (the only user of `keyring`); no file."""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

import keyring
import keyring.backend
from keyring.backends import chainer, fail, null
from keyring.errors import PasswordDeleteError

log = logging.getLogger(__name__)

#: The keyring "service" every entry is filed under: the app id.
SERVICE = "io.github.cgmtray.CgmTray"

#: Region values as stored in settings (the caller converts to share.regions.Region).
KNOWN_REGIONS = frozenset({"us", "ous", "jp"})

#: Account id entries are "account-id:<region>:<username>". A password entry always starts with a
#: region and a colon, and "account-id" is no region, so no username can make the two keys meet.
ACCOUNT_ID_PREFIX = "account-id:"


class CredentialStoreError(Exception):
    """The keyring failed; the message is plain and never holds the password."""


class PasswordStore(Protocol):
    """What the app needs from a password store: the keyring or an in-memory stand-in."""

    @property
    def persistent(self) -> bool: ...

    def available(self) -> bool: ...

    def get(self, region: str, username: str) -> str | None: ...

    def set(self, region: str, username: str, password: str) -> None: ...

    def delete(self, region: str, username: str) -> None: ...

    def get_account_id(self, region: str, username: str) -> str | None: ...

    def set_account_id(self, region: str, username: str, account_id: str) -> None: ...

    def delete_account_id(self, region: str, username: str) -> None: ...


def credential_key(region: str, username: str) -> str:
    """The keyring user name of one Dexcom account: "<region>:<username>"."""
    if region not in KNOWN_REGIONS:
        raise ValueError(f"unknown region {region!r}; expected one of us, ous, jp")
    if not username:
        raise ValueError("a username is needed to store a password")
    return f"{region}:{username}"


def account_id_key(region: str, username: str) -> str:
    """The keyring user name of one account's Share account id: "account-id:<region>:<username>"."""
    return ACCOUNT_ID_PREFIX + credential_key(region, username)


def usable_account_id(value: object) -> str | None:
    """`value` as a lower-case UUID string, or None unless it is a non-zero UUID."""
    if not isinstance(value, str):
        return None
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        return None
    return str(parsed) if parsed.int != 0 else None


def _checked_account_id(account_id: str) -> str:
    usable = usable_account_id(account_id)
    if usable is None:
        raise ValueError("an account id must be a non-zero UUID")  # never echo the value
    return usable


def _is_working(backend: keyring.backend.KeyringBackend) -> bool:
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return len(backend.backends) > 0
    return True


class CredentialStore:
    """Passwords and Share account ids in the OS keyring, keyed by region and username.

    Every keyring failure surfaces as CredentialStoreError. When no working keyring exists,
    `available()` is False: reads find nothing and `set` refuses, so the app asks each session
    and keeps the password in memory (MemoryCredentialStore) rather than silently losing it.
    The account id (protocol 7.2) sits next to the password and goes when the password goes.
    """

    persistent = True

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None) -> None:
        if backend is None:
            try:
                backend = keyring.get_keyring()
            except Exception as exc:  # a broken keyring config must not stop the app
                log.warning("no usable keyring (%s); passwords stay in memory", type(exc).__name__)
                backend = fail.Keyring()  # type: ignore[no-untyped-call]
        self._backend = backend
        self._working = _is_working(backend)

    def __repr__(self) -> str:
        return f"CredentialStore(backend={type(self._backend).__name__})"

    def available(self) -> bool:
        """True when a real keyring is there to keep the password between sessions."""
        return self._working

    # --- the password ---------------------------------------------------------------------------

    def get(self, region: str, username: str) -> str | None:
        password = self._read(credential_key(region, username), "password")
        return password if password else None

    def set(self, region: str, username: str, password: str) -> None:
        key = credential_key(region, username)
        if not password:
            raise ValueError("an empty password is not stored")
        self._write(key, password, "password")

    def delete(self, region: str, username: str) -> None:
        """Forgets the password and the account id; nothing happens if none was stored."""
        problem: CredentialStoreError | None = None
        for key, what in (
            (account_id_key(region, username), "account id"),
            (credential_key(region, username), "password"),
        ):
            try:
                self._remove(key, what)
            except CredentialStoreError as error:
                problem = problem or error
        if problem is not None:
            raise problem

    # --- the account id -------------------------------------------------------------------------

    def get_account_id(self, region: str, username: str) -> str | None:
        """The stored account id, or None (also for an entry that is not a non-zero UUID)."""
        return usable_account_id(self._read(account_id_key(region, username), "account id"))

    def set_account_id(self, region: str, username: str, account_id: str) -> None:
        key = account_id_key(region, username)
        self._write(key, _checked_account_id(account_id), "account id")

    def delete_account_id(self, region: str, username: str) -> None:
        """Forgets the account id (the next sign-in authenticates by name)."""
        self._remove(account_id_key(region, username), "account id")

    # --- one keyring entry ----------------------------------------------------------------------

    def _read(self, key: str, what: str) -> str | None:
        if not self._working:
            return None
        try:
            value = self._backend.get_password(SERVICE, key)
        except Exception as exc:
            raise _failure(f"read the {what} from", exc) from None
        return value if isinstance(value, str) else None

    def _write(self, key: str, value: str, what: str) -> None:
        if not self._working:
            raise CredentialStoreError(
                f"No working system keyring: the {what} cannot be remembered on this computer."
            )
        try:
            self._backend.set_password(SERVICE, key, value)
        except Exception as exc:
            raise _failure(f"save the {what} in", exc) from None

    def _remove(self, key: str, what: str) -> None:
        if not self._working:
            return
        try:
            self._backend.delete_password(SERVICE, key)
        except PasswordDeleteError as exc:
            # Backends say "not found" this way; it is only an error if the entry is still there.
            if self._read(key, what):
                raise _failure(f"remove the {what} from", exc) from None
        except Exception as exc:
            raise _failure(f"remove the {what} from", exc) from None


def _failure(action: str, exc: BaseException) -> CredentialStoreError:
    # Only the error's type: a backend's own message could echo what it was given.
    kind = type(exc).__name__
    # An account id that cannot be kept only costs a sign-in by name: no warning for that.
    level = logging.DEBUG if "account id" in action else logging.WARNING
    log.log(level, "system keyring error: could not %s it (%s)", action.split(" ")[0], kind)
    return CredentialStoreError(f"Could not {action} the system keyring ({kind}).")


class MemoryCredentialStore:
    """Passwords and account ids kept in this process only: no keyring, the demo, and tests."""

    persistent = False

    def __init__(self) -> None:
        self._passwords: dict[str, str] = {}
        self._account_ids: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MemoryCredentialStore(entries={len(self._passwords)})"

    def available(self) -> bool:
        """Always usable, for as long as the process runs."""
        return True

    def get(self, region: str, username: str) -> str | None:
        return self._passwords.get(credential_key(region, username))

    def set(self, region: str, username: str, password: str) -> None:
        key = credential_key(region, username)
        if not password:
            raise ValueError("an empty password is not stored")
        self._passwords[key] = password

    def delete(self, region: str, username: str) -> None:
        """Forgets the password and the account id."""
        self._passwords.pop(credential_key(region, username), None)
        self._account_ids.pop(account_id_key(region, username), None)

    def get_account_id(self, region: str, username: str) -> str | None:
        return self._account_ids.get(account_id_key(region, username))

    def set_account_id(self, region: str, username: str, account_id: str) -> None:
        key = account_id_key(region, username)
        self._account_ids[key] = _checked_account_id(account_id)

    def delete_account_id(self, region: str, username: str) -> None:
        self._account_ids.pop(account_id_key(region, username), None)
