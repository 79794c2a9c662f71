"""Notifications: the list, marking read, and the live feed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from models import notifications as m
from models.accounts import ApiScope as Scope
from resolvers import notifications
from resolvers.access import core
from resolvers.access import notifications as access
from resolvers.events import Envelope, user_channel
from resolvers.pagination import window
from resolvers.viewer import Viewer
from schema.arguments import INPUT, After, Before, First, Last, Since
from schema.connections import TotalCount, decode_id, nodes, to_connection
from schema.context import Info
from schema.enums import NotificationKind
from schema.errors import UserError, attempt
from schema.permissions import IsSignedIn, needs
from schema.streams import LiveRows, events_for

# The rows live events name, loaded together for every subscriber asking at once.
_LIVE_NOTIFICATIONS = LiveRows(m.Notification, access.may_read)


@strawberry.type(description="Something the person must act on or know about.")
class Notification(relay.Node):
    id: relay.NodeID[int]
    kind: NotificationKind = strawberry.field(description="What it is about.")
    title: str = strawberry.field(description="A one-line summary.")
    body: str = strawberry.field(
        description="More detail; may be empty. Where it quotes a request or a message, empty for an API "
        "token without REQUESTS_READ."
    )
    subject_id: relay.GlobalID | None = strawberry.field(
        description="The global ID of what it is about, to open it; null when there is nothing."
    )
    created_at: datetime = strawberry.field(description="When it was sent.")
    read_at: datetime | None = strawberry.field(description="When it was marked read.")

    @classmethod
    def from_model(cls, n: m.Notification, viewer: Viewer | None) -> Notification:
        return cls(
            id=n.id,
            kind=n.kind,
            title=n.title,
            body=access.body(viewer, n),
            subject_id=relay.GlobalID.from_id(n.subject_id) if n.subject_id else None,
            created_at=n.created_at,
            read_at=n.read_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: object, required: bool = False
    ) -> list[Notification | None]:
        viewer = info.context.viewer
        return await nodes(viewer, node_ids, access.notifications, lambda n: cls.from_model(n, viewer))


@strawberry.type(description="A page of notifications, newest first.")
class NotificationConnection(relay.Connection[Notification], TotalCount):
    pass


@strawberry.type(description="A notification as it arrives live.")
class NotificationReceivedEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume from here.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    notification: Notification = strawberry.field(description="The notification.")


@strawberry.input(description="Which notifications to mark read.")
class MarkNotificationsReadInput:
    ids: list[relay.GlobalID] | None = strawberry.field(
        default=None, description="At most 100; leave out to mark every notification read."
    )


@strawberry.type(description="The result of markNotificationsRead.")
class MarkNotificationsReadPayload:
    notifications: list[Notification] = strawberry.field(description="Those newly marked read.")
    unread_count: int = strawberry.field(description="How many remain unread.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type
class NotificationQuery:
    @strawberry.field(
        description="The viewer's notifications, newest first.",
        permission_classes=[IsSignedIn, needs(Scope.NOTIFICATIONS_READ)],
    )
    async def notifications(
        self,
        info: Info,
        unread_only: Annotated[
            bool, strawberry.argument(description="Only those not yet marked read.")
        ] = False,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> NotificationConnection:
        page = await notifications.list_for(
            info.context.viewer, unread_only=unread_only, window=window(first, after, last, before)
        )
        viewer = info.context.viewer
        return to_connection(  # type: ignore[return-value]
            NotificationConnection, page, lambda n: Notification.from_model(n, viewer)
        )

    @strawberry.field(
        description="How many of the viewer's notifications are unread.",
        permission_classes=[IsSignedIn, needs(Scope.NOTIFICATIONS_READ)],
    )
    async def unread_notification_count(self, info: Info) -> int:
        return await notifications.unread_count(info.context.viewer)


@strawberry.type
class NotificationMutation:
    @strawberry.mutation(
        description="Mark notifications read.",
        permission_classes=[IsSignedIn, needs(Scope.NOTIFICATIONS_READ)],
    )
    async def mark_notifications_read(
        self, info: Info, input: Annotated[MarkNotificationsReadInput, INPUT]
    ) -> MarkNotificationsReadPayload:
        async def run() -> list[m.Notification]:
            ids = None
            if input.ids is not None:
                ids = [decode_id(gid, "Notification", "ids") for gid in input.ids]
            return await notifications.mark_read(info.context.services, info.context.viewer, ids)

        changed, errs = await attempt(run())
        return MarkNotificationsReadPayload(
            notifications=[Notification.from_model(n, info.context.viewer) for n in changed or []],
            unread_count=await notifications.unread_count(info.context.viewer),
            user_errors=errs,
        )


@strawberry.type
class NotificationSubscription:
    @strawberry.subscription(
        description="Each new notification of the viewer, live; `after` replays what was missed.",
        permission_classes=[
            IsSignedIn,
            needs(Scope.EVENTS_SUBSCRIBE),
            needs(Scope.NOTIFICATIONS_READ),
        ],
    )
    async def notification_received(
        self, info: Info, after: Since = None
    ) -> AsyncGenerator[NotificationReceivedEvent, None]:
        viewer = core.require_viewer(info.context.viewer)
        channel = user_channel(viewer.user_id)

        async def build(envelope: Envelope) -> NotificationReceivedEvent | None:
            n = await _LIVE_NOTIFICATIONS.get(viewer, envelope.payload["notificationId"])
            if n is None:
                return None
            return NotificationReceivedEvent(
                cursor=envelope.cursor,
                occurred_at=envelope.occurred_at,
                notification=Notification.from_model(n, viewer),
            )

        async for event in events_for(info, viewer, channel, after, {notifications.EVENT_KIND}, build):
            yield event
