"""The Dexcom password in the OS keyring (the only user of `keyring`); no plaintext fallback."""

from __future__ import annotations

import logging
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


def credential_key(region: str, username: str) -> str:
    """The keyring user name of one Dexcom account: "<region>:<username>"."""
    if region not in KNOWN_REGIONS:
        raise ValueError(f"unknown region {region!r}; expected one of us, ous, jp")
    if not username:
        raise ValueError("a username is needed to store a password")
    return f"{region}:{username}"


def _is_working(backend: keyring.backend.KeyringBackend) -> bool:
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return len(backend.backends) > 0
    return True


class CredentialStore:
    """Passwords in the OS keyring, keyed by region and username.

    Every keyring failure surfaces as CredentialStoreError. When no working keyring exists,
    `available()` is False: reads find nothing and `set` refuses, so the app asks each session
    and keeps the password in memory (MemoryCredentialStore) rather than silently losing it.
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

    def get(self, region: str, username: str) -> str | None:
        key = credential_key(region, username)
        if not self._working:
            return None
        try:
            password = self._backend.get_password(SERVICE, key)
        except Exception as exc:
            raise _failure("read the password from", exc) from None
        return password if isinstance(password, str) and password else None

    def set(self, region: str, username: str, password: str) -> None:
        key = credential_key(region, username)
        if not password:
            raise ValueError("an empty password is not stored")
        if not self._working:
            raise CredentialStoreError(
                "No working system keyring: the password cannot be remembered on this computer."
            )
        try:
            self._backend.set_password(SERVICE, key, password)
        except Exception as exc:
            raise _failure("save the password in", exc) from None

    def delete(self, region: str, username: str) -> None:
        """Forgets the password; nothing happens if none was stored."""
        key = credential_key(region, username)
        if not self._working:
            return
        try:
            self._backend.delete_password(SERVICE, key)
        except PasswordDeleteError as exc:
            # Backends say "not found" this way; it is only an error if the entry is still there.
            if self.get(region, username) is not None:
                raise _failure("remove the password from", exc) from None
        except Exception as exc:
            raise _failure("remove the password from", exc) from None


def _failure(action: str, exc: BaseException) -> CredentialStoreError:
    # Only the error's type: a backend's own message could echo what it was given.
    kind = type(exc).__name__
    log.warning("system keyring error: could not %s it (%s)", action.split(" ")[0], kind)
    return CredentialStoreError(f"Could not {action} the system keyring ({kind}).")


class MemoryCredentialStore:
    """Passwords kept in this process only: the no-keyring case, the demo, and tests."""

    persistent = False

    def __init__(self) -> None:
        self._passwords: dict[str, str] = {}

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
        self._passwords.pop(credential_key(region, username), None)
