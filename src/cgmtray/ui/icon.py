"""Paints the tray icon from a DisplayModel: value and arrow on an opaque range-coloured badge.

With several people followed, a badge can carry a person's label on a tab of their colour
(`PersonBadge`); without one it is drawn exactly as for a single person.
"""

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


def _fitted_font(text: str, width: float, height: float, *, fill: bool = False) -> QFont:
    """A bold font in which `text` fits the box: the largest with `fill`, whose capitals reach
    `height`; without it the search starts at a pixel size of `height` (the single badge's look,
    capitals about three quarters of the box)."""
    font = QFont(_font_family())
    font.setBold(True)
    font.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
    size = max(height / 0.7 if fill else height, 1.0)
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


#: A person's label has at most this many characters ("S", "Jo").
MAX_LABEL_CHARS = 2
LABEL_LIGHT_INK = "#ffffff"
LABEL_DARK_INK = "#1a1a1a"


@dataclass(frozen=True, slots=True)
class PersonBadge:
    """A person's mark on the badge: their 1-2 character label on a tab of their colour."""

    label: str
    #: Any colour Qt reads ("#1e88e5"); the label is drawn in white or near-black on it.
    colour: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.label) <= MAX_LABEL_CHARS or self.label != self.label.strip():
            raise ValueError("a badge label is one or two characters, no surrounding space")
        if not QColor.isValidColorName(self.colour):
            raise ValueError("a badge colour must be a colour name such as #1e88e5")

    @property
    def ink(self) -> str:
        """The label's colour: whichever of white and near-black stands out more on the tab."""
        light = contrast_ratio(LABEL_LIGHT_INK, self.colour)
        dark = contrast_ratio(LABEL_DARK_INK, self.colour)
        return LABEL_LIGHT_INK if light >= dark else LABEL_DARK_INK


@dataclass(frozen=True, slots=True)
class BadgeLayout:
    """Where the parts of a badge go, in logical pixels of a `side` x `side` square."""

    side: float
    #: The value's box (the fitted text is centred in it).
    value: QRectF
    #: The arrow's box, or None when the model shows no arrow.
    arrow: QRectF | None
    #: The person's tab in the bottom-left corner, or None for an unlabelled badge.
    tab: QRectF | None


def badge_layout(
    side: float, *, arrow: bool, labelled: bool, device_pixel_ratio: float = 1.0
) -> BadgeLayout:
    """The layout of a badge: value on top, arrow below it; a labelled badge puts its tab in the
    bottom-left corner and the arrow beside it, so the value keeps the full width. The tab's
    edges fall on whole device pixels (crisp at 125 % and 150 % too)."""
    pad = max(0.5, side * 0.03)
    if not labelled:
        text_height = side * (0.62 if arrow else 0.8)
        top = pad if arrow else (side - text_height) / 2
        value = QRectF(pad, top, side - 2 * pad, text_height)
        arrow_box = None
        if arrow:
            arrow_top = pad + text_height
            arrow_box = QRectF(pad, arrow_top, side - 2 * pad, side - arrow_top - pad)
        return BadgeLayout(side, value, arrow_box, None)
    ratio = device_pixel_ratio
    tab_top = round((pad + side * 0.48) * ratio) / ratio
    value = QRectF(pad, pad, side - 2 * pad, tab_top - pad)
    tab_width = round(side * 0.5 * ratio) / ratio
    tab = QRectF(0, tab_top, tab_width, side - tab_top)
    arrow_box = None
    if arrow:
        # Clear of the tab's edge and of the badge's rounded corner.
        left = tab_width + _tab_edge(side, ratio)
        arrow_box = QRectF(left, tab_top, side - left - 2 * pad, side - tab_top - 2 * pad)
    return BadgeLayout(side, value, arrow_box, tab)


def _tab_edge(side: float, device_pixel_ratio: float) -> float:
    """The width of the line round the tab: whole device pixels, at least one."""
    return max(1, round(side * 0.04 * device_pixel_ratio)) / device_pixel_ratio


def _draw_tab(
    painter: QPainter, badge_path: QPainterPath, tab: QRectF, person: PersonBadge, edge: QColor
) -> None:
    """The person's tab: their colour, clipped to the badge's corner, edged in the badge's ink
    (so it stands out even on a badge of the same colour), with the label fitted inside."""
    side = badge_path.boundingRect().width()
    line = _tab_edge(side, painter.device().devicePixelRatioF())
    corner = side * 0.12
    shape = QPainterPath()
    # Reaches past the badge on the left and bottom so only its top-right corner is rounded.
    shape.addRoundedRect(tab.adjusted(-corner, 0, 0, corner), corner, corner)
    shape = shape.intersected(badge_path)
    painter.save()
    painter.fillPath(shape, edge)
    inner = QPainterPath()
    inner.addRoundedRect(tab.adjusted(-corner, line, -line, corner), corner, corner)
    painter.fillPath(inner.intersected(badge_path), QColor(person.colour))
    # Room round the label grows with the size; at 16 px every pixel goes to the letters.
    room = max(0.0, side * 0.1 - 1.6)
    text_box = tab.adjusted(line * 0.5 + room, line + room, -line - room, -line * 0.5 - room)
    font = _fitted_font(person.label, text_box.width(), text_box.height() * 0.92, fill=True)
    painter.setPen(QColor(person.ink))
    _draw_centred(painter, text_box, person.label, font, by_ink=True)
    painter.restore()


