"""Advocate profiles: who they are, what they do, where, and how much they can take on."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.accounts import User


class AdvocateType(StrEnum):
    INDEPENDENT = "INDEPENDENT"
    CHARITY = "CHARITY"
    SENDIASS = "SENDIASS"
    SOLICITOR = "SOLICITOR"
    OTHER = "OTHER"


class Specialism(StrEnum):
    EHC_NEEDS_ASSESSMENT = "EHC_NEEDS_ASSESSMENT"
    DRAFT_PLAN = "DRAFT_PLAN"
    ANNUAL_REVIEW = "ANNUAL_REVIEW"
    TRIBUNAL = "TRIBUNAL"
    EXCLUSIONS = "EXCLUSIONS"
    PLACEMENT = "PLACEMENT"


class Verification(StrEnum):
    UNVERIFIED = "UNVERIFIED"
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"


class Availability(StrEnum):
    ACCEPTING = "ACCEPTING"
    LIMITED = "LIMITED"
    NOT_ACCEPTING = "NOT_ACCEPTING"


# Lists are stored as delimited text ("|A|B|") so that "has this one" is a portable LIKE on both
# SQLite and PostgreSQL; values may not contain the delimiter.
LIST_DELIMITER = "|"


def pack(values: list[str]) -> str:
    return LIST_DELIMITER + LIST_DELIMITER.join(values) + LIST_DELIMITER if values else ""


def unpack(packed: str) -> list[str]:
    return [v for v in packed.split(LIST_DELIMITER) if v]


class Advocate(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="advocate", on_delete=fields.CASCADE
    )
    user_id: int
    display_name = fields.CharField(max_length=100)
    bio = fields.TextField(default="")
    advocate_type = fields.CharEnumField(AdvocateType, max_length=16, default=AdvocateType.INDEPENDENT)
    specialisms = fields.CharField(max_length=500, default="")
    areas = fields.TextField(default="")
    verification = fields.CharEnumField(Verification, max_length=16, default=Verification.UNVERIFIED)
    verification_note = fields.TextField(default="")
    verification_decided_at = fields.DatetimeField(null=True)
    availability = fields.CharEnumField(Availability, max_length=16, default=Availability.ACCEPTING)
    capacity = fields.IntField(default=5)
    # Kept by conditional updates on accept and on end, so capacity holds under concurrent accepts.
    active_case_count = fields.IntField(default=0)
    capacity_expected_on = fields.DateField(null=True)
    response_sla_hours = fields.IntField(default=48)
    first_message_sla_hours = fields.IntField(default=24)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "advocates"
