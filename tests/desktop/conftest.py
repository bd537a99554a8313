"""Desktop-tier fixtures: a private session bus and a recording notification server on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy names the helper by its path; pytest puts tests/desktop on sys.path
    from tests.desktop.dbus_fixtures import PrivateBus, RecordingNotificationServer
else:
    from dbus_fixtures import PrivateBus, RecordingNotificationServer


@pytest.fixture
def private_bus() -> Iterator[PrivateBus]:
    """A dbus-daemon of the test's own; stopped when the test ends."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (Debian package: dbus)")
    bus = PrivateBus()
    yield bus
    bus.stop()


@pytest.fixture
def notification_server(private_bus: PrivateBus) -> Iterator[RecordingNotificationServer]:
    """A recording org.freedesktop.Notifications that advertises actions."""
    server = RecordingNotificationServer(private_bus.address)
    yield server
    server.stop()
