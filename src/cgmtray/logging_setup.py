"""One place that configures logging: human or JSON lines, and redaction of secrets and ids."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import quote, quote_plus

from cgmtray.storage.safe_open import PRIVATE_FILE_MODE, check_not_link, describe, open_fd

#: The log file's size before it rotates (three older files are kept).
LOG_MAX_BYTES: Final = 1_000_000
LOG_BACKUPS: Final = 3
#: Test hook: a smaller rotation size (bytes), to force a rotation in an end-to-end test.
LOG_MAX_BYTES_ENV: Final = "CGMTRAY_TEST_LOG_MAX_BYTES"

#: Anything shaped like a UUID (session ids, account ids) is replaced before a line is written.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REDACTED: Final = "<redacted>"

#: Record attributes that never reach a handler, whatever the caller passed in `extra`.
_FORBIDDEN_KEYS: Final = frozenset(
    {"password", "session_id", "sessionId", "account_id", "accountId", "username", "body"}
)
#: Record attributes carrying glucose values: written only with --debug.
GLUCOSE_KEYS: Final = frozenset({"mgdl", "value_mgdl", "values", "glucose"})

#: The standard LogRecord attributes; everything else on a record came from `extra`.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()


def _written_forms(secret: str) -> set[str]:
    """The secret as text may carry it: itself, and escaped as in a repr, JSON or a URL."""
    return {
        secret,
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


def register_secret(secret: str) -> None:
    """Makes every later log line replace `secret` (a password, a username) with <redacted>,
    also where it appears escaped (an error's repr of a request body, a URL)."""
    if len(secret) >= 3:
        with _secrets_lock:
            _secrets.update(_written_forms(secret))


def redact(text: str) -> str:
    """The text with registered secrets and anything shaped like an id removed."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return _UUID.sub(REDACTED, text)


class RedactionFilter(logging.Filter):
    """Scrubs secrets from messages and extras; drops glucose values unless debugging."""

    def __init__(self, *, debug: bool) -> None:
        super().__init__()
        self._debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        for key in list(vars(record)):
            if key in _STANDARD_ATTRS:
                continue
            if key in _FORBIDDEN_KEYS or (key in GLUCOSE_KEYS and not self._debug):
                delattr(record, key)
            else:
                value = getattr(record, key)
                if isinstance(value, str):
                    setattr(record, key, redact(value))
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with at least `event` and `ts`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = extras(record)
        event = fields.pop("event", None) or "log"
        line: dict[str, Any] = {
            "event": event,
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        if message:
            line["msg"] = message
        line.update(fields)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """`time level logger: message [event key=value ...]` for people reading a terminal or file."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = extras(record)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return text


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that is owner-only (0600) from its first byte, also each new file
    after a rotation, and never opened through a symlink (O_NOFOLLOW)."""

    def _open(self) -> io.TextIOWrapper:
        path = Path(self.baseFilename)
        fd = open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    _complained = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """A line that cannot be written (a full disk) is said once on stderr, briefly: never a
        traceback per line."""
        if not self._complained:
            self._complained = True
            error = sys.exc_info()[1]
            reason = describe(error) if isinstance(error, OSError) else type(error).__name__
            sys.stderr.write(f"cgm-tray: the log file could not be written ({reason})\n")

    def rotate(self, source: str, dest: str) -> None:
        # The backups are renamed, never written: refuse to rename a symlink planted there.
        check_not_link(Path(source))
        super().rotate(source, dest)


def _log_max_bytes() -> int:
    text = os.environ.get(LOG_MAX_BYTES_ENV, "")
    return int(text) if text.isdigit() and int(text) > 0 else LOG_MAX_BYTES


def configure(
    *,
    json_lines: bool = False,
    debug: bool = False,
    log_file: Path | None = None,
    stream: TextIO | None = None,
) -> str | None:
    """Sets up the root logger once: stderr (JSON or human) and, optionally, a rotating file.

    Returns a plain sentence when the log file cannot be used (a read-only folder, a symlink):
    the app then logs to stderr only."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    redaction = RedactionFilter(debug=debug)

    console = logging.StreamHandler(stream if stream is not None else sys.stderr)
    console.setFormatter(JsonFormatter() if json_lines else HumanFormatter())
    console.addFilter(redaction)
    console.setLevel(logging.DEBUG if debug else (logging.INFO if json_lines else logging.WARNING))
    root.addHandler(console)

    problem = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            file_handler = PrivateRotatingFileHandler(
                log_file, maxBytes=_log_max_bytes(), backupCount=LOG_BACKUPS, encoding="utf-8"
            )
        except OSError as error:
            problem = (
                f"The log file {log_file} cannot be written ({describe(error)}); "
                "logging to standard error only."
            )
        else:
            file_handler.setFormatter(HumanFormatter())
            file_handler.addFilter(redaction)
            root.addHandler(file_handler)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if problem is not None:
        logging.getLogger(__name__).warning(problem, extra={"event": "files.log_unusable"})
    return problem
