"""Screenshots of the history window: 3 h, 24 h and 30 d, mg/dL and mmol/L, light and dark; and
with three people, the person selector open (history-people-{light,dark}.png)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QComboBox

from cgmtray.domain.alert_config import AlertKind, AlertSettings, KindConfig
from cgmtray.domain.clock import ManualClock
from cgmtray.domain.readings import Reading
from cgmtray.domain.units import Unit
from cgmtray.fakeshare.demo import DEMO_FAMILY, day_of
from cgmtray.fakeshare.sensor import SimulatedSensor
from cgmtray.storage.history import MEMORY, HistoryStore
from cgmtray.storage.people import PALETTE
from cgmtray.ui.history_people import HistoryPerson
from cgmtray.ui.history_window import HistoryWindow

#: 05:15 in Berlin: the 3 h view holds the night's low (with LOW readings) and a sensor gap.
NOW = datetime(2026, 11, 21, 4, 15, tzinfo=UTC)
LOCAL_TZ = ZoneInfo("Europe/Berlin")
GAPS = (
    (datetime(2026, 11, 21, 3, 20, tzinfo=UTC), datetime(2026, 11, 21, 3, 45, tzinfo=UTC)),
    (datetime(2026, 11, 20, 15, 0, tzinfo=UTC), datetime(2026, 11, 20, 16, 10, tzinfo=UTC)),
    (datetime(2026, 11, 9, 6, 0, tzinfo=UTC), datetime(2026, 11, 9, 20, 0, tzinfo=UTC)),
)
RANGES = ("3h", "24h", "30d")
SIZE = (1100, 600)


def seeded_readings() -> list[Reading]:
    """A simulated month and a bit (meals, a night low reaching LOW, gaps) ending at NOW."""
    sensor = SimulatedSensor(
        seed=3, start=NOW - timedelta(days=31), offset_minutes=60, gaps=GAPS, jitter_s=1.5
    )
    return [p.reading for p in sensor.readings_between(sensor.start, NOW + timedelta(seconds=1))]


def family_readings(index: int) -> list[Reading]:
    """A day and a bit of the demo family's person `index` (their own kind of day) ending at NOW."""
    sensor = SimulatedSensor(
        seed=11 + index,
        start=NOW - timedelta(days=1, hours=2),
        offset_minutes=60,
        profile=day_of(DEMO_FAMILY[index]),
        jitter_s=1.5,
    )
    return [p.reading for p in sensor.readings_between(sensor.start, NOW + timedelta(seconds=1))]


def family_people() -> list[HistoryPerson]:
    """The demo family as the history window sees them; Mia's low alert is raised to 80."""
    people = []
    for index, person in enumerate(DEMO_FAMILY):
        alerts = AlertSettings()
        if person.name == "Mia":
            five = timedelta(minutes=5)
            alerts = alerts.with_kind(AlertKind.LOW, KindConfig(True, 80, five, False, five))
        people.append(
            HistoryPerson(f"{index + 1:012x}", person.name, person.label, PALETTE[index], alerts)
        )
    return people


def dark_palette() -> QPalette:
    """A plain dark palette, the kind a dark desktop theme gives Qt apps."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1f2124",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#25272a",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#2c2f33",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.Highlight: "#3d7bd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#9a9da3",
        QPalette.ColorRole.Mid: "#45484d",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Light: "#3a3d42",
        QPalette.ColorRole.ToolTipBase: "#2c2f33",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7d8086"))
    return palette


def hover_reading(window: HistoryWindow) -> None:
    """Points the mouse at the last LOW reading shown (or the newest), so the hover label shows."""
    readings = window.shown_readings
    lows = [r for r in readings if r.is_low]
    target = lows[-1] if lows else readings[-1]
    viewport = window.chart.plot_viewport
    point = window.chart.viewport_point(target)
    move = QMouseEvent(
        QMouseEvent.Type.MouseMove,
        QPointF(point),
        viewport.mapToGlobal(QPointF(point)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(viewport, move)


def with_popup(window: HistoryWindow, combo: QComboBox) -> QPixmap:
    """The window's image with the selector's list drawn open over it, where it would show."""
    shot = window.grab()
    combo.showPopup()
    QApplication.processEvents()
    popup = combo.view().window()
    where = window.mapFromGlobal(popup.mapToGlobal(QPoint(0, 0)))
    painter = QPainter(shot)
    try:
        painter.drawPixmap(where, popup.grab())
    finally:
        painter.end()
    combo.hidePopup()
    return shot


def render_people(out_dir: Path, theme: str) -> Path:
    """Three people's histories, Mia's shown over 24 h, the person selector open."""
    people = family_people()
    stores = {person.id: HistoryStore(MEMORY) for person in people}
    try:
        for index, person in enumerate(people):
            stores[person.id].add(family_readings(index))
        window = HistoryWindow(
            stores[people[0].id], clock=ManualClock(NOW), unit=Unit.MGDL, local_tz=LOCAL_TZ
        )
        window.resize(*SIZE)
        window.set_people(people, stores.__getitem__)
        window.show_person(people[1].id)
        window.show_range("24h")
        window.present()
        QApplication.processEvents()
        combo = window.selector.combo
        path = out_dir / f"history-people-{theme}.png"
        with_popup(window, combo).save(str(path))
        window.close()
        window.deleteLater()
        QApplication.processEvents()
    finally:
        for store in stores.values():
            store.close()
    return path


def render(out_dir: Path) -> list[Path]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    light = app.style().standardPalette()
    store = HistoryStore(MEMORY)
    store.add(seeded_readings())
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for theme, palette in (("light", light), ("dark", dark_palette())):
            app.setPalette(palette)
            written.append(render_people(out_dir, theme))
            for unit, unit_name in ((Unit.MGDL, "mgdl"), (Unit.MMOL, "mmol")):
                for key in RANGES:
                    window = HistoryWindow(
                        store,
                        clock=ManualClock(NOW),
                        unit=unit,
                        alerts=AlertSettings(),
                        local_tz=LOCAL_TZ,
                    )
                    window.resize(*SIZE)
                    window.show_range(key)
                    window.present()
                    app.processEvents()
                    if key == "3h":
                        hover_reading(window)
                        app.processEvents()
                    path = out_dir / f"history-{key}-{unit_name}-{theme}.png"
                    window.grab().save(str(path))
                    written.append(path)
                    window.close()
                    window.deleteLater()
                    app.processEvents()
    finally:
        store.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/screenshots"))
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    for path in render(args.out):
        print(path)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
