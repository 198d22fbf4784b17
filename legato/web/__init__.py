"""The dashboard at ``/ui``: pages rendered from the services, small scripts that follow
runs live through the API's Server-Sent Events, and a signed session cookie."""

from legato.web.routes import mount

__all__ = ["mount"]
