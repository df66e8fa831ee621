"""Suite-wide settings.

Hypothesis draws its examples from a fixed seed by default (``derandomize``), so a CI run
tests the same examples as the last one and a red run is a change, not a draw: the noise
rule's property (tests/planning/test_noise_rule.py) is statistical, and a fresh random draw
per run turned its measured 2-in-3000 premature stops into a flaky CI. Explore new examples
with ``HYPOTHESIS_PROFILE=explore make test`` (a random draw each run).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
