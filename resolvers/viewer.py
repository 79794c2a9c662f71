"""Who is acting: resolved once from a bearer token, passed explicitly to every domain call.

What a viewer may see or do is decided in `resolvers.access`, nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.accounts import ApiScope, Role


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
    # When the credential ends by itself (None: an API token that never expires). Revocation is
    # not here: open sockets learn it from the control channel (`resolvers.connections`).
    expires_at: datetime | None = None

    @property
    def is_api_token(self) -> bool:
        return self.api_token_id is not None

    def has_scope(self, scope: ApiScope) -> bool:
        return self.scopes is None or scope in self.scopes
