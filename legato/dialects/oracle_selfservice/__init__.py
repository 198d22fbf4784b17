"""Oracle Managed Cloud's self-service API, answered from Legato: ``/selfservice/v1/``."""

from legato.dialects.oracle_selfservice.routes import (
    SCOPE_APPROVER,
    SCOPE_PRIVILEGED,
    SCOPE_USER,
    STATE_WORDS,
    router,
)

__all__ = ["SCOPE_APPROVER", "SCOPE_PRIVILEGED", "SCOPE_USER", "STATE_WORDS", "router"]
