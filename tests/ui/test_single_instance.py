"""One instance per data folder: the lock and the socket, a second start's message, a lock left by
a killed process, clients that send garbage or nothing; what the running app shows when asked."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QLockFile
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from pytestqt.qtbot import QtBot

import cgmtray
from cgmtray.storage import paths as app_paths
from cgmtray.ui.background import BackgroundTask
from cgmtray.ui.session import AppSession
from cgmtray.ui.single_instance import (
    LOCK_FILE_NAME,
    MAX_LINE_BYTES,
    MAX_SOCKET_PATH_BYTES,
    Claim,
    SingleInstance,
    server_name,
)

#: Generous bounds for a busy machine (real milliseconds / seconds).
WAIT_MS = 60_000  # a bound on a hang, never a measure of speed
PROCESS_S = 30.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def short_name() -> Iterator[Callable[[], str]]:
    """Socket names in a short private folder (pytest's tmp paths can be too long for one)."""
    with tempfile.TemporaryDirectory(prefix="ci-") as folder:
        Path(folder).chmod(0o700)
        counter = iter(range(100))

        def make() -> str:
            return str(Path(folder) / f"s{next(counter)}")

        yield make


@pytest.fixture
def guards() -> Iterator[list[SingleInstance]]:
    """Every guard a test makes is released at its end."""
    made: list[SingleInstance] = []
    yield made
    for guard in made:
        guard.release()


def _guard(
    guards: list[SingleInstance], data_dir: Path, name: str, **options: Any
) -> SingleInstance:
    guard = SingleInstance(data_dir, name=name, **options)
    guards.append(guard)
    return guard


def _second_start(qtbot: QtBot, data_dir: Path, name: str, message: dict[str, Any]) -> str:
    """Claims from another process while this one's event loop serves the owner, as a second
    start of the app does; what that process's claim found."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from cgmtray.ui.single_instance import SingleInstance\n"
        "app = QCoreApplication([])\n"
        "guard = SingleInstance(Path(sys.argv[1]), name=sys.argv[2])\n"
        "print(guard.claim(json.loads(sys.argv[3])).value, flush=True)\n"
        "guard.release()\n"
    )
    second = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir), name, json.dumps(message)],
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=WAIT_MS)
        out, _ = second.communicate(timeout=PROCESS_S)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate(timeout=PROCESS_S)
    assert second.returncode == 0
    return out.strip()


def _child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(Path(cgmtray.__file__).parents[1]))


# --- the lock and the socket ---------------------------------------------------------------------


def test_two_data_folders_are_two_instances(
    tmp_path: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    first = _guard(guards, tmp_path / "a", short_name())
    second = _guard(guards, tmp_path / "b", short_name())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert first.claim({"ask": "present"}) is Claim.OWNER
    assert second.claim({"ask": "present"}) is Claim.OWNER
    assert first.listening
    assert second.listening


def test_a_second_start_on_the_same_folder_hands_over_and_the_first_hears_it(
    qtbot: QtBot, data_dir: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    name = short_name()
    first = _guard(guards, data_dir, name)
    assert first.claim({"ask": "present"}) is Claim.OWNER
    with qtbot.waitSignal(first.asked, timeout=WAIT_MS) as heard:
        outcome = _second_start(qtbot, data_dir, name, {"ask": "present", "pid": 4242})
    assert outcome == Claim.HANDED_OVER.value
    assert heard.args == [{"ask": "present", "pid": 4242}]
    # The second never took the lock: its release (at its exit) left the first in place.
    assert (data_dir / LOCK_FILE_NAME).exists()
    assert first.listening
    # In one process, a second guard of the same folder sees it taken (and nobody answers it
    # here, as this thread is the one that would answer).
    same = _guard(guards, data_dir, name, answer_timeout_s=0.5)
    assert same.claim({"ask": "present"}) is Claim.NO_ANSWER
    assert first.listening


def test_the_socket_is_the_owners_only_and_release_removes_socket_and_lock(
    data_dir: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    name = short_name()
    guard = _guard(guards, data_dir, name)
    assert guard.claim({"ask": "present"}) is Claim.OWNER
    mode = Path(name).stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert mode & 0o077 == 0, oct(mode)
    assert (data_dir / LOCK_FILE_NAME).exists()
    guard.release()
    assert not Path(name).exists()
    assert not (data_dir / LOCK_FILE_NAME).exists()
    guard.release()  # twice is harmless


def _holder_script() -> str:
    return (
        "import sys\n"
        "from pathlib import Path\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from cgmtray.ui.single_instance import SingleInstance\n"
        "app = QCoreApplication([])\n"
        "guard = SingleInstance(Path(sys.argv[1]), name=sys.argv[2])\n"
        "print(guard.claim({'ask': 'present'}).value, flush=True)\n"
        "sys.stdin.read()\n"
    )


def test_a_lock_and_socket_left_by_a_killed_instance_are_taken_over(
    qtbot: QtBot, data_dir: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    name = short_name()
    env = _child_env()
    holder = subprocess.Popen(
        [sys.executable, "-c", _holder_script(), str(data_dir), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == Claim.OWNER.value
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=PROCESS_S) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=PROCESS_S)
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()
    # What kill -9 leaves behind: the lock file naming a dead process, and the socket file.
    assert (data_dir / LOCK_FILE_NAME).exists()
    assert Path(name).exists()

    heir = _guard(guards, data_dir, name)
    assert heir.claim({"ask": "present"}) is Claim.OWNER
    assert heir.listening
    # ... and it is really the instance now: the next start reaches it.
    with qtbot.waitSignal(heir.asked, timeout=WAIT_MS):
        outcome = _second_start(qtbot, data_dir, name, {"ask": "present"})
    assert outcome == Claim.HANDED_OVER.value


def test_a_live_holder_that_does_not_answer_is_not_replaced(
    data_dir: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    name = short_name()
    held = QLockFile(str(data_dir / LOCK_FILE_NAME))
    assert held.tryLock(0)
    try:
        # Nobody listens (the first is hung before listening): no answer, no takeover.
        second = _guard(guards, data_dir, name, answer_timeout_s=1.0)
        assert second.claim({"ask": "present"}) is Claim.NO_ANSWER
        assert not second.listening
        # Somebody listens but never answers (the first's GUI is stuck): no answer either.
        mute = QLocalServer()
        assert mute.listen(name)
        try:
            third = _guard(guards, data_dir, name, answer_timeout_s=1.0)
            assert third.claim({"ask": "present"}) is Claim.NO_ANSWER
        finally:
            mute.close()
        assert held.isLocked()
    finally:
        held.unlock()


# --- clients that do not speak the protocol ------------------------------------------------------


def _client(name: str) -> QLocalSocket:
    client = QLocalSocket()
    client.connectToServer(name)
    return client


def _dropped(qtbot: QtBot, client: QLocalSocket) -> None:
    qtbot.waitUntil(
        lambda: client.state() == QLocalSocket.LocalSocketState.UnconnectedState, timeout=WAIT_MS
    )


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello\n",
        b"\xff\xfe\x00not utf-8\n",
        b'["present"]\n',
        b'{"ask": "quit"}\n',
        b"x" * (MAX_LINE_BYTES + 10),  # too long, and no end of line
    ],
    ids=["text", "bytes", "array", "other-ask", "too-long"],
)
def test_garbage_is_dropped_without_an_ask_and_the_next_client_is_heard(
    qtbot: QtBot,
    data_dir: Path,
    guards: list[SingleInstance],
    short_name: Callable[[], str],
    garbage: bytes,
) -> None:
    name = short_name()
    owner = _guard(guards, data_dir, name)
    assert owner.claim({"ask": "present"}) is Claim.OWNER
    heard: list[dict[str, Any]] = []
    owner.asked.connect(heard.append)

    bad = _client(name)
    bad.write(garbage)
    _dropped(qtbot, bad)
    assert bytes(bad.readAll().data()) == b""  # no acknowledgement
    bad.deleteLater()

    good = _client(name)
    good.write(b'{"ask": "present"}\n')
    qtbot.waitUntil(lambda: b"\n" in bytes(good.peek(64).data()), timeout=WAIT_MS)
    assert bytes(good.readLine().data()) == b'{"ok": true}\n'
    _dropped(qtbot, good)
    good.deleteLater()
    assert heard == [{"ask": "present"}]


def test_a_client_that_sends_nothing_is_dropped_and_does_not_block_others(
    qtbot: QtBot, data_dir: Path, guards: list[SingleInstance], short_name: Callable[[], str]
) -> None:
    name = short_name()
    owner = _guard(guards, data_dir, name, conversation_ms=2_000)
    assert owner.claim({"ask": "present"}) is Claim.OWNER
    heard: list[dict[str, Any]] = []
    owner.asked.connect(heard.append)
    silent = _client(name)
    half = _client(name)
    half.write(b'{"ask": "pres')  # half a line, then nothing

    good = _client(name)
    good.write(b'{"ask": "present"}\n')
    qtbot.waitUntil(lambda: heard == [{"ask": "present"}], timeout=WAIT_MS)
    _dropped(qtbot, silent)
    _dropped(qtbot, half)
    assert heard == [{"ask": "present"}]
    for client in (silent, half, good):
        client.abort()
        client.deleteLater()


# --- the socket's name ---------------------------------------------------------------------------


def test_the_socket_lives_in_the_runtime_dir_named_after_the_data_folder() -> None:
    with tempfile.TemporaryDirectory(prefix="sn-") as folder:
        root = Path(folder)
        runtime = root / "rt"
        runtime.mkdir()
        data = root / "d"
        data.mkdir()
        (root / "link").symlink_to(data)
        env = {"XDG_RUNTIME_DIR": str(runtime)}
        name = server_name(data, env)
        assert Path(name).parent == runtime
        assert len(os.fsencode(name)) <= MAX_SOCKET_PATH_BYTES
        assert server_name(root / "link", env) == name  # one folder, however it is spelled
        assert server_name(root / "other", env) != name
        # Without a runtime dir (or with one that does not exist) it goes in the data folder.
        assert Path(server_name(data, {})).parent == data
        assert Path(server_name(data, {"XDG_RUNTIME_DIR": str(root / "gone")})).parent == data


def test_too_long_a_folder_gives_a_short_bare_name(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    name = server_name(deep, {})
    assert "/" not in name
    assert len(name) < 60


# --- what the running app shows ------------------------------------------------------------------


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "demo": False,
        "share_url": None,
        "password_stdin": False,
        "speed": 1.0,
        "clock_epoch": None,
        "status_window": True,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture
def paths(tmp_path: Path) -> app_paths.AppPaths:
    return app_paths.ensure(app_paths.app_paths(tmp_path / "base"))


def test_asked_during_the_first_run_the_welcome_window_comes_back(
    qtbot: QtBot, paths: app_paths.AppPaths
) -> None:
    from cgmtray.ui.first_run import FirstRunFlow

    with contextlib.ExitStack() as stack:
        session = AppSession(_args(), paths, stack)
        session.begin()
        flow = session._first_run
        assert isinstance(flow, FirstRunFlow)
        welcome = flow.welcome
        assert welcome.isVisible()
        welcome.showMinimized()
        assert session.present() == "welcome"
        assert welcome.isVisible()
        assert not welcome.isMinimized()
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        assert session.stop()
        welcome.hide()
        welcome.deleteLater()


def test_asked_while_running_without_a_tray_the_status_window_comes_back(
    qtbot: QtBot, paths: app_paths.AppPaths
) -> None:
    with contextlib.ExitStack() as stack:
        session = AppSession(_args(demo=True), paths, stack)
        session.begin()
        controller = session._controller
        assert controller is not None
        window = controller._tray.status_window
        assert window is not None
        window.close()  # closing it minimizes it: the app keeps running
        assert window.isMinimized()
        assert session.present() == "status_window"
        assert window.isVisible()
        assert not window.isMinimized()
        qtbot.waitUntil(lambda: BackgroundTask.in_flight() == 0, timeout=WAIT_MS)
        assert session.stop()
