"""Accounts: signing up, signing in and out, sessions, API tokens and admins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.accounts import ApiScope, ApiToken, Role, Session, User
from models.families import Family
from models.notifications import NotificationKind
from models.rights import ErasureRecord
from resolvers import advocates, connections, notifications, recovery, two_factor, validation
from resolvers.access import accounts as access
from resolvers.access.core import own_row
from resolvers.credentials import (
    MAX_PASSWORD_LENGTH,
    attempt,
    check_password,
    dummy_hash,
    hash_password,
    hash_token,
    needs_rehash,
    verify_password,
)
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import unit_of_work
from resolvers.pagination import Page, Window, empty_page, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_DISPLAY_NAME = 100
# How stale a session's `last_used_at` may be before the sweep writes it again: "last used" is
# accurate to this and to the sweep's interval, at no cost per request.
LAST_USED_PRECISION = timedelta(minutes=1)
SESSION_PREFIX = "svs_"
API_TOKEN_PREFIX = "sva_"


@dataclass(frozen=True)
class SignedIn:
    token: str
    user: User


async def sign_up(
    services: Services,
    email: str,
    password: str,
    display_name: str,
    role: Role,
    user_agent: str = "",
    *,
    verified: bool = False,
) -> SignedIn:
    """A new family or advocate account, signed in; a link to confirm its address is mailed,
    unless it is made `verified` (the demo's accounts)."""
    address, key = validation.email(email)
    check_password(password)
    name = validation.text("displayName", display_name, max_length=MAX_DISPLAY_NAME)
    if role not in (Role.FAMILY, Role.ADVOCATE):
        raise InvalidInput("role", "Sign up as a family or an advocate.", "ROLE_NOT_ALLOWED")
    if await User.exists(email_key=key):
        raise UserError("EMAIL_TAKEN", "An account with this email already exists.", "email")
    password_hash = await hash_password(password)
    now = services.clock.now()
    try:
        async with in_transaction():
            user = await User.create(
                email=address,
                email_key=key,
                password_hash=password_hash,
                display_name=name,
                role=role,
                created_at=now,
                email_verified_at=now if verified else None,
            )
            if role is Role.FAMILY:
                await Family.create(user=user, created_at=now)
            else:
                await advocates.create_profile(user.id, name, now)
            token = await _open_session(services, user, now, user_agent)
    except IntegrityError as exc:
        # Two sign-ups with one address raced past the check above; the unique key decided.
        raise UserError("EMAIL_TAKEN", "An account with this email already exists.", "email") from exc
    if not verified:
        await recovery.send_verification(services, user)
    return SignedIn(token, user)


async def log_in(
    services: Services, email: str, password: str, otp: str | None = None, user_agent: str = ""
) -> SignedIn:
    """A new session for the account with this email and password (and, with two-factor sign-in
    on, a current code or a recovery code). After FREE_FAILURES failures in a row, each attempt
    waits longer (per account; the per-address rate limit applies as well)."""
    failure = UserError("INVALID_CREDENTIALS", "The email or password is not right.")
    key = email.strip().lower()
    if not key or len(key) > 254 or len(password) > MAX_PASSWORD_LENGTH:
        raise failure
    user = await User.get_or_none(email_key=key)
    now = services.clock.now()
    if user is None:
        # Verify against a dummy hash for unknown addresses so timing does not reveal accounts.
        await verify_password(dummy_hash(), password)
        raise failure
    async with attempt(user.id, services.clock):
        if not await verify_password(user.password_hash, password):
            raise failure
        if user.suspended_at is not None:
            raise UserError("ACCOUNT_SUSPENDED", "This account is suspended; contact support.")
        if user.totp_enabled_at is not None:
            if not otp:
                raise UserError(
                    "TWO_FACTOR_REQUIRED",
                    "Enter the code from your authenticator app, or a recovery code.",
                    "otp",
                )
            if not await two_factor.accept(services, user, otp, now):
                raise UserError("INVALID_OTP", "That code is not right.", "otp")
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])
    async with unit_of_work(services) as outbox:
        token = await _open_session(services, user, now, user_agent)
        await notifications.notify(
            outbox,
            user.id,
            NotificationKind.NEW_SIGN_IN,
            "New sign-in to your account",
            f"Your account was signed in to at {now:%H:%M} UTC on {now:%d %B %Y}. "
            "If this wasn't you, change your password.",
        )
    return SignedIn(token, user)


async def _open_session(services: Services, user: User, now: datetime, user_agent: str = "") -> str:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    await Session.create(
        user=user,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + services.policy.session_ttl,
        user_agent=recovery.clean_user_agent(user_agent),
        last_used_at=now,
    )
    return token


async def log_out(services: Services, viewer: Viewer | None) -> None:
    """End the session the viewer signed in with, at once."""
    v = access.session_holder(viewer)
    await Session.filter(id=v.session_id, revoked_at__isnull=True).update(revoked_at=services.clock.now())
    await connections.announce_ended(services, session_id=v.session_id)


