"""Whose history the history window shows: the people it knows and its person selector."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from cgmtray.domain.alert_config import AlertSettings
from cgmtray.storage.people import Person
from cgmtray.ui.icon import LABEL_LIGHT_INK, PersonBadge

#: The chip beside each name in the selector, in logical pixels.
CHIP_SIZE = 18
#: A person's name in a suggested file name is cut to this many characters.
MAX_FILE_NAME_PART = 40

_NOT_IN_FILE_NAME = re.compile(r"[^\w]+")


@dataclass(frozen=True, slots=True)
class HistoryPerson:
    """A person as the history window sees them: who, their chip, their alerts' thresholds."""

    id: str
    name: str
    label: str
    colour: str
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @classmethod
    def of(cls, person: Person) -> HistoryPerson:
        return cls(person.id, person.name, person.label, person.colour, person.alerts)


def file_name_part(name: str, fallback: str = "person") -> str:
    """`name` as part of a file name: letters and digits (any script) in lower case, every other
    run of characters one "-", at most MAX_FILE_NAME_PART long; `fallback` if nothing is left."""
    folded = unicodedata.normalize("NFC", name).lower()
    part = _NOT_IN_FILE_NAME.sub("-", folded).replace("_", "-")
    part = re.sub("-{2,}", "-", part).strip("-")[:MAX_FILE_NAME_PART].strip("-")
    return part or fallback


def chip_icon(label: str, colour: str, size: int = CHIP_SIZE) -> QIcon:
    """A person's chip: their label on a rounded square of their colour (as on their badge)."""
    icon = QIcon()
    for ratio in (1.0, 2.0):
        pixmap = QPixmap(round(size * ratio), round(size * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(colour))
            box = QRectF(0.5, 0.5, size - 1.0, size - 1.0)
            painter.drawRoundedRect(box, size * 0.22, size * 0.22)
            font = QFont()
            font.setBold(True)
            font.setPixelSize(round(size * (0.62 if len(label) == 1 else 0.5)))
            painter.setFont(font)
            painter.setPen(QColor(_ink(label, colour)))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        finally:
            painter.end()
        icon.addPixmap(pixmap)
    return icon


def _ink(label: str, colour: str) -> str:
    try:
        return PersonBadge(label, colour).ink
    except ValueError:  # (a label or colour the people model would not keep)
        return LABEL_LIGHT_INK


class PersonSelector(QWidget):
    """ "Person:" and a combo box of each person's chip and name. Hidden for one person or none.

    Signals:
        person_chosen(str id): the user picked a person (not emitted by `select`).
    """

    person_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("history-person-selector")
        self._combo = QComboBox(self)
        self._combo.setObjectName("history-person")
        self._combo.setToolTip("Whose history is shown")
        self._combo.setIconSize(QSize(CHIP_SIZE, CHIP_SIZE))
        self._combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._combo.activated.connect(self._on_combo_activated)
        label = QLabel("&Person:", self)
        label.setObjectName("history-person-label")
        label.setBuddy(self._combo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 8, 0)  # (a gap before the range buttons)
        layout.setSpacing(6)
        layout.addWidget(label)
        layout.addWidget(self._combo)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setVisible(False)

    @property
    def combo(self) -> QComboBox:
        return self._combo

    def set_people(self, people: Sequence[HistoryPerson], shown: str | None) -> None:
        """Lists `people` in order, `shown` selected; visible only for two people or more."""
        self._combo.blockSignals(True)
        try:
            self._combo.clear()
            for person in people:
                self._combo.addItem(chip_icon(person.label, person.colour), person.name, person.id)
            self.select(shown)
        finally:
            self._combo.blockSignals(False)
        self.setVisible(len(people) > 1)

    def select(self, person_id: str | None) -> None:
        index = self._combo.findData(person_id) if person_id is not None else -1
        if index >= 0:
            self._combo.setCurrentIndex(index)

    def names(self) -> list[str]:
        """The names listed, in order (tests, screenshots)."""
        return [self._combo.itemText(i) for i in range(self._combo.count())]

    @Slot(int)
    def _on_combo_activated(self, index: int) -> None:
        person_id = self._combo.itemData(index)
        if isinstance(person_id, str):
            self.person_chosen.emit(person_id)
