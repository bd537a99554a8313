"""Package tier: the artefacts `make package` left in dist/ (wheel, sdist, frozen app), and the
e2e and desktop tiers' rigs (tests/support), reused to run the frozen app instead
of `python -m cgmtray`."""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
DIST: Final = ROOT / "dist"
MAKE_IT: Final = "run `make package` first (packaging/build.py builds them)"

# packaging/freeze_config.py is imported as `freeze_config`, as the spec and build.py import it;
# the folder goes at the end of the path, so that packaging/build.py never shadows `build`.
if str(ROOT / "packaging") not in sys.path:
    sys.path.append(str(ROOT / "packaging"))

import tests.support.processes as e2e  # noqa: E402  # the e2e tier's rig
from tests.support.xdesktop import private_bus, tray_desktop  # noqa: E402

from cgmtray import __version__  # noqa: E402

if TYPE_CHECKING:  # mypy names packaging/*.py by their path
    from packaging import freeze_config
else:
    import freeze_config

#: The desktop tier's fixtures, offered to this tier's tests too.
__all__ = ["private_bus", "tray_desktop"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "package: checks what `make package` built in dist/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.package)


def _one(pattern: str, what: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if len(found) != 1:
        names = [p.name for p in found]
        pytest.fail(
            f"expected one {what} (dist/{pattern}); found {names}; {MAKE_IT}", pytrace=False
        )
    return found[0]


@pytest.fixture(scope="session")
def wheel() -> Iterator[zipfile.ZipFile]:
    """The wheel of this version, open."""
    with zipfile.ZipFile(_one(f"cgm_tray-{__version__}-*.whl", "wheel")) as opened:
        yield opened


@pytest.fixture(scope="session")
def sdist_path() -> Path:
    return _one(f"cgm_tray-{__version__}.tar.gz", "sdist")


@pytest.fixture(scope="session")
def frozen_folder() -> Path:
    """What PyInstaller made: dist/cgm-tray (dist/CGM Tray.app on macOS)."""
    folder = freeze_config.frozen_folder(freeze_config.platform_of(sys.platform), DIST)
    if not folder.is_dir():
        pytest.fail(f"no frozen app at {folder}: {MAKE_IT}", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def frozen_cli(frozen_folder: Path) -> Path:
    """The frozen executable that writes to a terminal (dist/cgm-tray/cgm-tray on Linux)."""
    cli = freeze_config.frozen_cli(freeze_config.platform_of(sys.platform), DIST)
    if not os.access(cli, os.X_OK):
        pytest.fail(f"no frozen executable at {cli}: {MAKE_IT}", pytrace=False)
    return cli


@pytest.fixture
def frozen_rig(
    tmp_path: Path, frozen_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[e2e.Rig]:
    """The e2e tier's rig (fake-share and the tray app on one accelerated clock, isolated home,
    --log-json) with both processes run from the frozen executable instead of the venv's."""
    monkeypatch.setattr(e2e, "CGM_TRAY", [str(frozen_cli)])
    rig = e2e.Rig(tmp_path, e2e.VirtualClock(e2e.SPEED, datetime.now(UTC)))
    try:
        yield rig
    finally:
        rig.close()
