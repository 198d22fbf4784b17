"""Benchmarks of the engine: throughput and idle latency on each store, with peers."""
