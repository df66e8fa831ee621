"""Suite-wide settings.

Hypothesis draws its examples from a fixed seed by default (``derandomize``), so a CI run
tests the same examples as the last one and a red run is a change, not a draw: the noise
rule's property (tests/planning/test_noise_rule.py) is statistical, and a fresh random draw
per run turned its measured 2-in-3000 premature stops into a flaky CI. Explore new examples
with ``HYPOTHESIS_PROFILE=explore make test`` (a random draw each run).

Hypothesis also draws from literal constants it finds in the *local modules loaded so far*,
so with ``derandomize`` alone the examples of a test still depended on which tests ran
before it in the same process (measured: tests/test_doctests.py, which imports every module,
made the noise rule's property draw another curve); under pytest-xdist that order varies from
run to run. The default profile therefore draws without that pool (a private hook of
Hypothesis 6.1xx; if it moves, draws fall back to depending on the order again).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

if os.environ.get("HYPOTHESIS_PROFILE", "default") == "default":
    try:
        from hypothesis.internal.conjecture import providers as _providers

        _empty = _providers.Constants()
        _providers._get_local_constants = lambda: _empty
    except (ImportError, AttributeError):  # another Hypothesis: draws depend on the order
        pass
