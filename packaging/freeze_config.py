"""What the frozen builds contain and where they land: the data behind packaging/cgm-tray.spec."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cgmtray import APP_ID, APP_NAME

Platform = Literal["linux", "darwin", "win32"]

ROOT: Final = Path(__file__).resolve().parents[1]
RESOURCES: Final = ROOT / "resources"
ICONS: Final = RESOURCES / "icons"
ENTRY_SCRIPT: Final = ROOT / "packaging" / "pyi_entry.py"
HOOKS_DIR: Final = ROOT / "packaging" / "hooks"

#: The one-folder build's name in dist/ and its main executable's name (cgm-tray.exe on Windows).
EXE_NAME: Final = "cgm-tray"
#: Windows only: a console twin of the windowed cgm-tray.exe, for `now`, `fake-share` and --help.
WINDOWS_CLI_EXE_NAME: Final = "cgm-tray-cli"
#: macOS only: the .app bundle made from the one-folder build.
MACOS_BUNDLE_NAME: Final = f"{APP_NAME}.app"

WINDOWS_ICON: Final = ICONS / f"{APP_ID}.ico"
MACOS_ICON: Final = ICONS / f"{APP_ID}.icns"
HICOLOR_ICONS: Final = ICONS / "hicolor"
DESKTOP_FILE: Final = RESOURCES / f"{APP_ID}.desktop"
METAINFO_FILE: Final = RESOURCES / f"{APP_ID}.metainfo.xml"

#: Distributions whose metadata the frozen app reads: our own (`cgm-tray --version` comes from
#: importlib.metadata) and keyring (it finds its backends through its `keyring.backends` entry
#: points; PyInstaller's keyring hook copies it too, this keeps it explicit).
METADATA_OF: Final = ("cgm-tray", "keyring")

#: Modules no import statement names: pyqtgraph (the history chart) loads PySide6.QtOpenGL and
#: QtOpenGLWidgets with importlib (Qt/OpenGLHelpers.py, PlotCurveItem), and each platform's
#: keyring backend is found only through entry points.
_HIDDEN_COMMON: Final = (
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
    "keyring.backends.chainer",
    "keyring.backends.fail",
)
_HIDDEN_BY_PLATFORM: Final[dict[Platform, tuple[str, ...]]] = {
    "linux": ("keyring.backends.SecretService", "secretstorage", "jeepney.io.blocking"),
    "darwin": ("keyring.backends.macOS", "keyring.backends.macOS.api"),
    "win32": (
        "keyring.backends.Windows",
        "win32ctypes.pywin32.win32cred",
        "win32ctypes.pywin32.pywintypes",
    ),
}

#: Never used by the app; several are pulled in by optional imports of our dependencies.
_EXCLUDED_COMMON: Final = (
    "tkinter",
    "_tkinter",
    "turtle",
    "idlelib",
    "lib2to3",
    "pydoc_data",
    "IPython",
    "matplotlib",
    "scipy",
    "PIL",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "pytest",
    "hypothesis",
    "mypy",
    "PyInstaller",
    "setuptools",
    "pip",
    "PySide6.Qt3DAnimation",
    "PySide6.Qt3DCore",
    "PySide6.Qt3DExtras",
    "PySide6.Qt3DInput",
    "PySide6.Qt3DLogic",
    "PySide6.Qt3DRender",
    "PySide6.QtBluetooth",
    "PySide6.QtCharts",
    "PySide6.QtConcurrent",
    "PySide6.QtDataVisualization",
    "PySide6.QtDesigner",
    "PySide6.QtGraphs",
    "PySide6.QtGraphsWidgets",
    "PySide6.QtHelp",
    "PySide6.QtHttpServer",
    "PySide6.QtLocation",
    "PySide6.QtNetworkAuth",
    "PySide6.QtNfc",
    "PySide6.QtPdf",
    "PySide6.QtPdfWidgets",
    "PySide6.QtPositioning",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuick3D",
    "PySide6.QtQuickControls2",
    "PySide6.QtQuickWidgets",
    "PySide6.QtRemoteObjects",
    "PySide6.QtScxml",
    "PySide6.QtSensors",
    "PySide6.QtSerialBus",
    "PySide6.QtSerialPort",
    "PySide6.QtSpatialAudio",
    "PySide6.QtSql",
    "PySide6.QtStateMachine",
    "PySide6.QtTest",
    "PySide6.QtTextToSpeech",
    "PySide6.QtUiTools",
    "PySide6.QtWebChannel",
    "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineQuick",
    "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebSockets",
    "PySide6.QtXml",
)
#: On Linux alert sounds play through pw-play / paplay / aplay, so Qt Multimedia (and the FFmpeg
#: libraries it brings) stays out; macOS and Windows play them with QSoundEffect.
_EXCLUDED_BY_PLATFORM: Final[dict[Platform, tuple[str, ...]]] = {
    "linux": ("PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets"),
    "darwin": ("PySide6.QtMultimediaWidgets",),
    "win32": ("PySide6.QtMultimediaWidgets",),
}


#: Qt plugins left out, as "<plugin type>/<file name stem>" (the extension differs per platform).
#: The virtual keyboard pulls in QtQuick and QtQml (~17 MB), the PDF image format QtPdf.
_UNUSED_QT_PLUGINS_COMMON: Final = (
    "platforminputcontexts/libqtvirtualkeyboardplugin",
    "platforminputcontexts/qtvirtualkeyboardplugin",
    "imageformats/libqpdf",
    "imageformats/qpdf",
)
#: Linux: the GTK 3 theme would bundle the build machine's GTK stack (a mismatch with the
#: user's GTK is worse than Qt's own look), and the embedded-device platforms have no tray.
_UNUSED_QT_PLUGINS_BY_PLATFORM: Final[dict[Platform, tuple[str, ...]]] = {
    "linux": (
        "platformthemes/libqgtk3",
        "platforms/libqeglfs",
        "platforms/libqlinuxfb",
        "platforms/libqminimalegl",
        "platforms/libqvkkhrdisplay",
        "platforms/libqvnc",
        "egldeviceintegrations/*",
        "generic/*",
    ),
    "darwin": (),
    "win32": (),
}
#: Qt's own translations: the app does not load a QTranslator, so they are never used.
QT_TRANSLATIONS_DIR: Final = "PySide6/Qt/translations"


def platform_of(name: str) -> Platform:
    """Our three platforms from a `sys.platform` value."""
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "darwin"
    if name == "win32":
        return "win32"
    raise ValueError(f"no frozen build is defined for {name!r}")


def hidden_imports(platform: Platform) -> list[str]:
    return [*_HIDDEN_COMMON, *_HIDDEN_BY_PLATFORM[platform]]


def excluded_modules(platform: Platform) -> list[str]:
    return [*_EXCLUDED_COMMON, *_EXCLUDED_BY_PLATFORM[platform]]


def required_resources(platform: Platform) -> list[Path]:
    """Files the build of `platform` cannot do without (icons and desktop integration)."""
    if platform == "win32":
        return [WINDOWS_ICON]
    if platform == "darwin":
        return [MACOS_ICON]
    return [DESKTOP_FILE, METAINFO_FILE, HICOLOR_ICONS]


def missing_resources(platform: Platform) -> list[Path]:
    return [path for path in required_resources(platform) if not path.exists()]


@dataclass(frozen=True)
class LinuxShareFile:
    """A desktop-integration file copied into the Linux build's `share/` (XDG data layout), so
    `cp -r dist/cgm-tray/share ~/.local/` installs the launcher, AppStream data and icons."""

    source: Path
    target: str


def linux_share_files() -> list[LinuxShareFile]:
    files = [
        LinuxShareFile(DESKTOP_FILE, f"share/applications/{DESKTOP_FILE.name}"),
        LinuxShareFile(METAINFO_FILE, f"share/metainfo/{METAINFO_FILE.name}"),
    ]
    if HICOLOR_ICONS.is_dir():
        files += [
            LinuxShareFile(path, f"share/icons/hicolor/{path.relative_to(HICOLOR_ICONS)}")
            for path in sorted(HICOLOR_ICONS.rglob("*"))
            if path.is_file()
        ]
    return files


def numeric_version(version: str) -> tuple[int, int, int]:
    """MAJOR.MINOR.PATCH of a version such as "1.2.3", "1.2" or "1.2.3rc1" (Apple's
    CFBundleShortVersionString and Windows' file version take numbers only)."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with a number")
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return major, minor, patch


def macos_info_plist(version: str) -> dict[str, object]:
    """Info.plist entries of the .app on top of PyInstaller's (identifier, executable, icon).

    LSUIElement makes it a menu-bar agent: no Dock icon and no app menu, only the status item.
    The EXE must be windowed (console=False): PyInstaller marks a console build LSBackgroundOnly,
    and a background-only app may show no UI at all, not even a menu-bar item.
    """
    short = ".".join(str(part) for part in numeric_version(version))
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleShortVersionString": short,
        "CFBundleVersion": short,
        "CFBundleDevelopmentRegion": "en",
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": "MIT License, the CGM Tray developers",
    }


