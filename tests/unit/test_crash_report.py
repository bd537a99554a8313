"""Crash reports are scrubbed: an uncaught error or a Qt message that holds the password or an id
is reported (to stderr and the log file) without them, and the app keeps running.

Each case runs the app's own excepthook and Qt message handler (`cgmtray.ui.app`) in a child
process, so this tier's process never loads Qt and its own hooks stay as they were. Those cases
skip where PySide6 cannot be imported (the unit run with Qt blocked); the redaction itself is
checked everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus

import pytest
from tests.support.qt import qt_importable
from tests.support.secrets import assert_no_secrets, find_secrets

from cgmtray import logging_setup

#: Both quotes, a backslash, % and non-ASCII: its repr, JSON and URL forms differ from it.
PASSWORD: Final = "Crash 'n' \"burn\" \\ 100% ñ"
SESSION_ID: Final = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ACCOUNT_ID: Final = "0f9e8d7c-6b5a-4c3d-8e1f-a0b9c8d7e6f5"
SECRETS: Final = {"password": PASSWORD, "session id": SESSION_ID, "account id": ACCOUNT_ID}
TIMEOUT_S: Final = 60.0

#: The child starts the app's QApplication: without PySide6 there is nothing to check.
needs_qt: Final = pytest.mark.skipif(
    not qt_importable(), reason="the child starts Qt, and PySide6 cannot be imported here"
)

#: The child: the app's logging, hooks and application object, then one way to fail.
CHILD: Final = r"""
import json, sys, threading
from pathlib import Path
from urllib.parse import quote

from PySide6.QtCore import QTimer, qCritical, qWarning

from cgmtray import logging_setup
from cgmtray.ui import app

password, session_id, account_id, log_file, how = sys.argv[1:6]
logging_setup.configure(json_lines=True, debug=True, log_file=Path(log_file))
logging_setup.register_secret(password)
qt_app = app._make_application()
app._install_excepthook()


def sign_in_failed():
    body = {"accountId": account_id, "password": password}
    try:
        raise KeyError(password)
    except KeyError as cause:
        error = RuntimeError(
            f"sign-in failed: session {session_id.upper()} body {body!r} sent {json.dumps(body)} "
            f"or {json.dumps(body, ensure_ascii=False)} to /Login?password={quote(password)}"
        )
        error.add_note(f"the password was {password}")
        raise error from cause


def still_running():
    print("still running", flush=True)
    qt_app.exit(0)


if how == "main":
    sign_in_failed()
elif how == "slot":
    QTimer.singleShot(0, sign_in_failed)
    QTimer.singleShot(0, still_running)
    sys.exit(qt_app.exec())
elif how == "thread":
    worker = threading.Thread(target=sign_in_failed, name="some-thread")
    worker.start()
    worker.join()
    still_running()
elif how == "qt":
    qWarning(f"QSomething: session {session_id} for {password!r}")
    qCritical(f"QOther: account {account_id} password {json.dumps(password)}")
    still_running()
"""


@dataclass(frozen=True)
class Child:
    code: int
    stdout: str
    stderr: str
    log_file: Path

    @property
    def logged(self) -> str:
        return self.log_file.read_text(encoding="utf-8")


def _run_child(tmp_path: Path, how: str) -> Child:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env |= {"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home")}
    log_file = tmp_path / "log" / "cgm-tray.log"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, PASSWORD, SESSION_ID, ACCOUNT_ID, str(log_file), how],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
        cwd=tmp_path,
    )
    return Child(result.returncode, result.stdout, result.stderr, log_file)


def _assert_scrubbed(child: Child, tmp_path: Path) -> None:
    assert_no_secrets(
        SECRETS,
        roots=[tmp_path / "log"],
        texts={"stdout": child.stdout, "stderr": child.stderr},
    )


@needs_qt
@pytest.mark.parametrize("how", ["slot", "thread"])
def test_an_uncaught_error_is_reported_without_secrets_and_the_app_keeps_running(
    tmp_path: Path, how: str
) -> None:
    child = _run_child(tmp_path, how)
    assert child.code == 0, child.stderr
    assert child.stdout.strip() == "still running"
    for report in (child.stderr, child.logged):
        assert "unexpected error" in report
        assert "RuntimeError: sign-in failed: session <redacted> body" in report
        assert "KeyError" in report  # the cause is reported too
        assert "the password was <redacted>" in report  # and the note
    _assert_scrubbed(child, tmp_path)


@needs_qt
def test_an_uncaught_error_at_the_top_level_is_reported_without_secrets(tmp_path: Path) -> None:
    child = _run_child(tmp_path, "main")
    assert child.code == 1
    assert "RuntimeError: sign-in failed" in child.logged
    _assert_scrubbed(child, tmp_path)


@needs_qt
def test_qt_messages_go_through_the_redaction(tmp_path: Path) -> None:
    child = _run_child(tmp_path, "qt")
    assert child.code == 0, child.stderr
    for report in (child.stderr, child.logged):
        assert "QSomething: session <redacted> for" in report
        assert "QOther: account <redacted> password" in report
    _assert_scrubbed(child, tmp_path)


def test_a_registered_secret_is_redacted_in_every_form_a_report_may_carry_it() -> None:
    secret = "Only 'in' \"tests\" \\ 42% é"
    logging_setup.register_secret(secret)
    body = {"password": secret}
    report = (
        f"{secret} | {body!r} | {body!a} | {json.dumps(body)} | "
        f"{json.dumps(body, ensure_ascii=False)} | ?password={quote(secret)} | {quote_plus(secret)}"
    )
    scrubbed = logging_setup.redact(report)
    assert find_secrets({"secret": secret}, texts={"report": scrubbed}) == []
    assert scrubbed.count(logging_setup.REDACTED) == 7
