"""Legato: workflow orchestration that tells you exactly where every run stands."""

__version__ = "0.1.0"
