"""Two-factor sign-in: TOTP (RFC 6238 with the parameters every authenticator app uses: SHA-1, six
digits, 30-second steps) through pyotp, and ten single-use recovery codes stored as SHA-256.

A code is accepted for the current step or the one either side (clock drift), and once: the step
it was accepted for is stored, and a later sign-in needs a later step (one conditional UPDATE, so
two sign-ins racing with one code cannot both pass).

The secret is kept sealed under the master key (`encryption.seal_text`, the user's id as associated
data), so a copy of the database alone cannot make codes; `rotate-storage-key` re-seals it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.accounts import RecoveryCode, User
from resolvers import db, encryption
from resolvers.access import accounts as access
from resolvers.credentials import (
    attempt,
    check_given_password,
    hash_token,
    verify_password,
)
from resolvers.errors import UserError
from resolvers.services import Services
from resolvers.viewer import Viewer

ISSUER = "SEN Evidence Vault"
STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


def code_at(secret: str, unix_time: int, digits: int = DIGITS) -> str:
    """The code for the step holding `unix_time`."""
    return pyotp.TOTP(secret, digits=digits, interval=STEP_SECONDS).generate_otp(unix_time // STEP_SECONDS)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = int(now.timestamp()) // STEP_SECONDS
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _purpose(user_id: int) -> str:
    return f"totp secret of user {user_id}"


def _keys(services: Services) -> encryption.MasterKeys:
    if services.documents is None:
        raise RuntimeError(
            "two-factor secrets are sealed with the storage master key, which is not configured"
        )
    return services.documents.keys


def secret_of(services: Services, user: User) -> str | None:
    """The user's TOTP secret, opened (one stored before secrets were sealed is read as it is)."""
    stored = user.totp_secret
    if stored is None or not encryption.is_sealed(stored):
        return stored
    return encryption.open_text(_keys(services), stored, _purpose(user.id))


async def reseal_secrets(services: Services) -> int:
    """Seal every TOTP secret under the current master key (`rotate-storage-key`), those stored
    before secrets were sealed too; returns how many rows changed."""
    keys = _keys(services)

    def resealed(row: dict[str, Any]) -> str | None:
        return encryption.reseal_text(keys, str(row["totp_secret"]), _purpose(int(row["id"])))

    return await db.rewrite_column(User, "totp_secret", resealed)


def _normalised(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def accept(services: Services, user: User, code: str, now: datetime) -> bool:
    """Whether `code` passes as the user's second factor now, spending it: a TOTP code of a step
    later than the last one used, or an unused recovery code."""
    code = code.strip()
    secret = secret_of(services, user)
    if secret is None or len(code) > 64:
        return False
    step = _matching_step(secret, code, now)
    if step is not None:
        claimed = await User.filter(
            Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step), id=user.id
        ).update(totp_last_step=step)
        return bool(claimed)
    spent = await RecoveryCode.filter(
        user_id=user.id, code_hash=hash_token(_normalised(code)), used_at__isnull=True
    ).update(used_at=now)
    return bool(spent)


async def enable(services: Services, viewer: Viewer | None) -> Enrolment:
    """A new secret for the viewer's authenticator app; in force once `confirm` sees a code of it."""
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    if user.totp_enabled_at is not None:
        raise UserError(
            "TWO_FACTOR_ENABLED", "Two-factor sign-in is already on; turn it off first to set it up again."
        )
    secret = pyotp.random_base32()
    sealed = encryption.seal_text(_keys(services), secret, _purpose(user.id))
    await User.filter(id=user.id).update(totp_secret=sealed, totp_last_step=None)
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )
    return Enrolment(secret, uri)


async def confirm(services: Services, viewer: Viewer | None, code: str) -> list[str]:
    """Turn two-factor sign-in on with a code from the app; returns the recovery codes, shown once."""
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    if user.totp_enabled_at is not None:
        raise UserError("TWO_FACTOR_ENABLED", "Two-factor sign-in is already on.")
    secret = secret_of(services, user)
    if secret is None:
        raise UserError("TWO_FACTOR_NOT_STARTED", "Start with enableTwoFactor, then confirm a code.")
    now = services.clock.now()
    step = _matching_step(secret, code.strip(), now)
    if step is None:
        raise UserError(
            "INVALID_OTP", "That code is not right; check the app's clock and try the next one.", "code"
        )
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    async with in_transaction():
        turned_on = await User.filter(
            id=user.id, totp_enabled_at__isnull=True, totp_secret=user.totp_secret
        ).update(totp_enabled_at=now, totp_last_step=step)
        if not turned_on:
            raise UserError("TWO_FACTOR_ENABLED", "Two-factor sign-in is already on.")
        await RecoveryCode.filter(user_id=user.id).delete()
        await RecoveryCode.bulk_create(
            [RecoveryCode(user_id=user.id, code_hash=hash_token(_normalised(c))) for c in codes]
        )
    return codes


async def disable(services: Services, viewer: Viewer | None, password: str, code: str) -> User:
    """Turn two-factor sign-in off, with the password and a current code (or a recovery code): one
    attempt at the account's secrets, counted as signing in is (`credentials.attempt`)."""
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    now = services.clock.now()
    async with attempt(user.id, services.clock):
        check_given_password(await verify_password(user.password_hash, password))
        if user.totp_enabled_at is None:
            raise UserError("TWO_FACTOR_NOT_ENABLED", "Two-factor sign-in is not on.")
        if not await accept(services, user, code, now):
            raise UserError("INVALID_OTP", "That code is not right.", "code")
    async with in_transaction():
        await User.filter(id=user.id).update(totp_secret=None, totp_enabled_at=None, totp_last_step=None)
        await RecoveryCode.filter(user_id=user.id).delete()
    return await User.get(id=user.id)
