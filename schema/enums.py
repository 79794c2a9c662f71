"""Domain enums exposed to GraphQL under their own names.

`strawberry.enum` registers the model enums themselves, so schema code and domain code share one
class per enum and nothing converts between them.
"""

from __future__ import annotations

import strawberry

from models.accounts import ApiScope, Role
from models.families import EhcpStage
from models.notifications import NotificationKind

strawberry.enum(Role, description="What kind of account a user has.")
strawberry.enum(
    ApiScope, description="What an API token may do. Signed-in sessions may do all their user may."
)
strawberry.enum(EhcpStage, description="Where a child's EHCP case has reached.")
strawberry.enum(NotificationKind, description="What a notification is about.")

__all__ = ["ApiScope", "EhcpStage", "NotificationKind", "Role"]
