"""Getting back into an account and keeping it safe: password reset and change, email
verification and change, the list of signed-in sessions, and passwords too common to allow.

Mailed tokens (`AccountToken`) are random, single-use and stored only as their SHA-256; a token is
spent by one conditional UPDATE, so two requests with one token cannot both succeed. Every mail
goes out after the change that asked for it has committed (`resolvers.mail`).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.accounts import AccountToken, AccountTokenPurpose, Session, User
from resolvers import connections, validation
from resolvers.access import accounts as access
from resolvers.access.core import own_row
from resolvers.credentials import check_password, hash_password, hash_token, require_password
from resolvers.errors import InvalidInput, UserError
from resolvers.mail import Mail
from resolvers.pagination import Page, Window, empty_page, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

MAILED_TOKEN_PREFIX = "svm_"
RESET_TTL = timedelta(hours=1)
VERIFICATION_TTL = timedelta(days=2)
# At most one mail of a kind to an account this often, however often it is asked for.
MAIL_INTERVAL = timedelta(seconds=60)
MAX_USER_AGENT = 300

INVALID_TOKEN = "This link has expired or has already been used; ask for a new one."


def _link(services: Services, path: str, token: str) -> str:
    return f"{services.app_url}/{path}?token={token}"


async def _issue(
    user_id: int, purpose: AccountTokenPurpose, email: str, now: datetime, ttl: timedelta
) -> str | None:
    """A new mailed token, or None when one of this kind went to this address within MAIL_INTERVAL."""
    recent = await AccountToken.exists(
        user_id=user_id, purpose=purpose, email=email, created_at__gt=now - MAIL_INTERVAL
    )
    if recent:
        return None
    token = MAILED_TOKEN_PREFIX + secrets.token_urlsafe(32)
    await AccountToken.create(
        user_id=user_id,
        purpose=purpose,
        token_hash=hash_token(token),
        email=email,
        created_at=now,
        expires_at=now + ttl,
    )
    return token


async def _spend(token: str, purpose: AccountTokenPurpose, now: datetime) -> AccountToken:
    """Mark a mailed token used, once: INVALID_TOKEN when it is unknown, spent or expired."""
    if not token.startswith(MAILED_TOKEN_PREFIX) or len(token) > 200:
        raise UserError("INVALID_TOKEN", INVALID_TOKEN, "token")
    digest = hash_token(token)
    spent = await AccountToken.filter(
        token_hash=digest, purpose=purpose, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if not spent:
        raise UserError("INVALID_TOKEN", INVALID_TOKEN, "token")
    return await AccountToken.get(token_hash=digest)


async def _end_sessions(user_id: int, now: datetime, keep: int | None = None) -> list[int]:
    """Revoke the user's live sessions (all but `keep`) in the current transaction; returns their ids
    for `announce_sessions_ended` after commit."""
    query = Session.filter(user_id=user_id, revoked_at__isnull=True)
    if keep is not None:
        query = query.exclude(id=keep)
    ids = [int(row["id"]) for row in await query.values("id")]
    if ids:
        await Session.filter(id__in=ids).update(revoked_at=now)
    return ids


async def _spend_all(user_id: int, now: datetime) -> None:
    """Every mailed link of the account stops working (a new password ends what the old one may
    have set going: another reset, a change of email to an address someone else holds)."""
    await AccountToken.filter(user_id=user_id, used_at__isnull=True).update(used_at=now)


async def announce_sessions_ended(services: Services, session_ids: list[int]) -> None:
    for session_id in session_ids:
        await connections.announce_ended(services, session_id=session_id)


# --- password reset ---------------------------------------------------------------------------


async def request_password_reset(services: Services, email: str) -> None:
    """Mail a reset link to the account with this address, if there is one. The answer is the same
    either way: nothing here says whether the address has an account."""
    key = email.strip().lower()
    if not key or len(key) > 254:
        return
    user = await User.get_or_none(email_key=key)
    if user is None or user.suspended_at is not None:
        return
    now = services.clock.now()
    token = await _issue(user.id, AccountTokenPurpose.PASSWORD_RESET, user.email, now, RESET_TTL)
    if token is None:
        return
    services.mail.send_soon(
        Mail(
            to=user.email,
            subject="Reset your SEN Evidence Vault password",
            paragraphs=(
                f"Hello {user.display_name},",
                "Someone asked to reset the password of your SEN Evidence Vault account. If it was "
                "you, follow the link within an hour; it works once. Resetting signs you out everywhere.",
                "If it wasn't you, ignore this mail: your password stays as it is.",
            ),
            link=_link(services, "reset-password", token),
            link_label="Choose a new password",
        )
    )


async def reset_password(services: Services, token: str, new_password: str) -> User:
    """Set a new password with a mailed reset token; every session of the account ends."""
    check_password(new_password, "newPassword")
    password_hash = await hash_password(new_password)
    now = services.clock.now()
    async with in_transaction():
        spent = await _spend(token, AccountTokenPurpose.PASSWORD_RESET, now)
        user = await User.get(id=spent.user_id)
        changes: dict[str, object] = {
            "password_hash": password_hash,
            "failed_logins": 0,
            "login_blocked_until": None,
        }
        if user.email_verified_at is None and spent.email == user.email:
            changes["email_verified_at"] = now  # following the link proved the address
        await User.filter(id=user.id).update(**changes)
        ended = await _end_sessions(user.id, now)
        await _spend_all(user.id, now)
    await announce_sessions_ended(services, ended)
    _password_changed_notice(services, user)
    return await User.get(id=user.id)


async def change_password(services: Services, viewer: Viewer | None, current: str, new_password: str) -> User:
    """Change the password, knowing the current one; the account's other sessions end."""
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    await require_password(user, current, services.clock, "currentPassword")
    check_password(new_password, "newPassword")
    password_hash = await hash_password(new_password)
    now = services.clock.now()
    async with in_transaction():
        await User.filter(id=user.id).update(password_hash=password_hash)
        ended = await _end_sessions(user.id, now, keep=v.session_id)
        await _spend_all(user.id, now)
    await announce_sessions_ended(services, ended)
    _password_changed_notice(services, user)
    return await User.get(id=user.id)


