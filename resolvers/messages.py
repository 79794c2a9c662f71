"""The message thread a request and its relationship share: read by both sides, closed when done."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import ApiScope
from models.notifications import NotificationKind
from models.support import Message, SupportRelationship, SupportRequest, Thread
from resolvers import notifications, support_requests, threads, validation
from resolvers.access import core
from resolvers.access import relationships as access
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import unit_of_work
from resolvers.pagination import Page, PageKey, pages_by_parent
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_BODY = 5000
EVENT_KIND = threads.MESSAGE_ADDED


async def visible_thread(
    viewer: Viewer | None,
    *,
    request_id: int | None = None,
    relationship_id: int | None = None,
    scope: ApiScope = ApiScope.REQUESTS_READ,
) -> Thread | None:
    """The thread of a request or relationship the viewer is a party to."""
    thread_id: int | None = None
    if request_id is not None:
        request = await SupportRequest.get_or_none(id=request_id)
        thread_id = request.thread_id if request else None
    elif relationship_id is not None:
        relationship = await SupportRelationship.get_or_none(id=relationship_id)
        thread_id = relationship.thread_id if relationship else None
    if thread_id is None:
        return None
    thread = await Thread.get(id=thread_id)
    return thread if access.may_use_thread(viewer, thread, scope) else None


async def send(
    services: Services,
    viewer: Viewer | None,
    *,
    request_id: int | None,
    relationship_id: int | None,
    body: str,
) -> Message:
    """Post to a thread the viewer is a party to, while it is open."""
    v = core.require(viewer, scope=ApiScope.REQUESTS_WRITE)
    if (request_id is None) == (relationship_id is None):
        raise InvalidInput("requestId", "Give either a requestId or a relationshipId.", "REQUIRED")
    text = validation.text("body", body, max_length=MAX_BODY, multiline=True)
    thread = await visible_thread(
        v, request_id=request_id, relationship_id=relationship_id, scope=ApiScope.REQUESTS_WRITE
    )
    if thread is None:
        raise NotFound(
            "Support request" if request_id is not None else "Support relationship",
            "requestId" if request_id is not None else "relationshipId",
        )
    if not access.may_post(v, thread):
        raise UserError("THREAD_CLOSED", "This conversation has ended; it can be read but not added to.")
    now = services.clock.now()
    async with unit_of_work(services) as outbox:
        # Re-checked inside the transaction: a close that committed meanwhile wins.
        still_open = await Thread.filter(id=thread.id, closed_at__isnull=True).update(closed_at=None)
        if not still_open:
            raise UserError("THREAD_CLOSED", "This conversation has ended; it can be read but not added to.")
        message = await threads.post(outbox, thread.id, v.user_id, text)
        if v.advocate_id is not None:
            await SupportRelationship.filter(
                thread_id=thread.id, first_advocate_message_at__isnull=True
            ).update(first_advocate_message_at=now)
        await thread.fetch_related("family", "advocate")
        recipient = thread.advocate.user_id if v.family_id is not None else thread.family.user_id
        await notifications.notify(
            outbox,
            recipient,
            NotificationKind.MESSAGE_RECEIVED,
            "New message",
            text[:200],
            notifications.subject("Message", message.id),
        )
        request = await SupportRequest.filter(thread_id=thread.id).order_by("-id").first()
        if request is not None:
            await support_requests.announce_update(outbox, request)
    return message


async def pages(keys: Sequence[PageKey]) -> list[Page[Message]]:
    """Oldest-first pages of many threads' messages, in one windowed query per distinct page."""
    return await pages_by_parent(Message, "thread_id", "Message", keys, newest_first=False)
