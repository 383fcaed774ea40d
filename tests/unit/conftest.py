"""Unit tests only: a hypothesis profile for mutation testing (`make mutation`), chosen by an environment variable.

``JOBS_HYPOTHESIS_PROFILE=mutation`` makes every property test derandomized (the same examples on every run, so a
mutant is killed or survives the same way each time), without a deadline (mutmut's trampolines slow every call),
without the example database (a mutant's failing example must not be replayed against the next mutant) and with at
most ``MUTATION_MAX_EXAMPLES`` examples, even where the test asks for more (mutmut runs a test once per mutant of
every function it reaches: thousands of times). Without the variable nothing changes.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

MUTATION_MAX_EXAMPLES = 40

settings.register_profile(
    "mutation", derandomize=True, deadline=None, database=None, print_blob=False, max_examples=MUTATION_MAX_EXAMPLES
)
PROFILE = os.environ.get("JOBS_HYPOTHESIS_PROFILE")
if PROFILE:
    settings.load_profile(PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the mutation profile, a test's own ``@settings(max_examples=...)`` is capped to the profile's."""
    if PROFILE != "mutation":
        return
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)  # set by @given on the test it wraps
        if own is not None and own.max_examples > MUTATION_MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(own, max_examples=MUTATION_MAX_EXAMPLES)  # type: ignore[union-attr]
