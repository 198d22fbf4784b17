"""The datasourcesvc orchestrator's runs API, answered from Legato: ``/datasourcesvc/api/v1/``."""

from legato.dialects.datasourcesvc.routes import DEFAULT_MAX_QUEUED, STATE_WORDS, router

__all__ = ["DEFAULT_MAX_QUEUED", "STATE_WORDS", "router"]