def _draw_centred(
    painter: QPainter, box: QRectF, text: str, font: QFont, *, by_ink: bool = False
) -> None:
    """`text` centred in `box` by its ink, not its line box: horizontally always; vertically its
    capitals sit mid-box, or with `by_ink` all of its ink does (a "J" hanging below the line)."""
    metrics = QFontMetricsF(font)
    ink = metrics.tightBoundingRect(text)
    x = box.center().x() - ink.width() / 2 - ink.left()
    if by_ink:
        baseline = box.center().y() - ink.height() / 2 - ink.top()
    else:
        baseline = box.center().y() + metrics.capHeight() / 2
    painter.setFont(font)
    painter.drawText(QPointF(x, baseline), text)


def _draw_outline(painter: QPainter, colours: BadgeColours, side: float) -> None:
    """The frame that marks a not-current badge (stale, no data, error); none for a value."""
    if colours.outline is None:
        return
    border = max(1.0, side * 0.045)
    radius = side * 0.2
    inset = border / 2
    inner = QPainterPath()
    badge = QRectF(0, 0, side, side)
    inner.addRoundedRect(badge.adjusted(inset, inset, -inset, -inset), radius, radius)
    painter.setPen(QPen(QColor(colours.outline), border))
    painter.drawPath(inner)


def render_image(
    model: DisplayModel,
    size: int,
    device_pixel_ratio: float = 1.0,
    person: PersonBadge | None = None,
) -> QImage:
    """One rendering of the badge at a logical size and device-pixel ratio, with the person's
    label in a tab of their colour when `person` is given (unchanged from a single person's
    badge otherwise)."""
    pixels = max(1, round(size * device_pixel_ratio))
    image = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    image.setDevicePixelRatio(device_pixel_ratio)
    colours = badge_colours(model)
    side = pixels / device_pixel_ratio
    trend = _trend_to_draw(model)
    layout = badge_layout(
        side,
        arrow=trend is not None,
        labelled=person is not None,
        device_pixel_ratio=device_pixel_ratio,
    )

    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    badge = QRectF(0, 0, side, side)
    path = QPainterPath()
    radius = side * 0.2
    path.addRoundedRect(badge, radius, radius)
    painter.fillPath(path, QColor(colours.background))
    _draw_outline(painter, colours, side)

    foreground = QColor(colours.foreground)
    painter.setPen(foreground)
    if person is None:
        font = _fitted_font(model.text, layout.value.width(), layout.value.height() * 0.86)
        painter.setFont(font)
        painter.drawText(layout.value, int(Qt.AlignmentFlag.AlignCenter), model.text)
    else:
        font = _fitted_font(
            model.text, layout.value.width(), layout.value.height() * 0.86, fill=True
        )
        _draw_centred(painter, layout.value, model.text, font)

    if trend is not None and layout.arrow is not None:
        centre = layout.arrow.center()
        length = min(layout.arrow.height(), layout.arrow.width(), side * 0.5) * 0.9
        stroke = max(1.0, side * (0.08 if side < 30 else 0.07))
        if person is not None and _ARROW_GEOMETRY[trend][1] == 2:
            # Two shafts and their heads span about 1.14 lengths: keep them in the narrower box.
            length = min(length, (layout.arrow.width() - stroke) / 1.14)
        pen = QPen(foreground, stroke, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        _draw_arrow(painter, centre, length, trend, pen)

    if model.stale and model.severity is Severity.STALE:
        strike = QPen(QColor(colours.foreground), max(1.0, side * 0.05))
        strike.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(strike)
        inset = side * 0.12
        painter.drawLine(QPointF(inset, side - inset), QPointF(side - inset, inset))

    # Over the frame of a not-current badge: the frame still shows round the other three corners.
    if person is not None and layout.tab is not None:
        _draw_tab(painter, path, layout.tab, person, foreground)
    painter.end()
    return image


def render_icon(model: DisplayModel, person: PersonBadge | None = None) -> QIcon:
    """A QIcon holding the badge at every size and device-pixel ratio of the product brief."""
    icon = QIcon()
    for size in ICON_SIZES:
        for ratio in DEVICE_PIXEL_RATIOS:
            icon.addPixmap(QPixmap.fromImage(render_image(model, size, ratio, person)))
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
    "LABEL_DARK_INK",
    "LABEL_LIGHT_INK",
    "MAX_LABEL_CHARS",
    "BadgeColours",
    "BadgeLayout",
    "PersonBadge",
    "badge_colours",
    "badge_layout",
    "contrast_ratio",
    "render_icon",
    "render_image",
]