def _password_changed_notice(services: Services, user: User) -> None:
    services.mail.send_soon(
        Mail(
            to=user.email,
            subject="Your SEN Evidence Vault password was changed",
            paragraphs=(
                f"Hello {user.display_name},",
                "The password of your SEN Evidence Vault account was just changed, and the account's "
                "other sessions were signed out.",
                "If this wasn't you, reset your password now from the sign-in page and check the "
                "account's API tokens.",
            ),
        )
    )


# --- email verification and change ------------------------------------------------------------


async def send_verification(services: Services, user: User, address: str | None = None) -> bool:
    """Mail a verification link for `address` (the account's own by default); False when one went
    there within MAIL_INTERVAL. Call after the account (or the change) has committed."""
    to = address or user.email
    now = services.clock.now()
    token = await _issue(user.id, AccountTokenPurpose.EMAIL_VERIFICATION, to, now, VERIFICATION_TTL)
    if token is None:
        return False
    changing = to != user.email
    services.mail.send_soon(
        Mail(
            to=to,
            subject="Confirm your email address for SEN Evidence Vault",
            paragraphs=(
                f"Hello {user.display_name},",
                (
                    "Confirm this address to make it the one your SEN Evidence Vault account signs in "
                    "with. The link works once, for two days."
                )
                if changing
                else (
                    "Confirm your email address to send support requests and share your Vault, or, "
                    "for advocates, to ask for verification. The link works once, for two days."
                ),
                "If you didn't ask for this, ignore this mail.",
            ),
            link=_link(services, "verify-email", token),
            link_label="Confirm this address",
        )
    )
    return True


async def resend_verification(services: Services, viewer: Viewer | None) -> User:
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    if user.email_verified_at is not None:
        raise UserError("ALREADY_VERIFIED", "Your email address is already confirmed.")
    if not await send_verification(services, user):
        raise UserError("TOO_SOON", "A confirmation mail was sent less than a minute ago; check your inbox.")
    return user


