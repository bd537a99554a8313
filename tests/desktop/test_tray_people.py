"""Three people in a real XEmbed tray: the demo family's three badges, each with its label."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.support.processes import CGM_TRAY, spawn
from tests.support.xdesktop import ScreenRect, TrayDesktop, is_range_update

pytestmark = pytest.mark.desktop

#: The first readings need three sign-ins and reads against the demo service: generous for CI.
APP_TIMEOUT_S = 60.0
#: Where the grab of the panel is kept with CGMTRAY_SAVE_SCREENSHOTS=1 (docs/screenshots, looked at
#: by a person).
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshots" / "tray-three-people.png"


def test_the_demo_family_shows_three_badges_in_the_tray(
    tray_desktop: TrayDesktop, tmp_path: Path
) -> None:
    argv = [*CGM_TRAY, "--demo", "--basedir", str(tmp_path / "base"), "--log-json"]
    app = spawn("cgm-tray", argv, tray_desktop.env(QT_QPA_PLATFORM="xcb"))
    try:
        # One tray update with a current value per person (each icon draws its own).
        after = 0
        for _person in range(3):
            index, _event = app.stderr.wait_for(is_range_update, timeout=APP_TIMEOUT_S, start=after)
            after = index + 1
        icons: list[ScreenRect] = []

        def three_icons() -> bool:
            panel = tray_desktop.panel()
            icons[:] = [
                rect
                for rect in tray_desktop.visible("--class", "^CGM Tray$").values()
                if panel is not None and panel.contains(rect)
            ]
            return len(icons) == 3

        tray_desktop.wait_until(three_icons, "three icons embedded in the tray")
        assert len({(rect.x, rect.y) for rect in icons}) == 3, "three icons side by side"
        grab = tray_desktop.grab()
        for rect in icons:  # each icon draws something (its badge), none is empty
            assert _inked(grab.rgb, grab.width, rect) > rect.width * rect.height // 4
        if shutil.which("import") is not None:
            left = min(rect.x for rect in icons) - 4
            right = max(rect.x + rect.width for rect in icons) + 4
            top = min(rect.y for rect in icons) - 2
            bottom = max(rect.y + rect.height for rect in icons) + 2
            crop = f"{right - left}x{bottom - top}+{max(left, 0)}+{max(top, 0)}"
            shot = tmp_path / "tray-three-people.png"
            subprocess.run(
                ["import", "-window", "root", "-crop", crop, str(shot)],
                env=tray_desktop.env(),
                timeout=20,
                check=True,
            )
            if shutil.which("convert") is not None:  # large enough to look at
                subprocess.run(
                    ["convert", str(shot), "-filter", "point", "-resize", "400%", str(shot)],
                    timeout=20,
                    check=True,
                )
            # Kept for the docs only when asked: a test run never changes the checkout.
            if os.environ.get("CGMTRAY_SAVE_SCREENSHOTS") == "1" and SCREENSHOT.parent.is_dir():
                shutil.copyfile(shot, SCREENSHOT)
    finally:
        app.cleanup()


def _inked(pixels: bytes, width: int, rect: ScreenRect) -> int:
    """Pixels in `rect` that differ from its top-left corner (the panel's background)."""
    corner = _pixel(pixels, width, rect.x, rect.y)
    return sum(
        1
        for y in range(rect.y, rect.y + rect.height)
        for x in range(rect.x, rect.x + rect.width)
        if _pixel(pixels, width, x, y) != corner
    )


def _pixel(pixels: bytes, width: int, x: int, y: int) -> bytes:
    at = 3 * (y * width + x)
    return pixels[at : at + 3]
