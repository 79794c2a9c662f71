"""People who sign in, and the credentials they sign in with."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    FAMILY = "FAMILY"
    ADVOCATE = "ADVOCATE"
    ADMIN = "ADMIN"


class ApiScope(StrEnum):
    """What an integrator's API token may do; a session token may do all its user may."""

    REQUESTS_READ = "REQUESTS_READ"
    REQUESTS_WRITE = "REQUESTS_WRITE"
    VAULT_READ = "VAULT_READ"
    VAULT_WRITE = "VAULT_WRITE"
    EVENTS_SUBSCRIBE = "EVENTS_SUBSCRIBE"
    NOTIFICATIONS_READ = "NOTIFICATIONS_READ"


class User(Model):
    id = fields.BigIntField(primary_key=True)
    # As typed, for display; `email_key` (lower-cased) carries the uniqueness.
    email = fields.CharField(max_length=254)
    email_key = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    display_name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=16)
    created_at = fields.DatetimeField()

    class Meta:
        table = "users"


# A signed-in browser or app; the token itself is never stored, only its SHA-256.
class Session(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sessions"


# A scoped token for an integrator, shown once at creation and stored as its SHA-256.
class ApiToken(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    # Stored as a JSON list of ApiScope values.
    scopes: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"
