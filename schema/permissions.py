"""Role and scope gates declared on fields: each asks `resolvers.access.core.require`, the one rule
for roles and token scopes; row rules live in the `resolvers.access` module of their domain."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from models.accounts import ApiScope, Role
from resolvers.access.core import require
from schema.context import Info


class _Gate(BasePermission):
    roles: ClassVar[frozenset[Role] | None] = None
    scope: ClassVar[ApiScope | None] = None
    session_only: ClassVar[bool] = False
    message = "You are not allowed to do this."
    error_extensions: ClassVar[dict[str, object]] = {"code": "FORBIDDEN"}  # type: ignore[misc]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # Raises the coded UNAUTHENTICATED or FORBIDDEN error itself.
        require(info.context.viewer, roles=self.roles, scope=self.scope, session_only=self.session_only)
        return True


class IsSignedIn(_Gate):
    """Any signed-in user or API token."""


class IsSession(_Gate):
    """A person signed in; API tokens may not (account management)."""

    session_only = True


class IsFamily(_Gate):
    roles = frozenset({Role.FAMILY})


class IsAdvocate(_Gate):
    roles = frozenset({Role.ADVOCATE})


class IsAdmin(_Gate):
    roles = frozenset({Role.ADMIN})
    session_only = True


def needs(scope: ApiScope) -> type[BasePermission]:
    """A gate that API tokens pass only with `scope` (sessions always pass)."""
    return type(f"Needs{scope.value.title().replace('_', '')}", (_Gate,), {"scope": scope})
