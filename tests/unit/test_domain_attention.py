"""Who needs attention first among several people, and how many tray icons the setting gives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.domain.alert_config import AlertKind
from cgmtray.domain.attention import (
    AUTO_PER_PERSON_UP_TO,
    Need,
    PersonGlance,
    TrayIcons,
    attention_order,
    first_needing_attention,
    labels_on_badges,
    need,
    resolve_tray_icons,
)
from cgmtray.domain.freshness import Freshness

URGENT = (AlertKind.URGENT_LOW, AlertKind.URGENT_LOW_SOON, AlertKind.URGENT_HIGH)
OTHER = tuple(kind for kind in AlertKind if kind not in URGENT)


def person(
    name: str,
    position: int,
    *alerts: AlertKind,
    freshness: Freshness = Freshness.FRESH,
) -> PersonGlance:
    return PersonGlance(name, position, tuple(alerts), freshness)


def names(glances: tuple[PersonGlance, ...]) -> list[str]:
    return [glance.person_id for glance in glances]


def test_no_people_no_one_first() -> None:
    assert attention_order([]) == ()
    assert first_needing_attention([]) is None


def test_everyone_fine_keeps_the_list_order_and_the_first_person_is_shown() -> None:
    people = [person("Sam", 0), person("Mia", 1), person("Jo", 2)]
    assert names(attention_order(people)) == ["Sam", "Mia", "Jo"]
    assert first_needing_attention(people) == people[0]


def test_urgent_before_other_alert_before_no_current_data_before_the_rest() -> None:
    people = [
        person("fine", 0),
        person("stale", 1, freshness=Freshness.STALE),
        person("high", 2, AlertKind.HIGH),
        person("urgent low", 3, AlertKind.URGENT_LOW),
    ]
    assert names(attention_order(people)) == ["urgent low", "high", "stale", "fine"]
    assert first_needing_attention(people) == people[3]


def test_two_people_in_urgent_alerts_keep_the_list_order() -> None:
    """Urgent high of the first person before urgent low of the second: the tier, then the list."""
    people = [person("Sam", 0, AlertKind.URGENT_HIGH), person("Mia", 1, AlertKind.URGENT_LOW)]
    assert names(attention_order(people)) == ["Sam", "Mia"]
    assert names(attention_order(reversed(people))) == ["Sam", "Mia"]


def test_the_list_position_decides_ties_not_the_order_given() -> None:
    people = [person("Jo", 2), person("Sam", 0), person("Mia", 1)]
    assert names(attention_order(people)) == ["Sam", "Mia", "Jo"]


@pytest.mark.parametrize("kind", URGENT)
def test_every_urgent_kind_is_an_urgent_alert(kind: AlertKind) -> None:
    assert need(person("Sam", 0, kind)) is Need.URGENT_ALERT
    # with a lesser alert open beside it, and no current reading: still urgent
    glance = person("Sam", 0, AlertKind.NO_DATA, kind, freshness=Freshness.NO_DATA)
    assert need(glance) is Need.URGENT_ALERT


@pytest.mark.parametrize("kind", OTHER)
def test_every_other_kind_is_an_alert(kind: AlertKind) -> None:
    assert need(person("Sam", 0, kind)) is Need.ALERT
    assert need(person("Sam", 0, kind, freshness=Freshness.STALE)) is Need.ALERT


@pytest.mark.parametrize(
    ("freshness", "expected"),
    [
        (Freshness.FRESH, Need.FINE),
        (Freshness.AGING, Need.FINE),
        (Freshness.STALE, Need.NO_CURRENT_DATA),
        (Freshness.NO_DATA, Need.NO_CURRENT_DATA),
    ],
)
def test_a_stale_or_missing_reading_without_alerts(freshness: Freshness, expected: Need) -> None:
    assert need(person("Sam", 0, freshness=freshness)) is expected


def test_stale_and_no_data_share_a_tier_so_the_list_decides() -> None:
    people = [
        person("Sam", 0, freshness=Freshness.STALE),
        person("Mia", 1, freshness=Freshness.NO_DATA),
    ]
    assert names(attention_order(reversed(people))) == ["Sam", "Mia"]


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(list(AlertKind)), max_size=3),
            st.sampled_from(list(Freshness)),
        ),
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_is_by_need_then_position_whatever_the_input_order(
    states: list[tuple[list[AlertKind], Freshness]], shuffler: random.Random
) -> None:
    people = [
        person(f"p{index}", index, *alerts, freshness=freshness)
        for index, (alerts, freshness) in enumerate(states)
    ]
    shuffled = list(people)
    shuffler.shuffle(shuffled)
    ordered = attention_order(shuffled)
    assert sorted(ordered, key=lambda g: g.position) == people
    keys = [(need(g), g.position) for g in ordered]
    assert keys == sorted(keys)
    assert first_needing_attention(shuffled) == (ordered[0] if ordered else None)


def test_the_setting_values_are_the_settings_file_strings() -> None:
    assert [mode.value for mode in TrayIcons] == ["auto", "per_person", "together"]
    assert TrayIcons("per_person") is TrayIcons.PER_PERSON


@pytest.mark.parametrize(
    ("people", "expected"),
    [
        (0, TrayIcons.PER_PERSON),
        (1, TrayIcons.PER_PERSON),
        (3, TrayIcons.PER_PERSON),
        (4, TrayIcons.TOGETHER),
        (10, TrayIcons.TOGETHER),
    ],
)
def test_auto_is_one_icon_per_person_up_to_three(people: int, expected: TrayIcons) -> None:
    assert AUTO_PER_PERSON_UP_TO == 3
    assert resolve_tray_icons(TrayIcons.AUTO, people) is expected


@pytest.mark.parametrize("people", [0, 1, 3, 4, 10])
@pytest.mark.parametrize("choice", [TrayIcons.PER_PERSON, TrayIcons.TOGETHER])
def test_an_explicit_choice_is_kept_for_any_number_of_people(
    choice: TrayIcons, people: int
) -> None:
    assert resolve_tray_icons(choice, people) is choice


def test_a_negative_count_of_people_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        resolve_tray_icons(TrayIcons.AUTO, -1)


def test_one_person_has_no_label_on_the_badge_two_and_more_do() -> None:
    assert [labels_on_badges(n) for n in (0, 1, 2, 3, 10)] == [False, False, True, True, True]
