"""Shared settings for the robustness suite: derandomized hypothesis, bounded example counts
(the whole suite stays well under two minutes on two cores), no deadlines (the machine is
shared and noisy: never assert timings)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# SWITCHEROO_FUZZ_SCALE=10 runs ten times as many examples (locally, when hunting bugs).
SCALE = float(os.environ.get("SWITCHEROO_FUZZ_SCALE", "1"))

# SWITCHEROO_FUZZ_RANDOM=1 draws fresh examples instead of the fixed, derandomized ones.
RANDOM = os.environ.get("SWITCHEROO_FUZZ_RANDOM") == "1"

BASE = settings(
    derandomize=not RANDOM, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture])


def fuzz(n: int) -> settings:
    """The suite's settings with `n` examples (times SWITCHEROO_FUZZ_SCALE)."""
    return settings(BASE, max_examples=max(1, int(n * SCALE)))