# The credential, its user's role and profile, in one statement (reverse one-to-one joins).
_VIEWER_COLUMNS = ("id", "user_id", "user__role", "user__family__id", "user__advocate__id")


async def authenticate(services: Services, token: str | None) -> Viewer | None:
    """The viewer a bearer token stands for, or None when it is unknown, expired or revoked: from
    memory while this process hears every credential that ends (`CredentialCache`), else one
    statement, whichever the credential."""
    if not token:
        return None
    now = services.clock.now()
    digest = hash_token(token)
    known = services.connections
    if known.listening:
        cached = known.credentials.get(digest)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at <= now:
                return None
            _seen(services, cached)
            return cached
    generation = known.credentials.generation
    viewer = await _look_up(digest, token, now)
    if viewer is not None:
        _seen(services, viewer)
        if known.listening:
            known.credentials.put(digest, viewer, generation)
    return viewer


def _seen(services: Services, viewer: Viewer) -> None:
    """Note that a session was used, in memory: `record_session_use` writes it down in the sweep,
    so a request costs no statement for the sessions list's "last used"."""
    if viewer.session_id is not None:
        services.sessions_used.add(viewer.session_id)


async def record_session_use(services: Services) -> int:
    """Write the sessions used since the last sweep as last used now (one statement per 500)."""
    used = sorted(services.sessions_used)
    services.sessions_used.clear()
    now = services.clock.now()
    stale = now - LAST_USED_PRECISION
    written = 0
    for start in range(0, len(used), 500):
        batch = used[start : start + 500]
        written += await Session.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), id__in=batch
        ).update(last_used_at=now)
    return written


async def _look_up(digest: str, token: str, now: datetime) -> Viewer | None:
    if token.startswith(SESSION_PREFIX):
        return await _session_viewer(now, token_hash=digest)
    if token.startswith(API_TOKEN_PREFIX):
        return await _token_viewer(now, token_hash=digest)
    return None


async def viewer_by_credential(
    services: Services, session_id: int | None, api_token_id: int | None
) -> Viewer | None:
    """The viewer of a session or API token named by its id (a signed download URL names the
    credential it was issued to), or None once that credential has ended."""
    now = services.clock.now()
    if session_id is not None:
        return await _session_viewer(now, id=session_id)
    if api_token_id is not None:
        return await _token_viewer(now, id=api_token_id)
    return None


async def _session_viewer(now: datetime, **which: object) -> Viewer | None:
    """The viewer of the live session `which` names (by its token's digest, or its id)."""
    rows = (
        await Session.filter(
            revoked_at__isnull=True, expires_at__gt=now, user__suspended_at__isnull=True, **which
        )
        .limit(1)
        .values(*_VIEWER_COLUMNS, "expires_at")
    )
    return _viewer(rows[0], session_id=rows[0]["id"]) if rows else None


async def _token_viewer(now: datetime, **which: object) -> Viewer | None:
    """The viewer of the live API token `which` names (by its digest, or its id)."""
    rows = (
        await ApiToken.filter(revoked_at__isnull=True, user__suspended_at__isnull=True, **which)
        .limit(1)
        .values(*_VIEWER_COLUMNS, "expires_at", "scopes")
    )
    if not rows or (rows[0]["expires_at"] is not None and rows[0]["expires_at"] <= now):
        return None
    scopes = frozenset(ApiScope(s) for s in rows[0]["scopes"])
    return _viewer(rows[0], api_token_id=rows[0]["id"], scopes=scopes)


def has_expired(services: Services, viewer: Viewer) -> bool:
    """Whether the credential's own expiry, learnt when it authenticated, has passed."""
    return viewer.expires_at is not None and viewer.expires_at <= services.clock.now()


async def still_valid(
    services: Services, viewer: Viewer, connection: connections.Connection | None = None
) -> bool:
    """Whether the credential behind a long-lived connection is still live.

    For an open socket this is decided in memory while this process hears the control channel:
    a sign-out or revocation anywhere closes the socket (`Connections.listen`), and the periodic
    sweep re-checks every socket's credential as the backstop. Otherwise it is asked of the database."""
    if has_expired(services, viewer):
        return False
    if connection is not None and services.connections.listening:
        return connection.close_code is None
    now = services.clock.now()
    if viewer.session_id is not None:
        return await Session.exists(id=viewer.session_id, revoked_at__isnull=True, expires_at__gt=now)
    token = await ApiToken.get_or_none(id=viewer.api_token_id, revoked_at__isnull=True)
    return token is not None and (token.expires_at is None or token.expires_at > now)


def _viewer(
    row: dict[str, Any],
    *,
    session_id: int | None = None,
    api_token_id: int | None = None,
    scopes: frozenset[ApiScope] | None = None,
) -> Viewer:
    role = Role(row["user__role"])
    family_id = row["user__family__id"] if role is Role.FAMILY else None
    advocate_id = row["user__advocate__id"] if role is Role.ADVOCATE else None
    return Viewer(
        user_id=int(row["user_id"]),
        role=role,
        family_id=int(family_id) if family_id is not None else None,
        advocate_id=int(advocate_id) if advocate_id is not None else None,
        session_id=session_id,
        api_token_id=api_token_id,
        scopes=scopes,
        expires_at=row.get("expires_at"),
    )


