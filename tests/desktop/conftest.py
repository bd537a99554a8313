"""Desktop-tier fixtures: a private session bus, a recording notification server on it, and an
X display with a real XEmbed tray host (Xvfb + trayer) or a StatusNotifierWatcher. They live in
tests/support/xdesktop.py, shared with the package tier."""

from __future__ import annotations

from tests.support.xdesktop import notification_server, private_bus, sni_desktop, tray_desktop

__all__ = ["notification_server", "private_bus", "sni_desktop", "tray_desktop"]
