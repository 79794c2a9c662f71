"""Things a person must act on or know about."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User


class NotificationKind(StrEnum):
    NEW_SIGN_IN = "NEW_SIGN_IN"
    NEW_SUPPORT_REQUEST = "NEW_SUPPORT_REQUEST"
    SUPPORT_REQUEST_ACCEPTED = "SUPPORT_REQUEST_ACCEPTED"
    SUPPORT_REQUEST_DECLINED = "SUPPORT_REQUEST_DECLINED"
    INFORMATION_REQUESTED = "INFORMATION_REQUESTED"
    SUPPORT_REQUEST_WITHDRAWN = "SUPPORT_REQUEST_WITHDRAWN"
    SUPPORT_REQUEST_EXPIRED = "SUPPORT_REQUEST_EXPIRED"
    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    RELATIONSHIP_ENDED = "RELATIONSHIP_ENDED"
    ACCESS_REVOKED = "ACCESS_REVOKED"
    VERIFICATION_DECIDED = "VERIFICATION_DECIDED"
    SLA_AT_RISK = "SLA_AT_RISK"
    SLA_BREACHED = "SLA_BREACHED"
    DATA_EXPORT_READY = "DATA_EXPORT_READY"
    ACCOUNT_DELETION_SCHEDULED = "ACCOUNT_DELETION_SCHEDULED"


class Notification(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    user_id: int
    kind = fields.CharEnumField(NotificationKind, max_length=40)
    title = fields.CharField(max_length=200)
    body = fields.TextField(default="")
    # The global ID of what it is about, for the client to open; empty when nothing to open.
    subject_id = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notifications"
        indexes = (("user_id", "read_at"),)
