"""What a credential is made of and checked with: password hashing (argon2id), bearer and mailed
tokens stored as their SHA-256, and the rules a new password must meet."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from resolvers.errors import InvalidInput, UserError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

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


async def require_password(stored_hash: str, password: str, field: str = "password") -> None:
    """INVALID_CREDENTIALS for `field` unless `password` is the account's: what changing the
    password, the email or two-factor sign-in, and deleting the account, each ask for first."""
    if not await verify_password(stored_hash, password):
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
