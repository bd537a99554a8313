"""packaging/cgm-tray.spec run for each platform with recording stand-ins for PyInstaller's build
targets: the macOS and Windows parts, which cannot be built here, ask PyInstaller for what its
documentation and source say they should (PyInstaller ignores a misspelt argument silently)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import plistlib
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from cgmtray import APP_ID, APP_NAME, __version__

# mypy names packaging/*.py by their path; the conftest put packaging/ on sys.path
if TYPE_CHECKING:
    from packaging import freeze_config, pyi_entry
else:
    import freeze_config
    import pyi_entry

SPEC: Final = freeze_config.ROOT / "packaging" / "cgm-tray.spec"


@dataclass
class Target:
    """One EXE / COLLECT / BUNDLE / PYZ the spec made, with what it was given."""

    kind: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class FakeAnalysis:
    scripts_given: list[str]
    kwargs: dict[str, Any]
    scripts: list[tuple[str, str, str]] = field(default_factory=list)
    pure: list[tuple[str, str, str]] = field(default_factory=list)
    binaries: list[tuple[str, str, str]] = field(default_factory=list)
    datas: list[tuple[str, str, str]] = field(
        default_factory=lambda: [
            ("PySide6/Qt/translations/qtbase_de.qm", "/x/qtbase_de.qm", "DATA"),
            ("cgmtray/assets/alarm.wav", "/x/alarm.wav", "DATA"),
        ]
    )


@dataclass
class SpecRun:
    analysis: FakeAnalysis
    targets: list[Target]

    def of(self, kind: str) -> list[Target]:
        return [t for t in self.targets if t.kind == kind]


def _recorder(kind: str, targets: list[Target]) -> Callable[..., Target]:
    def make(*args: Any, **kwargs: Any) -> Target:
        target = Target(kind, args, kwargs)
        targets.append(target)
        return target

    return make


def _load_windows_versioninfo(patch: pytest.MonkeyPatch) -> types.ModuleType:
    """PyInstaller's win32 version-resource module, here on Linux: it imports pefile and
    win32api at its top (present on Windows only) but builds and serialises resources without
    them. Loaded for the spec to find, and gone again when `patch` is undone."""
    import PyInstaller.compat  # type: ignore[import-untyped]

    patch.setitem(sys.modules, "pefile", types.ModuleType("pefile"))
    patch.setattr(PyInstaller.compat, "win32api", None, raising=False)
    name = "PyInstaller.utils.win32.versioninfo"
    spec = importlib.util.find_spec(name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    patch.setitem(sys.modules, name, module)
    return module


def run_spec(platform: str, dist: Path) -> SpecRun:
    """Runs the spec as PyInstaller would on `platform`, with the targets recorded."""
    import PyInstaller.utils.hooks  # type: ignore[import-untyped]  # noqa: F401 - for this machine, first

    targets: list[Target] = []
    analyses: list[FakeAnalysis] = []

    def analysis(scripts: list[str], **kwargs: Any) -> FakeAnalysis:
        analyses.append(FakeAnalysis(scripts, kwargs))
        return analyses[-1]

    namespace: dict[str, Any] = {
        "SPECPATH": str(SPEC.parent),
        "DISTPATH": str(dist),
        "Analysis": analysis,
        **{kind: _recorder(kind, targets) for kind in ("PYZ", "EXE", "COLLECT", "BUNDLE")},
    }
    code = compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec")
    with pytest.MonkeyPatch.context() as patch:
        _load_windows_versioninfo(patch)
        patch.setattr(sys, "path", list(sys.path))  # the spec adds packaging/ to it
        patch.setattr(sys, "platform", platform)
        exec(code, namespace)  # noqa: S102 - our own spec, as PyInstaller runs it
    assert len(analyses) == 1
    return SpecRun(analyses[0], targets)


def accepted_keywords(function: Callable[..., object]) -> set[str]:
    """The keyword arguments a PyInstaller target reads (`kwargs.get('name', ...)`)."""
    return set(re.findall(r"kwargs\.get\(\s*['\"](\w+)['\"]", inspect.getsource(function)))


@pytest.fixture(scope="module")
def pyinstaller_keywords() -> dict[str, set[str]]:
    from PyInstaller.building.api import COLLECT, EXE  # type: ignore[import-untyped]
    from PyInstaller.building.osx import BUNDLE  # type: ignore[import-untyped]

    return {
        "EXE": accepted_keywords(EXE.__init__),
        "COLLECT": accepted_keywords(COLLECT.__init__),
        "BUNDLE": accepted_keywords(BUNDLE.__init__),
    }


def check_keywords(run: SpecRun, known: dict[str, set[str]]) -> None:
    for target in run.targets:
        if target.kind in known:
            unknown = set(target.kwargs) - known[target.kind]
            assert unknown == set(), f"PyInstaller's {target.kind} ignores {unknown}"


def test_windows_gets_a_windowed_app_and_a_console_twin_with_icon_and_version(
    tmp_path: Path, pyinstaller_keywords: dict[str, set[str]]
) -> None:
    run = run_spec("win32", tmp_path)
    check_keywords(run, pyinstaller_keywords)
    exes = {t.kwargs["name"]: t for t in run.of("EXE")}
    assert set(exes) == {"cgm-tray", "cgm-tray-cli"}
    major, minor, patch = freeze_config.numeric_version(__version__)
    assert exes["cgm-tray"].kwargs["console"] is False
    assert exes["cgm-tray-cli"].kwargs["console"] is True
    for exe in exes.values():
        assert exe.kwargs["exclude_binaries"] is True  # one-folder: the DLLs go to COLLECT
        assert Path(exe.kwargs["icon"]) == freeze_config.WINDOWS_ICON
        assert Path(exe.kwargs["icon"]).is_file()
        resource = exe.kwargs["version"]
        assert type(resource).__name__ == "VSVersionInfo"
        assert resource.toRaw()  # PyInstaller can write it into the .exe
        text = str(resource)
        assert f"filevers=({major}, {minor}, {patch}, 0)" in text
        assert f"'OriginalFilename', '{exe.kwargs['name']}.exe'" in text
        assert f"'ProductVersion', '{__version__}'" in text
    [collect] = run.of("COLLECT")
    assert collect.kwargs["name"] == "cgm-tray"
    assert exes["cgm-tray"] in collect.args
    assert exes["cgm-tray-cli"] in collect.args
    assert run.of("BUNDLE") == []
    assert "keyring.backends.Windows" in run.analysis.kwargs["hiddenimports"]
    assert "PySide6.QtMultimedia" not in run.analysis.kwargs["excludes"]  # QSoundEffect plays


def test_macos_gets_a_menu_bar_agent_bundle_with_the_app_id(
    tmp_path: Path, pyinstaller_keywords: dict[str, set[str]]
) -> None:
    run = run_spec("darwin", tmp_path)
    check_keywords(run, pyinstaller_keywords)
    [exe] = run.of("EXE")
    assert exe.kwargs["console"] is False  # a console build is LSBackgroundOnly: no menu bar item
    assert exe.kwargs["argv_emulation"] is False
    [collect] = run.of("COLLECT")
    [bundle] = run.of("BUNDLE")
    assert bundle.args == (collect,)
    assert bundle.kwargs["name"] == f"{APP_NAME}.app"
    assert bundle.kwargs["bundle_identifier"] == APP_ID
    assert Path(bundle.kwargs["icon"]) == freeze_config.MACOS_ICON
    assert Path(bundle.kwargs["icon"]).is_file()
    assert bundle.kwargs["version"] == __version__
    plist = bundle.kwargs["info_plist"]
    assert plist["LSUIElement"] is True
    assert plist["NSHighResolutionCapable"] is True
    assert plist["CFBundleShortVersionString"] == __version__
    assert plist["CFBundleName"] == APP_NAME
    assert plistlib.loads(plistlib.dumps(plist)) == plist  # every value is plist-able
    assert "keyring.backends.macOS" in run.analysis.kwargs["hiddenimports"]
    assert "PySide6.QtMultimedia" not in run.analysis.kwargs["excludes"]


def test_linux_gets_one_console_folder_without_qt_multimedia(
    tmp_path: Path, pyinstaller_keywords: dict[str, set[str]]
) -> None:
    run = run_spec("linux", tmp_path)
    check_keywords(run, pyinstaller_keywords)
    [exe] = run.of("EXE")
    assert exe.kwargs["console"] is True
    assert exe.kwargs["name"] == "cgm-tray"
    assert run.of("BUNDLE") == []
    analysis = run.analysis
    assert analysis.scripts_given == [str(freeze_config.ENTRY_SCRIPT)]
    assert {"PySide6.QtMultimedia", "tkinter", "PySide6.QtWebEngineCore"} <= set(
        analysis.kwargs["excludes"]
    )
    hidden = analysis.kwargs["hiddenimports"]
    assert {"keyring.backends.SecretService", "PySide6.QtOpenGL"} <= set(hidden)
    datas = analysis.kwargs["datas"]
    assert {"alarm.wav", "chime.wav", "app-icon.svg", "py.typed"} <= {
        Path(s).name for s, _ in datas
    }
    # importlib.metadata reads them: `--version`, and keyring's backends (entry points)
    folders = {target for _, target in datas}
    assert f"cgm_tray-{__version__}.dist-info" in folders
    assert any(re.fullmatch(r"keyring-[\d.]+\.dist-info", target) for target in folders)
    assert [d for d in analysis.datas if "translations" in d[0]] == []
    share = tmp_path / "cgm-tray" / "share"
    assert (share / "applications" / f"{APP_ID}.desktop").is_file()


@pytest.mark.parametrize(
    ("version", "short"), [("0.1.0", "0.1.0"), ("2.0", "2.0.0"), ("1.4.2rc1", "1.4.2")]
)
def test_apple_and_windows_get_numeric_versions(version: str, short: str) -> None:
    assert freeze_config.macos_info_plist(version)["CFBundleShortVersionString"] == short
    assert freeze_config.windows_version_tuple(version) == (*map(int, short.split(".")), 0)


def test_only_the_unused_qt_plugins_are_dropped() -> None:
    linux = freeze_config.unused_qt_plugins("linux")
    plugin = Path("/qt/plugins")
    assert freeze_config.is_unused_qt_plugin(plugin / "platformthemes/libqgtk3.so", linux)
    assert freeze_config.is_unused_qt_plugin(plugin / "generic/libqevdevmouseplugin.so", linux)
    for needed in ("platforms/libqxcb.so", "imageformats/libqsvg.so", "iconengines/libqsvgicon.so"):
        assert not freeze_config.is_unused_qt_plugin(plugin / needed, linux)
    windows = freeze_config.unused_qt_plugins("win32")
    assert freeze_config.is_unused_qt_plugin(plugin / "imageformats/qpdf.dll", windows)
    assert not freeze_config.is_unused_qt_plugin(plugin / "platforms/qwindows.dll", windows)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"LD_LIBRARY_PATH": "/dist/_internal"}, {}),
        (
            {"LD_LIBRARY_PATH": "/dist/_internal:/opt/lib", "LD_LIBRARY_PATH_ORIG": "/opt/lib"},
            {"LD_LIBRARY_PATH": "/opt/lib"},
        ),
    ],
)
def test_programs_the_frozen_app_starts_get_the_library_path_the_person_had(
    monkeypatch: pytest.MonkeyPatch, before: dict[str, str], after: dict[str, str]
) -> None:
    for name in ("LD_LIBRARY_PATH", "LD_LIBRARY_PATH_ORIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in before.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", "linux")
    pyi_entry.restore_library_path_for_children()
    found = {
        k: os.environ[k] for k in ("LD_LIBRARY_PATH", "LD_LIBRARY_PATH_ORIG") if k in os.environ
    }
    assert found == after


def test_a_windowed_build_without_streams_can_still_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    pyi_entry.give_windowed_builds_streams()
    print("nobody sees this")
    sys.stderr.write("nor this\n")
    sys.stdout.close()
    sys.stderr.close()
