"""The family's children: the first part of the Vault."""

from __future__ import annotations

from datetime import date

from tortoise.transactions import in_transaction

from models.families import Child, EhcpStage, Family
from resolvers import validation
from resolvers.access import vault as access
from resolvers.errors import NotFound, UserError
from resolvers.services import Services
from resolvers.viewer import Viewer

MAX_CHILD_NAME = 100
MAX_LOCAL_AUTHORITY = 100
# EHCPs run from birth to 25: a date of birth further back is a typing mistake.
MAX_CHILD_AGE_YEARS = 25
# The lists of a family's children (`Family.children`, `Vault.children`) are plain lists: this bounds them.
MAX_CHILDREN = 30


async def add_child(
    services: Services,
    viewer: Viewer | None,
    *,
    display_name: str,
    date_of_birth: date,
    ehcp_stage: EhcpStage,
    local_authority: str,
) -> Child:
    """A child in the viewer's family."""
    family_id = access.writer(viewer).family_id
    now = services.clock.now()
    name = validation.text("displayName", display_name, max_length=MAX_CHILD_NAME)
    born = validation.past_date("dateOfBirth", date_of_birth, now.date(), max_years=MAX_CHILD_AGE_YEARS)
    authority = validation.text(
        "localAuthority", local_authority, max_length=MAX_LOCAL_AUTHORITY, required=False
    )
    async with in_transaction():
        # The family's row, locked: two additions at once are counted one after the other.
        await Family.filter(id=family_id).select_for_update().first()
        if await Child.filter(family_id=family_id).count() >= MAX_CHILDREN:
            raise UserError(
                "TOO_MANY_CHILDREN",
                f"A family's Vault holds at most {MAX_CHILDREN} children; contact support if you need more.",
            )
        return await Child.create(
            family_id=family_id,
            display_name=name,
            date_of_birth=born,
            ehcp_stage=ehcp_stage,
            local_authority=authority,
            created_at=now,
            updated_at=now,
        )


async def update_child(
    services: Services,
    viewer: Viewer | None,
    child_id: int,
    *,
    display_name: str | None = None,
    date_of_birth: date | None = None,
    ehcp_stage: EhcpStage | None = None,
    local_authority: str | None = None,
) -> Child:
    """Change any of a child's details; fields left out stay as they are."""
    family_id = access.writer(viewer).family_id
    child = await Child.get_or_none(id=child_id, family_id=family_id)
    if child is None:
        raise NotFound("Child", "childId")
    now = services.clock.now()
    changes: dict[str, object] = {}
    if display_name is not None:
        changes["display_name"] = validation.text("displayName", display_name, max_length=MAX_CHILD_NAME)
    if date_of_birth is not None:
        changes["date_of_birth"] = validation.past_date(
            "dateOfBirth", date_of_birth, now.date(), max_years=MAX_CHILD_AGE_YEARS
        )
    if ehcp_stage is not None:
        changes["ehcp_stage"] = ehcp_stage
    if local_authority is not None:
        changes["local_authority"] = validation.text(
            "localAuthority", local_authority, max_length=MAX_LOCAL_AUTHORITY, required=False
        )
    if changes:
        changes["updated_at"] = now
        await Child.filter(id=child.id).update(**changes)
        await child.refresh_from_db()
    return child
