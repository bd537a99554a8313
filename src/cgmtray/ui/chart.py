"""The history chart: range-coloured dots, target band, threshold lines, LOW/HIGH at the edges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cgmtray.domain.alert_config import AlertKind, AlertSettings
from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import (
    HIGH_MGDL,
    LOW_MGDL,
    MAX_DELTA_GAP,
    MAX_REAL_MGDL,
    MIN_REAL_MGDL,
    Reading,
)
from cgmtray.domain.stats import (
    TARGET_HIGH_MGDL,
    TARGET_LOW_MGDL,
    VERY_HIGH_ABOVE_MGDL,
    VERY_LOW_BELOW_MGDL,
)
from cgmtray.domain.units import MGDL_PER_MMOL, Unit, format_value
from cgmtray.ui.icon import RANGE_COLOURS

FloatArray = npt.NDArray[np.float64]
RangeArray = npt.NDArray[np.int8]

# The vertical layout, in mg/dL positions whatever the unit (only the labels change): the sensor's
# range 40..400, with a strip below it where LOW readings sit and one above it for HIGH.
EDGE_STRIP_MGDL = 18.0
CHART_BOTTOM = MIN_REAL_MGDL - EDGE_STRIP_MGDL
CHART_TOP = MAX_REAL_MGDL + EDGE_STRIP_MGDL
LOW_MARK_Y = MIN_REAL_MGDL - EDGE_STRIP_MGDL / 2
HIGH_MARK_Y = MAX_REAL_MGDL + EDGE_STRIP_MGDL / 2

#: The trace never joins two readings further apart than this: a longer gap is drawn as a gap.
MAX_JOIN_GAP_S = MAX_DELTA_GAP.total_seconds()
#: Dots smaller than this get no rim.
RIM_MIN_DOT_SIZE = 5.0
#: Hover finds the reading nearest in time within this many pixels of the pointer.
HOVER_REACH_PX = 10.0

_MGDL_TICKS = (50, 100, 150, 200, 250, 300, 350)
_MMOL_TICKS = (4, 6, 8, 10, 12, 14, 16, 18, 20)
_THRESHOLD_KINDS = (
    (AlertKind.URGENT_LOW, GlucoseRange.URGENT_LOW),
    (AlertKind.LOW, GlucoseRange.LOW),
    (AlertKind.HIGH, GlucoseRange.HIGH),
    (AlertKind.URGENT_HIGH, GlucoseRange.URGENT_HIGH),
)


@dataclass(frozen=True, eq=False)
class ChartPoints:
    """Readings as the chart draws them, oldest first: x in epoch seconds, y in mg/dL positions."""

    readings: tuple[Reading, ...]
    times: FloatArray
    ys: FloatArray
    ranges: RangeArray

    def __len__(self) -> int:
        return len(self.readings)


def chart_points(readings: Sequence[Reading]) -> ChartPoints:
    """The readings (any order, de-duplicated by time) ready to draw.

    LOW sits in the bottom strip and HIGH in the top strip, never at 39 or 401; each point keeps
    the band it is coloured by: the consensus bands the stats beside the chart count (domain
    stats.band_of: < 54, < 70, 70-180, > 180, > 250), so LOW is very low and HIGH very high.
    """
    ordered = tuple(sorted({r.time: r for r in readings}.values(), key=lambda r: r.time))
    count = len(ordered)
    times = np.fromiter((r.time.timestamp() for r in ordered), dtype=np.float64, count=count)
    mgdl = np.fromiter((r.mgdl for r in ordered), dtype=np.float64, count=count)
    ranges = np.select(
        [
            mgdl < VERY_LOW_BELOW_MGDL,
            mgdl < TARGET_LOW_MGDL,
            mgdl > VERY_HIGH_ABOVE_MGDL,
            mgdl > TARGET_HIGH_MGDL,
        ],
        [
            int(GlucoseRange.URGENT_LOW),
            int(GlucoseRange.LOW),
            int(GlucoseRange.URGENT_HIGH),
            int(GlucoseRange.HIGH),
        ],
        default=int(GlucoseRange.IN_RANGE),
    ).astype(np.int8)
    ys = np.where(mgdl == LOW_MGDL, LOW_MARK_Y, np.where(mgdl == HIGH_MGDL, HIGH_MARK_Y, mgdl))
    return ChartPoints(ordered, times, ys.astype(np.float64), ranges)


def trace(points: ChartPoints) -> tuple[FloatArray, FloatArray]:
    """The line through the points, broken (a NaN) wherever readings are > 15 min apart."""
    if len(points) == 0:
        return np.empty(0), np.empty(0)
    breaks = np.nonzero(np.diff(points.times) > MAX_JOIN_GAP_S)[0] + 1
    xs = np.insert(points.times, breaks, np.nan)
    ys = np.insert(points.ys, breaks, np.nan)
    return xs, ys


def y_position(mgdl_or_mmol: float, unit: Unit) -> float:
    """Where a value in `unit` sits on the chart's mg/dL scale."""
    return mgdl_or_mmol * MGDL_PER_MMOL if unit is Unit.MMOL else mgdl_or_mmol


