"""The family's rights over its data: exports of everything, and the record of each erasure."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User


class ExportStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    EXPIRED = "EXPIRED"
    # Every attempt to build it failed (`exports.MAX_ATTEMPTS`); the account holder may ask again.
    FAILED = "FAILED"


# One ZIP of everything a user's account holds, built in the background (`resolvers.exports`) and
# kept, encrypted like a document, until `expires_at`. `lease_until` is how long the process that
# claimed the build may take before another takes it over.
class DataExport(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="data_exports", on_delete=fields.CASCADE
    )
    user_id: int
    status = fields.CharEnumField(ExportStatus, max_length=16, default=ExportStatus.PENDING)
    requested_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    ready_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    byte_size = fields.BigIntField(null=True)
    object_key = fields.CharField(max_length=200, null=True)
    wrapped_key = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "data_exports"


# What an erasure did, for admins: which account (its id, which now names nothing personal), when,
# how far it got and how many rows of each kind went. Never a name, an address or a text.
class ErasureRecord(Model):
    id = fields.BigIntField(primary_key=True)
    user_id = fields.BigIntField(unique=True)
    role = fields.CharField(max_length=16)
    requested_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    # Until when the process running it may go without finishing a step (`erasure.LEASE`), and
    # which run that is.
    lease_until = fields.DatetimeField(null=True)
    lease_holder = fields.CharField(max_length=32, null=True)
    # The steps done so far, in order (`resolvers.erasure.STEPS`).
    steps_done: list[str] = fields.JSONField(default=list)
    counts: dict[str, int] = fields.JSONField(default=dict)

    class Meta:
        table = "erasure_records"
