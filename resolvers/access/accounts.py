"""Who may see a person: users, API tokens, advocate profiles and reviews."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import ApiToken, Role, Session, User
from models.advocates import Advocate, Verification
from models.vault import Review
from resolvers.access import core
from resolvers.viewer import Viewer


def is_self(viewer: Viewer | None, user_id: int) -> bool:
    """The user themselves (their email, their own family or profile, their user node)."""
    return viewer is not None and viewer.user_id == user_id


def own_family_id(viewer: Viewer | None, user_id: int) -> int | None:
    """The family record of a family account, to the account itself."""
    return viewer.family_id if viewer is not None and is_self(viewer, user_id) else None


def own_advocate_id(viewer: Viewer | None, user_id: int) -> int | None:
    """The profile of an advocate account, to the account itself."""
    return viewer.advocate_id if viewer is not None and is_self(viewer, user_id) else None


def may_read_user(viewer: Viewer | None, user: User) -> bool:
    """On its own a user resolves only for the user themselves; others are seen through what
    connects them (a request, a thread)."""
    return is_self(viewer, user.id)


async def users(viewer: Viewer | None, ids: Sequence[object]) -> list[User | None]:
    return await core.fetch(viewer, User, ids, may_read_user)


def may_read_api_token(viewer: Viewer | None, token: ApiToken) -> bool:
    """The person who made it, signed in (an API token does not see tokens)."""
    return manages_account(viewer, token.user_id)


def manages_account(viewer: Viewer | None, user_id: int) -> bool:
    """What only the account holder sees of an account (its API tokens, sessions, two-factor
    state): the user, signed in (`session_holder`; an API token sees none of it)."""
    return viewer is not None and not viewer.is_api_token and is_self(viewer, user_id)


def may_read_session(viewer: Viewer | None, session: Session) -> bool:
    """A signed-in session, to its own account holder (`manages_account`)."""
    return manages_account(viewer, session.user_id)


async def sessions(viewer: Viewer | None, ids: Sequence[object]) -> list[Session | None]:
    return await core.fetch(viewer, Session, ids, may_read_session)


async def api_tokens(viewer: Viewer | None, ids: Sequence[object]) -> list[ApiToken | None]:
    return await core.fetch(viewer, ApiToken, ids, may_read_api_token)


def session_holder(viewer: Viewer | None) -> Viewer:
    """A person signed in (account management); API tokens may not."""
    return core.require(viewer, session_only=True)


def admin(viewer: Viewer | None) -> Viewer:
    """An admin, signed in."""
    return core.require(viewer, roles=[Role.ADMIN], session_only=True)


def is_admin(viewer: Viewer | None) -> bool:
    """An admin, signed in (`admin`, as a predicate): hides reviews, decides verifications."""
    return viewer is not None and viewer.role is Role.ADMIN and not viewer.is_api_token


def advocate_session(viewer: Viewer | None) -> Viewer:
    """An advocate signed in, managing its own profile."""
    return core.acting_advocate(viewer, None, session_only=True)


def is_own_profile(viewer: Viewer | None, advocate_id: int) -> bool:
    """The advocate themselves (its SLA targets and verification note)."""
    return viewer is not None and viewer.advocate_id is not None and viewer.advocate_id == advocate_id


def may_see_advocate(viewer: Viewer | None, advocate: Advocate) -> bool:
    """Verified profiles are public; others only to the advocate themselves and to admins signed in."""
    if advocate.verification is Verification.VERIFIED:
        return True
    if viewer is None:
        return False
    return is_own_profile(viewer, advocate.id) or (viewer.role is Role.ADMIN and not viewer.is_api_token)


async def advocates(viewer: Viewer | None, ids: Sequence[object]) -> list[Advocate | None]:
    return await core.fetch(viewer, Advocate, ids, may_see_advocate)


def may_see_review(viewer: Viewer | None, review: Review) -> bool:
    """Reviews are public on the advocate's profile until an admin hides them."""
    return review.hidden_at is None


async def reviews(viewer: Viewer | None, ids: Sequence[object]) -> list[Review | None]:
    return await core.fetch(viewer, Review, ids, may_see_review)
