"""Who may see a notification: the person it was sent to (API tokens need NOTIFICATIONS_READ)."""

from __future__ import annotations

from collections.abc import Sequence

from models.accounts import ApiScope
from models.notifications import Notification
from resolvers.access import core
from resolvers.viewer import Viewer


def may_read(viewer: Viewer | None, notification: Notification) -> bool:
    return (
        core.holds(viewer, ApiScope.NOTIFICATIONS_READ)
        and viewer is not None
        and viewer.user_id == notification.user_id
    )


async def notifications(viewer: Viewer | None, ids: Sequence[object]) -> list[Notification | None]:
    return await core.fetch(viewer, Notification, ids, may_read)


def reader(viewer: Viewer | None) -> Viewer:
    """Anyone signed in reading (or marking read) their own notifications."""
    return core.require(viewer, scope=ApiScope.NOTIFICATIONS_READ)
