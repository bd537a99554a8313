"""CGM Tray: a Dexcom CGM reading, always in sight in the system tray."""

from importlib.metadata import PackageNotFoundError, version

APP_ID = "io.github.cgmtray.CgmTray"
APP_NAME = "CGM Tray"

try:
    __version__ = version("cgm-tray")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"
