"""Hypothesis profiles: "ci" (the default) repeats the same examples every run; "explore" hunts."""

from __future__ import annotations

import os

from hypothesis import settings

# Loaded before any test module is imported, so every @settings(...) in the suite inherits it:
# such a test keeps its own max_examples but is derandomized too.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
# `make fuzz`: many more examples for the tests that do not set their own, a new seed every run,
# failures kept in .hypothesis/ and replayed first next time.
settings.register_profile("explore", max_examples=5000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
