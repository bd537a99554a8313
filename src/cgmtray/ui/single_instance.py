"""One tray app per user and data folder: a lock file plus a local socket a second start asks."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QLockFile, QObject, QTimer, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

LOCK_FILE_NAME: Final = "cgm-tray.lock"
#: How long a second start waits for the first to answer, all tries together (real seconds).
ANSWER_TIMEOUT_S: Final = 5.0
#: Between two tries while the lock is held but nobody listens yet (the first is starting).
RETRY_S: Final = 0.1
#: A conversation with a second start: one short line each way.
MAX_LINE_BYTES: Final = 1024
#: A client that has not sent its line by then is dropped (milliseconds).
CONVERSATION_MS: Final = 3_000
#: Clients talked to at once; more are turned away at the door.
MAX_CONVERSATIONS: Final = 8
#: Unix socket paths must fit sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH_BYTES: Final = 100
ASK_PRESENT: Final = "present"
ACK: Final = b'{"ok": true}\n'


class Claim(enum.Enum):
    """What `SingleInstance.claim` found."""

    #: This process is the instance: it holds the lock and answers on the socket.
    OWNER = "owner"
    #: Another process is the instance and acknowledged our message: exit 0.
    HANDED_OVER = "handed_over"
    #: Another live process holds the lock but did not answer in time: do not start.
    NO_ANSWER = "no_answer"
    #: The lock file cannot be made at all (read-only or foreign folder): run unguarded.
    UNGUARDED = "unguarded"


def key_of(data_dir: Path) -> str:
    """A short name for a data folder: the same folder (however spelled) gives the same key."""
    real = os.path.realpath(data_dir)
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:16]


def server_name(data_dir: Path, environ: dict[str, str] | None = None) -> str:
    """The local socket's name for a data folder: on Linux a path in the user's runtime dir
    ($XDG_RUNTIME_DIR, else the data folder); on Windows a pipe name. Too long a path falls back
    to a bare name, which Qt puts in the temporary folder."""
    env = os.environ if environ is None else environ
    bare = f"cgm-tray-{key_of(data_dir)}"
    if sys.platform == "win32":  # pragma: no cover - a named pipe, per machine
        return bare
    runtime = env.get("XDG_RUNTIME_DIR", "")
    folder = Path(runtime) if runtime and Path(runtime).is_dir() else Path(data_dir)
    path = str(folder / f"{bare}.sock")
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES:
        return path
    return f"{bare}-{os.getuid()}"


class SingleInstance(QObject):
    """The instance guard of one data folder.

    `claim()` takes the lock (a `QLockFile` in the data folder: one owned by a dead process is
    taken over) and listens on the local socket; when another process holds it, `claim()` asks
    that one to present itself instead. The owner reads its clients asynchronously (a line of at
    most MAX_LINE_BYTES, dropped after CONVERSATION_MS), so nothing a client does blocks the GUI.

    Signals:
        asked(dict): a second start asked to be shown the running app (its message).
    """

    asked = Signal(dict)

    def __init__(
        self,
        data_dir: Path,
        *,
        name: str | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        conversation_ms: int = CONVERSATION_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._lock_path = Path(data_dir) / LOCK_FILE_NAME
        self._name = name if name is not None else server_name(Path(data_dir))
        self._answer_timeout_s = answer_timeout_s
        self._conversation_ms = conversation_ms
        self._lock = QLockFile(str(self._lock_path))
        # Stale only when its process is gone (by PID), never by age: the app runs for weeks.
        self._lock.setStaleLockTime(0)
        self._server: QLocalServer | None = None
        self._conversations: dict[QLocalSocket, _Conversation] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def lock_path(self) -> Path:
        return self._lock_path

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.isListening()

    # --- claiming -----------------------------------------------------------------------------

    def claim(self, message: dict[str, Any]) -> Claim:
        """Becomes the instance, or hands `message` to the one running (blocks for at most the
        answer timeout, before any window exists)."""
        deadline = time.monotonic() + self._answer_timeout_s
        while True:
            if self._lock.tryLock(0):
                self._listen()
                return Claim.OWNER
            if self._lock.error() != QLockFile.LockError.LockFailedError:
                log.warning(
                    "the instance lock cannot be made (%s): running without it",
                    self._lock.error().name,
                    extra={"event": "instance.unguarded"},
                )
                return Claim.UNGUARDED
            answered = self._ask(message, deadline)
            if answered is not None:
                return Claim.HANDED_OVER if answered else Claim.NO_ANSWER
            if time.monotonic() >= deadline:
                return Claim.NO_ANSWER
            time.sleep(RETRY_S)  # the owner has the lock but is not listening yet

    def _ask(self, message: dict[str, Any], deadline: float) -> bool | None:
        """True: acknowledged; False: connected but no (good) answer in time; None: nobody
        listens yet."""
        socket = QLocalSocket()
        try:
            socket.connectToServer(self._name)
            if not socket.waitForConnected(_ms_left(deadline)):
                return None
            socket.write(json.dumps(message).encode() + b"\n")
            if not socket.waitForBytesWritten(_ms_left(deadline)):
                return False
            reply = b""
            while b"\n" not in reply and len(reply) <= MAX_LINE_BYTES:
                if not socket.bytesAvailable() and not socket.waitForReadyRead(_ms_left(deadline)):
                    return False
                reply += bytes(socket.readAll().data())
            return _parse(reply.split(b"\n", 1)[0]).get("ok") is True
        finally:
            socket.abort()
            socket.deleteLater()

    def _listen(self) -> None:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.setMaxPendingConnections(MAX_CONVERSATIONS)
        QLocalServer.removeServer(self._name)  # a socket left by a killed instance
        if not server.listen(self._name):
            log.warning(
                "the instance socket cannot listen (%s): a second start will not reach this one",
                server.errorString(),
                extra={"event": "instance.unreachable"},
            )
            server.deleteLater()
            return
        server.newConnection.connect(self._on_new_connection)
        self._server = server

    # --- serving ------------------------------------------------------------------------------

    @Slot()
    def _on_new_connection(self) -> None:
        server = self._server
        while server is not None and server.hasPendingConnections():
            socket = server.nextPendingConnection()
            if len(self._conversations) >= MAX_CONVERSATIONS:
                socket.abort()
                socket.deleteLater()
                continue
            self._conversations[socket] = _Conversation(self, socket, self._conversation_ms)

    def _heard(self, conversation: _Conversation, line: bytes) -> None:
        message = _parse(line)
        if message.get("ask") != ASK_PRESENT:
            log.info("a client sent something else: ignored", extra={"event": "instance.garbage"})
            self._drop(conversation)
            return
        conversation.socket.write(ACK)
        conversation.socket.flush()
        conversation.socket.disconnectFromServer()
        self._forget(conversation)
        self.asked.emit(message)

    def _drop(self, conversation: _Conversation) -> None:
        conversation.socket.abort()
        self._forget(conversation)

    def _forget(self, conversation: _Conversation) -> None:
        conversation.open = False
        conversation.timer.stop()
        if self._conversations.pop(conversation.socket, None) is not None:
            conversation.socket.deleteLater()

    # --- end ----------------------------------------------------------------------------------

    def release(self) -> None:
        """Stops listening (the socket file goes) and unlocks; safe to call twice."""
        for conversation in list(self._conversations.values()):
            self._drop(conversation)
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None
        if self._lock.isLocked():
            self._lock.unlock()


class _Conversation:
    """One client of the owner: its bytes so far and the timer that drops it."""

    def __init__(self, owner: SingleInstance, socket: QLocalSocket, timeout_ms: int) -> None:
        self.owner = owner
        self.socket = socket
        self.buffer = b""
        self.open = True
        self.timer = QTimer(socket)
        self.timer.setSingleShot(True)
        self.timer.setInterval(timeout_ms)
        self.timer.timeout.connect(self._on_timeout)
        socket.readyRead.connect(self._on_ready_read)
        socket.disconnected.connect(self._on_disconnected)
        self.timer.start()
        if socket.bytesAvailable():
            self._on_ready_read()

    def _on_ready_read(self) -> None:
        if not self.open:
            return
        self.buffer += bytes(self.socket.readAll().data())
        line, newline, _rest = self.buffer.partition(b"\n")
        if newline and len(line) <= MAX_LINE_BYTES:
            self.owner._heard(self, line)
        elif len(self.buffer) > MAX_LINE_BYTES:
            log.info("a client sent too long a line: dropped", extra={"event": "instance.garbage"})
            self.owner._drop(self)

    def _on_timeout(self) -> None:
        log.info("a client sent nothing in time: dropped", extra={"event": "instance.timeout"})
        self.owner._drop(self)

    def _on_disconnected(self) -> None:
        if self.open:
            self.owner._forget(self)


def _parse(line: bytes) -> dict[str, Any]:
    """A JSON object from one line; {} for anything else."""
    with contextlib.suppress(ValueError):
        value = json.loads(line.decode("utf-8"))
        if isinstance(value, dict):
            return value
    return {}


def _ms_left(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))
