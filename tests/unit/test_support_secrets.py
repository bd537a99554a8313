"""The secrets search of tests/support finds planted secrets in every form, and names only where."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from tests.support.secrets import (
    assert_no_secrets,
    find_secrets,
    search,
    secret_forms,
)

PASSWORD = 'pa ss "wörd" 100% \\ ünï'
SESSION_ID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
SECRETS = {"password": PASSWORD, "session id": SESSION_ID}


def _plant(root: Path, name: str, data: bytes) -> Path:
    path = root / "deep" / "er" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"noise before " + data + b" noise after")
    return path


@pytest.mark.parametrize(
    ("form", "encoded"),
    [
        ("utf-8", PASSWORD.encode()),
        ("utf-16-le", PASSWORD.encode("utf-16-le")),
        ("utf-16-be", PASSWORD.encode("utf-16-be")),
        ("percent-encoded", quote(PASSWORD, safe="").encode()),
        ("percent-encoded", quote(PASSWORD, safe="").lower().encode()),
        ("form-encoded", quote_plus(PASSWORD, safe="").encode()),
        ("json-escaped", json.dumps(PASSWORD)[1:-1].encode()),
        ("json-escaped", json.dumps(PASSWORD)[1:-1].upper().encode()),
        ("json-escaped-unicode", json.dumps(PASSWORD, ensure_ascii=False)[1:-1].encode()),
        ("python-repr", repr(PASSWORD)[1:-1].encode()),
        ("python-ascii", ascii(PASSWORD)[1:-1].encode()),
    ],
)
def test_a_planted_password_is_found_in_each_form(
    tmp_path: Path, form: str, encoded: bytes
) -> None:
    path = _plant(tmp_path, "cache.bin", encoded)
    findings = find_secrets(SECRETS, roots=[tmp_path])
    assert [(f.label, f.form, f.where) for f in findings] == [("password", form, str(path))]
    assert findings[0].offset == len(b"noise before ")


@pytest.mark.parametrize(
    ("form", "encoded"),
    [
        ("utf-8", SESSION_ID.encode()),
        ("utf-8", SESSION_ID.upper().encode()),
        ("utf-16-le", SESSION_ID.upper().encode("utf-16-le")),
        ("uuid-hex", uuid.UUID(SESSION_ID).hex.upper().encode()),
        ("uuid-bytes", uuid.UUID(SESSION_ID).bytes),
        ("uuid-bytes-le", uuid.UUID(SESSION_ID).bytes_le),
    ],
)
def test_a_planted_uuid_is_found_in_any_case_and_as_raw_bytes(
    tmp_path: Path, form: str, encoded: bytes
) -> None:
    _plant(tmp_path, "state", encoded)
    findings = find_secrets(SECRETS, roots=[tmp_path])
    assert [(f.label, f.form) for f in findings] == [("session id", form)]


def test_secrets_written_by_sqlite_are_found_in_the_database_or_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "data" / "history.sqlite3"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (a TEXT, b BLOB)")
        conn.execute("INSERT INTO t VALUES (?, ?)", (PASSWORD, uuid.UUID(SESSION_ID).bytes))
        conn.commit()
        # The connection stays open: the rows are in the -wal file, not yet in the database.
        assert (tmp_path / "data" / "history.sqlite3-wal").exists()
        found = search(SECRETS, roots=[tmp_path])
    finally:
        conn.close()
    assert {(f.label, Path(f.where).name) for f in found.findings} >= {
        ("password", "history.sqlite3-wal"),
        ("session id", "history.sqlite3-wal"),
    }
    assert {Path(p).name for p in found.searched} >= {"history.sqlite3", "history.sqlite3-wal"}


def test_texts_are_searched_as_well_as_files(tmp_path: Path) -> None:
    findings = find_secrets(
        SECRETS,
        texts={"stdout": "all fine", "stderr": f'{{"msg": "id {SESSION_ID.upper()}"}}'},
    )
    assert [(f.label, f.where) for f in findings] == [("session id", "stderr")]


def test_a_clean_tree_has_no_findings_and_every_file_was_searched(tmp_path: Path) -> None:
    for name in ("a.log", "b.toml", "sub/c.sqlite3"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("region = 'us'\nusername = 'someone'\n", encoding="utf-8")
    result = assert_no_secrets(SECRETS, roots=[tmp_path, tmp_path / "missing"], texts={"out": ""})
    assert result.findings == []
    assert sorted(Path(p).name for p in result.searched if p != "out") == [
        "a.log",
        "b.toml",
        "c.sqlite3",
    ]
    assert "out" in result.searched


def test_the_failure_names_where_but_never_the_secret(tmp_path: Path) -> None:
    _plant(tmp_path, "settings.toml", PASSWORD.encode())
    with pytest.raises(AssertionError) as failure:
        assert_no_secrets(SECRETS, roots=[tmp_path])
    message = str(failure.value)
    assert "password (utf-8) in" in message
    assert "settings.toml" in message
    assert find_secrets(SECRETS, texts={"message": message}) == []


def test_a_search_for_nothing_or_for_a_tiny_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty search"):
        find_secrets([], roots=[tmp_path])
    with pytest.raises(ValueError, match="at least 4"):
        find_secrets(["abc"], roots=[tmp_path])
    with pytest.raises(AssertionError, match="nothing was searched"):
        assert_no_secrets(["a-long-secret"], roots=[tmp_path / "missing"])


def test_plain_lists_of_secrets_are_labelled_by_position(tmp_path: Path) -> None:
    findings = find_secrets(["first-one", SESSION_ID], texts={"log": f"x {SESSION_ID} y"})
    assert [(f.label, f.form) for f in findings] == [("secret #2", "utf-8")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_fifos_and_symlinks_are_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text(PASSWORD, encoding="utf-8")
    try:
        (tmp_path / "link").symlink_to(outside)
        result = search(SECRETS, roots=[tmp_path])
    finally:
        outside.unlink()
    assert result.findings == []
    assert result.searched == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    locked = tmp_path / "locked.log"
    locked.write_text("anything", encoding="utf-8")
    locked.chmod(0)
    try:
        findings = find_secrets(SECRETS, roots=[tmp_path])
    finally:
        locked.chmod(0o600)
    assert [(f.label, f.where) for f in findings] == [("(unreadable)", str(locked))]


def test_the_forms_of_an_ascii_secret_are_not_repeated() -> None:
    forms = secret_forms("plain-ascii-secret")
    assert list(forms) == ["utf-8", "utf-16-le", "utf-16-be"]
