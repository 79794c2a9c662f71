"""Who is acting: resolved once from a bearer token, passed explicitly to every domain call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.accounts import ApiScope, Role
from resolvers.errors import Forbidden, Unauthenticated


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    role: Role
    family_id: int | None = None
    advocate_id: int | None = None
    session_id: int | None = None
    api_token_id: int | None = None
    # None for a signed-in session (all its user may do); a set for an integrator's API token.
    scopes: frozenset[ApiScope] | None = None

    @property
    def is_api_token(self) -> bool:
        return self.api_token_id is not None

    def has_scope(self, scope: ApiScope) -> bool:
        return self.scopes is None or scope in self.scopes


def require_viewer(viewer: Viewer | None) -> Viewer:
    """The viewer, or UNAUTHENTICATED."""
    if viewer is None:
        raise Unauthenticated()
    return viewer


def require(
    viewer: Viewer | None,
    *,
    roles: Iterable[Role] | None = None,
    scope: ApiScope | None = None,
    session_only: bool = False,
) -> Viewer:
    """The viewer if its role, token scope and kind allow the action; otherwise the top-level error."""
    v = require_viewer(viewer)
    if roles is not None and v.role not in set(roles):
        raise Forbidden()
    if session_only and v.is_api_token:
        raise Forbidden("API tokens cannot do this; sign in instead.")
    if scope is not None and not v.has_scope(scope):
        raise Forbidden(f"This API token lacks the {scope.value} scope.")
    return v