async def verify_email(services: Services, token: str) -> User:
    """Prove an address with a mailed token: the account's own (verified from now), or the new
    one a change of email asked for (the account signs in with it from now)."""
    now = services.clock.now()
    try:
        async with in_transaction():
            spent = await _spend(token, AccountTokenPurpose.EMAIL_VERIFICATION, now)
            user = await User.get(id=spent.user_id)
            if spent.email == user.email:
                await User.filter(id=user.id).update(email_verified_at=now)
                return await User.get(id=user.id)
            _, key = validation.email(spent.email)
            await User.filter(id=user.id).update(email=spent.email, email_key=key, email_verified_at=now)
    except IntegrityError as exc:
        raise UserError("EMAIL_TAKEN", "Another account signs in with this address now.", "token") from exc
    # A change: links to the old address mean nothing now.
    await (
        AccountToken.filter(user_id=user.id, used_at__isnull=True)
        .exclude(email=spent.email)
        .update(used_at=now)
    )
    return await User.get(id=user.id)


async def change_email(services: Services, viewer: Viewer | None, password: str, new_email: str) -> User:
    """Ask to sign in with another address: a link goes to the new address, which takes effect
    when followed, and a notice to the current one."""
    v = access.session_holder(viewer)
    user = await User.get(id=v.user_id)
    await require_password(user, password, services.clock)
    address, key = validation.email(new_email, "newEmail")
    if key == user.email_key:
        raise InvalidInput("newEmail", "This is already your address.", "UNCHANGED")
    if await User.exists(email_key=key):
        raise UserError("EMAIL_TAKEN", "An account with this email already exists.", "newEmail")
    if not await send_verification(services, user, address):
        raise UserError("TOO_SOON", "A confirmation mail was sent less than a minute ago; check your inbox.")
    services.mail.send_soon(
        Mail(
            to=user.email,
            subject="A change of email address was asked for",
            paragraphs=(
                f"Hello {user.display_name},",
                "Someone signed in to your SEN Evidence Vault account asked to change its address. "
                "A link to confirm it went to the new address; until it is followed, nothing changes.",
                "If this wasn't you, reset your password now from the sign-in page.",
            ),
        )
    )
    return user


async def is_verified(user_id: int) -> bool:
    return await User.exists(id=user_id, email_verified_at__isnull=False)


def not_verified() -> UserError:
    return UserError(
        "EMAIL_NOT_VERIFIED",
        "Confirm your email address first: follow the link we mailed you, or ask for a new one.",
    )


async def require_verified(viewer: Viewer) -> None:
    """EMAIL_NOT_VERIFIED unless the viewer's address is confirmed: sending support requests,
    granting Vault access and asking for advocate verification need it."""
    if not await is_verified(viewer.user_id):
        raise not_verified()


# --- sessions ---------------------------------------------------------------------------------


async def sessions(services: Services, viewer: Viewer | None, user_id: int, window: Window) -> Page[Session]:
    """The account's live sessions, newest first: to the account holder, signed in."""
    if not access.manages_account(viewer, user_id):
        return empty_page()
    now = services.clock.now()
    live = Session.filter(user_id=user_id, revoked_at__isnull=True, expires_at__gt=now)
    return await paginate(live, kind="Session", window=window)


async def revoke_session(services: Services, viewer: Viewer | None, session_id: int) -> Session:
    """Sign one of the account's sessions out, at once, on every process (its sockets close)."""
    v = access.session_holder(viewer)
    session = await own_row(Session, session_id, "Session", "sessionId", user_id=v.user_id)
    now = services.clock.now()
    if await Session.filter(id=session.id, revoked_at__isnull=True).update(revoked_at=now):
        await connections.announce_ended(services, session_id=session.id)
    return await Session.get(id=session.id)


def clean_user_agent(header: str | None) -> str:
    """The User-Agent to show in the sessions list: printable, cut short."""
    text = "".join(ch for ch in (header or "") if ch.isprintable())
    return text[:MAX_USER_AGENT]