@dataclass(frozen=True)
class CreatedApiToken:
    secret: str
    api_token: ApiToken


async def create_api_token(
    services: Services,
    viewer: Viewer | None,
    name: str,
    scopes: list[ApiScope],
    expires_at: datetime | None,
) -> CreatedApiToken:
    """A scoped token for an integrator; its secret is returned here and never again."""
    v = access.session_holder(viewer)
    clean_name = validation.text("name", name, max_length=100)
    if not scopes:
        raise InvalidInput("scopes", "Choose at least one scope.", "REQUIRED")
    now = services.clock.now()
    if expires_at is not None:
        validation.future_instant("expiresAt", expires_at, now)
        if expires_at > now + services.policy.api_token_max_ttl:
            raise InvalidInput("expiresAt", "API tokens last at most a year.", "OUT_OF_RANGE")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    api_token = await ApiToken.create(
        user_id=v.user_id,
        name=clean_name,
        token_hash=hash_token(secret),
        scopes=sorted({s.value for s in scopes}),
        created_at=now,
        expires_at=expires_at,
    )
    return CreatedApiToken(secret, api_token)


async def revoke_api_token(services: Services, viewer: Viewer | None, token_id: int) -> ApiToken:
    """End one of the viewer's API tokens at once."""
    v = access.session_holder(viewer)
    token = await own_row(ApiToken, token_id, "API token", "apiTokenId", user_id=v.user_id)
    if token.revoked_at is None:
        await ApiToken.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=services.clock.now())
        await token.refresh_from_db()
        await connections.announce_ended(services, api_token_id=token.id)
    return token


async def api_tokens(viewer: Viewer | None) -> list[ApiToken]:
    v = access.session_holder(viewer)
    return await ApiToken.filter(user_id=v.user_id).order_by("-id")


async def api_token_page(viewer: Viewer | None, user_id: int, window: Window) -> Page[ApiToken]:
    """A user's API tokens, revoked ones too, newest first: to that user, signed in."""
    if not access.manages_account(viewer, user_id):
        return empty_page()
    return await paginate(ApiToken.filter(user_id=user_id), kind="ApiToken", window=window)


async def create_admin(services: Services, email: str, password: str, display_name: str) -> User:
    """An admin account; only the command line calls this."""
    address, key = validation.email(email)
    check_password(password)
    name = validation.text("displayName", display_name, max_length=MAX_DISPLAY_NAME)
    if await User.exists(email_key=key):
        raise UserError("EMAIL_TAKEN", "An account with this email already exists.", "email")
    return await User.create(
        email=address,
        email_key=key,
        password_hash=await hash_password(password),
        display_name=name,
        role=Role.ADMIN,
        created_at=services.clock.now(),
        # An operator made it with an address they control.
        email_verified_at=services.clock.now(),
    )


async def get_user(user_id: int) -> User | None:
    return await User.get_or_none(id=user_id)


MAX_SUSPENSION_REASON = 500


async def suspend(services: Services, viewer: Viewer | None, user_id: int, reason: str) -> User:
    """An admin suspends an account: it cannot sign in, every session and API token ends at once
    (its sockets close on every process), and an advocate's profile leaves the directory."""
    access.admin(viewer)
    why = validation.text("reason", reason, max_length=MAX_SUSPENSION_REASON, multiline=True)
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("User", "userId")
    if user.role is Role.ADMIN:
        raise UserError("CANNOT_SUSPEND_ADMIN", "Admins are managed from the command line.", "userId")
    now = services.clock.now()
    async with in_transaction():
        await User.filter(id=user.id, suspended_at__isnull=True).update(suspended_at=now)
        await User.filter(id=user.id).update(suspension_reason=why)
        sessions = [
            r["id"] for r in await Session.filter(user_id=user.id, revoked_at__isnull=True).values("id")
        ]
        tokens = [
            r["id"] for r in await ApiToken.filter(user_id=user.id, revoked_at__isnull=True).values("id")
        ]
        await Session.filter(id__in=sessions).update(revoked_at=now)
        await ApiToken.filter(id__in=tokens).update(revoked_at=now)
    for session_id in sessions:
        await connections.announce_ended(services, session_id=session_id)
    for token_id in tokens:
        await connections.announce_ended(services, api_token_id=token_id)
    return await User.get(id=user.id)


async def unsuspend(services: Services, viewer: Viewer | None, user_id: int) -> User:
    """An admin lifts a suspension; the account signs in again (its old sessions stay ended)."""
    access.admin(viewer)
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("User", "userId")
    if await ErasureRecord.exists(user_id=user.id):
        raise UserError(
            "ACCOUNT_ERASED", "This account has been (or is being) erased at its holder's request.", "userId"
        )
    await User.filter(id=user.id).update(suspended_at=None, suspension_reason="")
    return await User.get(id=user.id)
