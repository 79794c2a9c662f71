"""Vault grants: what a family shares with the advocate of an active relationship, until it ends."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from models.families import Child
from models.notifications import NotificationKind
from models.support import RelationshipStatus, SupportRelationship
from models.vault import AccessEndReason, GrantStatus, VaultGrant, VaultScope
from resolvers import notifications, recovery, validation
from resolvers.access import core
from resolvers.access import vault as access
from resolvers.access.core import own_row
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import Outbox, unit_of_work, user_channel
from resolvers.pagination import Page, Window, empty_page, paginate
from resolvers.services import Services
from resolvers.viewer import Viewer

ACCESS_REVOKED = "access.revoked"


def status(grant: VaultGrant, now: datetime) -> GrantStatus:
    if grant.revoked_at is not None:
        return GrantStatus.EXPIRED if grant.end_reason is AccessEndReason.EXPIRED else GrantStatus.REVOKED
    if grant.expires_at is not None and grant.expires_at <= now:
        return GrantStatus.EXPIRED
    return GrantStatus.ACTIVE


async def grant(
    services: Services,
    viewer: Viewer | None,
    *,
    relationship_id: int,
    scopes: list[VaultScope],
    child_ids: list[int],
    expires_at: datetime | None,
) -> VaultGrant:
    """Share parts of the Vault with the advocate of an active relationship."""
    v = access.writer(viewer)
    relationship = await own_row(
        SupportRelationship, relationship_id, "Support relationship", "relationshipId", family_id=v.family_id
    )
    verified = await recovery.is_verified(v.user_id)
    if not access.may_grant(v, relationship, verified):
        if not verified:
            raise recovery.not_verified()
        raise UserError(
            "RELATIONSHIP_CLOSED", "This relationship has ended; access can't be granted.", "relationshipId"
        )
    if not scopes:
        raise InvalidInput("scopes", "Choose at least one part of the Vault to share.", "REQUIRED")
    if not child_ids:
        raise InvalidInput("childIds", "Choose at least one child.", "REQUIRED")
    unique_children = sorted(set(child_ids))
    if await Child.filter(id__in=unique_children, family_id=v.family_id).count() != len(unique_children):
        raise NotFound("Child", "childIds")
    now = services.clock.now()
    if expires_at is not None:
        validation.future_instant("expiresAt", expires_at, now)
    async with in_transaction():
        # Lock the relationship: an end that runs now waits for this grant, then revokes it too.
        still_active = (
            await SupportRelationship.filter(id=relationship.id, status=RelationshipStatus.ACTIVE)
            .select_for_update()
            .first()
        )
        if still_active is None:
            raise UserError(
                "RELATIONSHIP_CLOSED",
                "This relationship has ended; access can't be granted.",
                "relationshipId",
            )
        return await VaultGrant.create(
            relationship_id=relationship.id,
            family_id=relationship.family_id,
            advocate_id=relationship.advocate_id,
            scopes=sorted({s.value for s in scopes}),
            child_ids=unique_children,
            created_at=now,
            expires_at=expires_at,
        )


async def end_grants(
    outbox: Outbox,
    grants: list[VaultGrant],
    reason: AccessEndReason,
    by_user_id: int | None,
) -> list[VaultGrant]:
    """End live grants in the current transaction and tell their advocates after commit."""
    ended: list[VaultGrant] = []
    for g in grants:
        changed = await VaultGrant.filter(id=g.id, revoked_at__isnull=True).update(
            revoked_at=outbox.now, revoked_by_id=by_user_id, end_reason=reason, end_announced_at=outbox.now
        )
        if not changed:
            continue
        ended.append(g)
        await g.fetch_related("advocate")
        advocate_user = g.advocate.user_id
        await outbox.emit(
            user_channel(advocate_user), ACCESS_REVOKED, {"grantId": g.id, "reason": reason.value}
        )
        await notifications.notify(
            outbox,
            advocate_user,
            NotificationKind.ACCESS_REVOKED,
            "Vault access ended",
            {
                AccessEndReason.REVOKED_BY_FAMILY: "The family revoked your access to part of their Vault.",
                AccessEndReason.RELATIONSHIP_ENDED: "The relationship ended, and your access with it.",
                AccessEndReason.EXPIRED: "Your access to part of a family's Vault expired.",
            }[reason],
            notifications.subject("VaultGrant", g.id),
        )
    return ended


def may_revoke(viewer: Viewer | None, grant: VaultGrant, now: datetime) -> bool:
    """Revoke a grant: the family that made it (API tokens need VAULT_WRITE), while it is live."""
    return access.owns_for_writing(viewer, grant.family_id) and status(grant, now) is GrantStatus.ACTIVE


async def revoke(services: Services, viewer: Viewer | None, grant_id: int) -> VaultGrant:
    """The family ends a grant at once."""
    v = access.writer(viewer)
    found = await own_row(VaultGrant, grant_id, "Vault grant", "grantId", family_id=v.family_id)
    if not may_revoke(v, found, services.clock.now()):
        raise UserError("INVALID_TRANSITION", "This grant has already ended.", "grantId")
    async with unit_of_work(services) as outbox:
        if not await end_grants(outbox, [found], AccessEndReason.REVOKED_BY_FAMILY, v.user_id):
            raise UserError("INVALID_TRANSITION", "This grant has already ended.", "grantId")
    return await VaultGrant.get(id=found.id)


async def expire_due(services: Services) -> int:
    """Tell advocates of grants that reached their expiry (reads already refuse them)."""
    now = services.clock.now()
    due = await VaultGrant.filter(revoked_at__isnull=True, expires_at__lte=now).limit(200)
    if not due:
        return 0
    async with unit_of_work(services) as outbox:
        ended = await end_grants(outbox, due, AccessEndReason.EXPIRED, None)
    return len(ended)


async def relationship_page(
    viewer: Viewer | None, relationship: SupportRelationship, window: Window
) -> Page[VaultGrant]:
    """The grants made under a relationship, newest first, to its family and its advocate."""
    if not access.may_read_grants_of(viewer, relationship):
        return empty_page()
    return await paginate(
        VaultGrant.filter(relationship_id=relationship.id), kind="VaultGrant", window=window
    )


async def family_page(viewer: Viewer | None, family_id: int, window: Window) -> Page[VaultGrant]:
    """Every grant a family has made, newest first, to the family itself (`access.owns`)."""
    if not access.owns(viewer, family_id):
        return empty_page()
    return await paginate(VaultGrant.filter(family_id=family_id), kind="VaultGrant", window=window)


async def for_relationship(viewer: Viewer | None, relationship: SupportRelationship) -> list[VaultGrant]:
    """The grants made under a relationship, to whoever may see each (`access.may_read_grant`)."""
    rows = await VaultGrant.filter(relationship_id=relationship.id).order_by("-id")
    return core.keep(viewer, rows, access.may_read_grant)


async def for_family(viewer: Viewer | None, family_id: int) -> list[VaultGrant]:
    """Every grant a family has made, to the family itself (`access.owns`)."""
    if not access.owns(viewer, family_id):
        return []
    return list(await VaultGrant.filter(family_id=family_id).order_by("-id"))
