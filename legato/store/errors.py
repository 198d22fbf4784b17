"""What the store refuses, in its own words, so that nothing above it needs the driver's."""

from __future__ import annotations

__all__ = ["DuplicateKey", "StoreError"]


class StoreError(Exception):
    """A write the database refused for a reason the caller can act on."""


class DuplicateKey(StoreError):
    """A row with the same unique key exists: another request wrote it first."""
