"""The frozen app's entry script (PyInstaller): runs `cgmtray.cli:main` as `cgm-tray` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def give_windowed_builds_streams() -> None:
    """A windowed build (Windows cgm-tray.exe, the macOS .app) starts with sys.stdout and
    sys.stderr set to None: send them to the null device so a print or a log line never fails."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, Path(os.devnull).open("w", encoding="utf-8"))  # noqa: SIM115


def restore_library_path_for_children() -> None:
    """Linux: the bootloader put the bundle's _internal folder first on LD_LIBRARY_PATH (keeping
    the original in LD_LIBRARY_PATH_ORIG). This process has already read it (the dynamic loader
    reads it once, at start); the programs it starts (the alarm's pw-play, paplay or aplay,
    xdg-open) must get the system's libraries, not the bundle's copies, or they may fail and
    leave an alarm silent."""
    if not sys.platform.startswith("linux"):
        return
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


if __name__ == "__main__":
    give_windowed_builds_streams()
    restore_library_path_for_children()
    from cgmtray.cli import main

    sys.exit(main())
