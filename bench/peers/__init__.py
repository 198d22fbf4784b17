"""Other tools measured on the same machine with the same workload."""
