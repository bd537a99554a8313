"""Renders the badges of three people (labels S, M, Jo) in several states at every tray size, on a
light and a dark panel: docs/screenshots/icons-people-light.png and icons-people-dark.png."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter

from cgmtray.domain import display
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.ui.icon import ICON_SIZES, PersonBadge, render_image

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)

#: The three people of the sheet and the demo family: label and badge colour.
PEOPLE = {
    "Sam": PersonBadge("S", "#1f5fd1"),
    "Mia": PersonBadge("M", "#00796b"),
    "Joan": PersonBadge("Jo", "#d81b78"),
}

#: Panels: name, background, ink of the captions.
PANELS = {"light": ("#eeeeee", "#222222"), "dark": ("#1e1e1e", "#dddddd")}


def _model(
    mgdl: int | None,
    trend: Trend = Trend.FLAT,
    *,
    unit: Unit = Unit.MGDL,
    age_min: float = 2,
    failure: FailureClass | None = None,
) -> display.DisplayModel:
    readings = [] if mgdl is None else [Reading(NOW - timedelta(minutes=age_min), mgdl, trend)]
    connection = "Sign-in failed" if failure is not None else None
    return display.model(
        readings, NOW, unit=unit, thresholds=Thresholds(), connection=connection, failure=failure
    )


def cases() -> list[tuple[str, str, display.DisplayModel]]:
    """(person, caption, model) for every column of the sheet."""
    return [
        ("Sam", "in range", _model(142, Trend.FLAT)),
        ("Sam", "urgent low", _model(48, Trend.DOUBLE_DOWN)),
        ("Sam", "stale", _model(142, Trend.FLAT, age_min=13)),
        ("Sam", "no data", _model(None)),
        ("Mia", "high", _model(262, Trend.SINGLE_UP)),
        ("Mia", "low", _model(64, Trend.FORTY_FIVE_DOWN)),
        ("Mia", "LOW", _model(39, Trend.SINGLE_DOWN)),
        ("Mia", "mmol/L", _model(187, Trend.FORTY_FIVE_UP, unit=Unit.MMOL)),
        ("Joan", "urgent high", _model(334, Trend.DOUBLE_UP)),
        ("Joan", "HIGH", _model(401, Trend.NONE)),
        ("Joan", "in range", _model(118, Trend.SINGLE_DOWN)),
        ("Joan", "sign-in", _model(None, failure=FailureClass.CREDENTIALS)),
    ]


def render(out: Path, look: str) -> None:
    background, ink = PANELS[look]
    columns = cases()
    cell_w, head_h, left = 84, 44, 70
    row_h = [max(40, size + 16) for size in ICON_SIZES]
    width = left + cell_w * len(columns)
    height = head_h + sum(row_h)
    scale = 2
    image = QImage(width * scale, height * scale, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(QColor(background))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont("DejaVu Sans")
    font.setPixelSize(11)
    painter.setFont(font)
    painter.setPen(QColor(ink))
    for index, (name, caption, _) in enumerate(columns):
        painter.drawText(
            QRectF(left + index * cell_w, 2, cell_w, head_h),
            int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
            f"{name}\n{caption}",
        )
    top = float(head_h)
    for size, height_of_row in zip(ICON_SIZES, row_h, strict=True):
        painter.setPen(QColor(ink))
        painter.drawText(
            QRectF(6, top, left - 6, height_of_row),
            int(Qt.AlignmentFlag.AlignVCenter),
            f"{size} px",
        )
        for index, (name, _, model) in enumerate(columns):
            icon = render_image(model, size, float(scale), PEOPLE[name])
            x = left + index * cell_w + (cell_w - size) / 2
            painter.drawImage(QPointF(x, top + (height_of_row - size) / 2), icon)
        top += height_of_row
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("docs/screenshots"))
    args = parser.parse_args()
    app = QGuiApplication(sys.argv[:1])
    for look in PANELS:
        out = args.out_dir / f"icons-people-{look}.png"
        render(out, look)
        print(out)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
