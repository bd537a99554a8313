"""Searches files and texts for secrets in every form they could be written in; names only where."""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus

#: Shorter secrets would be found by chance in any binary file: the search refuses them.
MIN_SECRET_LENGTH: Final = 4

_UUID_SHAPE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

#: Forms whose escapes (%E9, \u00e9) are as valid in either case.
_HEX_ESCAPED_FORMS: Final = frozenset({"percent-encoded", "form-encoded", "json-escaped"})


@dataclass(frozen=True)
class SecretFinding:
    """One secret found somewhere: which one (by label, never its value), in what form, where."""

    label: str
    form: str
    where: str
    offset: int

    def __str__(self) -> str:
        return f"{self.label} ({self.form}) in {self.where} at byte {self.offset}"


@dataclass(frozen=True)
class _Needle:
    label: str
    form: str
    data: bytes
    #: Compared with the haystack lower-cased (UUIDs: any case is the same id).
    fold_case: bool


@dataclass
class SecretSearch:
    """What one search looked at and what it found."""

    findings: list[SecretFinding] = field(default_factory=list)
    #: Every file read (absolute paths) and every text name, in search order.
    searched: list[str] = field(default_factory=list)
    bytes_searched: int = 0

    def describe(self) -> str:
        """The findings, one per line, without any secret in them."""
        return "\n".join(str(finding) for finding in self.findings)


def _labelled(secrets: Iterable[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(secrets, Mapping):
        pairs = [(str(label), value) for label, value in secrets.items()]
    else:
        pairs = [(f"secret #{index}", value) for index, value in enumerate(secrets, start=1)]
    if not pairs:
        raise ValueError("no secrets to search for: an empty search proves nothing")
    for label, value in pairs:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"{label} is not a string of at least {MIN_SECRET_LENGTH} characters")
    return pairs


def secret_forms(secret: str) -> dict[str, bytes]:
    """Every encoding of `secret` the search looks for, by form name (duplicates dropped)."""
    forms: dict[str, bytes] = {
        "utf-8": secret.encode("utf-8"),
        "utf-16-le": secret.encode("utf-16-le"),
        "utf-16-be": secret.encode("utf-16-be"),
        "percent-encoded": quote(secret, safe="").encode("ascii"),
        "form-encoded": quote_plus(secret, safe="").encode("ascii"),
        "json-escaped": json.dumps(secret, ensure_ascii=True)[1:-1].encode("ascii"),
        "json-escaped-unicode": json.dumps(secret, ensure_ascii=False)[1:-1].encode("utf-8"),
        "python-repr": repr(secret)[1:-1].encode("utf-8"),
        "python-ascii": ascii(secret)[1:-1].encode("ascii"),
    }
    if _UUID_SHAPE.fullmatch(secret):
        as_uuid = uuid.UUID(secret)
        forms["uuid-hex"] = as_uuid.hex.encode("ascii")
        forms["uuid-bytes"] = as_uuid.bytes
        forms["uuid-bytes-le"] = as_uuid.bytes_le
    unique: dict[str, bytes] = {}
    for name, data in forms.items():
        if data not in unique.values():
            unique[name] = data
    return unique


def _needles(pairs: list[tuple[str, str]]) -> list[_Needle]:
    needles: list[_Needle] = []
    for label, secret in pairs:
        is_uuid = _UUID_SHAPE.fullmatch(secret) is not None
        for form, data in secret_forms(secret).items():
            raw = form in ("uuid-bytes", "uuid-bytes-le")
            # Escapes may use either case of hex digits; UUIDs are one id in any case.
            fold = (is_uuid and not raw) or form in _HEX_ESCAPED_FORMS
            needles.append(_Needle(label, form, data.lower() if fold else data, fold))
    return needles


def _search_bytes(haystack: bytes, where: str, needles: list[_Needle], into: SecretSearch) -> None:
    folded: bytes | None = None
    for needle in needles:
        if needle.fold_case:
            if folded is None:
                folded = haystack.lower()
            offset = folded.find(needle.data)
        else:
            offset = haystack.find(needle.data)
        if offset >= 0:
            into.findings.append(SecretFinding(needle.label, needle.form, where, offset))
    into.searched.append(where)
    into.bytes_searched += len(haystack)


def _files_under(root: Path) -> Iterable[Path]:
    if not root.exists():
        return
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def search(
    secrets: Iterable[str] | Mapping[str, str],
    *,
    roots: Iterable[Path] = (),
    texts: Mapping[str, str | bytes] | None = None,
) -> SecretSearch:
    """Searches the raw bytes of every regular file under `roots` (SQLite files and their -wal
    and -shm, logs, anything) and each of `texts` for every form of every secret.

    `secrets` is a list, or a mapping of label -> secret so findings say which one was found.
    A file that cannot be read is a finding too: the search could not prove it clean.
    """
    needles = _needles(_labelled(secrets))
    result = SecretSearch()
    for root in roots:
        for path in _files_under(Path(root)):
            try:
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode):
                    continue  # sockets, fifos and symlinks hold nothing the app wrote
                data = path.read_bytes()
            except OSError as error:
                reason = type(error).__name__
                result.findings.append(SecretFinding("(unreadable)", reason, str(path), 0))
                continue
            _search_bytes(data, str(path), needles, result)
    for name, text in (texts or {}).items():
        data = text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")
        _search_bytes(data, name, needles, result)
    return result


def find_secrets(
    secrets: Iterable[str] | Mapping[str, str],
    *,
    roots: Iterable[Path] = (),
    texts: Mapping[str, str | bytes] | None = None,
) -> list[SecretFinding]:
    """Where any of `secrets` appears under `roots` or in `texts` (see `search`)."""
    return search(secrets, roots=roots, texts=texts).findings


def assert_no_secrets(
    secrets: Iterable[str] | Mapping[str, str],
    *,
    roots: Iterable[Path] = (),
    texts: Mapping[str, str | bytes] | None = None,
) -> SecretSearch:
    """Fails naming where each secret was found (never the secret itself); returns what was
    searched, so a caller can check the search covered what it should."""
    result = search(secrets, roots=roots, texts=texts)
    if result.findings:
        raise AssertionError("secrets were written down:\n" + result.describe())
    if not result.searched:
        raise AssertionError("nothing was searched: no file under the roots and no text")
    return result
