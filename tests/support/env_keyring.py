"""A keyring backend for app processes under test: one password, handed over in the environment.

Selected with `PYTHON_KEYRING_BACKEND=tests.support.env_keyring.EnvKeyring` (the repo root on
PYTHONPATH), it lets a real `cgm-tray` process take the keyring path at start-up without a Secret
Service and without any file: nothing it holds can end up on disk. It refuses to store.
"""

from __future__ import annotations

import json
import os
from typing import Final

import keyring.backend
from keyring.errors import PasswordDeleteError, PasswordSetError

#: The keyring entry it answers ("<region>:<username>", storage.credentials.credential_key).
KEY_VARIABLE: Final = "CGMTRAY_TEST_KEYRING_KEY"
#: The password it answers with.
PASSWORD_VARIABLE: Final = "CGMTRAY_TEST_KEYRING_PASSWORD"
#: Several entries at once (several people): a JSON object {"<region>:<username>": password}.
ENTRIES_VARIABLE: Final = "CGMTRAY_TEST_KEYRING_ENTRIES"
BACKEND_NAME: Final = "tests.support.env_keyring.EnvKeyring"


def environment(key: str, password: str) -> dict[str, str]:
    """The variables that make a child process's keyring answer `password` for `key`."""
    return {
        "PYTHON_KEYRING_BACKEND": BACKEND_NAME,
        KEY_VARIABLE: key,
        PASSWORD_VARIABLE: password,
    }


def entries_environment(entries: dict[str, str]) -> dict[str, str]:
    """The variables that make a child process's keyring answer each of `entries`."""
    return {"PYTHON_KEYRING_BACKEND": BACKEND_NAME, ENTRIES_VARIABLE: json.dumps(entries)}


class EnvKeyring(keyring.backend.KeyringBackend):
    """Answers the one entry named in the environment; stores nothing."""

    priority = -10  # only ever used when named explicitly

    def get_password(self, service: str, username: str) -> str | None:
        several = os.environ.get(ENTRIES_VARIABLE)
        if several is not None:
            found = json.loads(several).get(username)
            return found if isinstance(found, str) else None
        if username != os.environ.get(KEY_VARIABLE):
            return None
        return os.environ.get(PASSWORD_VARIABLE)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("the environment keyring of the tests is read-only")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("the environment keyring of the tests is read-only")
