"""A person's badge: their label on a tab of their colour, legible at every tray size and ratio."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QFontMetricsF, QImage
from PySide6.QtWidgets import QApplication

from cgmtray.domain import display
from cgmtray.domain.failures import FailureClass
from cgmtray.domain.ranges import Thresholds
from cgmtray.domain.readings import Reading, Trend
from cgmtray.domain.units import Unit
from cgmtray.ui import icon
from cgmtray.ui.icon import (
    DEVICE_PIXEL_RATIOS,
    ICON_SIZES,
    LABEL_DARK_INK,
    LABEL_LIGHT_INK,
    PersonBadge,
    badge_colours,
    badge_layout,
    contrast_ratio,
    render_icon,
    render_image,
)

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
SAM = PersonBadge("S", "#1f5fd1")
MIA = PersonBadge("M", "#00796b")
JO = PersonBadge("Jo", "#d81b78")
#: Channel distance within which a pixel counts as "that colour" (antialiased edges mostly not).
NEAR = 40
#: The same for a filled area, drawn in exactly its colour.
EXACT = 6


def shown(
    mgdl: int | None,
    trend: Trend = Trend.FLAT,
    *,
    unit: Unit = Unit.MGDL,
    age_min: float = 2,
    failure: FailureClass | None = None,
) -> display.DisplayModel:
    readings = [] if mgdl is None else [Reading(NOW - timedelta(minutes=age_min), mgdl, trend)]
    return display.model(
        readings,
        NOW,
        unit=unit,
        thresholds=Thresholds(),
        connection="Sign-in failed" if failure else None,
        failure=failure,
    )


MODELS = {
    "in range": shown(142),
    "urgent low": shown(48, Trend.DOUBLE_DOWN),
    "urgent high": shown(334, Trend.DOUBLE_UP),
    "high": shown(262, Trend.SINGLE_UP),
    "HIGH": shown(401, Trend.NONE),
    "mmol/L": shown(400, Trend.FORTY_FIVE_UP, unit=Unit.MMOL),
    "stale": shown(142, age_min=13),
    "no data": shown(None),
    "sign-in": shown(None, failure=FailureClass.CREDENTIALS),
}
SIZES_AND_RATIOS = [(size, ratio) for size in ICON_SIZES for ratio in DEVICE_PIXEL_RATIOS]


@pytest.fixture(autouse=True)
def _app(qapp: QApplication) -> QApplication:
    """Fonts and images need the application object."""
    return qapp


def pixels(image: QImage) -> Iterator[tuple[int, int, QColor]]:
    """(x, y, colour) of every opaque pixel."""
    plain = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, stride = plain.width(), plain.bytesPerLine()
    data = bytes(plain.constBits())
    for y in range(plain.height()):
        row = y * stride
        for x in range(width):
            red, green, blue, alpha = data[row + 4 * x : row + 4 * x + 4]
            if alpha == 255:
                yield x, y, QColor(red, green, blue)


def near(colour: QColor, wanted: str, within: int = NEAR) -> bool:
    other = QColor(wanted)
    return (
        abs(colour.red() - other.red()) <= within
        and abs(colour.green() - other.green()) <= within
        and abs(colour.blue() - other.blue()) <= within
    )


def distance(colour: QColor, other: str) -> int:
    wanted = QColor(other)
    return (
        abs(colour.red() - wanted.red())
        + abs(colour.green() - wanted.green())
        + abs(colour.blue() - wanted.blue())
    )


def closer_to(colour: QColor, ink: str, background: str) -> bool:
    """Nearer the ink than the background: a stroke of the label, antialiased or not."""
    return distance(colour, ink) < distance(colour, background)


def count(image: QImage, wanted: str) -> int:
    return sum(1 for _, _, colour in pixels(image) if near(colour, wanted))


def test_a_labelled_badge_differs_from_the_unlabelled_one_and_the_unlabelled_one_is_as_before() -> (
    None
):
    model = MODELS["in range"]
    for size, ratio in SIZES_AND_RATIOS:
        plain = render_image(model, size, ratio)
        assert render_image(model, size, ratio, None) == plain
        assert render_image(model, size, ratio, SAM) != plain, (size, ratio)
        assert count(plain, SAM.colour) == 0


@pytest.mark.parametrize("person", [SAM, MIA, JO], ids=lambda p: p.label)
@pytest.mark.parametrize("state", sorted(MODELS))
def test_the_persons_colour_and_label_show_at_every_size(person: PersonBadge, state: str) -> None:
    """A block of the person's colour in the bottom-left corner with the label drawn on it."""
    model = MODELS[state]
    for size, ratio in SIZES_AND_RATIOS:
        image = render_image(model, size, ratio, person)
        side = image.width()
        tab = [(x, y) for x, y, c in pixels(image) if near(c, person.colour, EXACT)]
        assert len(tab) >= 0.05 * side * side, (state, size, ratio)
        assert all(x < 0.56 * side and y > 0.45 * side for x, y in tab), (state, size, ratio)
        label = [
            (x, y)
            for x, y, colour in pixels(image)
            if closer_to(colour, person.ink, person.colour) and x < 0.5 * side and y > 0.5 * side
        ]
        assert len(label) >= 0.02 * side * side, (state, size, ratio)


