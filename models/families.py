"""The family's side of the Vault: the family itself and its children."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User


class EhcpStage(StrEnum):
    NOT_REQUESTED = "NOT_REQUESTED"
    ASSESSMENT_REQUESTED = "ASSESSMENT_REQUESTED"
    ASSESSMENT_REFUSED = "ASSESSMENT_REFUSED"
    ASSESSING = "ASSESSING"
    DRAFT_PLAN = "DRAFT_PLAN"
    FINAL_PLAN = "FINAL_PLAN"
    ANNUAL_REVIEW = "ANNUAL_REVIEW"
    TRIBUNAL = "TRIBUNAL"


class Family(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="family", on_delete=fields.CASCADE
    )
    user_id: int
    created_at = fields.DatetimeField()

    class Meta:
        table = "families"


class Child(Model):
    id = fields.BigIntField(primary_key=True)
    family: fields.ForeignKeyRelation[Family] = fields.ForeignKeyField(
        "models.Family", related_name="children", on_delete=fields.CASCADE
    )
    family_id: int
    display_name = fields.CharField(max_length=100)
    date_of_birth = fields.DateField()
    ehcp_stage = fields.CharEnumField(EhcpStage, max_length=32)
    local_authority = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "children"
