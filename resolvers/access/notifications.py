"""Who may see a notification: the person it was sent to (API tokens need NOTIFICATIONS_READ); and
what of it: a notification that quotes a conversation shows its body only to a credential that may
read requests and threads (API tokens need REQUESTS_READ as well)."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import ApiScope
from models.notifications import Notification, NotificationKind
from resolvers.access import core
from resolvers.viewer import Viewer


def may_read(viewer: Viewer | None, notification: Notification) -> bool:
    return (
        core.holds(viewer, ApiScope.NOTIFICATIONS_READ)
        and viewer is not None
        and viewer.user_id == notification.user_id
    )


# The kinds whose body quotes a conversation: a request's text, the advocate's question, answer or
# reason for declining, a message, a note left on ending the relationship.
QUOTING = frozenset(
    {
        NotificationKind.NEW_SUPPORT_REQUEST,
        NotificationKind.INFORMATION_REQUESTED,
        NotificationKind.SUPPORT_REQUEST_ACCEPTED,
        NotificationKind.SUPPORT_REQUEST_DECLINED,
        NotificationKind.MESSAGE_RECEIVED,
        NotificationKind.RELATIONSHIP_ENDED,
    }
)


def body(viewer: Viewer | None, notification: Notification) -> str:
    """The body as this viewer may read it: empty where it quotes a conversation the credential may
    not read (a token for notifications alone sees that something happened, not what was said)."""
    if notification.kind in QUOTING and not core.holds(viewer, ApiScope.REQUESTS_READ):
        return ""
    return notification.body


async def notifications(viewer: Viewer | None, ids: Sequence[object]) -> list[Notification | None]:
    return await core.fetch(viewer, Notification, ids, may_read)


def reader(viewer: Viewer | None) -> Viewer:
    """Anyone signed in reading (or marking read) their own notifications."""
    return core.require(viewer, scope=ApiScope.NOTIFICATIONS_READ)