def test_a_tab_in_the_badges_own_colour_is_still_edged_apart() -> None:
    """A person whose colour is the in-range green: a line of the badge's ink runs along the top
    of their tab, so the tab and its label still show."""
    model = MODELS["in range"]
    colours = badge_colours(model)
    twin = PersonBadge("S", colours.background)
    for size in ICON_SIZES:
        for ratio in (1.0, 2.0):
            image = render_image(model, size, ratio, twin)
            layout = badge_layout(size, arrow=True, labelled=True, device_pixel_ratio=ratio)
            assert layout.tab is not None
            y = int(layout.tab.top() * ratio)
            x = int(layout.tab.width() * ratio * 0.4)
            assert near(image.pixelColor(x, y), colours.foreground), (size, ratio)
            assert render_image(model, size, ratio, twin) != render_image(model, size, ratio)


@pytest.mark.parametrize("text_of", ["334", "22.2", "HIGH", "LOW", "10.4"])
def test_the_widest_values_fit_beside_a_label(text_of: str) -> None:
    """The value keeps the whole width above the tab: its ink stays inside the badge and never
    reaches the tab, at every size and ratio."""
    for size, ratio in SIZES_AND_RATIOS:
        side = round(size * ratio) / ratio
        layout = badge_layout(side, arrow=True, labelled=True, device_pixel_ratio=ratio)
        assert layout.tab is not None
        assert layout.arrow is not None
        font = icon._fitted_font(
            text_of, layout.value.width(), layout.value.height() * 0.86, fill=True
        )
        ink = QFontMetricsF(font).tightBoundingRect(text_of)
        assert ink.width() <= layout.value.width(), (size, ratio)
        assert QFontMetricsF(font).capHeight() <= layout.value.height(), (size, ratio)
        assert layout.value.bottom() <= layout.tab.top()
        assert layout.arrow.left() >= layout.tab.right()
        assert layout.arrow.right() <= side
        assert layout.arrow.bottom() <= side


@pytest.mark.parametrize("state", ["urgent high", "mmol/L", "HIGH"])
def test_three_characters_and_a_label_are_not_cut_at_the_badges_sides(state: str) -> None:
    """No ink of the value on the outermost columns of the badge: nothing was drawn past it."""
    model = MODELS[state]
    colours = badge_colours(model)
    for size, ratio in SIZES_AND_RATIOS:
        image = render_image(model, size, ratio, JO)
        side = image.width()
        value_rows = range(int(side * 0.45))
        inked = [
            x
            for x, y, c in pixels(image)
            if y in value_rows and closer_to(c, colours.foreground, colours.background)
        ]
        assert 0 not in inked, (size, ratio)
        assert side - 1 not in inked, (size, ratio)
        assert max(inked) - min(inked) >= 0.6 * side, (size, ratio)


def test_the_label_is_large_where_there_is_room() -> None:
    """From 22 px on, a one-letter label's capitals are at least a third of the badge's height."""
    for size in (22, 24, 32, 48, 64):
        image = render_image(MODELS["in range"], size, 1.0, SAM)
        rows = {y for x, y, c in pixels(image) if near(c, SAM.ink) and x < size * 0.5}
        rows &= set(range(size // 2, size))
        assert max(rows) - min(rows) + 1 >= size / 3 - 1, size


def test_render_icon_carries_the_label_at_every_size() -> None:
    labelled = render_icon(MODELS["urgent low"], JO)
    plain = render_icon(MODELS["urgent low"])
    assert labelled.availableSizes() == plain.availableSizes()
    for size in ICON_SIZES:
        image = labelled.pixmap(QSize(size, size)).toImage()
        assert count(image, JO.colour) > 0, size


@pytest.mark.parametrize("label", ["", "Sam", " S", "S ", "\t"])
def test_a_label_is_one_or_two_characters(label: str) -> None:
    with pytest.raises(ValueError, match="one or two characters"):
        PersonBadge(label, "#1f5fd1")


def test_a_colour_must_be_one_qt_reads() -> None:
    with pytest.raises(ValueError, match="colour"):
        PersonBadge("S", "not a colour")


@pytest.mark.parametrize(
    ("colour", "ink"),
    [("#1f5fd1", LABEL_LIGHT_INK), ("#ffd34d", LABEL_DARK_INK), ("#f5f5f5", LABEL_DARK_INK)],
)
def test_the_label_is_white_or_near_black_whichever_reads_better(colour: str, ink: str) -> None:
    person = PersonBadge("Jo", colour)
    assert person.ink == ink
    assert contrast_ratio(person.ink, colour) >= 4.5
