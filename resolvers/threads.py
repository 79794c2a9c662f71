"""Posting to a message thread: the one place a message is written and announced."""

from __future__ import annotations

from models.support import Message, Thread
from resolvers.events import Outbox, thread_channel

MESSAGE_ADDED = "message.added"
THREAD_CLOSED = "thread.closed"


async def post(outbox: Outbox, thread_id: int, author_id: int, body: str) -> Message:
    """Write a message in the current transaction; `messageAdded` subscribers get it after commit."""
    message = await Message.create(
        thread_id=thread_id, author_id=author_id, body=body, created_at=outbox.now, using_db=outbox.connection
    )
    await outbox.emit(thread_channel(thread_id), MESSAGE_ADDED, {"messageId": message.id})
    return message


async def close(outbox: Outbox, thread_id: int) -> None:
    """Make a thread read-only in the current transaction; its live readers are ended after commit."""
    await Thread.filter(id=thread_id, closed_at__isnull=True).update(closed_at=outbox.now)
    await outbox.emit(thread_channel(thread_id), THREAD_CLOSED, {})