def windows_version_strings(version: str, exe_name: str, description: str) -> dict[str, str]:
    """The StringFileInfo of one .exe (what Explorer shows under Properties > Details)."""
    return {
        "CompanyName": "CGM Tray developers",
        "FileDescription": description,
        "FileVersion": version,
        "InternalName": exe_name,
        "LegalCopyright": "MIT License",
        "OriginalFilename": f"{exe_name}.exe",
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }


def windows_version_tuple(version: str) -> tuple[int, int, int, int]:
    """The four 16-bit numbers of a Windows file version."""
    return (*numeric_version(version), 0)


def unused_qt_plugins(platform: Platform) -> tuple[str, ...]:
    return _UNUSED_QT_PLUGINS_COMMON + _UNUSED_QT_PLUGINS_BY_PLATFORM[platform]


def is_unused_qt_plugin(plugin: Path, unused: tuple[str, ...]) -> bool:
    """True for a plugin library (".../plugins/<type>/<file>") that `unused` names."""
    plugin_type, stem = plugin.parent.name, plugin.name.split(".")[0]
    return any(entry in (f"{plugin_type}/{stem}", f"{plugin_type}/*") for entry in unused)


def without_qt_translations(datas: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """An Analysis' datas TOC without Qt's translation catalogues."""
    return [e for e in datas if not Path(e[0]).as_posix().startswith(QT_TRANSLATIONS_DIR + "/")]


def frozen_folder(platform: Platform, dist: Path) -> Path:
    """What PyInstaller makes in `dist`: the one folder, or the .app bundle on macOS."""
    return dist / (MACOS_BUNDLE_NAME if platform == "darwin" else EXE_NAME)


def frozen_cli(platform: Platform, dist: Path) -> Path:
    """The frozen executable that writes to a terminal (for `--version`, `now`, `fake-share`)."""
    folder = frozen_folder(platform, dist)
    if platform == "win32":
        return folder / f"{WINDOWS_CLI_EXE_NAME}.exe"
    if platform == "darwin":
        return folder / "Contents" / "MacOS" / EXE_NAME
    return folder / EXE_NAME


def interpreter_binaries(folder: Path) -> list[Path]:
    """The Python interpreter's own shared libraries in a Linux one-folder build (libpython and
    its lib-dynload extension modules): built from Python's sources, never patched by patchelf,
    so safe to strip, unlike the libraries that came in wheels."""
    internal = folder / "_internal"
    found = [p for p in internal.glob("libpython3*.so*") if p.is_file() and not p.is_symlink()]
    found += sorted(internal.glob("python3*/lib-dynload/*.so"))
    return found
