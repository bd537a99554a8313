"""How a test sign-in's outcome and a problem are coloured: a bar down the left, by tone."""

from __future__ import annotations

from cgmtray.ui.sign_in_test import OutcomeKind

OUTCOME_COLOURS = {
    "good": "#2e9d4f",
    "warn": "#d08a00",
    "bad": "#d13b3b",
    "busy": "#8a8a8a",
}

OUTCOME_TONE = {
    OutcomeKind.OK: "good",
    OutcomeKind.NO_READINGS: "warn",
    OutcomeKind.NO_FOLLOWER: "warn",
    OutcomeKind.NO_RECENT_READINGS: "warn",
    OutcomeKind.NETWORK: "warn",
    OutcomeKind.RATE_LIMITED: "warn",
    OutcomeKind.SERVICE: "warn",
    OutcomeKind.CREDENTIALS: "bad",
    OutcomeKind.LOCKED: "bad",
    OutcomeKind.PROBLEM: "bad",
}


def left_bar(selector: str, colour: str) -> str:
    """A style sheet drawing a coloured bar down the left edge (colour is never the only cue)."""
    return f"{selector} {{ border: 0px; border-left: 4px solid {colour}; padding-left: 8px; }}"


def outcome_bar(selector: str, kind: OutcomeKind | None) -> str:
    """The left bar of an outcome's tone (grey while a test runs: `kind` None)."""
    tone = OUTCOME_TONE[kind] if kind is not None else "busy"
    return left_bar(selector, OUTCOME_COLOURS[tone])
