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
from models.tickets import SlaClockKind, SlaState, TicketOutcome, TicketStatus
from resolvers.tickets import TicketChange, TicketOrder

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
strawberry.enum(
    TicketStatus,
    description=(
        "Where a ticket stands: NEW (request unanswered), WAITING_ON_FAMILY (you asked a question), "
        "FAMILY_REPLIED (they answered), ACTIVE (you are supporting them), CLOSED (declined, withdrawn, "
        "expired or ended; ready to resolve), RESOLVED (you recorded the outcome)."
    ),
)
strawberry.enum(TicketOutcome, description="How a resolved case turned out.")
strawberry.enum(
    SlaClockKind,
    description=(
        "FIRST_RESPONSE: answer a new request (48 hours unless you changed it); FIRST_MESSAGE: write to "
        "the family after accepting (24 hours unless you changed it)."
    ),
)
strawberry.enum(
    SlaState,
    description=(
        "ON_TRACK, AT_RISK (under a quarter of the time left) or BREACHED (past due) while a clock runs; "
        "once stopped, MET (on time), BREACHED (late) or CANCELLED (the request or case ended first)."
    ),
)
strawberry.enum(TicketChange, description="What changed on a ticket, in a ticketUpdated event.")
strawberry.enum(TicketOrder, description="How the ticket queue is sorted.")

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
    "SlaClockKind",
    "SlaState",
    "Specialism",
    "SuggestionKind",
    "SupportType",
    "TicketChange",
    "TicketOrder",
    "TicketOutcome",
    "TicketStatus",
    "Verification",
]
