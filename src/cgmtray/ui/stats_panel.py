"""The figures beside the history chart: time in range, mean, SD, CV, GMI and coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.stats import (
    GMI_MIN_WINDOW,
    TARGET_HIGH_MGDL,
    TARGET_LOW_MGDL,
    VERY_HIGH_ABOVE_MGDL,
    VERY_LOW_BELOW_MGDL,
    Portion,
    Stats,
)
from cgmtray.domain.units import Unit, format_amount, format_value
from cgmtray.ui.icon import RANGE_COLOURS

#: Shown for a figure that does not exist (an empty window has no mean).
MISSING = "–"


@dataclass(frozen=True, slots=True)
class StatRow:
    """One line of the panel: a stable key (tests, accessibility), its label and its value."""

    key: str
    label: str
    value: str
    detail: bool = False


def percent_text(fraction: float | None) -> str:
    """A share as a whole percentage that never rounds a real event away: "<1%", ">99%"."""
    if fraction is None:
        return MISSING
    percent = fraction * 100
    if 0 < percent < 0.5:
        return "<1%"
    if 99.5 <= percent < 100:
        return ">99%"
    return f"{int(percent + 0.5)}%"


def hours_text(duration: timedelta) -> str:
    """A duration in hours: one decimal below 100 h, whole hours above."""
    hours = duration.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 100 else f"{int(hours + 0.5)} h"


def portion_text(portion: Portion) -> str:
    if portion.fraction is None:
        return MISSING
    return f"{percent_text(portion.fraction)} · {hours_text(portion.duration)}"


def _amount(mgdl: float | None, unit: Unit) -> str:
    return MISSING if mgdl is None else f"{format_amount(mgdl, unit)} {unit.label}"


def _ratio(percent: float | None) -> str:
    return MISSING if percent is None else f"{percent:.1f}%"


def gmi_text(stats: Stats) -> str:
    """GMI as a percentage, or a dash saying it needs 14 days of data."""
    if stats.gmi_needs_more_data:
        return f"{MISSING} (needs {GMI_MIN_WINDOW.days} days)"
    return _ratio(stats.gmi_percent)


def stats_rows(stats: Stats, unit: Unit) -> list[StatRow]:
    """The panel's lines for `stats`, values in `unit` (mean and SD) or percent."""
    low = format_value(TARGET_LOW_MGDL, unit)
    high = format_value(TARGET_HIGH_MGDL, unit)
    very_low = format_value(VERY_LOW_BELOW_MGDL, unit)
    very_high = format_value(VERY_HIGH_ABOVE_MGDL, unit)
    return [
        StatRow("above", f"Above {high}", portion_text(stats.above)),
        StatRow("very_high", f"of which above {very_high}", portion_text(stats.very_high), True),
        StatRow("in_range", f"In range {low}–{high}", portion_text(stats.in_range)),
        StatRow("below", f"Below {low}", portion_text(stats.below)),
        StatRow("very_low", f"of which below {very_low}", portion_text(stats.very_low), True),
        StatRow("mean", "Mean", _amount(stats.mean_mgdl, unit)),
        StatRow("sd", "Standard deviation", _amount(stats.sd_mgdl, unit)),
        StatRow("cv", "Variation (CV)", _ratio(stats.cv_percent)),
        StatRow("gmi", "GMI (estimated A1c)", gmi_text(stats)),
        StatRow("coverage", "Coverage", percent_text(stats.coverage)),
        StatRow(
            "readings",
            "readings received",
            f"{stats.count} of {stats.expected_count}",
            True,
        ),
    ]


#: The first rows, which the range bar stands beside.
TIME_IN_RANGE_ROWS = 5


