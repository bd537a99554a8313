"""ui tier: Qt offscreen, no thread or active timer may outlive a test, and a Qt warning fails the
test (pyproject's qt_log_level_fail)."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.exceptions import TimeoutError as QtBotTimeout
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

#: pytest-qt's `qtbot.waitSignal` on a signal the worker emits from its QThread runs the blocker's
#: clean-up on that thread, which stops the blocker's own timeout timer from the wrong thread: Qt
#: says so. The harness, not the app, so it is allowed in the modules that wait on worker signals
#: that way, and nowhere else (the app stopping a timer from the wrong thread still fails a test).
_PYTEST_QT_CROSS_THREAD = "^QObject::killTimer: Timers cannot be stopped from another thread$"
_WAIT_ON_WORKER_SIGNALS = frozenset(
    {"test_worker.py", "test_worker_hostile.py", "test_time_faults.py", "test_fuzz_worker.py"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here and item.path.name in _WAIT_ON_WORKER_SIGNALS:
            item.add_marker(pytest.mark.qt_log_ignore(_PYTEST_QT_CROSS_THREAD))


def _live_qt_objects() -> list[object]:
    """Active QTimers and running QThreads still reachable from Python."""
    from PySide6.QtCore import QThread, QTimer

    gc.collect()
    live: list[object] = []
    for obj in gc.get_objects():
        try:
            if (isinstance(obj, QTimer) and obj.isActive()) or (
                isinstance(obj, QThread) and obj.isRunning()
            ):
                live.append(obj)
        except RuntimeError:  # the C++ object is already gone
            continue
    return live


def _still_running(thread: threading.Thread) -> bool:
    """Whether a thread still runs. Python code run on a thread Python did not start (a QThread,
    Qt's pools) leaves a _DummyThread that claims to be alive forever: ask the kernel instead."""
    if isinstance(thread, threading._DummyThread):
        native_id = thread.native_id
        return native_id is not None and Path(f"/proc/self/task/{native_id}").exists()
    return thread.is_alive()


@pytest.fixture(autouse=True)
def _no_leaked_threads_or_timers(qapp: object, qtbot: QtBot) -> Iterator[None]:
    before = set(threading.enumerate())
    qt_before = {id(t) for t in _live_qt_objects()}
    yield
    from PySide6.QtCore import QCoreApplication

    QCoreApplication.processEvents()

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and _still_running(t)]

    # A thread that finished (QThread.wait returned) may take a moment to leave the kernel's
    # list on a busy machine: wait for that, bounded only against a thread that never ends.
    with contextlib.suppress(QtBotTimeout):
        qtbot.waitUntil(lambda: not leaked(), timeout=30_000)
    assert leaked() == [], f"threads outlived the test: {leaked()}"
    live = [t for t in _live_qt_objects() if id(t) not in qt_before]
    assert live == [], f"QTimers or QThreads outlived the test: {live}"
