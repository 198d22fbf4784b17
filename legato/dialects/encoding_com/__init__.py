"""Encoding.com's media API, answered from Legato: ``POST /`` and ``POST /encoding/``."""

from legato.dialects.encoding_com.routes import STATE_WORDS, STEP_WORDS, WORKFLOW, router

__all__ = ["STATE_WORDS", "STEP_WORDS", "WORKFLOW", "router"]
