"""The password store: keyring round trips, error mapping without secrets, no-keyring behaviour,
and the Share account id kept next to the password."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import keyring
import keyring.backend
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keyring.backends import fail, null
from keyring.errors import (
    InitError,
    KeyringError,
    KeyringLocked,
    NoKeyringError,
    PasswordDeleteError,
    PasswordSetError,
)

from cgmtray.storage.credentials import (
    SERVICE,
    CredentialStore,
    CredentialStoreError,
    MemoryCredentialStore,
    PasswordStore,
    account_id_key,
    credential_key,
)

SECRET = "s3cret-Pa55word!"
ACCOUNT_ID = "8f2d7c1e-4b3a-4e5f-9a8b-7c6d5e4f3a2b"


def fail_keyring() -> keyring.backend.KeyringBackend:
    return fail.Keyring()  # type: ignore[no-untyped-call]


def null_keyring() -> keyring.backend.KeyringBackend:
    return null.Keyring()  # type: ignore[no-untyped-call]


class DictKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring of this test module; never picked by keyring's auto-detection."""

    priority = -10  # below the null keyring: auto-detection never chooses it

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError("Password not found") from None


class BrokenKeyring(keyring.backend.KeyringBackend):
    """A keyring whose every call fails with the given error, which even echoes the secret."""

    priority = -10

    def __init__(self, error: type[Exception]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.error = error

    def _fail(self, *args: str) -> None:
        raise self.error(f"backend trouble with {' '.join(args)} {SECRET}")

    def get_password(self, service: str, username: str) -> str | None:
        self._fail(service, username)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._fail(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._fail(service, username)


class UndeletableKeyring(DictKeyring):
    """Says "cannot delete" although the entry is there (a locked collection, say)."""

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("refused")


def keyring_store() -> PasswordStore:
    return CredentialStore(DictKeyring())


STORES: list[Callable[[], PasswordStore]] = [keyring_store, MemoryCredentialStore]


@pytest.fixture(params=STORES, ids=["keyring", "memory"])
def store(request: pytest.FixtureRequest) -> PasswordStore:
    factory: Callable[[], PasswordStore] = request.param
    return factory()


def test_saved_password_comes_back(store: PasswordStore) -> None:
    assert store.get("us", "alice") is None
    store.set("us", "alice", SECRET)
    assert store.get("us", "alice") == SECRET


def test_regions_and_users_are_separate_accounts(store: PasswordStore) -> None:
    store.set("us", "alice", "one")
    store.set("ous", "alice", "two")
    store.set("us", "bob", "three")
    assert (store.get("us", "alice"), store.get("ous", "alice"), store.get("us", "bob")) == (
        "one",
        "two",
        "three",
    )
    assert store.get("jp", "alice") is None


def test_new_password_replaces_old(store: PasswordStore) -> None:
    store.set("us", "alice", "old")
    store.set("us", "alice", "new")
    assert store.get("us", "alice") == "new"


def test_delete_forgets_and_is_quiet_when_absent(store: PasswordStore) -> None:
    store.set("jp", "alice", SECRET)
    store.delete("jp", "alice")
    assert store.get("jp", "alice") is None
    store.delete("jp", "alice")
    store.delete("us", "never-stored")


def test_unknown_region_empty_username_or_password_are_refused(store: PasswordStore) -> None:
    with pytest.raises(ValueError, match="region"):
        store.set("eu", "alice", SECRET)
    with pytest.raises(ValueError, match="username"):
        store.get("us", "")
    with pytest.raises(ValueError, match="password"):
        store.set("us", "alice", "")


def test_repr_never_shows_the_password(store: PasswordStore) -> None:
    store.set("us", "alice", SECRET)
    assert SECRET not in repr(store)


def test_keyring_entry_is_filed_under_app_id_and_region_user_key() -> None:
    backend = DictKeyring()
    CredentialStore(backend).set("ous", "+11234567890", SECRET)
    assert backend.entries == {(SERVICE, "ous:+11234567890"): SECRET}
    assert credential_key("ous", "+11234567890") == "ous:+11234567890"
    assert SERVICE == "io.github.cgmtray.CgmTray"


@given(
    username=st.text(min_size=1, max_size=40),
    password=st.text(min_size=1, max_size=80),
    region=st.sampled_from(["us", "ous", "jp"]),
)
def test_any_username_and_password_round_trip(username: str, password: str, region: str) -> None:
    store = CredentialStore(DictKeyring())
    store.set(region, username, password)
    assert store.get(region, username) == password


def test_keyring_availability() -> None:
    assert CredentialStore(DictKeyring()).available()
    assert not CredentialStore(fail_keyring()).available()
    assert not CredentialStore(null_keyring()).available()
    assert MemoryCredentialStore().available()
    assert CredentialStore(DictKeyring()).persistent
    assert not MemoryCredentialStore().persistent


@pytest.mark.parametrize("make_backend", [fail_keyring, null_keyring], ids=["fail", "null"])
def test_without_a_keyring_nothing_is_silently_lost(
    make_backend: Callable[[], keyring.backend.KeyringBackend],
) -> None:
    store = CredentialStore(make_backend())
    assert store.get("us", "alice") is None
    with pytest.raises(CredentialStoreError, match="cannot be remembered"):
        store.set("us", "alice", SECRET)
    store.delete("us", "alice")


def test_default_backend_is_keyrings_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DictKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    store = CredentialStore()
    store.set("us", "alice", SECRET)
    assert backend.entries[(SERVICE, "us:alice")] == SECRET


def test_broken_keyring_setup_means_no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> keyring.backend.KeyringBackend:
        raise InitError("bad keyringrc")

    monkeypatch.setattr(keyring, "get_keyring", broken)
    store = CredentialStore()
    assert not store.available()
    assert store.get("us", "alice") is None


ERRORS = [
    KeyringError,
    KeyringLocked,
    NoKeyringError,
    InitError,
    PasswordSetError,
    PasswordDeleteError,
    RuntimeError,
    OSError,
]


@pytest.mark.parametrize("error", ERRORS, ids=[e.__name__ for e in ERRORS])
@pytest.mark.parametrize("operation", ["get", "set", "delete"])
def test_every_keyring_failure_is_one_error_without_the_secret(
    error: type[Exception], operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialStore(BrokenKeyring(error))
    caplog.set_level(logging.DEBUG)
    operations: dict[str, Callable[[], object]] = {
        "get": lambda: store.get("us", "alice"),
        "set": lambda: store.set("us", "alice", SECRET),
        "delete": lambda: store.delete("us", "alice"),
    }
    with pytest.raises(CredentialStoreError) as info:
        operations[operation]()
    printed = "".join(traceback.format_exception(info.value))
    assert SECRET not in printed
    assert SECRET not in str(info.value)
    assert "keyring" in str(info.value)
    assert SECRET not in caplog.text


def test_delete_refused_while_entry_remains_is_an_error() -> None:
    backend = UndeletableKeyring()
    store = CredentialStore(backend)
    store.set("us", "alice", SECRET)
    with pytest.raises(CredentialStoreError, match="remove"):
        store.delete("us", "alice")
    store.delete("us", "bob")  # absent: refusing to delete nothing is fine


class ReadOnlyKeyring(DictKeyring):
    """Answers what it was given and refuses to store (like the e2e tests' environment keyring)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("read-only")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("read-only")


# --- the account id ------------------------------------------------------------------------------


def test_account_id_round_trips_next_to_the_password(store: PasswordStore) -> None:
    assert store.get_account_id("us", "alice") is None
    store.set("us", "alice", SECRET)
    store.set_account_id("us", "alice", ACCOUNT_ID.upper())
    assert store.get_account_id("us", "alice") == ACCOUNT_ID  # kept in the canonical spelling
    assert store.get("us", "alice") == SECRET  # the password is untouched
    assert store.get_account_id("ous", "alice") is None
    assert store.get_account_id("us", "bob") is None


def test_a_new_password_keeps_the_account_id(store: PasswordStore) -> None:
    store.set("us", "alice", "old")
    store.set_account_id("us", "alice", ACCOUNT_ID)
    store.set("us", "alice", "new")
    assert store.get_account_id("us", "alice") == ACCOUNT_ID


def test_forgetting_the_password_forgets_the_account_id(store: PasswordStore) -> None:
    store.set("jp", "alice", SECRET)
    store.set_account_id("jp", "alice", ACCOUNT_ID)
    store.delete("jp", "alice")
    assert (store.get("jp", "alice"), store.get_account_id("jp", "alice")) == (None, None)


def test_forgetting_only_the_account_id_keeps_the_password(store: PasswordStore) -> None:
    store.set("us", "alice", SECRET)
    store.set_account_id("us", "alice", ACCOUNT_ID)
    store.delete_account_id("us", "alice")
    assert store.get_account_id("us", "alice") is None
    assert store.get("us", "alice") == SECRET
    store.delete_account_id("us", "alice")  # quiet when absent


@pytest.mark.parametrize(
    "bad", ["", "1", "not-a-uuid", "00000000-0000-0000-0000-000000000000", ACCOUNT_ID + "0"]
)
def test_only_a_non_zero_uuid_is_stored_and_the_refusal_never_echoes_it(
    store: PasswordStore, bad: str
) -> None:
    with pytest.raises(ValueError, match="non-zero UUID") as info:
        store.set_account_id("us", "alice", bad)
    assert not bad or bad not in str(info.value)
    assert store.get_account_id("us", "alice") is None


def test_repr_never_shows_the_account_id(store: PasswordStore) -> None:
    store.set("us", "alice", SECRET)
    store.set_account_id("us", "alice", ACCOUNT_ID)
    assert ACCOUNT_ID not in repr(store)


def test_account_id_entry_is_filed_under_the_app_id_with_its_own_key() -> None:
    backend = DictKeyring()
    store = CredentialStore(backend)
    store.set("ous", "+11234567890", SECRET)
    store.set_account_id("ous", "+11234567890", ACCOUNT_ID)
    assert backend.entries == {
        (SERVICE, "ous:+11234567890"): SECRET,
        (SERVICE, "account-id:ous:+11234567890"): ACCOUNT_ID,
    }


@given(
    first=st.tuples(st.sampled_from(["us", "ous", "jp"]), st.text(min_size=1, max_size=30)),
    second=st.tuples(st.sampled_from(["us", "ous", "jp"]), st.text(min_size=1, max_size=30)),
)
def test_an_account_id_key_is_never_any_accounts_password_key(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    assert account_id_key(*first) != credential_key(*second)


def test_a_username_shaped_like_an_account_id_key_keeps_the_two_apart() -> None:
    backend = DictKeyring()
    store = CredentialStore(backend)
    store.set_account_id("us", "alice", ACCOUNT_ID)
    store.set("us", "account-id:us:alice", SECRET)  # a username made to look like the id's key
    assert store.get_account_id("us", "alice") == ACCOUNT_ID
    assert store.get("us", "alice") is None
    store.delete("us", "account-id:us:alice")
    assert store.get_account_id("us", "alice") == ACCOUNT_ID


def test_a_damaged_account_id_entry_reads_as_none() -> None:
    backend = DictKeyring()
    backend.entries[(SERVICE, "account-id:us:alice")] = "garbage"
    assert CredentialStore(backend).get_account_id("us", "alice") is None


@pytest.mark.parametrize("make_backend", [fail_keyring, null_keyring], ids=["fail", "null"])
def test_without_a_keyring_the_account_id_is_not_remembered(
    make_backend: Callable[[], keyring.backend.KeyringBackend],
) -> None:
    store = CredentialStore(make_backend())
    assert store.get_account_id("us", "alice") is None
    with pytest.raises(CredentialStoreError, match="account id cannot be remembered"):
        store.set_account_id("us", "alice", ACCOUNT_ID)
    store.delete_account_id("us", "alice")


def test_a_read_only_keyring_gives_the_password_but_refuses_the_account_id() -> None:
    backend = ReadOnlyKeyring()
    backend.entries[(SERVICE, "us:alice")] = SECRET
    store = CredentialStore(backend)
    assert store.get("us", "alice") == SECRET
    assert store.get_account_id("us", "alice") is None
    with pytest.raises(CredentialStoreError, match="save the account id"):
        store.set_account_id("us", "alice", ACCOUNT_ID)
    store.delete_account_id("us", "alice")  # nothing there: refusing to delete it is fine


@pytest.mark.parametrize("error", ERRORS, ids=[e.__name__ for e in ERRORS])
@pytest.mark.parametrize("operation", ["get", "set", "delete"])
def test_every_keyring_failure_on_the_account_id_is_quiet_and_never_shows_it(
    error: type[Exception], operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialStore(BrokenKeyring(error))
    caplog.set_level(logging.DEBUG)
    operations: dict[str, Callable[[], object]] = {
        "get": lambda: store.get_account_id("us", "alice"),
        "set": lambda: store.set_account_id("us", "alice", ACCOUNT_ID),
        "delete": lambda: store.delete_account_id("us", "alice"),
    }
    with pytest.raises(CredentialStoreError, match="account id") as info:
        operations[operation]()
    printed = "".join(traceback.format_exception(info.value))
    assert ACCOUNT_ID not in printed
    assert SECRET not in printed
    assert ACCOUNT_ID not in caplog.text
    assert all(record.levelno < logging.WARNING for record in caplog.records)
