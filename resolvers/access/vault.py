"""Who may see and change a family's Vault: its children, evidence, timeline, EHCP cases, grants and
access log.

Two readers only. The family reads all of its own Vault (an API token needs VAULT_READ); its records
resolve by `node(id)` and under the family and its requests. An advocate reads what a live grant of
an active relationship shares, through `vault(familyId)` only, where every read is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.connection import get_connection
from tortoise.expressions import Q

from models.accounts import ApiScope, Role
from models.documents import Document
from models.families import Child, Family
from models.support import RelationshipStatus, SupportRelationship
from models.vault import Evidence, TimelineEntry, VaultAccessLog, VaultGrant, VaultScope
from resolvers.access import core
from resolvers.errors import NotFound
from resolvers.services import Services
from resolvers.viewer import Viewer

# --- the family's own Vault -----------------------------------------------------------------


def owns(viewer: Viewer | None, family_id: int) -> bool:
    """The family itself, reading its own Vault (an API token needs VAULT_READ)."""
    return core.is_family(viewer, ApiScope.VAULT_READ, family_id)


def may_read_record(
    viewer: Viewer | None, row: Child | Evidence | TimelineEntry | VaultAccessLog | Document
) -> bool:
    """A child, an evidence item, a timeline entry, a document or an access-log entry, by `node(id)`:
    to its own family only (advocates read them through `vault(familyId)`, where reads are logged)."""
    return owns(viewer, row.family_id)


def is_own_family(viewer: Viewer | None, family: Family) -> bool:
    """The family record (not its Vault): to the family's own account, whatever the token's scopes."""
    return viewer is not None and viewer.family_id == family.id


async def children(viewer: Viewer | None, ids: Sequence[object]) -> list[Child | None]:
    return await core.fetch(viewer, Child, ids, may_read_record)


async def evidence(viewer: Viewer | None, ids: Sequence[object]) -> list[Evidence | None]:
    return await core.fetch(viewer, Evidence, ids, may_read_record)


async def timeline_entries(viewer: Viewer | None, ids: Sequence[object]) -> list[TimelineEntry | None]:
    return await core.fetch(viewer, TimelineEntry, ids, may_read_record)


async def documents(viewer: Viewer | None, ids: Sequence[object]) -> list[Document | None]:
    return await core.fetch(viewer, Document, ids, may_read_record)


async def access_log_entries(viewer: Viewer | None, ids: Sequence[object]) -> list[VaultAccessLog | None]:
    return await core.fetch(viewer, VaultAccessLog, ids, may_read_record)


async def families(viewer: Viewer | None, ids: Sequence[object]) -> list[Family | None]:
    return await core.fetch(viewer, Family, ids, is_own_family)


def family_children(viewer: Viewer | None, family_id: int, rows: Sequence[Child]) -> list[Child]:
    """A family's children as listed under the family, a request or a relationship."""
    return list(rows) if owns(viewer, family_id) else []


def access_log_reader(viewer: Viewer | None, family_id: int) -> Viewer:
    """The family reading its own access log; NOT_FOUND for any other family's."""
    v = core.require(viewer, roles=[Role.FAMILY], scope=ApiScope.VAULT_READ)
    if not owns(v, family_id):
        raise NotFound("Family", "familyId")
    return v


def owns_for_writing(viewer: Viewer | None, family_id: int) -> bool:
    """The family `family_id` itself, allowed to change its Vault (`writer`, as a predicate)."""
    return core.is_family(viewer, ApiScope.VAULT_WRITE, family_id)


def may_grant(viewer: Viewer | None, relationship: SupportRelationship, email_verified: bool) -> bool:
    """Share parts of the Vault with a relationship's advocate: its family (API tokens need
    VAULT_WRITE), its email address confirmed, while the relationship is active."""
    return email_verified and (
        owns_for_writing(viewer, relationship.family_id) and relationship.status is RelationshipStatus.ACTIVE
    )