def value_ticks(unit: Unit) -> list[tuple[float, str]]:
    """The left axis: round values in the person's unit, and the words LOW and HIGH at the edges."""
    ticks: list[tuple[float, str]] = [(LOW_MARK_Y, "LOW")]
    values = _MGDL_TICKS if unit is Unit.MGDL else _MMOL_TICKS
    ticks += [(y_position(v, unit), str(v)) for v in values]
    ticks.append((HIGH_MARK_Y, "HIGH"))
    return ticks


def dot_size(span: timedelta) -> float:
    """Dots shrink as the range grows so a month of readings stays a readable band."""
    if span <= timedelta(hours=6):
        return 7.0
    if span <= timedelta(hours=24):
        return 5.0
    if span <= timedelta(days=7):
        return 3.5
    return 2.5


def local_time(when: datetime, local_tz: tzinfo | None) -> datetime:
    """A time in the viewer's zone: `local_tz`, or the system's when None."""
    return when.astimezone(local_tz) if local_tz is not None else when.astimezone()


def hover_text(reading: Reading, unit: Unit, local_tz: tzinfo | None) -> str:
    """What hovering a reading says: "Sat 21 Nov 14:05 · 142 mg/dL → steady"."""
    when = local_time(reading.time, local_tz).strftime("%a %d %b %H:%M")
    if reading.is_low:
        value = f"LOW (below {format_value(MIN_REAL_MGDL, unit)} {unit.label})"
    elif reading.is_high:
        value = f"HIGH (above {format_value(MAX_REAL_MGDL, unit)} {unit.label})"
    else:
        value = f"{format_value(reading, unit)} {unit.label}"
    trend = reading.trend
    arrow = f"{trend.arrow} {trend.description}" if trend.arrow else trend.description
    return f"{when} · {value} {arrow}"


def _is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightnessF() < 0.5


def readable_colour(colour: str, *, dark: bool, for_text: bool = False) -> QColor:
    """A range colour adjusted to stand out on the chart's background, hue kept.

    On a dark background dim colours are lightened; on a light one, text in a pale colour
    (the yellow of "high") is darkened. Dots on a light background keep the tray's colours.
    """
    base = QColor(colour)
    hue, saturation, lightness = base.hslHueF(), base.hslSaturationF(), base.lightnessF()
    if dark:
        lightness = max(lightness, 0.62 if for_text else 0.5)
    elif for_text:
        lightness = min(lightness, 0.36)
    return QColor.fromHslF(hue, saturation, lightness)


def _with_alpha(colour: QColor | str, alpha: int) -> QColor:
    result = QColor(colour)
    result.setAlpha(alpha)
    return result


