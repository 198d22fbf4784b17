"""Oracle Analytics Cloud's work requests, answered from Legato: ``/api/20210901/``."""

from legato.dialects.oac.routes import STATE_WORDS, router

__all__ = ["STATE_WORDS", "router"]
