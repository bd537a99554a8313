"""The About box: version, and the not-a-medical-device notice."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from cgmtray import APP_NAME, __version__


def about_opener() -> Callable[[], None]:
    """Shows the About box (version and the not-a-medical-device notice).

    One box, made on first use and reused: it must stay referenced from Python (or it is deleted
    as it opens), and must not be deleted on close by Qt as well (a double free: a crash).
    """
    boxes: list[QMessageBox] = []

    def show_about() -> None:
        if not boxes:
            box = QMessageBox()
            box.setWindowTitle(f"About {APP_NAME}")
            box.setTextFormat(Qt.TextFormat.RichText)
            box.setText(
                f"<b>{APP_NAME}</b> {__version__}<br>Your Dexcom CGM reading, always in sight."
                "<p>Not a medical device. Readings come from Dexcom Share and can be late or "
                "missing: use your receiver or the Dexcom app for treatment decisions.</p>"
            )
            boxes.append(box)
        box = boxes[0]
        box.open()
        box.raise_()
        box.activateWindow()

    return show_about