def writer(viewer: Viewer | None) -> Viewer:
    """A family changing its own Vault (children, records, grants): VAULT_WRITE for API tokens."""
    return core.acting_family(viewer, ApiScope.VAULT_WRITE)


# --- grants -----------------------------------------------------------------------------------


def may_read_grant(viewer: Viewer | None, grant: VaultGrant) -> bool:
    """The family that made it and the advocate it was made for (API tokens need VAULT_READ)."""
    return core.is_party(viewer, ApiScope.VAULT_READ, grant.family_id, grant.advocate_id)


def may_read_grants_of(viewer: Viewer | None, relationship: SupportRelationship) -> bool:
    """The grants made under a relationship: `may_read_grant` of each, whose parties are the
    relationship's own."""
    return core.is_party(viewer, ApiScope.VAULT_READ, relationship.family_id, relationship.advocate_id)


async def grants(viewer: Viewer | None, ids: Sequence[object]) -> list[VaultGrant | None]:
    return await core.fetch(viewer, VaultGrant, ids, may_read_grant)


def live_grant_filter(now: datetime) -> Q:
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


# --- reading a Vault through `vault(familyId)` ----------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one viewer may read of one family's Vault, as of now."""

    family_id: int
    viewer: Viewer
    owner: bool
    # scope -> child ids -> the grant that allows it (advocates only)
    grants: dict[VaultScope, dict[int, int]]

    def child_ids(self, scope: VaultScope) -> set[int] | None:
        """Children readable in `scope`; None means all (the family itself)."""
        return None if self.owner else set(self.grants.get(scope, {}))


# Taken in the transaction of a read: an end or revocation (an UPDATE of these rows) waits until the
# read has finished, and a read that comes after it re-checks the rows it waited for and finds them
# ended. SQLite needs no lock: its transactions run one at a time.
_SHARE_LIVE_GRANTS = (
    "SELECT id FROM vault_grants WHERE id = ANY($1::bigint[]) AND revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > $2) FOR SHARE"
)


async def access(services: Services, viewer: Viewer | None, family_id: int) -> Access | None:
    """The viewer's live access to a family's Vault, or None when they have none at all.

    Looked up afresh on every call: nothing is cached, so a revocation takes effect at the next read.
    """
    if viewer is None or not core.holds(viewer, ApiScope.VAULT_READ):
        return None
    if owns(viewer, family_id):
        return Access(family_id, viewer, True, {})
    if viewer.role is not Role.ADVOCATE or viewer.advocate_id is None:
        return None
    now = services.clock.now()
    live = await VaultGrant.filter(
        live_grant_filter(now),
        family_id=family_id,
        advocate_id=viewer.advocate_id,
        relationship__status="ACTIVE",
    )
    connection = get_connection("default")
    if live and connection.capabilities.dialect == "postgres":
        rows = await connection.execute_query_dict(_SHARE_LIVE_GRANTS, [[g.id for g in live], now])
        locked = {int(r["id"]) for r in rows}
        live = [g for g in live if g.id in locked]
    if not live:
        return None
    table: dict[VaultScope, dict[int, int]] = {}
    for grant in live:
        for scope in grant.scopes:
            for child_id in grant.child_ids:
                table.setdefault(VaultScope(scope), {}).setdefault(child_id, grant.id)
    return Access(family_id, viewer, False, table)


async def documents_access(
    services: Services, viewer: Viewer | None, family_id: int, child_id: int
) -> Access | None:
    """The viewer's live access to the documents of one child's evidence, or None: the family's own
    (VAULT_READ for API tokens), or an advocate's live EVIDENCE grant that covers the child. Asked
    when documents are listed, when a download URL is issued and again when its bytes are fetched."""
    acc = await access(services, viewer, family_id)
    return acc if covers(acc, child_id) else None


def covers(acc: Access | None, child_id: int) -> bool:
    """Whether access to a Vault (`access`) reaches the documents of one child's evidence."""
    if acc is None:
        return False
    allowed = acc.child_ids(VaultScope.EVIDENCE)
    return allowed is None or child_id in allowed
