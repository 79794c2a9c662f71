"""Notifications: one for each thing a person must act on or know about."""

from __future__ import annotations

import base64

from models.notifications import Notification, NotificationKind
from resolvers.access import notifications as access
from resolvers.errors import InvalidInput
from resolvers.events import Outbox, user_channel
from resolvers.pagination import Page, Window, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

EVENT_KIND = "notification"


def subject(type_name: str, row_id: int) -> str:
    """The global ID a notification points at (Relay's base64 of "Type:id")."""
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()


MAX_MARK_IDS = 100


async def notify(
    outbox: Outbox,
    user_id: int,
    kind: NotificationKind,
    title: str,
    body: str = "",
    subject_id: str = "",
) -> Notification:
    """Record a notification in the current transaction; it is pushed live after commit."""
    notification = await Notification.create(
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        subject_id=subject_id,
        created_at=outbox.now,
        using_db=outbox.connection,
    )
    await outbox.emit(user_channel(user_id), EVENT_KIND, {"notificationId": notification.id})
    return notification


async def list_for(viewer: Viewer | None, *, unread_only: bool, window: Window) -> Page[Notification]:
    v = access.reader(viewer)
    query = Notification.filter(user_id=v.user_id)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    return await paginate(query, kind="Notification", window=window)


async def unread_count(viewer: Viewer | None) -> int:
    v = access.reader(viewer)
    return await Notification.filter(user_id=v.user_id, read_at__isnull=True).count()


async def mark_read(
    services: Services, viewer: Viewer | None, notification_ids: list[int] | None
) -> list[Notification]:
    """Mark the given notifications (or, with none given, all of them) read; returns those changed."""
    v = access.reader(viewer)
    query = Notification.filter(user_id=v.user_id, read_at__isnull=True)
    if notification_ids is not None:
        if len(notification_ids) > MAX_MARK_IDS:
            raise InvalidInput("ids", f"Mark at most {MAX_MARK_IDS} at a time.", "TOO_LONG")
        query = query.filter(id__in=notification_ids)
    changed = await query
    if changed:
        await Notification.filter(id__in=[n.id for n in changed]).update(read_at=services.clock.now())
        for n in changed:
            await n.refresh_from_db()
    return changed
