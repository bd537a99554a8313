"""Where the app keeps its files: --basedir layout, platform defaults, private directories."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from cgmtray.storage.paths import AppPaths, app_paths, ensure

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def test_basedir_puts_everything_under_it(tmp_path: Path) -> None:
    paths = app_paths(tmp_path)
    assert paths == AppPaths(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "log",
        cache_dir=tmp_path / "cache",
    )
    assert paths.settings_file == tmp_path / "config" / "settings.toml"
    assert paths.history_db == tmp_path / "data" / "history.sqlite3"
    assert paths.log_file == tmp_path / "log" / "cgm-tray.log"


def test_relative_basedir_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = app_paths(Path("state"))
    assert paths.config_dir == tmp_path / "state" / "config"
    assert paths.config_dir.is_absolute()


def test_app_paths_does_not_create_anything(tmp_path: Path) -> None:
    app_paths(tmp_path / "base")
    assert not (tmp_path / "base").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG directories are Linux's")
def test_default_dirs_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    paths = app_paths()
    assert paths.config_dir == tmp_path / "xdg_config_home" / "cgm-tray"
    assert paths.data_dir == tmp_path / "xdg_data_home" / "cgm-tray"
    assert paths.log_dir.is_relative_to(tmp_path / "xdg_state_home" / "cgm-tray")
    assert paths.cache_dir == tmp_path / "xdg_cache_home" / "cgm-tray"
    assert paths.settings_file.name == "settings.toml"


def test_default_dirs_are_distinct_for_data_and_settings_files() -> None:
    paths = app_paths()
    assert paths.settings_file != paths.history_db
    assert "cgm-tray" in str(paths.config_dir)


def test_ensure_creates_all_dirs(tmp_path: Path) -> None:
    paths = ensure(app_paths(tmp_path / "nested" / "base"))
    for directory in paths.all_dirs():
        assert directory.is_dir()


@posix_only
def test_ensure_makes_dirs_owner_only(tmp_path: Path) -> None:
    paths = app_paths(tmp_path)
    paths.config_dir.mkdir(mode=0o755)
    paths.config_dir.chmod(0o755)
    ensure(paths)
    for directory in paths.all_dirs():
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_ensure_is_idempotent(tmp_path: Path) -> None:
    paths = app_paths(tmp_path)
    ensure(paths)
    (paths.config_dir / "settings.toml").write_text("version = 1\n")
    ensure(paths)
    assert (paths.config_dir / "settings.toml").read_text() == "version = 1\n"
