"""What a credential is made of and checked with: password hashing (argon2id), bearer and mailed
tokens stored as their SHA-256, the rules a new password must meet, and how often an account's
secrets may be guessed at."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import F
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from models.accounts import User
from resolvers.clock import Clock
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


# The answers to an attempt at an account's secrets that count as a failure.
FAILED = frozenset({"INVALID_CREDENTIALS", "INVALID_OTP"})

# The attempt running for each account in this process (held by the attempt while it runs).
_attempting: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def attempt(user_id: int, clock: Clock) -> AsyncIterator[None]:
    """One attempt at the account's secrets (a password, a two-factor code), checked inside.

    Attempts at one account run one at a time in this process, each seeing what the last one
    counted: thirty sent at once are checked one after another, and those after the fifth failure
    are refused with TOO_MANY_ATTEMPTS without being checked, while thirty right ones all pass.
    (Across processes, at most one runs at a time in each.) A UserError in `FAILED` leaving the
    block counts a failure; past FREE_FAILURES in a row, each makes the next attempt wait 1 s, 2 s,
    4 s... up to MAX_SIGN_IN_DELAY. Leaving it normally clears the count; other errors
    (TWO_FACTOR_REQUIRED, a suspended account) neither count nor clear."""
    lock = _attempting.get(user_id)
    if lock is None:
        lock = _attempting[user_id] = asyncio.Lock()
    async with lock:
        now = clock.now()  # after waiting for the attempts before it
        state = await User.filter(id=user_id).values("failed_logins", "login_blocked_until")
        failures = int(state[0]["failed_logins"]) if state else 0
        blocked = state[0]["login_blocked_until"] if state else None
        if blocked is not None and blocked > now:
            wait = math.ceil((blocked - now).total_seconds())
            raise UserError("TOO_MANY_ATTEMPTS", f"Too many failed sign-ins: try again in {wait} seconds.")
        try:
            yield
        except UserError as error:
            if error.code in FAILED:
                await _count_failure(user_id, now)
            raise
        if failures or blocked is not None:
            await User.filter(id=user_id).update(failed_logins=0, login_blocked_until=None)


async def _count_failure(user_id: int, now: datetime) -> None:
    await User.filter(id=user_id).update(failed_logins=F("failed_logins") + 1)
    failures = int((await User.filter(id=user_id).values("failed_logins"))[0]["failed_logins"])
    if failures >= FREE_FAILURES:
        delay = min(2 ** min(failures - FREE_FAILURES, 20), MAX_SIGN_IN_DELAY.total_seconds())
        await User.filter(id=user_id).update(login_blocked_until=now + timedelta(seconds=delay))


async def require_password(user: User, password: str, clock: Clock, field: str = "password") -> None:
    """INVALID_CREDENTIALS for `field` unless `password` is the account's: what changing the
    password, the email or two-factor sign-in, and deleting the account, each ask for first. Each
    check is an `attempt`: a session cannot guess the password faster than signing in could."""
    async with attempt(user.id, clock):
        check_given_password(await verify_password(user.password_hash, password), field)


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
