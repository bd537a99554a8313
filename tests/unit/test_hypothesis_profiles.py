"""CI never goes red by the luck of a seed: every run draws the same examples (conftest.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(
    settings().derandomize is False and settings().max_examples > 1000,
    reason="`make fuzz` (the explore profile) draws new examples on purpose",
)


def _examples_of_one_run() -> list[bytes]:
    seen: list[bytes] = []

    @settings(max_examples=25)
    @given(st.binary(max_size=20))
    def property_under_test(data: bytes) -> None:
        seen.append(data)

    property_under_test()
    return seen


def test_two_runs_of_a_property_draw_the_same_examples() -> None:
    assert _examples_of_one_run() == _examples_of_one_run()


def test_the_default_profile_is_derandomized_without_deadline() -> None:
    current = settings()
    assert current.derandomize is True
    assert current.deadline is None
    assert current.print_blob is True
    assert current.database is None
