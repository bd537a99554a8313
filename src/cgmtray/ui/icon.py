"""Paints the tray icon from a DisplayModel: value and arrow on an opaque range-coloured badge."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QIcon,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)

from cgmtray.domain.display import DisplayModel, Severity
from cgmtray.domain.ranges import GlucoseRange
from cgmtray.domain.readings import Trend

#: Logical sizes the icon is rendered at (product.md), each at every device-pixel ratio below.
ICON_SIZES = (16, 22, 24, 32, 48, 64)
DEVICE_PIXEL_RATIOS = (1.0, 1.25, 1.5, 2.0)


@dataclass(frozen=True, slots=True)
class BadgeColours:
    """Background and foreground of the badge; contrast checked by tests (>= 4.5:1)."""

    background: str
    foreground: str
    outline: str | None = None


RANGE_COLOURS: dict[GlucoseRange, BadgeColours] = {
    GlucoseRange.URGENT_LOW: BadgeColours("#b3001b", "#ffffff"),
    GlucoseRange.LOW: BadgeColours("#c2410c", "#ffffff"),
    GlucoseRange.IN_RANGE: BadgeColours("#1b6e34", "#ffffff"),
    GlucoseRange.HIGH: BadgeColours("#f2b705", "#1a1a1a"),
    GlucoseRange.URGENT_HIGH: BadgeColours("#7a1fa2", "#ffffff"),
}
STALE_COLOURS = BadgeColours("#6b6b6b", "#ffffff", "#a8a8a8")
NO_DATA_COLOURS = BadgeColours("#474747", "#f0f0f0", "#9a9a9a")
ERROR_COLOURS = BadgeColours("#474747", "#ffd34d", "#ffd34d")


def badge_colours(model: DisplayModel) -> BadgeColours:
    """The colours for a model: by range when a current value is shown, distinct grey otherwise."""
    if model.severity is Severity.NO_DATA:
        return NO_DATA_COLOURS
    if model.severity is Severity.ERROR:
        return ERROR_COLOURS
    if model.stale or model.range is None:
        return STALE_COLOURS
    return RANGE_COLOURS[model.range]


#: Arrow direction (degrees clockwise from "up") and how many chevrons, per trend.
_ARROW_GEOMETRY: dict[Trend, tuple[float, int]] = {
    Trend.DOUBLE_UP: (0.0, 2),
    Trend.SINGLE_UP: (0.0, 1),
    Trend.FORTY_FIVE_UP: (45.0, 1),
    Trend.FLAT: (90.0, 1),
    Trend.FORTY_FIVE_DOWN: (135.0, 1),
    Trend.SINGLE_DOWN: (180.0, 1),
    Trend.DOUBLE_DOWN: (180.0, 2),
}


def _trend_to_draw(model: DisplayModel) -> Trend | None:
    """The trend whose arrow the badge draws, or None when the model shows no arrow."""
    if not model.arrow or model.reading is None:
        return None
    trend = model.reading.trend
    return trend if trend in _ARROW_GEOMETRY else None


@lru_cache(maxsize=4)
def _font_family() -> str:
    from PySide6.QtGui import QFontDatabase

    families = set(QFontDatabase.families())
    for name in ("DejaVu Sans Condensed", "Liberation Sans Narrow", "Arial Narrow", "DejaVu Sans"):
        if name in families:
            return name
    return QFont().defaultFamily()


def _fitted_font(text: str, width: float, height: float) -> QFont:
    """The largest bold font in which `text` fits the box."""
    font = QFont(_font_family())
    font.setBold(True)
    font.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
    size = max(height, 1.0)
    for _ in range(40):
        font.setPixelSize(max(1, int(size)))
        metrics = QFontMetricsF(font)
        bounds = metrics.tightBoundingRect(text)
        if bounds.width() <= width and metrics.capHeight() <= height:
            break
        size *= 0.92
    return font


def _draw_arrow(painter: QPainter, centre: QPointF, length: float, trend: Trend, pen: QPen) -> None:
    """One arrow, or two side by side for the double trends, pointing along the trend's angle."""
    angle, count = _ARROW_GEOMETRY[trend]
    painter.save()
    painter.translate(centre)
    painter.rotate(angle)
    painter.setPen(pen)
    half = length / 2
    head = length * (0.4 if count == 1 else 0.3)
    offsets = (0.0,) if count == 1 else (-length * 0.27, length * 0.27)
    for x in offsets:
        painter.drawLine(QPointF(x, half), QPointF(x, -half))
        painter.drawLine(QPointF(x, -half), QPointF(x - head, -half + head))
        painter.drawLine(QPointF(x, -half), QPointF(x + head, -half + head))
    painter.restore()