def range_shares(stats: Stats) -> list[tuple[GlucoseRange, float]]:
    """The five consensus bands as shares 0..1, lowest first, each coloured like its alert range."""

    def share(portion: Portion) -> float:
        return portion.fraction or 0.0

    return [
        (GlucoseRange.URGENT_LOW, share(stats.very_low)),
        (GlucoseRange.LOW, share(stats.below) - share(stats.very_low)),
        (GlucoseRange.IN_RANGE, share(stats.in_range)),
        (GlucoseRange.HIGH, share(stats.above) - share(stats.very_high)),
        (GlucoseRange.URGENT_HIGH, share(stats.very_high)),
    ]


class RangeBar(QWidget):
    """A vertical bar of the time spent in each band, lows at the bottom (as on the chart)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._shares: list[tuple[GlucoseRange, float]] = []
        self.setFixedWidth(12)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Ignored)

    def set_shares(self, shares: list[tuple[GlucoseRange, float]]) -> None:
        self._shares = shares
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(12, 12)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        del event
        painter = QPainter(self)
        area = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(Qt.PenStyle.NoPen)
        total = sum(share for _, share in self._shares)
        if total <= 0:
            painter.setBrush(self.palette().color(QPalette.ColorRole.Mid))
            painter.drawRect(area)
            painter.end()
            return
        bottom = area.bottom()
        for glucose_range, share in self._shares:
            height = area.height() * share / total
            if height <= 0:
                continue
            # Any time at all in a band gets at least a visible sliver.
            height = max(height, 2.0)
            painter.setBrush(QColor(RANGE_COLOURS[glucose_range].background))
            painter.drawRect(QRectF(area.left(), bottom - height, area.width(), height))
            bottom -= height
        painter.end()


class StatsPanel(QFrame):
    """Shows one Stats in the person's unit; `texts()` reads back what is on screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("history-stats")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._title = QLabel(self)
        self._title.setObjectName("stats-title")
        self._title.setTextFormat(Qt.TextFormat.PlainText)  # (it may hold a person's name)
        title_font = self._title.font()
        title_font.setBold(True)
        self._title.setFont(title_font)
        self._bar = RangeBar(self)
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(4)
        self._labels: dict[str, QLabel] = {}
        self._values: dict[str, QLabel] = {}
        self._footnote = QLabel(self)
        self._footnote.setWordWrap(True)
        self._footnote.setObjectName("stats-footnote")
        self._footnote.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self._grid.addWidget(self._bar, 0, 0, TIME_IN_RANGE_ROWS, 1)
        self._grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 4, 4)
        layout.addWidget(self._title)
        layout.addLayout(self._grid)
        layout.addWidget(self._footnote)
        layout.addStretch(1)

    def show_stats(self, stats: Stats, unit: Unit, title: str) -> None:
        rows = stats_rows(stats, unit)
        self._title.setText(title)
        for index, row in enumerate(rows):
            label = self._labels.get(row.key)
            value = self._values.get(row.key)
            if label is None or value is None:
                label = QLabel(self)
                value = QLabel(self)
                value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                value.setObjectName(f"stat-{row.key}")
                if row.detail:
                    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                    value.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                    label.setIndent(10)
                self._grid.addWidget(label, index, 1)
                self._grid.addWidget(value, index, 2)
                self._labels[row.key] = label
                self._values[row.key] = value
            label.setText(row.label)
            value.setText(row.value)
            value.setAccessibleName(f"{row.label}: {row.value}")
        low = format_value(TARGET_LOW_MGDL, unit)
        high = format_value(TARGET_HIGH_MGDL, unit)
        self._footnote.setText(
            f"Target {low}–{high} {unit.label}, shaded on the chart. Each dot has the colour "
            "of the row that counts it, as in the bar beside the figures (the tray icon's "
            "colour follows your alert thresholds). LOW and HIGH count as the sensor's limits. "
            "Each reading stands for 5 minutes."
        )
        self._bar.set_shares(range_shares(stats))

    @property
    def title(self) -> str:
        return self._title.text()

    def texts(self) -> dict[str, str]:
        """What each value label shows, by row key."""
        return {key: label.text() for key, label in self._values.items()}
