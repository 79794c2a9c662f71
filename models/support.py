"""Support requests, the relationships they become, and the message thread they share."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User
from models.advocates import Advocate
from models.families import Child, EhcpStage, Family


class SupportType(StrEnum):
    ADVICE = "ADVICE"
    EHC_NEEDS_ASSESSMENT = "EHC_NEEDS_ASSESSMENT"
    DRAFT_PLAN_REVIEW = "DRAFT_PLAN_REVIEW"
    ANNUAL_REVIEW = "ANNUAL_REVIEW"
    TRIBUNAL_APPEAL = "TRIBUNAL_APPEAL"
    MEETING_SUPPORT = "MEETING_SUPPORT"
    EXCLUSION = "EXCLUSION"
    PLACEMENT = "PLACEMENT"
    OTHER = "OTHER"


class RequestStatus(StrEnum):
    PENDING = "PENDING"
    INFO_REQUESTED = "INFO_REQUESTED"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    WITHDRAWN = "WITHDRAWN"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = (RequestStatus.PENDING, RequestStatus.INFO_REQUESTED)

# The only moves a request makes; everything else is terminal.
ALLOWED_MOVES: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.INFO_REQUESTED,
            RequestStatus.ACCEPTED,
            RequestStatus.DECLINED,
            RequestStatus.WITHDRAWN,
            RequestStatus.EXPIRED,
        }
    ),
    RequestStatus.INFO_REQUESTED: frozenset(
        {
            RequestStatus.INFO_REQUESTED,
            RequestStatus.ACCEPTED,
            RequestStatus.DECLINED,
            RequestStatus.WITHDRAWN,
            RequestStatus.EXPIRED,
        }
    ),
}


class DeclineReason(StrEnum):
    NO_CAPACITY = "NO_CAPACITY"
    OUTSIDE_EXPERTISE = "OUTSIDE_EXPERTISE"
    OUTSIDE_AREA = "OUTSIDE_AREA"
    CONFLICT_OF_INTEREST = "CONFLICT_OF_INTEREST"
    OTHER = "OTHER"


class SuggestionKind(StrEnum):
    ADVOCATE = "ADVOCATE"
    IPSEA = "IPSEA"
    SENDIASS = "SENDIASS"
    OTHER_ORGANISATION = "OTHER_ORGANISATION"


class RelationshipStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class CloseReason(StrEnum):
    RESOLVED = "RESOLVED"
    NO_LONGER_NEEDED = "NO_LONGER_NEEDED"
    LEGAL_REPRESENTATION = "LEGAL_REPRESENTATION"
    CHANGING_ADVOCATE = "CHANGING_ADVOCATE"
    NOT_WORKING_OUT = "NOT_WORKING_OUT"
    OTHER = "OTHER"
    # The family's account was erased (`resolvers.erasure`).
    ACCOUNT_DELETED = "ACCOUNT_DELETED"


class Thread(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="threads", on_delete=fields.CASCADE
    )
    family_id: int
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="threads", on_delete=fields.CASCADE
    )
    advocate_id: int
    created_at = fields.DatetimeField()
    # Set when the relationship closes, or the request ends unaccepted: the thread is read-only.
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "threads"


class Message(Model):
    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="messages", on_delete=fields.CASCADE
    )
    thread_id: int
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="messages", on_delete=fields.CASCADE
    )
    author_id: int
    body = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "messages"
        # A thread's messages in order, and each side's latest (the ticket queue reads these on
        # every change to a request).
        indexes = (("thread_id", "id"), ("thread_id", "author_id", "id"))


class SupportRequest(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="support_requests", on_delete=fields.CASCADE
    )
    family_id: int
    # Null once the family deletes the child (or its account): the request stays in the advocate's
    # history with its snapshot (`child_display_name`, scrubbed then).
    child: fields.ForeignKeyNullableRelation[Child] = fields.ForeignKeyField(
        "models.Child", related_name="support_requests", null=True, on_delete=fields.SET_NULL
    )
    child_id: int | None
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="support_requests", on_delete=fields.CASCADE
    )
    advocate_id: int
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="requests", on_delete=fields.CASCADE
    )
    thread_id: int
    status = fields.CharEnumField(RequestStatus, max_length=16, default=RequestStatus.PENDING)
    message = fields.TextField()
    support_types: list[str] = fields.JSONField(default=list)
    # As they were when the request was sent.
    child_display_name = fields.CharField(max_length=100)
    child_age_years = fields.IntField()
    ehcp_stage = fields.CharEnumField(EhcpStage, max_length=32)
    created_at = fields.DatetimeField()
    respond_by = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    responded_at = fields.DatetimeField(null=True)
    decided_at = fields.DatetimeField(null=True)
    decline_reason = fields.CharEnumField(DeclineReason, max_length=32, null=True)
    decline_message = fields.TextField(default="")
    suggested_alternatives: list[dict[str, str]] = fields.JSONField(default=list)
    # "family:child:advocate" while the request is open, NULL after: the unique index makes
    # "one open request per family, child and advocate" hold under concurrent sends.
    open_key = fields.CharField(max_length=100, null=True, unique=True)

    class Meta:
        table = "support_requests"


class SupportRelationship(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="relationships", on_delete=fields.CASCADE
    )
    family_id: int
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="relationships", on_delete=fields.CASCADE
    )
    advocate_id: int
    # Null once the family deletes the child (or its account), as on the request.
    child: fields.ForeignKeyNullableRelation[Child] = fields.ForeignKeyField(
        "models.Child", related_name="relationships", null=True, on_delete=fields.SET_NULL
    )
    child_id: int | None
    request: fields.OneToOneRelation[SupportRequest] = fields.OneToOneField(
        "models.SupportRequest", related_name="relationship", on_delete=fields.CASCADE
    )
    request_id: int
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="relationships", on_delete=fields.CASCADE
    )
    thread_id: int
    status = fields.CharEnumField(RelationshipStatus, max_length=16, default=RelationshipStatus.ACTIVE)
    opened_at = fields.DatetimeField()
    first_advocate_message_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    closed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="closed_relationships", null=True, on_delete=fields.SET_NULL
    )
    closed_by_id: int | None
    close_reason = fields.CharEnumField(CloseReason, max_length=32, null=True)
    close_note = fields.TextField(default="")
    # "family:child:advocate" while ACTIVE, NULL once closed: at most one active per triple.
    active_key = fields.CharField(max_length=100, null=True, unique=True)

    class Meta:
        table = "support_relationships"