def render_image(model: DisplayModel, size: int, device_pixel_ratio: float = 1.0) -> QImage:
    """One rendering of the badge at a logical size and device-pixel ratio."""
    pixels = max(1, round(size * device_pixel_ratio))
    image = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    image.setDevicePixelRatio(device_pixel_ratio)
    colours = badge_colours(model)
    side = pixels / device_pixel_ratio

    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    badge = QRectF(0, 0, side, side)
    path = QPainterPath()
    radius = side * 0.2
    path.addRoundedRect(badge, radius, radius)
    painter.fillPath(path, QColor(colours.background))
    if colours.outline is not None:
        border = max(1.0, side * 0.045)
        inner = QPainterPath()
        inset = border / 2
        inner.addRoundedRect(badge.adjusted(inset, inset, -inset, -inset), radius, radius)
        painter.setPen(QPen(QColor(colours.outline), border))
        painter.drawPath(inner)

    foreground = QColor(colours.foreground)
    trend = _trend_to_draw(model)
    pad = max(0.5, side * 0.03)
    text_height = side * (0.62 if trend else 0.8)
    text_box = QRectF(pad, pad, side - 2 * pad, text_height)
    if trend is None:
        text_box.moveTop((side - text_height) / 2)
    font = _fitted_font(model.text, text_box.width(), text_box.height() * 0.86)
    painter.setFont(font)
    painter.setPen(foreground)
    painter.drawText(text_box, int(Qt.AlignmentFlag.AlignCenter), model.text)

    if trend is not None:
        arrow_box_top = pad + text_height
        arrow_height = side - arrow_box_top - pad
        centre = QPointF(side / 2, arrow_box_top + arrow_height / 2)
        stroke = max(1.0, side * (0.08 if side < 30 else 0.07))
        pen = QPen(foreground, stroke, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        _draw_arrow(painter, centre, min(arrow_height, side * 0.5) * 0.9, trend, pen)

    if model.stale and model.severity is Severity.STALE:
        strike = QPen(QColor(colours.foreground), max(1.0, side * 0.05))
        strike.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(strike)
        inset = side * 0.12
        painter.drawLine(QPointF(inset, side - inset), QPointF(side - inset, inset))
    painter.end()
    return image


def render_icon(model: DisplayModel) -> QIcon:
    """A QIcon holding the badge at every size and device-pixel ratio of the product brief."""
    icon = QIcon()
    for size in ICON_SIZES:
        for ratio in DEVICE_PIXEL_RATIOS:
            icon.addPixmap(QPixmap.fromImage(render_image(model, size, ratio)))
    return icon


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two colours."""

    def luminance(colour: str) -> float:
        qcolour = QColor(colour)
        channels = []
        for value in (qcolour.redF(), qcolour.greenF(), qcolour.blueF()):
            channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
        red, green, blue = channels
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


__all__ = [
    "DEVICE_PIXEL_RATIOS",
    "ICON_SIZES",
    "BadgeColours",
    "badge_colours",
    "contrast_ratio",
    "render_icon",
    "render_image",
]
