"""The settings window's Alerts page: a row of fields per alert kind, read back as settings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cgmtray.domain.alert_config import URGENT_LOW_SNOOZE_CAP, AlertKind, AlertSettings, KindConfig
from cgmtray.domain.readings import MAX_REAL_MGDL, MIN_REAL_MGDL
from cgmtray.domain.units import (
    Unit,
    format_amount,
    format_rate,
    mgdl_to_mmol,
    rate_from_display,
    rate_label,
    threshold_from_display,
)
from cgmtray.storage.settings import (
    GLUCOSE_KINDS,
    MAX_MINUTES,
    RATE_KINDS,
    threshold_problems,
)

#: The four kinds whose thresholds bound the glucose ranges, in the order they must rise.
RANGE_KINDS = (AlertKind.URGENT_LOW, AlertKind.LOW, AlertKind.HIGH, AlertKind.URGENT_HIGH)
#: Kinds that wait for the condition to last before alerting (the "Delay" column).
DELAY_KINDS = frozenset(RANGE_KINDS)


def glucose_text(mgdl: float, unit: Unit) -> str:
    """A glucose threshold as shown in the field: "70" or "3.9" (any amount, even out of range)."""
    whole = round(mgdl)
    if unit is Unit.MGDL:
        return str(whole)
    if MIN_REAL_MGDL <= whole <= MAX_REAL_MGDL:
        return str(mgdl_to_mmol(whole))
    return format_amount(mgdl, Unit.MMOL)


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _minutes(span: timedelta | None) -> int:
    return 0 if span is None else round(span / timedelta(minutes=1))


def _kept_minutes(value: int, original: timedelta | None) -> timedelta:
    """`value` minutes, or the original span when the spin box still shows it (no drift)."""
    if original is not None and _minutes(original) == value:
        return original
    return timedelta(minutes=value)


def spin_box(low: int, high: int, suffix: str, *, never_at_zero: bool = False) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSuffix(suffix)
    spin.setAccelerated(True)
    if never_at_zero:
        spin.setSpecialValueText("never")
    return spin


class AlertKindRow:
    """The widgets of one alert kind on the Alerts page, and how to read them back."""

    def __init__(self, kind: AlertKind, config: KindConfig) -> None:
        self.kind = kind
        self.original = config
        self.title = QLabel(kind.title)
        self.enabled = QCheckBox()
        self.enabled.setChecked(config.enabled)
        self.enabled.setAccessibleName(f"{kind.title} on")
        self.threshold: QLineEdit | None = None
        self.unit_label = QLabel()
        #: The mg/dL the threshold field's text stands for (kept when the text is untouched).
        self.basis_mgdl: int | None = None
        if kind is AlertKind.URGENT_LOW:
            self.enabled.setEnabled(False)
            self.enabled.setToolTip("Urgent low is always on.")
        if kind in GLUCOSE_KINDS or kind in RATE_KINDS or kind is AlertKind.NO_DATA:
            self.threshold = QLineEdit()
            self.threshold.setAccessibleName(f"{kind.title} threshold")
            self.threshold.setMaximumWidth(64)
        #: The mg/dL per minute a rate field's text stands for (kept when the text is untouched).
        self.basis_rate: float | None = None
        if kind is AlertKind.NO_DATA:
            self.threshold_text = _plain_number(config.threshold)
            self.unit_label.setText("min")
            self.unit_label.setToolTip("minutes without a reading")
            assert self.threshold is not None
            self.threshold.setText(self.threshold_text)
        self.repeat = spin_box(0, MAX_MINUTES, " min", never_at_zero=True)
        self.repeat.setValue(_minutes(config.repeat))
        self.repeat.setAccessibleName(f"{kind.title} repeat")
        self.sound = QCheckBox()
        self.sound.setChecked(config.sound)
        self.sound.setAccessibleName(f"{kind.title} sound")
        cap = _minutes(URGENT_LOW_SNOOZE_CAP) if kind is AlertKind.URGENT_LOW else MAX_MINUTES
        self.snooze = spin_box(0, cap, " min")
        self.snooze.setValue(min(cap, _minutes(config.snooze_cap)))
        self.snooze.setAccessibleName(f"{kind.title} snooze limit")
        self.delay: QSpinBox | None = None
        if kind in DELAY_KINDS:
            self.delay = spin_box(0, MAX_MINUTES, " min")
            self.delay.setValue(_minutes(config.persistence))
            self.delay.setAccessibleName(f"{kind.title} delay")

    def show_glucose(self, mgdl: float, unit: Unit) -> None:
        if self.threshold is None or self.kind not in GLUCOSE_KINDS:
            return
        self.basis_mgdl = round(mgdl)
        self.threshold.setText(glucose_text(mgdl, unit))
        self.unit_label.setText(unit.label)

    def show_rate(self, mgdl_per_minute: float, unit: Unit) -> None:
        if self.threshold is None or self.kind not in RATE_KINDS:
            return
        self.basis_rate = mgdl_per_minute
        self.threshold.setText(format_rate(mgdl_per_minute, unit))
        self.unit_label.setText(rate_label(unit))
        self.unit_label.setToolTip(f"{unit.label} per minute")

    def rate_mgdl(self, unit: Unit) -> float | None:
        """The mg/dL per minute a rate field means, or None if it is not a number."""
        if self.threshold is None or _number(self.threshold.text()) is None:
            return None
        return rate_from_display(self.threshold.text(), unit, self.basis_rate)

    def glucose_mgdl(self, unit: Unit) -> int | None:
        """The mg/dL the field means, or None if it is not a number."""
        if self.threshold is None:
            return None
        if _number(self.threshold.text()) is None:
            return None
        return threshold_from_display(self.threshold.text(), unit, self.basis_mgdl)

    def own_threshold(self) -> float | None:
        """A minutes threshold (neither glucose nor rate), or None if not a number."""
        if self.threshold is None:
            return self.original.threshold
        text = self.threshold.text().strip()
        if text == self.threshold_text:
            return self.original.threshold
        number = _number(text)
        return None if number is None else float(number)

    def config(self, threshold: float) -> KindConfig:
        repeat = self.repeat.value()
        return KindConfig(
            enabled=self.enabled.isChecked(),
            threshold=threshold,
            repeat=None if repeat == 0 else _kept_minutes(repeat, self.original.repeat),
            sound=self.sound.isChecked(),
            snooze_cap=_kept_minutes(self.snooze.value(), self.original.snooze_cap),
            persistence=(
                self.original.persistence
                if self.delay is None
                else _kept_minutes(self.delay.value(), self.original.persistence)
            ),
        )


class AlertsPage(QWidget):
    """The alert kinds in a grid: on, threshold, repeat, sound, snooze limit, delay.

    Signals: changed() — a threshold's text or an alert's "On" changed (the dialog
    re-validates).
    """

    changed = Signal()

    def __init__(self, alerts: AlertSettings, unit: Unit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = alerts
        self._unit = unit
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        headers = ("Alert", "On", "Threshold", "", "Repeat", "Sound", "Snooze up to", "Delay")
        for column, header in enumerate(headers):
            grid.addWidget(QLabel(f"<b>{header}</b>"), 0, column)
        self.kind_rows: dict[AlertKind, AlertKindRow] = {}
        for row_index, kind in enumerate(AlertKind, start=1):
            row = AlertKindRow(kind, alerts[kind])
            self.kind_rows[kind] = row
            grid.addWidget(row.title, row_index, 0)
            grid.addWidget(row.enabled, row_index, 1)
            row.enabled.toggled.connect(self.changed)  # which thresholds must be in order
            if row.threshold is not None:
                grid.addWidget(row.threshold, row_index, 2)
                grid.addWidget(row.unit_label, row_index, 3)
                row.threshold.textChanged.connect(self.changed)
            grid.addWidget(row.repeat, row_index, 4)
            grid.addWidget(row.sound, row_index, 5)
            grid.addWidget(row.snooze, row_index, 6)
            if row.delay is not None:
                grid.addWidget(row.delay, row_index, 7)
        grid.setColumnStretch(8, 1)
        note = QLabel(
            "Urgent low is always on and can be snoozed for 30 minutes at most. "
            "Delay: how long a value must stay past the threshold before the alert."
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(note)
        layout.addStretch(1)
        for kind in GLUCOSE_KINDS:
            self.kind_rows[kind].show_glucose(alerts[kind].threshold, unit)
        for kind in RATE_KINDS:
            self.kind_rows[kind].show_rate(alerts[kind].threshold, unit)

    def set_unit(self, unit: Unit) -> None:
        """Shows the glucose and rate thresholds in `unit`, keeping what was typed (converted)."""
        if unit is self._unit:
            return
        old_unit, self._unit = self._unit, unit
        for kind in GLUCOSE_KINDS:
            row = self.kind_rows[kind]
            mgdl = row.glucose_mgdl(old_unit)
            if mgdl is not None:
                row.show_glucose(mgdl, unit)
            else:
                row.unit_label.setText(unit.label)
        for kind in RATE_KINDS:
            row = self.kind_rows[kind]
            rate = row.rate_mgdl(old_unit)
            if rate is not None:
                row.show_rate(rate, unit)
            else:
                row.unit_label.setText(rate_label(unit))

    def alerts(self, problems: list[str]) -> AlertSettings | None:
        """The alert settings the fields amount to, or None (what is wrong added to `problems`)."""
        configs: dict[AlertKind, KindConfig] = {}
        glucose: dict[AlertKind, int] = {}
        for kind, row in self.kind_rows.items():
            if kind in GLUCOSE_KINDS:
                value = row.glucose_mgdl(self._unit)
                if value is None:
                    problems.append(f"{kind.title}: enter a number.")
                    continue
                glucose[kind] = value
                configs[kind] = row.config(value)
            elif kind in RATE_KINDS:
                rate = row.rate_mgdl(self._unit)
                if rate is None:
                    problems.append(f"{kind.title}: enter a number.")
                    continue
                configs[kind] = row.config(rate)
            else:
                own = row.own_threshold()
                if own is None:
                    problems.append(f"{kind.title}: enter a number.")
                    continue
                configs[kind] = row.config(own)
        if problems:
            return None
        urgent_low, low, high, urgent_high = (glucose[kind] for kind in RANGE_KINDS)
        urgent_low_on, low_on, high_on, urgent_high_on = (
            configs[kind].enabled for kind in RANGE_KINDS
        )
        problems += threshold_problems(
            urgent_low,
            low,
            high,
            urgent_high,
            self._unit,
            enabled=(urgent_low_on, low_on, high_on, urgent_high_on),
        )
        if problems:
            return None
        return AlertSettings(configs)
