"""What the property tests share: one hypothesis setting, seeded so that CI runs the same
examples every time and stays quick. ``LEGATO_PROPERTY_EXAMPLES=5000`` (and
``LEGATO_PROPERTY_SEED=random``) explore further on a workstation."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROPERTIES"]

PROPERTIES = settings(
    max_examples=int(os.environ.get("LEGATO_PROPERTY_EXAMPLES", "200")),
    derandomize=os.environ.get("LEGATO_PROPERTY_SEED") != "random",
    database=None,
    # Time is bounded by keeping the generated inputs small, not by a deadline that a busy
    # CI machine could miss.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
