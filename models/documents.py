"""Documents in the Vault: the files under a piece of evidence, stored encrypted outside the database."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.families import Child, Family
from models.vault import Evidence


class DocumentStatus(StrEnum):
    PENDING_UPLOAD = "PENDING_UPLOAD"
    AVAILABLE = "AVAILABLE"
    REJECTED = "REJECTED"


class RejectionReason(StrEnum):
    SIZE_MISMATCH = "SIZE_MISMATCH"
    HASH_MISMATCH = "HASH_MISMATCH"
    TYPE_MISMATCH = "TYPE_MISMATCH"


class Document(Model):
    # One file under a piece of evidence. The bytes are in the store (`resolvers.storage`) under
    # `object_key`, encrypted with a data key that only this row holds, wrapped by the master key:
    # deleting the row makes the object unreadable at once; the sweep then removes it.
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="documents", on_delete=fields.CASCADE
    )
    family_id: int
    child: fields.ForeignKeyRelation[Child] = fields.ForeignKeyField(
        "models.Child", related_name="documents", on_delete=fields.CASCADE
    )
    child_id: int
    evidence: fields.ForeignKeyRelation[Evidence] = fields.ForeignKeyField(
        "models.Evidence", related_name="documents", on_delete=fields.CASCADE
    )
    evidence_id: int
    # What the family declared when it asked to upload; checked against the bytes on completion.
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=100)
    byte_size = fields.BigIntField()
    sha256 = fields.CharField(max_length=64)
    status = fields.CharEnumField(DocumentStatus, max_length=16, default=DocumentStatus.PENDING_UPLOAD)
    rejection_reason = fields.CharEnumField(RejectionReason, max_length=16, null=True)
    created_at = fields.DatetimeField()
    upload_expires_at = fields.DatetimeField()
    uploaded_at = fields.DatetimeField(null=True)
    # The stored object of the last upload, its wrapped data key and what its bytes were.
    object_key = fields.CharField(max_length=200, null=True)
    wrapped_key = fields.CharField(max_length=200, null=True)
    received_size = fields.BigIntField(null=True)
    received_sha256 = fields.CharField(max_length=64, null=True)
    received_type = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "documents"
        indexes = (("evidence_id", "id"), ("status", "upload_expires_at"))
