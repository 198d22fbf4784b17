"""Aspera Orchestrator's API, answered from Legato: ``/aspera/orchestrator/api/``."""

from legato.dialects.aspera.routes import PREFIX, STATE_WORDS, router

__all__ = ["PREFIX", "STATE_WORDS", "router"]
