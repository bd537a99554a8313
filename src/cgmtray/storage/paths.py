"""Every directory and file the app writes to, from platformdirs or one --basedir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_DIR_NAME = "cgm-tray"
SETTINGS_FILE_NAME = "settings.toml"
HISTORY_DB_NAME = "history.sqlite3"
LOG_FILE_NAME = "cgm-tray.log"

#: Owner-only: the directories hold the account name and glucose history.
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The four directories the app uses, and the well-known files inside them."""

    config_dir: Path
    data_dir: Path
    log_dir: Path
    cache_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / SETTINGS_FILE_NAME

    @property
    def history_db(self) -> Path:
        return self.data_dir / HISTORY_DB_NAME

    @property
    def log_file(self) -> Path:
        return self.log_dir / LOG_FILE_NAME

    def all_dirs(self) -> tuple[Path, ...]:
        return (self.config_dir, self.data_dir, self.log_dir, self.cache_dir)


def app_paths(basedir: Path | None = None) -> AppPaths:
    """The platform's per-user directories, or four folders under `basedir` when given."""
    if basedir is not None:
        root = Path(basedir).expanduser().absolute()
        return AppPaths(
            config_dir=root / "config",
            data_dir=root / "data",
            log_dir=root / "log",
            cache_dir=root / "cache",
        )
    dirs = platformdirs.PlatformDirs(appname=APP_DIR_NAME, appauthor=False)
    return AppPaths(
        config_dir=Path(dirs.user_config_dir),
        data_dir=Path(dirs.user_data_dir),
        log_dir=Path(dirs.user_log_dir),
        cache_dir=Path(dirs.user_cache_dir),
    )


def ensure(paths: AppPaths) -> AppPaths:
    """Creates the directories if missing; on POSIX they are made (and kept) owner-only (0700).

    A folder that is a symlink (a dotfiles manager's) is used: the files inside are what the
    app refuses to follow."""
    for directory in paths.all_dirs():
        directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        if os.name == "posix":
            directory.chmod(PRIVATE_DIR_MODE)
    return paths


def prepare(paths: AppPaths) -> list[str]:
    """ensure() folder by folder, never raising: a plain sentence for each folder that cannot
    be made or kept private (read-only, full, not ours). The app then runs without what that
    folder holds (history, saved settings, the log file), from memory."""
    problems: list[str] = []
    for directory, without in zip(paths.all_dirs(), _WITHOUT, strict=True):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            if os.name == "posix" and (directory.stat().st_mode & 0o777) != PRIVATE_DIR_MODE:
                directory.chmod(PRIVATE_DIR_MODE)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            problems.append(f"The folder {directory} cannot be used ({reason}); {without}.")
            continue
        if not os.access(directory, os.W_OK | os.X_OK):  # a read-only mount, even for root
            problems.append(f"The folder {directory} is read-only; {without}.")
    return problems


#: What the app does without each folder of AppPaths.all_dirs(), in that order.
_WITHOUT = (
    "settings are kept in memory only",
    "history is not kept (readings are shown and alerts work from memory)",
    "logging goes to standard error only",
    "nothing is cached",
)
