"""The app's identity on the desktop: the window icon from the packaged assets, the app id."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QImage
from PySide6.QtWidgets import QApplication, QWidget

from cgmtray import APP_ID
from cgmtray.ui import app as app_module

DESKTOP_FILE = Path(__file__).resolve().parents[2] / "resources" / f"{APP_ID}.desktop"


@pytest.fixture
def identified_app(qapp: QApplication) -> Iterator[QApplication]:
    """The test QApplication with the app's identity set, restored afterwards for other tests."""
    before = (
        qapp.applicationName(),
        qapp.applicationDisplayName(),
        qapp.applicationVersion(),
        qapp.organizationDomain(),
        qapp.desktopFileName(),
        qapp.windowIcon(),
    )
    app_module.set_identity(qapp)
    yield qapp
    name, display_name, version, domain, desktop_file_name, icon = before
    qapp.setApplicationName(name)
    qapp.setApplicationDisplayName(display_name)
    qapp.setApplicationVersion(version)
    qapp.setOrganizationDomain(domain)
    qapp.setDesktopFileName(desktop_file_name)
    qapp.setWindowIcon(icon)


def _opaque_pixels(image: QImage) -> int:
    argb = image.convertToFormat(QImage.Format.Format_ARGB32)
    return sum(
        1
        for y in range(argb.height())
        for x in range(argb.width())
        if argb.pixelColor(x, y).alpha() > 0
    )


def _has_green_and_white(image: QImage) -> bool:
    """The drop's green and the arrow's white are both there (not a blank or a stand-in icon)."""
    argb = image.convertToFormat(QImage.Format.Format_ARGB32)
    colours = [
        argb.pixelColor(x, y)
        for y in range(argb.height())
        for x in range(argb.width())
        if argb.pixelColor(x, y).alpha() == 255
    ]
    green = any(c.green() > c.red() + 40 and c.green() > c.blue() + 20 for c in colours)
    white = any(min(c.red(), c.green(), c.blue()) > 240 for c in colours)
    return green and white


def test_window_icon_is_the_app_icon_at_every_size(identified_app: QApplication) -> None:
    icon = identified_app.windowIcon()
    assert not icon.isNull()
    sizes = {(size.width(), size.height()) for size in icon.availableSizes()}
    assert sizes >= {(s, s) for s in app_module.APP_ICON_SIZES}
    for size in (16, 32, 256):
        image = icon.pixmap(QSize(size, size)).toImage()
        assert (image.width(), image.height()) == (size, size)
        assert _opaque_pixels(image) > size * size // 3
        assert _has_green_and_white(image)


def test_desktop_file_name_is_the_desktop_entry_basename(identified_app: QApplication) -> None:
    assert DESKTOP_FILE.is_file()
    assert identified_app.desktopFileName() == DESKTOP_FILE.stem == APP_ID


def test_the_icon_comes_from_the_package_assets() -> None:
    assets = importlib.resources.files("cgmtray.assets")
    assert (assets / app_module.ICON_SVG).is_file()
    assert (assets / app_module.ICON_FALLBACK_PNG).is_file()


def test_falls_back_to_the_png_when_the_svg_cannot_be_drawn(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "ICON_SVG", "no-such-icon.svg")
    icon = app_module.app_icon()
    assert not icon.isNull()
    image = icon.pixmap(QSize(256, 256)).toImage()
    assert (image.width(), image.height()) == (256, 256)
    assert _has_green_and_white(image)


def test_no_icon_at_all_is_a_warning_not_a_crash(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "ICON_SVG", "no-such-icon.svg")
    monkeypatch.setattr(app_module, "ICON_FALLBACK_PNG", "no-such-icon.png")
    icon = app_module.app_icon()
    assert icon.isNull()
    assert "app icon unavailable" in caplog.text


def test_a_window_without_its_own_icon_shows_the_app_icon(
    identified_app: QApplication,
) -> None:
    window = QWidget()
    try:
        shown: QIcon = window.windowIcon()
        image = shown.pixmap(QSize(32, 32)).toImage()
        expected = app_module.app_icon().pixmap(QSize(32, 32)).toImage()
        assert image.convertToFormat(QImage.Format.Format_ARGB32) == expected.convertToFormat(
            QImage.Format.Format_ARGB32
        )
    finally:
        window.deleteLater()
        identified_app.processEvents()
