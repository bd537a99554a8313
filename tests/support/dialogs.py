"""Driving the settings dialog as a person does: typing into a field, finding the open dialog."""

from __future__ import annotations

from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from cgmtray.ui.settings_dialog import SettingsDialog


def type_into(edit: QLineEdit, text: str) -> None:
    """Replaces the field's text by typing, key by key."""
    edit.selectAll()
    edit.del_()
    QTest.keyClicks(edit, text)


def visible_settings_dialog() -> SettingsDialog | None:
    """The settings dialog on screen, if one is."""
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, SettingsDialog) and widget.isVisible():
            return widget
    return None
