"""What each enum value means, for the schema's readers (introspection, GraphiQL, codegen).

The enums are the domain's own classes (models/, resolvers/), registered with strawberry in
schema/enums.py and schema/vault.py; their values are described here, in one table, so the domain
modules stay free of GraphQL. `describe()` runs before the schema is built; a test fails on any
enum value without a description.
"""

from __future__ import annotations

from enum import Enum

from models.accounts import ApiScope, Role
from models.advocates import AdvocateType, Availability, Specialism, Verification
from models.documents import DocumentStatus, RejectionReason
from models.families import EhcpStage
from models.notifications import NotificationKind
from models.rights import ExportStatus
from models.support import (
    CloseReason,
    DeclineReason,
    RelationshipStatus,
    RequestStatus,
    SuggestionKind,
    SupportType,
)
from models.tickets import SlaClockKind, SlaState, TicketOutcome, TicketStatus
from models.vault import AccessEndReason, EvidenceCategory, GrantStatus, VaultScope
from resolvers.tickets import TicketChange, TicketOrder

VALUES: dict[type[Enum], dict[str, str]] = {
    Role: {
        "FAMILY": "A parent or carer keeping a Vault for their children.",
        "ADVOCATE": "A SEND advocate who takes support requests.",
        "ADMIN": "Staff who verify advocates and moderate reviews.",
    },
    ApiScope: {
        "REQUESTS_READ": "Read support requests, relationships, tickets and their messages.",
        "REQUESTS_WRITE": "Send, answer and change support requests, messages and tickets.",
        "VAULT_READ": "Read the Vault: children, evidence, timeline, EHCP cases, grants, access log.",
        "VAULT_WRITE": "Change the Vault and grant or revoke access to it.",
        "EVENTS_SUBSCRIBE": "Open websockets and subscribe to live events.",
        "NOTIFICATIONS_READ": "Read notifications and mark them read.",
    },
    EhcpStage: {
        "NOT_REQUESTED": "No EHC needs assessment has been asked for yet.",
        "ASSESSMENT_REQUESTED": "An assessment was asked for; the local authority has 6 weeks to decide.",
        "ASSESSMENT_REFUSED": "The local authority refused to assess (this can be appealed).",
        "ASSESSING": "The local authority is assessing the child's needs.",
        "DRAFT_PLAN": "A draft EHC plan has been issued for comment.",
        "FINAL_PLAN": "The final EHC plan has been issued.",
        "ANNUAL_REVIEW": "The plan is being reviewed, as it is every year.",
        "TRIBUNAL": "An appeal to the SEND Tribunal is under way.",
    },
    VaultScope: {
        "EVIDENCE": "The evidence: reports, letters and other documents' details.",
        "TIMELINE": "The timeline of what happened when.",
        "EHCP_CASE": "The EHCP case: its stage, local authority and statutory dates.",
    },
    AccessEndReason: {
        "REVOKED_BY_FAMILY": "The family took the access back.",
        "RELATIONSHIP_ENDED": "The support relationship it was granted under ended.",
        "EXPIRED": "It reached the end date the family set.",
    },
    ExportStatus: {
        "PENDING": "Being put together; a DATA_EXPORT_READY notification says when it is ready.",
        "READY": "Ready to download, until expiresAt.",
        "EXPIRED": "Its seven days are over and its file is gone; ask for a new one.",
        "FAILED": "It could not be built, after several tries; ask for a new one.",
    },
    DocumentStatus: {
        "PENDING_UPLOAD": "Waiting for its bytes and completeDocumentUpload.",
        "AVAILABLE": "Checked against what was declared; it can be downloaded.",
        "REJECTED": "The bytes were not what was declared (see rejectionReason); nothing is kept.",
    },
    RejectionReason: {
        "SIZE_MISMATCH": "The upload's size was not the declared byteSize.",
        "HASH_MISMATCH": "The upload's SHA-256 was not the declared sha256.",
        "TYPE_MISMATCH": (
            "The bytes are not the declared contentType (e.g. an HTML page or a program named .pdf)."
        ),
    },
    GrantStatus: {
        "ACTIVE": "The advocate can read what it shares.",
        "REVOKED": "Ended by the family or with the relationship.",
        "EXPIRED": "Ended at the date the family set.",
    },
    EvidenceCategory: {
        "SCHOOL_REPORT": "A report from the child's school or nursery.",
        "EP_REPORT": "An educational psychologist's report.",
        "MEDICAL": "A report or letter from a doctor, therapist or other health professional.",
        "CORRESPONDENCE": "Letters and emails, for example with the local authority.",
        "EHCP_DOCUMENT": "A draft or final EHC plan, or a decision about one.",
        "OTHER": "Anything else.",
    },
    RelationshipStatus: {
        "ACTIVE": "The advocate is supporting the family.",
        "CLOSED": "It has ended; the thread is kept, read-only.",
    },
    CloseReason: {
        "RESOLVED": "The case reached an outcome.",
        "NO_LONGER_NEEDED": "The family no longer needs support.",
        "LEGAL_REPRESENTATION": "The family moved to a solicitor.",
        "CHANGING_ADVOCATE": "The family is moving to another advocate.",
        "NOT_WORKING_OUT": "The relationship was not working.",
        "OTHER": "Another reason, given in the note.",
        "ACCOUNT_DELETED": "The family deleted its account.",
    },
    AdvocateType: {
        "INDEPENDENT": "An independent advocate.",
        "CHARITY": "An advocate working for a charity.",
        "SENDIASS": "The local SEND Information, Advice and Support Service.",
        "SOLICITOR": "A solicitor specialising in education law.",
        "OTHER": "Another kind of advocate.",
    },
    Specialism: {
        "EHC_NEEDS_ASSESSMENT": "Asking for and getting an EHC needs assessment.",
        "DRAFT_PLAN": "Responding to a draft EHC plan.",
        "ANNUAL_REVIEW": "Annual reviews of an EHC plan.",
        "TRIBUNAL": "Appeals to the SEND Tribunal.",
        "EXCLUSIONS": "School exclusions.",
        "PLACEMENT": "Choosing and securing a school placement.",
    },
    Verification: {
        "UNVERIFIED": "Not yet asked for verification.",
        "PENDING": "Asked; waiting for an admin.",
        "VERIFIED": "An admin checked them: shown in the directory.",
        "REJECTED": "An admin declined to verify them.",
    },
    Availability: {
        "ACCEPTING": "Taking new requests.",
        "LIMITED": "Taking a few new requests; replies may take longer.",
        "NOT_ACCEPTING": "Not taking new requests.",
    },
    RequestStatus: {
        "PENDING": "Sent; waiting for the advocate.",
        "INFO_REQUESTED": "The advocate asked the family a question.",
        "ACCEPTED": "The advocate took it on: a support relationship began.",
        "DECLINED": "The advocate declined it (with a reason and, perhaps, suggestions).",
        "WITHDRAWN": "The family withdrew it.",
        "EXPIRED": "Nobody answered in time.",
    },
    SupportType: {
        "ADVICE": "General advice.",
        "EHC_NEEDS_ASSESSMENT": "Help asking for an EHC needs assessment.",
        "DRAFT_PLAN_REVIEW": "Help responding to a draft EHC plan.",
        "ANNUAL_REVIEW": "Help with an annual review.",
        "TRIBUNAL_APPEAL": "Help appealing to the SEND Tribunal.",
        "MEETING_SUPPORT": "Someone to come to meetings.",
        "EXCLUSION": "Help with a school exclusion.",
        "PLACEMENT": "Help with a school placement.",
        "OTHER": "Something else, described in the message.",
    },
    DeclineReason: {
        "NO_CAPACITY": "The advocate has no room for another case now.",
        "OUTSIDE_EXPERTISE": "The request is outside what the advocate does.",
        "OUTSIDE_AREA": "The family is outside the areas the advocate covers.",
        "CONFLICT_OF_INTEREST": "The advocate cannot act for this family.",
        "OTHER": "Another reason, given in the message.",
    },
    SuggestionKind: {
        "ADVOCATE": "Another advocate in the directory.",
        "IPSEA": "IPSEA, the national charity's advice line.",
        "SENDIASS": "The local SENDIASS.",
        "OTHER_ORGANISATION": "Another organisation, named in the suggestion.",
    },
    TicketStatus: {
        "NEW": "The request is unanswered.",
        "WAITING_ON_FAMILY": "You asked the family a question.",
        "FAMILY_REPLIED": "The family answered.",
        "ACTIVE": "You are supporting the family.",
        "CLOSED": "Declined, withdrawn, expired or ended: ready to resolve.",
        "RESOLVED": "You recorded the outcome.",
    },
    TicketOutcome: {
        "RESOLVED": "The family got what they needed.",
        "REFERRED_ELSEWHERE": "You referred the family to someone else.",
        "NO_FURTHER_ACTION": "Nothing more could be done.",
        "FAMILY_DISENGAGED": "The family stopped responding.",
        "OTHER": "Another outcome, given in the note.",
    },
    SlaState: {
        "ON_TRACK": "Running, with over a quarter of the time left.",
        "AT_RISK": "Running, with under a quarter of the time left.",
        "BREACHED": "Past due (running or stopped late).",
        "MET": "Stopped on time.",
        "CANCELLED": "Stopped because the request or case ended first.",
    },
    SlaClockKind: {
        "FIRST_RESPONSE": "Answer a new request (48 hours unless you changed it).",
        "FIRST_MESSAGE": "Write to the family after accepting (24 hours unless you changed it).",
    },
    NotificationKind: {
        "NEW_SIGN_IN": "Your account was signed in to.",
        "NEW_SUPPORT_REQUEST": "A family sent you a support request.",
        "SUPPORT_REQUEST_ACCEPTED": "An advocate accepted your request.",
        "SUPPORT_REQUEST_DECLINED": "An advocate declined your request.",
        "INFORMATION_REQUESTED": "An advocate asked you a question about your request.",
        "SUPPORT_REQUEST_WITHDRAWN": "A family withdrew their request.",
        "SUPPORT_REQUEST_EXPIRED": "A request expired unanswered.",
        "MESSAGE_RECEIVED": "A new message in a thread of yours.",
        "RELATIONSHIP_ENDED": "A support relationship ended.",
        "ACCESS_REVOKED": "Your access to a family's Vault ended.",
        "VERIFICATION_DECIDED": "An admin decided on your verification.",
        "SLA_AT_RISK": "A ticket's SLA clock is close to due.",
        "SLA_BREACHED": "A ticket's SLA clock is past due.",
        "DATA_EXPORT_READY": "The copy of your data you asked for is ready to download, for 7 days.",
        "ACCOUNT_DELETION_SCHEDULED": "Your account is to be erased; you can still cancel.",
    },
    TicketOrder: {
        "NEXT_SLA_DUE": "The next SLA due first, then tickets with no clock running.",
        "NEWEST_FIRST": "The newest tickets first.",
    },
    TicketChange: {
        "CREATED": "A new request arrived.",
        "STATUS_CHANGED": "The ticket's status changed.",
        "FAMILY_MESSAGE": "The family wrote in the thread.",
        "ADVOCATE_MESSAGE": "You wrote in the thread.",
        "SLA_MET": "An SLA clock stopped in time.",
        "SLA_AT_RISK": "An SLA clock is close to due.",
        "SLA_BREACHED": "An SLA clock went past due.",
        "CHECKLIST_CHANGED": "The checklist changed.",
        "NOTE_ADDED": "You added a private note.",
        "NOTE_DELETED": "You deleted a private note.",
        "RESOLVED": "You resolved the ticket.",
    },
}


def describe() -> None:
    """Give every registered value its description (call before the schema is built)."""
    for enum, descriptions in VALUES.items():
        definition = enum.__strawberry_definition__  # type: ignore[attr-defined]
        for value in definition.values:
            value.description = descriptions.get(value.name, value.description)
