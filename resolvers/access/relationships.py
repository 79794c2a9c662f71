"""Who may see a support relationship and the message thread it shares with its request: the two
parties (API tokens need REQUESTS_READ to read, REQUESTS_WRITE to post)."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import ApiScope
from models.support import Message, RelationshipStatus, SupportRelationship, SupportRequest, Thread
from resolvers.access import core
from resolvers.viewer import Viewer


def may_read(viewer: Viewer | None, relationship: SupportRelationship) -> bool:
    """Its family and its advocate."""
    return core.is_party(viewer, ApiScope.REQUESTS_READ, relationship.family_id, relationship.advocate_id)


async def relationships(viewer: Viewer | None, ids: Sequence[object]) -> list[SupportRelationship | None]:
    return await core.fetch(viewer, SupportRelationship, ids, may_read)


def may_end(viewer: Viewer | None, relationship: SupportRelationship) -> bool:
    """End a relationship: either party (API tokens need REQUESTS_WRITE), while it is active."""
    return (
        core.is_party(viewer, ApiScope.REQUESTS_WRITE, relationship.family_id, relationship.advocate_id)
        and relationship.status is RelationshipStatus.ACTIVE
    )


def may_read_thread_of(viewer: Viewer | None, row: SupportRequest | SupportRelationship) -> bool:
    """The thread a request or relationship carries, to read: its parties are the row's (a thread
    is made between the request's family and advocate, and the relationship it becomes shares it)."""
    return core.is_party(viewer, ApiScope.REQUESTS_READ, row.family_id, row.advocate_id)


def may_use_thread(viewer: Viewer | None, thread: Thread, scope: ApiScope = ApiScope.REQUESTS_READ) -> bool:
    """The family and the advocate of the thread, when the caller's credential carries `scope`."""
    return core.is_party(viewer, scope, thread.family_id, thread.advocate_id)


def may_post(viewer: Viewer | None, thread: Thread) -> bool:
    """Post to a thread: its parties (API tokens need REQUESTS_WRITE), while it is open."""
    return may_use_thread(viewer, thread, ApiScope.REQUESTS_WRITE) and thread.closed_at is None


def may_review(viewer: Viewer | None, relationship: SupportRelationship, reviewed: bool) -> bool:
    """Review a relationship: its family (API tokens need REQUESTS_WRITE), once it has ended, once."""
    return (
        core.is_family(viewer, ApiScope.REQUESTS_WRITE, relationship.family_id)
        and relationship.status is RelationshipStatus.CLOSED
        and not reviewed
    )


def may_read_message(viewer: Viewer | None, message: Message) -> bool:
    """A message, to the parties of its thread."""
    return may_use_thread(viewer, message.thread)


async def messages(viewer: Viewer | None, ids: Sequence[object]) -> list[Message | None]:
    return await core.fetch(viewer, Message, ids, may_read_message, "thread")
