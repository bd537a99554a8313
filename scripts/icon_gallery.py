"""Renders the tray icon in every range and state at 22 and 32 px on light and dark panels."""

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
from cgmtray.ui.icon import render_image

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _cases() -> list[tuple[str, display.DisplayModel]]:
    t = Thresholds()

    def m(
        mgdl: int | None,
        trend: Trend = Trend.FLAT,
        *,
        unit: Unit = Unit.MGDL,
        age_min: float = 2,
        failure: FailureClass | None = None,
        connection: str | None = None,
    ) -> display.DisplayModel:
        readings = []
        if mgdl is not None:
            readings = [Reading(NOW - timedelta(minutes=age_min), mgdl, trend)]
        return display.model(
            readings, NOW, unit=unit, thresholds=t, connection=connection, failure=failure
        )

    return [
        ("urgent low", m(48, Trend.DOUBLE_DOWN)),
        ("LOW", m(39, Trend.SINGLE_DOWN)),
        ("low", m(64, Trend.FORTY_FIVE_DOWN)),
        ("in range", m(142, Trend.FLAT)),
        ("in range ↗", m(118, Trend.FORTY_FIVE_UP)),
        ("high", m(262, Trend.SINGLE_UP)),
        ("urgent high", m(334, Trend.DOUBLE_UP)),
        ("HIGH", m(401, Trend.NONE)),
        ("mmol/L", m(187, Trend.FLAT, unit=Unit.MMOL)),
        ("mmol/L low", m(61, Trend.SINGLE_DOWN, unit=Unit.MMOL)),
        ("stale", m(142, Trend.FLAT, age_min=13)),
        ("no data", m(None)),
        ("sign-in", m(None, failure=FailureClass.CREDENTIALS, connection="Sign-in failed")),
    ]


def render(out: Path) -> None:
    cases = _cases()
    sizes = (22, 32)
    panels = (("light panel", "#eeeeee", "#222222"), ("dark panel", "#1e1e1e", "#dddddd"))
    cell_w, label_h, row_h = 96, 34, 44
    width = 130 + cell_w * len(cases)
    height = label_h + row_h * len(sizes) * len(panels)
    scale = 2
    image = QImage(width * scale, height * scale, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(QColor("#ffffff"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont("DejaVu Sans")
    font.setPixelSize(11)
    painter.setFont(font)
    for index, (label, _) in enumerate(cases):
        painter.setPen(QColor("#222222"))
        painter.drawText(
            QRectF(130 + index * cell_w, 2, cell_w, label_h),
            int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
            label,
        )
    row = 0
    for panel_name, background, ink in panels:
        for size in sizes:
            top = label_h + row * row_h
            painter.fillRect(QRectF(0, top, width, row_h), QColor(background))
            painter.setPen(QColor(ink))
            painter.drawText(
                QRectF(6, top, 124, row_h),
                int(Qt.AlignmentFlag.AlignVCenter),
                f"{panel_name}, {size} px",
            )
            for index, (_, model) in enumerate(cases):
                icon = render_image(model, size, float(scale))
                x = 130 + index * cell_w + (cell_w - size) / 2
                painter.drawImage(QPointF(x, top + (row_h - size) / 2), icon)
            row += 1
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/icons.png"))
    args = parser.parse_args()
    app = QGuiApplication(sys.argv[:1])
    render(args.out)
    del app
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
