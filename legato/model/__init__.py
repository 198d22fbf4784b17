"""The domain model: pure data and rules, no IO."""
