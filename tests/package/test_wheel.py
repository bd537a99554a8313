"""The wheel and the sdist in dist/: what `pip install` gets (sounds, icon, commands, version) and
what a distribution packager gets (desktop files, icons, licence, the tests)."""

from __future__ import annotations

import configparser
import email.parser
import io
import tarfile
import wave
import zipfile
from pathlib import Path
from typing import Final

from cgmtray import APP_ID, __version__

#: Everything the running app loads with importlib.resources.files("cgmtray.assets").
ASSETS: Final = ("alarm.wav", "chime.wav", "app-icon.svg", "app-icon-256.png")
SDIST_FILES: Final = (
    "LICENSE",
    "README.md",
    "pyproject.toml",
    f"resources/{APP_ID}.desktop",
    f"resources/{APP_ID}.metainfo.xml",
    f"resources/icons/{APP_ID}.ico",
    f"resources/icons/{APP_ID}.icns",
    f"resources/icons/hicolor/scalable/apps/{APP_ID}.svg",
    f"resources/icons/hicolor/48x48/apps/{APP_ID}.png",
    "packaging/cgm-tray.spec",
    "src/cgmtray/assets/alarm.wav",
    "tests/package/test_wheel.py",
)


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    return wheel.read(f"cgm_tray-{__version__}.dist-info/{name}").decode("utf-8")


def test_the_wheel_carries_the_sounds_and_the_app_icon(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = [a for a in ASSETS if f"cgmtray/assets/{a}" not in names]
    assert missing == []
    for sound in ("alarm.wav", "chime.wav"):
        with wave.open(io.BytesIO(wheel.read(f"cgmtray/assets/{sound}")), "rb") as wav:
            assert wav.getnframes() > 0, f"{sound} holds no sound"
    assert wheel.read("cgmtray/assets/app-icon.svg").lstrip().startswith((b"<svg", b"<?xml"))
    assert wheel.read("cgmtray/assets/app-icon-256.png").startswith(b"\x89PNG\r\n\x1a\n")


def test_the_wheel_is_typed_and_holds_only_the_package(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "cgmtray/py.typed" in names
    assert "cgmtray/cli.py" in names
    strays = [
        n
        for n in names
        if not n.startswith(("cgmtray/", f"cgm_tray-{__version__}.dist-info/"))
        or "__pycache__" in n
        or n.endswith(".pyc")
    ]
    assert strays == []


def test_the_wheel_installs_both_commands(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info(wheel, "entry_points.txt"))
    assert entry_points["console_scripts"]["cgm-tray"] == "cgmtray.cli:main"
    assert entry_points["gui_scripts"]["cgm-tray-gui"] == "cgmtray.cli:main"


def test_the_wheel_metadata_has_this_version_and_the_licence(wheel: zipfile.ZipFile) -> None:
    metadata = email.parser.Parser().parsestr(dist_info(wheel, "METADATA"))
    assert metadata["Name"] == "cgm-tray"
    assert metadata["Version"] == __version__
    assert "MIT" in (metadata["License-Expression"] or metadata["License"] or "")
    licences = [n for n in wheel.namelist() if ".dist-info/licenses/" in n]
    assert licences, "the licence text travels in the wheel"


def test_the_sdist_carries_the_desktop_files_icons_licence_and_tests(sdist_path: Path) -> None:
    top = f"cgm_tray-{__version__}"
    with tarfile.open(sdist_path) as sdist:
        names = set(sdist.getnames())
    missing = [f for f in SDIST_FILES if f"{top}/{f}" not in names]
    assert missing == []
    junk = [n for n in names if "__pycache__" in n or "/.venv/" in n or n.endswith(".pyc")]
    assert junk == []
