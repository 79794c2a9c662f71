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
    # Null until the address is proven (`verifyEmail`); what a family or advocate may do before
    # then is limited (`EMAIL_NOT_VERIFIED`).
    email_verified_at = fields.DatetimeField(null=True)
    # Sign-in failures since the last success, and when the next attempt is allowed (a growing
    # delay after `accounts.FREE_FAILURES`).
    failed_logins = fields.IntField(default=0)
    login_blocked_until = fields.DatetimeField(null=True)
    # TOTP (RFC 6238): the base32 secret, sealed under the master key (`two_factor.secret_of`), set
    # by `enableTwoFactor`, in force once confirmed; the last time step a code was accepted for,
    # so a code works once.
    totp_secret = fields.CharField(max_length=255, null=True)
    totp_enabled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)
    # An admin's suspension: no sign-in, every credential ended, off the directory.
    suspended_at = fields.DatetimeField(null=True)
    suspension_reason = fields.CharField(max_length=500, default="")
    # `deleteAccount`: when erasure is due (null: not asked for, or cancelled); `erased_at` once the
    # account is erased and this row is what is left of it (no personal data).
    erasure_due_at = fields.DatetimeField(null=True)
    erased_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"


class AccountTokenPurpose(StrEnum):
    PASSWORD_RESET = "PASSWORD_RESET"
    EMAIL_VERIFICATION = "EMAIL_VERIFICATION"


# A single-use token mailed to an address (password reset, email verification), stored as its
# SHA-256; `email` is the address it was sent to, which verification proves.
class AccountToken(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="account_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    purpose = fields.CharEnumField(AccountTokenPurpose, max_length=24)
    token_hash = fields.CharField(max_length=64, unique=True)
    email = fields.CharField(max_length=254)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account_tokens"


# One of the ten codes that stand in for a TOTP code once each, stored as its SHA-256.
class RecoveryCode(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    user_id: int
    code_hash = fields.CharField(max_length=64)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recovery_codes"


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
    # What signed in (the User-Agent header, cut short), and when it was last seen, to within
    # `accounts.LAST_USED_PRECISION`.
    user_agent = fields.CharField(max_length=300, default="")
    last_used_at = fields.DatetimeField(null=True)

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
