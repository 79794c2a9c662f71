"""What a credential is made of and checked with: password hashing (argon2id), bearer and mailed
tokens stored as their SHA-256, the rules a new password must meet, and how often an account's
secrets may be guessed at."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.transactions import in_transaction
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from models.accounts import User
from resolvers.errors import InvalidInput, UserError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# Failed attempts at an account's secrets in a row that cost nothing: signing in, and the password
# (or two-factor code) asked for again before changing the password or the email, turning
# two-factor sign-in off or deleting the account. After them each attempt waits 1 s, 2 s, 4 s…
FREE_FAILURES = 5
MAX_SIGN_IN_DELAY = timedelta(minutes=15)

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against when there is no account, so timing does not tell."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_token(token: str) -> str:
    """What is stored for a bearer or mailed token: its SHA-256 (tokens are random, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return await asyncio.to_thread(_hasher.verify, stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def claim_attempt(user_id: int, now: datetime) -> None:
    """Count one attempt at the account's secrets before they are checked, or refuse it with
    TOO_MANY_ATTEMPTS while the account waits. The count is taken with the account's row locked,
    so attempts sent at once are counted one after another: no more than FREE_FAILURES are checked
    before the waits begin, whichever addresses they come from. `clear_attempts` once one passes."""
    async with in_transaction():
        user = (
            await User.filter(id=user_id)
            .select_for_update()
            .only("id", "failed_logins", "login_blocked_until")
            .get()
        )
        blocked = user.login_blocked_until
        if blocked is not None and blocked > now:
            wait = math.ceil((blocked - now).total_seconds())
            raise UserError("TOO_MANY_ATTEMPTS", f"Too many failed sign-ins: try again in {wait} seconds.")
        failures = user.failed_logins + 1
        block = None
        if failures >= FREE_FAILURES:
            delay = min(2 ** min(failures - FREE_FAILURES, 20), MAX_SIGN_IN_DELAY.total_seconds())
            block = now + timedelta(seconds=delay)
        await User.filter(id=user_id).update(failed_logins=failures, login_blocked_until=block)


async def clear_attempts(user_id: int) -> None:
    """The account's secret was given: its failures in a row start again from none."""
    await User.filter(id=user_id).update(failed_logins=0, login_blocked_until=None)


async def require_password(user: User, password: str, now: datetime, field: str = "password") -> None:
    """INVALID_CREDENTIALS for `field` unless `password` is the account's: what changing the
    password, the email or two-factor sign-in, and deleting the account, each ask for first. Each
    check counts as an attempt (`claim_attempt`): a session cannot guess the password faster than
    signing in could."""
    await claim_attempt(user.id, now)
    check_given_password(await verify_password(user.password_hash, password), field)
    await clear_attempts(user.id)


def check_given_password(right: bool, field: str = "password") -> None:
    """INVALID_CREDENTIALS for `field` unless the password given was `right`."""
    if not right:
        current = "current " if field == "currentPassword" else ""
        raise UserError("INVALID_CREDENTIALS", f"The {current}password is not right.", field)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The 30,000 passwords people choose most (zxcvbn's list, drawn from leaked password sets)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, field: str = "password") -> str:
    """A password good enough to set: long enough, not too long, not one of the common ones."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field, f"Use at least {MIN_PASSWORD_LENGTH} characters.", "PASSWORD_TOO_SHORT")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(field, f"Use at most {MAX_PASSWORD_LENGTH} characters.", "TOO_LONG")
    if password.lower() in _common_passwords():
        raise InvalidInput(
            field,
            "This password is one of the most common and easily guessed; choose another.",
            "PASSWORD_TOO_COMMON",
        )
    return password
