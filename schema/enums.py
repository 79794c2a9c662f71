"""Domain enums exposed to GraphQL under their own names."""

from __future__ import annotations

import strawberry

from models.accounts import ApiScope as _ApiScope
from models.accounts import Role as _Role
from models.families import EhcpStage as _EhcpStage
from models.notifications import NotificationKind as _NotificationKind

Role = strawberry.enum(_Role, description="What kind of account a user has.")
ApiScope = strawberry.enum(
    _ApiScope, description="What an API token may do. Signed-in sessions may do all their user may."
)
EhcpStage = strawberry.enum(_EhcpStage, description="Where a child's EHCP case has reached.")
NotificationKind = strawberry.enum(_NotificationKind, description="What a notification is about.")
