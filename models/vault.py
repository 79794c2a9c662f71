"""The Vault: evidence, timeline and EHCP case per child, and what the family shares of it."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User
from models.advocates import Advocate
from models.families import Child, EhcpStage, Family
from models.support import SupportRelationship


class EvidenceCategory(StrEnum):
    SCHOOL_REPORT = "SCHOOL_REPORT"
    EP_REPORT = "EP_REPORT"
    MEDICAL = "MEDICAL"
    CORRESPONDENCE = "CORRESPONDENCE"
    EHCP_DOCUMENT = "EHCP_DOCUMENT"
    OTHER = "OTHER"


class VaultScope(StrEnum):
    EVIDENCE = "EVIDENCE"
    TIMELINE = "TIMELINE"
    EHCP_CASE = "EHCP_CASE"


class GrantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class AccessEndReason(StrEnum):
    REVOKED_BY_FAMILY = "REVOKED_BY_FAMILY"
    RELATIONSHIP_ENDED = "RELATIONSHIP_ENDED"
    EXPIRED = "EXPIRED"


class Evidence(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="evidence", on_delete=fields.CASCADE
    )
    family_id: int
    child: fields.ForeignKeyRelation[Child] = fields.ForeignKeyField(
        "models.Child", related_name="evidence", on_delete=fields.CASCADE
    )
    child_id: int
    title = fields.CharField(max_length=200)
    category = fields.CharEnumField(EvidenceCategory, max_length=32)
    date = fields.DateField()
    description = fields.TextField(default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "evidence"


class TimelineEntry(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="timeline", on_delete=fields.CASCADE
    )
    family_id: int
    child: fields.ForeignKeyRelation[Child] = fields.ForeignKeyField(
        "models.Child", related_name="timeline", on_delete=fields.CASCADE
    )
    child_id: int
    date = fields.DateField()
    title = fields.CharField(max_length=200)
    note = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "timeline_entries"


class EhcpCase(Model):
    id = fields.BigIntField(primary_key=True)
    child: fields.OneToOneRelation[Child] = fields.OneToOneField(
        "models.Child", related_name="ehcp_case", on_delete=fields.CASCADE
    )
    child_id: int
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="ehcp_cases", on_delete=fields.CASCADE
    )
    family_id: int
    stage = fields.CharEnumField(EhcpStage, max_length=32)
    local_authority = fields.CharField(max_length=100, default="")
    request_date = fields.DateField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "ehcp_cases"


class VaultGrant(Model):
    id = fields.BigIntField(primary_key=True)
    relationship: fields.ForeignKeyRelation[SupportRelationship] = fields.ForeignKeyField(
        "models.SupportRelationship", related_name="vault_grants", on_delete=fields.CASCADE
    )
    relationship_id: int
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="vault_grants", on_delete=fields.CASCADE
    )
    family_id: int
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="vault_grants", on_delete=fields.CASCADE
    )
    advocate_id: int
    scopes: list[str] = fields.JSONField(default=list)
    child_ids: list[int] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="revoked_grants", null=True, on_delete=fields.SET_NULL
    )
    revoked_by_id: int | None
    end_reason = fields.CharEnumField(AccessEndReason, max_length=32, null=True)
    # Set once the advocate has been told the grant ended (expiry is noticed by the sweeper).
    end_announced_at = fields.DatetimeField(null=True)

    class Meta:
        table = "vault_grants"
        # The access check on every advocate's Vault read (a family's live grants to one advocate),
        # and a relationship's grants when it ends.
        indexes = (("family_id", "advocate_id"), ("relationship_id", "id"))


class VaultAccessLog(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="access_log", on_delete=fields.CASCADE
    )
    family_id: int
    actor: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="vault_reads", on_delete=fields.CASCADE
    )
    actor_id: int
    grant: fields.ForeignKeyNullableRelation[VaultGrant] = fields.ForeignKeyField(
        "models.VaultGrant", related_name="reads", null=True, on_delete=fields.SET_NULL
    )
    grant_id: int | None
    scope = fields.CharEnumField(VaultScope, max_length=16)
    child_id = fields.BigIntField(null=True)
    what = fields.CharField(max_length=200)
    at = fields.DatetimeField()

    class Meta:
        table = "vault_access_log"
        # A family's access log, newest first.
        indexes = (("family_id", "id"),)


class Review(Model):
    id = fields.BigIntField(primary_key=True)
    relationship: fields.OneToOneRelation[SupportRelationship] = fields.OneToOneField(
        "models.SupportRelationship", related_name="review", on_delete=fields.CASCADE
    )
    relationship_id: int
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="reviews", on_delete=fields.CASCADE
    )
    family_id: int
    advocate: fields.ForeignKeyRelation[Advocate] = fields.ForeignKeyField(
        "models.Advocate", related_name="reviews", on_delete=fields.CASCADE
    )
    advocate_id: int
    rating = fields.SmallIntField()
    text = fields.TextField(default="")
    created_at = fields.DatetimeField()
    hidden_at = fields.DatetimeField(null=True)

    class Meta:
        table = "reviews"
