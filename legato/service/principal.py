"""Who a caller is: the namespace and role a key, a user or a token stands for, and the
checks every use case makes against them."""

from __future__ import annotations

from dataclasses import dataclass

from legato.model.errors import Forbidden

__all__ = ["CREDENTIALS_TOPIC", "DEFAULT_NAMESPACE", "ROLES", "Principal"]

#: Roles from the least to the most allowed.
ROLES = ("viewer", "operator", "admin")
#: The namespace whose admins administer the whole installation.
DEFAULT_NAMESPACE = "default"
#: The wake-up topic of a revoked key, a deleted user or a changed JWKS registration.
CREDENTIALS_TOPIC = "credentials"


@dataclass(frozen=True)
class Principal:
    namespace_id: int
    namespace: str
    role: str
    key_id: int | None = None
    name: str = ""
    user_id: int | None = None  # a user with a password
    subject: str | None = None  # the user's name, or a JWT's ``sub``
    scopes: tuple[str, ...] = ()  # a JWT's scopes

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise Forbidden(f"this needs the {role} role; you have {self.role}")

    @property
    def administers_all(self) -> bool:
        """Admins of the ``default`` namespace administer the installation: every namespace.
        Admins of any other namespace administer only their own."""
        return self.role == "admin" and self.namespace == DEFAULT_NAMESPACE

    def require_admin_of(self, namespace: str) -> None:
        self.require("admin")
        if namespace != self.namespace and not self.administers_all:
            raise Forbidden(
                f"an admin of namespace '{self.namespace}' administers only that namespace"
            )

    @property
    def admin_scope(self) -> int | None:
        """The namespace id lists of keys, users and JWKS are limited to (None: all)."""
        return None if self.administers_all else self.namespace_id
