"""Alerts name their person: keys that say whose they are, titles that say the name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.person_tag import PersonTag, key_person, notification_key, titled

SAM = PersonTag("p1", "Sam")
EPISODE = "urgent_low:2026-12-04T16:00:00+00:00#3"

IDS = st.text(min_size=1).filter(lambda text: "/" not in text)


def test_the_unnamed_person_keeps_todays_keys_and_titles() -> None:
    assert notification_key(None, EPISODE) == EPISODE
    assert key_person(EPISODE) is None
    assert titled(None, "Urgent low: 48 mg/dL ↓") == "Urgent low: 48 mg/dL ↓"


def test_a_named_persons_key_and_title_say_whose_alert_it_is() -> None:
    key = notification_key(SAM, EPISODE)
    assert key == f"p1/{EPISODE}"
    assert key_person(key) == "p1"
    assert titled(SAM, "Urgent low: 48 mg/dL ↓") == "Sam · Urgent low: 48 mg/dL ↓"


def test_a_name_is_shown_without_surrounding_blanks() -> None:
    assert titled(PersonTag("p2", "  Alex "), "Low: 66 mg/dL →") == "Alex · Low: 66 mg/dL →"


@pytest.mark.parametrize(("person_id", "name"), [("", "Sam"), ("a/b", "Sam"), ("p1", " ")])
def test_an_id_that_would_break_the_key_or_an_empty_name_is_refused(
    person_id: str, name: str
) -> None:
    with pytest.raises(ValueError, match="person"):
        PersonTag(person_id, name)


@given(person_id=IDS, episode=st.text())
def test_every_key_names_its_person_and_no_one_else(person_id: str, episode: str) -> None:
    person = PersonTag(person_id, "Sam")
    assert key_person(notification_key(person, episode)) == person_id