class GlucoseChart(QWidget):
    """A pyqtgraph plot of one time range: draws what `show_points` is given, nothing more.

    Mouse pan and zoom are off (the range buttons choose the span), so hover is the only mouse
    interaction: the reading nearest in time to the pointer is ringed and described.
    """

    def __init__(self, *, local_tz: tzinfo | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._local_tz = local_tz
        self._unit = Unit.MGDL
        self._alerts = AlertSettings()
        self._points = chart_points(())
        self._hovered: Reading | None = None
        self._dot_size = dot_size(timedelta(hours=24))
        self.paint_count = 0

        self._time_axis = pg.DateAxisItem(orientation="bottom", utcOffset=None)
        self._plot_widget = pg.PlotWidget(parent=self, axisItems={"bottom": self._time_axis})
        self._plot_widget.setObjectName("history-plot")
        self._plot_widget.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plot_widget)

        plot = self._plot_widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=True, y=True, alpha=0.12)
        plot.setYRange(CHART_BOTTOM, CHART_TOP, padding=0)
        plot.getAxis("left").setWidth(44)
        self._view_box = plot.getViewBox()

        horizontal = "horizontal"
        self._target_band = pg.LinearRegionItem(
            values=(TARGET_LOW_MGDL, TARGET_HIGH_MGDL), orientation=horizontal, movable=False
        )
        self._low_strip = pg.LinearRegionItem(
            values=(CHART_BOTTOM, MIN_REAL_MGDL), orientation=horizontal, movable=False
        )
        self._high_strip = pg.LinearRegionItem(
            values=(MAX_REAL_MGDL, CHART_TOP), orientation=horizontal, movable=False
        )
        for region in (self._target_band, self._low_strip, self._high_strip):
            region.setZValue(-20)
            for line in region.lines:
                line.setPen(pg.mkPen(None))
            plot.addItem(region)

        self._threshold_lines: dict[AlertKind, Any] = {}
        self._threshold_labels: dict[AlertKind, Any] = {}
        for kind, glucose_range in _THRESHOLD_KINDS:
            colour = RANGE_COLOURS[glucose_range].background
            line = pg.InfiniteLine(
                angle=0,
                movable=False,
                pen=pg.mkPen(colour, width=1.2, style=Qt.PenStyle.DashLine),
            )
            line.setZValue(-10)
            plot.addItem(line)
            self._threshold_lines[kind] = line
            # Its label sits at the left (oldest) end, above the dots, never over the newest.
            label = pg.TextItem(anchor=(0, 1))
            label.setZValue(5)
            plot.addItem(label, ignoreBounds=True)
            self._threshold_labels[kind] = label

        self._trace = pg.PlotCurveItem(connect="finite", antialias=True)
        self._trace.setZValue(0)
        plot.addItem(self._trace)
        self._dots: dict[GlucoseRange, Any] = {}
        for glucose_range in GlucoseRange:
            dots = pg.ScatterPlotItem(
                symbol="o",
                pen=None,
                brush=pg.mkBrush(RANGE_COLOURS[glucose_range].background),
                antialias=True,
            )
            dots.setZValue(1)
            plot.addItem(dots)
            self._dots[glucose_range] = dots
        self._low_marks = pg.ScatterPlotItem(
            symbol="t",  # a triangle pointing down
            brush=pg.mkBrush(RANGE_COLOURS[GlucoseRange.URGENT_LOW].background),
            antialias=True,
        )
        self._high_marks = pg.ScatterPlotItem(
            symbol="t1",  # a triangle pointing up
            brush=pg.mkBrush(RANGE_COLOURS[GlucoseRange.URGENT_HIGH].background),
            antialias=True,
        )
        for marks in (self._low_marks, self._high_marks):
            marks.setZValue(2)
            plot.addItem(marks)

        self._hover_ring = pg.ScatterPlotItem(symbol="o", size=14, brush=pg.mkBrush(None))
        self._hover_ring.setZValue(9)
        self._hover_label = pg.TextItem(anchor=(0, 1))
        self._hover_label.setZValue(10)
        for item in (self._hover_ring, self._hover_label):
            item.setVisible(False)
            plot.addItem(item, ignoreBounds=True)

        self.set_view(self._unit, self._alerts)
        self.apply_palette(self.palette())

    # --- what is drawn ------------------------------------------------------------------------

    def set_view(self, unit: Unit, alerts: AlertSettings) -> None:
        """The unit of the labels and the thresholds of the lines (the points are not redrawn)."""
        self._unit = unit
        self._alerts = alerts
        plot = self._plot_widget.getPlotItem()
        plot.getAxis("left").setTicks([value_ticks(unit), []])
        plot.setLabel("left", unit.label)
        thresholds = alerts.thresholds()
        left = float(self._view_box.viewRange()[0][0])
        for kind, line in self._threshold_lines.items():
            mgdl = getattr(thresholds, kind.value)
            line.setPos(mgdl)
            state = "" if alerts[kind].enabled else " (alert off)"
            label = self._threshold_labels[kind]
            label.setText(f"{kind.title} {format_value(mgdl, unit)}{state}")
            label.setPos(left, mgdl)

    def show_points(self, points: ChartPoints, start: datetime, end: datetime) -> None:
        """Draws `points` over the span start..end (the x axis covers the span even if empty)."""
        self._points = points
        span = end - start
        size = dot_size(span)
        if size != self._dot_size:
            self._dot_size = size
            self.apply_palette(self.palette())
        for glucose_range, dots in self._dots.items():
            chosen = (points.ranges == int(glucose_range)) & (
                (points.ys >= MIN_REAL_MGDL) & (points.ys <= MAX_REAL_MGDL)
            )
            dots.setData(x=points.times[chosen], y=points.ys[chosen], size=size)
        mark_size = size + 4
        low = points.ys == LOW_MARK_Y
        high = points.ys == HIGH_MARK_Y
        self._low_marks.setData(x=points.times[low], y=points.ys[low], size=mark_size)
        self._high_marks.setData(x=points.times[high], y=points.ys[high], size=mark_size)
        xs, ys = trace(points)
        self._trace.setData(x=xs, y=ys)
        if self._local_tz is not None:
            offset = self._local_tz.utcoffset(end.astimezone(self._local_tz))
            self._time_axis.utcOffset = -offset.total_seconds() if offset else 0
        left, right = start.timestamp(), end.timestamp()
        margin = (right - left) * 0.01
        self._view_box.setLimits(xMin=left - margin, xMax=right + margin)
        self._view_box.setRange(xRange=(left, right), yRange=(CHART_BOTTOM, CHART_TOP), padding=0.0)
        for kind, label in self._threshold_labels.items():
            label.setPos(left, float(self._threshold_lines[kind].value()))
        self._set_hover(None)

    # --- reading it back (tests, accessibility) -----------------------------------------------

    @property
    def points(self) -> ChartPoints:
        return self._points

    def drawn_counts(self) -> dict[str, int]:
        """How many symbols each item holds: dots by range name, "LOW_MARKS", "HIGH_MARKS"."""
        counts = {r.name: len(self._dots[r].data) for r in GlucoseRange}
        counts["LOW_MARKS"] = len(self._low_marks.data)
        counts["HIGH_MARKS"] = len(self._high_marks.data)
        return counts

    def marker_positions(self) -> dict[str, list[tuple[float, float]]]:
        """Where the LOW and HIGH markers sit (x, y)."""
        return {
            name: [(float(x), float(y)) for x, y in zip(*item.getData(), strict=True)]
            for name, item in (("LOW", self._low_marks), ("HIGH", self._high_marks))
        }

    def trace_data(self) -> tuple[FloatArray, FloatArray]:
        xs, ys = self._trace.getData()
        if xs is None:
            return np.empty(0), np.empty(0)
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def y_range(self) -> tuple[float, float]:
        low, high = self._view_box.viewRange()[1]
        return float(low), float(high)

    def axis_labels(self) -> list[str]:
        """The left axis's labels, bottom to top."""
        return [label for _, label in value_ticks(self._unit)]

    def threshold_labels(self) -> dict[AlertKind, tuple[float, str]]:
        return {
            kind: (float(line.value()), self._threshold_labels[kind].toPlainText())
            for kind, line in self._threshold_lines.items()
        }

    def viewport_point(self, reading: Reading) -> QPointF:
        """Where a drawn reading is on the plot's viewport, in pixels (for pointing at it)."""
        index = int(np.searchsorted(self._points.times, reading.time.timestamp()))
        x, y = float(self._points.times[index]), float(self._points.ys[index])
        scene_point = self._view_box.mapViewToScene(QPointF(x, y))
        return QPointF(self._plot_widget.mapFromScene(scene_point))

    @property
    def plot_viewport(self) -> QWidget:
        viewport: QWidget = self._plot_widget.viewport()
        return viewport

    @property
    def hovered(self) -> Reading | None:
        return self._hovered

    @property
    def hover_text(self) -> str:
        return hover_text(self._hovered, self._unit, self._local_tz) if self._hovered else ""

    # --- colours ------------------------------------------------------------------------------

    def apply_palette(self, palette: QPalette) -> None:
        """Follows the window's light or dark palette."""
        dark = _is_dark(palette)
        background = palette.color(QPalette.ColorRole.Base)
        ink = palette.color(QPalette.ColorRole.Text)
        self._plot_widget.setBackground(background)
        plot = self._plot_widget.getPlotItem()
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(_with_alpha(ink, 150)))
            axis.setTextPen(pg.mkPen(ink))
        band = RANGE_COLOURS[GlucoseRange.IN_RANGE].background
        self._target_band.setBrush(pg.mkBrush(_with_alpha(band, 60 if dark else 38)))
        for strip in (self._low_strip, self._high_strip):
            strip.setBrush(pg.mkBrush(_with_alpha(ink, 22)))
        self._trace.setPen(pg.mkPen(_with_alpha(ink, 70), width=1))
        label_fill = pg.mkBrush(_with_alpha(background, 210))
        for kind, glucose_range in _THRESHOLD_KINDS:
            tray_colour = RANGE_COLOURS[glucose_range].background
            line = self._threshold_lines[kind]
            line.setPen(
                pg.mkPen(
                    readable_colour(tray_colour, dark=dark),
                    width=1.2,
                    style=Qt.PenStyle.DashLine,
                )
            )
            label = self._threshold_labels[kind]
            label.setColor(readable_colour(tray_colour, dark=dark, for_text=True))
            label.fill = label_fill
        for glucose_range, dots in self._dots.items():
            tray_colour = RANGE_COLOURS[glucose_range].background
            dots.setBrush(pg.mkBrush(readable_colour(tray_colour, dark=dark)))
            pale = QColor(tray_colour).lightnessF() > 0.45
            # A pale dot (the yellow of "high") gets a darker rim on a light background,
            # unless dots are so small that the rim would be all there is to see.
            rim = readable_colour(tray_colour, dark=dark, for_text=True)
            wants_rim = pale and not dark and self._dot_size >= RIM_MIN_DOT_SIZE
            dots.setPen(pg.mkPen(rim, width=1) if wants_rim else pg.mkPen(None))
        for marks, glucose_range in (
            (self._low_marks, GlucoseRange.URGENT_LOW),
            (self._high_marks, GlucoseRange.URGENT_HIGH),
        ):
            tray_colour = RANGE_COLOURS[glucose_range].background
            marks.setBrush(pg.mkBrush(readable_colour(tray_colour, dark=dark)))
        outline = pg.mkPen(ink, width=1)
        for marks in (self._low_marks, self._high_marks):
            marks.setPen(outline)
        self._hover_ring.setPen(pg.mkPen(ink, width=2))
        self._hover_label.setColor(ink)
        self._hover_label.fill = pg.mkBrush(_with_alpha(background, 235))
        self._hover_label.border = pg.mkPen(_with_alpha(ink, 120))

    # --- hover --------------------------------------------------------------------------------

    def index_near(self, x_seconds: float, reach_seconds: float) -> int | None:
        """The index of the reading nearest in time to x, if within reach."""
        times = self._points.times
        if len(times) == 0:
            return None
        index = int(np.searchsorted(times, x_seconds))
        candidates = [i for i in (index - 1, index) if 0 <= i < len(times)]
        best = min(candidates, key=lambda i: abs(float(times[i]) - x_seconds))
        return best if abs(float(times[best]) - x_seconds) <= reach_seconds else None

    def _hover_at(self, viewport_pos: QPointF) -> None:
        scene_pos = self._plot_widget.mapToScene(viewport_pos.toPoint())
        if not self._view_box.sceneBoundingRect().contains(scene_pos):
            self._set_hover(None)
            return
        view_pos = self._view_box.mapSceneToView(scene_pos)
        seconds_per_pixel = float(self._view_box.viewPixelSize()[0])
        self._set_hover(self.index_near(view_pos.x(), HOVER_REACH_PX * seconds_per_pixel))

    def _set_hover(self, index: int | None) -> None:
        if index is None:
            self._hovered = None
            self._hover_ring.setVisible(False)
            self._hover_label.setVisible(False)
            return
        reading = self._hovered = self._points.readings[index]
        x, y = float(self._points.times[index]), float(self._points.ys[index])
        self._hover_ring.setData(x=[x], y=[y])
        (left, right), (bottom, top) = self._view_box.viewRange()
        anchor_x = 1.0 if x > (left + right) / 2 else 0.0
        anchor_y = 0.0 if y > (bottom + top) / 2 else 1.0
        self._hover_label.setAnchor((anchor_x, anchor_y))
        self._hover_label.setText(hover_text(reading, self._unit, self._local_tz))
        self._hover_label.setPos(x, y)
        self._hover_ring.setVisible(True)
        self._hover_label.setVisible(True)

    def clear_hover(self) -> None:
        self._set_hover(None)

    # --- events -------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind == QEvent.Type.Paint:
            self.paint_count += 1
        elif kind == QEvent.Type.MouseMove and isinstance(event, QMouseEvent):
            # Every move is handled here: pyqtgraph's own move signal drops fast ones, which
            # could leave the label on a reading the pointer has already left.
            self._hover_at(event.position())
        elif kind == QEvent.Type.Leave:
            self._set_hover(None)
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette(self.palette())
        super().changeEvent(event)
