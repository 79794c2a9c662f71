"""Domain enums exposed to GraphQL under their own names.

`strawberry.enum` registers the model enums themselves, so schema code and domain code share one
class per enum and nothing converts between them.
"""

from __future__ import annotations

import strawberry

from models.accounts import ApiScope, Role
from models.advocates import AdvocateType, Availability, Specialism, Verification
from models.families import EhcpStage
from models.notifications import NotificationKind
from models.support import (
    CloseReason,
    DeclineReason,
    RelationshipStatus,
    RequestStatus,
    SuggestionKind,
    SupportType,
)

strawberry.enum(Role, description="What kind of account a user has.")
strawberry.enum(
    ApiScope, description="What an API token may do. Signed-in sessions may do all their user may."
)
strawberry.enum(EhcpStage, description="Where a child's EHCP case has reached.")
strawberry.enum(NotificationKind, description="What a notification is about.")

strawberry.enum(AdvocateType, description="What kind of advocate someone is.")
strawberry.enum(Specialism, description="What an advocate is experienced in.")
strawberry.enum(Verification, description="Where an advocate's verification by an admin stands.")
strawberry.enum(Availability, description="Whether an advocate is taking new requests.")
strawberry.enum(SupportType, description="The kinds of support a family asks for.")
strawberry.enum(
    RequestStatus,
    description=(
        "PENDING -> INFO_REQUESTED -> ACCEPTED | DECLINED | WITHDRAWN | EXPIRED; the last four are final."
    ),
)
strawberry.enum(DeclineReason, description="Why an advocate declined a request.")
strawberry.enum(SuggestionKind, description="Where else a declined family might turn.")
strawberry.enum(RelationshipStatus, description="Whether a support relationship is still going.")
strawberry.enum(CloseReason, description="Why a support relationship ended.")

__all__ = [
    "AdvocateType",
    "ApiScope",
    "Availability",
    "CloseReason",
    "DeclineReason",
    "EhcpStage",
    "NotificationKind",
    "RelationshipStatus",
    "RequestStatus",
    "Role",
    "Specialism",
    "SuggestionKind",
    "SupportType",
    "Verification",
]
