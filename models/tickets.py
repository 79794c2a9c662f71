"""The advocate's ticket queue: one ticket per support request, carried on as the case, with SLA
clocks, a checklist and private notes. Everything here is the advocate's alone; families never see it.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User
from models.advocates import Advocate
from models.families import Family
from models.support import SupportRelationship, SupportRequest


class TicketStatus(StrEnum):
    # Kept on the row (not derived per read) so the queue filters and sorts in SQL.
    NEW = "NEW"
    WAITING_ON_FAMILY = "WAITING_ON_FAMILY"
    FAMILY_REPLIED = "FAMILY_REPLIED"
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"
    RESOLVED = "RESOLVED"


class TicketOutcome(StrEnum):
    RESOLVED = "RESOLVED"
    REFERRED_ELSEWHERE = "REFERRED_ELSEWHERE"
    NO_FURTHER_ACTION = "NO_FURTHER_ACTION"
    FAMILY_DISENGAGED = "FAMILY_DISENGAGED"
    OTHER = "OTHER"


class SlaClockKind(StrEnum):
    FIRST_RESPONSE = "FIRST_RESPONSE"
    FIRST_MESSAGE = "FIRST_MESSAGE"


class SlaState(StrEnum):
    ON_TRACK = "ON_TRACK"
    AT_RISK = "AT_RISK"
    BREACHED = "BREACHED"
    MET = "MET"
    CANCELLED = "CANCELLED"


class Ticket(Model):
    id = fields.BigIntField(primary_key=True)
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="tickets", on_delete=fields.CASCADE
    )
    advocate_id: int
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="tickets", on_delete=fields.CASCADE
    )
    family_id: int
    request: fields.OneToOneRelation[SupportRequest] = fields.OneToOneField(
        "models.SupportRequest", related_name="ticket", on_delete=fields.CASCADE
    )
    request_id: int
    relationship: fields.OneToOneNullableRelation[SupportRelationship] = fields.OneToOneField(
        "models.SupportRelationship", related_name="ticket", null=True, on_delete=fields.SET_NULL
    )
    relationship_id: int | None
    status = fields.CharEnumField(TicketStatus, max_length=24, default=TicketStatus.NEW)
    # The earliest due time of the clocks still running, and when that clock turns AT_RISK; NULL
    # when none runs. Kept here so "sort by next SLA due" and "filter by SLA state" are SQL.
    next_sla_due_at = fields.DatetimeField(null=True)
    next_sla_at_risk_from = fields.DatetimeField(null=True)
    last_family_message_at = fields.DatetimeField(null=True)
    last_advocate_message_at = fields.DatetimeField(null=True)
    outcome = fields.CharEnumField(TicketOutcome, max_length=24, null=True)
    resolution_note = fields.TextField(default="")
    resolved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "tickets"
        indexes = (("advocate_id", "status"), ("advocate_id", "next_sla_due_at", "id"))


# One service-level clock of a ticket. Its due time is fixed when it starts, so changing targets
# later does not move it; its state follows from these timestamps and the time now.
class SlaClock(Model):
    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="sla_clocks", on_delete=fields.CASCADE
    )
    ticket_id: int
    kind = fields.CharEnumField(SlaClockKind, max_length=24)
    target_hours = fields.IntField()
    started_at = fields.DatetimeField()
    due_at = fields.DatetimeField()
    # When under a quarter of the time is left.
    at_risk_from = fields.DatetimeField()
    # Set by the sweep (conditional writes, so by one process) when it announces the change.
    at_risk_at = fields.DatetimeField(null=True)
    breached_at = fields.DatetimeField(null=True)
    met_at = fields.DatetimeField(null=True)
    # Stopped without being met: the request was withdrawn or expired, or the relationship ended.
    stopped_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sla_clocks"
        unique_together = (("ticket_id", "kind"),)
        indexes = (("met_at", "stopped_at", "due_at"),)


class ChecklistItem(Model):
    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="checklist_items", on_delete=fields.CASCADE
    )
    ticket_id: int
    text = fields.CharField(max_length=500)
    position = fields.IntField()
    done = fields.BooleanField(default=False)
    done_at = fields.DatetimeField(null=True)
    done_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ticked_items", null=True, on_delete=fields.SET_NULL
    )
    done_by_id: int | None
    created_at = fields.DatetimeField()

    class Meta:
        table = "checklist_items"
        indexes = (("ticket_id", "position"),)


# Private to the advocate who owns the ticket: never shown to the family by any query or event.
class TicketNote(Model):
    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="notes", on_delete=fields.CASCADE
    )
    ticket_id: int
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ticket_notes", on_delete=fields.CASCADE
    )
    author_id: int
    body = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "ticket_notes"
        indexes = (("ticket_id", "id"),)


class ChecklistTemplate(Model):
    id = fields.BigIntField(primary_key=True)
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="checklist_templates", on_delete=fields.CASCADE
    )
    advocate_id: int
    name = fields.CharField(max_length=100)
    # The item texts, in order.
    items: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()

    class Meta:
        table = "checklist_templates"
