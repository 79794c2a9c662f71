"""The Vault as GraphQL: the family's records, grants, the access log, reviews and ending support."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry import relay

from models import vault as m
from models.accounts import ApiScope as Scope
from models.documents import Document as DocumentRow
from models.support import SupportRelationship as RelationshipRow
from resolvers import documents, grants, relationships, vault
from resolvers.access import accounts as account_access
from resolvers.access import core
from resolvers.access import relationships as relationship_access
from resolvers.access import vault as access
from resolvers.errors import NotFound
from resolvers.events import Envelope, user_channel
from resolvers.pagination import Page, Window, window
from schema.accounts import User
from schema.arguments import INPUT, After, Before, First, Last, Since
from schema.connections import TotalCount, decode_id, id_of, nodes, to_connection
from schema.context import Info
from schema.enums import CloseReason, EhcpStage
from schema.errors import UserError, attempt
from schema.families import Child, Family
from schema.permissions import IsAdmin, IsAdvocate, IsFamily, IsSignedIn, needs
from schema.streams import LiveRows, events_for
from schema.support import SupportRelationship
from schema.vault_documents import Document, DocumentConnection

# The rows live events name, loaded together for every subscriber asking at once.
_LIVE_GRANTS = LiveRows(m.VaultGrant, access.may_read_grant)

strawberry.enum(m.EvidenceCategory, description="What kind of evidence a document is.")
strawberry.enum(m.VaultScope, description="A part of the Vault that can be shared.")
strawberry.enum(m.GrantStatus, description="Whether a grant is live.")
strawberry.enum(m.AccessEndReason, description="Why an advocate's access ended.")
EvidenceCategory = m.EvidenceCategory
VaultScope = m.VaultScope
GrantStatus = m.GrantStatus
AccessEndReason = m.AccessEndReason
T = TypeVar("T")


@strawberry.type(description="A piece of evidence in the Vault.")
class Evidence(relay.Node):
    id: relay.NodeID[int]
    title: str = strawberry.field(description="What it is.")
    category: EvidenceCategory = strawberry.field(description="What kind of document.")
    date: date = strawberry.field(description="The document's date.")
    description: str = strawberry.field(description="Notes about it.")
    created_at: datetime = strawberry.field(description="When it was added.")
    child_id: strawberry.Private[int]
    family_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, e: m.Evidence) -> Evidence:
        return cls(
            id=e.id,
            title=e.title,
            category=e.category,
            date=e.date,
            description=e.description,
            created_at=e.created_at,
            child_id=e.child_id,
            family_id=e.family_id,
        )

    @strawberry.field(
        description=(
            "Its documents, newest first: for the family, and for an advocate with a live EVIDENCE grant "
            "for the child (each read logged)."
        )
    )
    async def documents(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> DocumentConnection:
        context = info.context
        key = documents.documents_key(
            int(self.id), self.family_id, self.child_id, window(first, after, last, before)
        )
        page = await context.loaders.documents(context.services, context.viewer).load(key)
        evidence_id = int(self.id)

        def total() -> Awaitable[int]:
            if page is None:
                return _none()
            return context.loaders.counts.load((DocumentRow, "evidence_id", evidence_id))

        # Not the viewer's to read (no live EVIDENCE grant for the child): an empty list.
        shown = page if page is not None else Page([], [], False, False)
        return to_connection(DocumentConnection, shown, Document.from_model, total)  # type: ignore[return-value]

    @strawberry.field(description="The child it is about.")
    def child_ref(self) -> relay.GlobalID:
        return relay.GlobalID("Child", str(self.child_id))

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Evidence | None]:
        return await nodes(info.context.viewer, node_ids, access.evidence, cls.from_model)


async def _none() -> int:
    return 0


@strawberry.type(description="A dated entry in a child's timeline.")
class TimelineEntry(relay.Node):
    id: relay.NodeID[int]
    date: date = strawberry.field(description="When it happened.")
    title: str = strawberry.field(description="What happened.")
    note: str = strawberry.field(description="More detail.")
    child_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, t: m.TimelineEntry) -> TimelineEntry:
        return cls(id=t.id, date=t.date, title=t.title, note=t.note, child_id=t.child_id)

    @strawberry.field(description="The child it is about.")
    def child_ref(self) -> relay.GlobalID:
        return relay.GlobalID("Child", str(self.child_id))

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[TimelineEntry | None]:
        return await nodes(info.context.viewer, node_ids, access.timeline_entries, cls.from_model)


@strawberry.type(description="A child's EHCP case, with the statutory dates that follow from the request.")
class EhcpCase:
    stage: EhcpStage = strawberry.field(description="Where the case has reached.")
    local_authority: str = strawberry.field(description="The local authority.")
    request_date: date | None = strawberry.field(description="When the assessment was requested.")
    decision_due: date | None = strawberry.field(description="Decision whether to assess: 6 weeks on.")
    final_plan_due: date | None = strawberry.field(description="Final plan: 20 weeks on.")
    child_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, c: m.EhcpCase) -> EhcpCase:
        decision, final = vault.statutory_dates(c)
        return cls(
            stage=c.stage,
            local_authority=c.local_authority,
            request_date=c.request_date,
            decision_due=decision,
            final_plan_due=final,
            child_id=c.child_id,
        )

    @strawberry.field(
        description=(
            "A stable key for client caches: a child has one case, so this is the child's ID "
            "(not a Node ID of its own)."
        )
    )
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(relay.GlobalID("Child", str(self.child_id))))

    @strawberry.field(description="The child it is about.")
    def child_ref(self) -> relay.GlobalID:
        return relay.GlobalID("Child", str(self.child_id))


@strawberry.type(description="A page of evidence, newest first.")
class EvidenceConnection(relay.Connection[Evidence], TotalCount):
    pass


@strawberry.type(description="A page of timeline entries, newest first.")
class TimelineEntryConnection(relay.Connection[TimelineEntry], TotalCount):
    pass


async def _read(action: Awaitable[T]) -> T:
    """A Vault read; access that ended since the Vault was looked up is NOT_FOUND, not partial data."""
    try:
        return await action
    except NotFound as exc:
        if exc.field != "familyId":
            raise
        raise GraphQLError("Vault not found.", extensions={"code": "NOT_FOUND"}) from exc


def _child(child_id: relay.GlobalID | None) -> int | None:
    return None if child_id is None else decode_id(child_id, "Child", "childId")


# `childId` on the Vault's lists.
ChildFilter = Annotated[
    relay.GlobalID | None,
    strawberry.argument(description="Only this child's; leave out for every child the viewer may see."),
]


@strawberry.type(description="A family's Vault as the viewer may read it: each field is checked when read.")
class Vault:
    family_id: strawberry.Private[int]

    @strawberry.field(
        description=(
            "A stable key for client caches: a family has one Vault, so this is the family's ID "
            "(not a Node ID of its own)."
        )
    )
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(relay.GlobalID("Family", str(self.family_id))))

    @strawberry.field(description="The children the viewer may see anything of.")
    async def children(self, info: Info) -> list[Child]:
        rows = await _read(vault.read_children(info.context.services, info.context.viewer, self.family_id))
        return [Child.from_model(c) for c in rows]

    @strawberry.field(description="Evidence, newest first; advocates see only what a grant shares.")
    async def evidence(
        self,
        info: Info,
        child_id: ChildFilter = None,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> EvidenceConnection:
        page = await _read(
            vault.read_evidence(
                info.context.services,
                info.context.viewer,
                self.family_id,
                _child(child_id),
                window(first, after, last, before),
            )
        )
        return to_connection(EvidenceConnection, page, Evidence.from_model)  # type: ignore[return-value]

    @strawberry.field(description="Timeline entries, newest first; advocates see only what a grant shares.")
    async def timeline(
        self,
        info: Info,
        child_id: ChildFilter = None,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> TimelineEntryConnection:
        page = await _read(
            vault.read_timeline(
                info.context.services,
                info.context.viewer,
                self.family_id,
                _child(child_id),
                window(first, after, last, before),
            )
        )
        return to_connection(TimelineEntryConnection, page, TimelineEntry.from_model)  # type: ignore[return-value]

    @strawberry.field(description="EHCP cases per child; advocates see only what a grant shares.")
    async def ehcp_cases(self, info: Info, child_id: ChildFilter = None) -> list[EhcpCase]:
        rows = await _read(
            vault.read_ehcp_cases(
                info.context.services, info.context.viewer, self.family_id, _child(child_id)
            )
        )
        return [EhcpCase.from_model(c) for c in rows]


@strawberry.type(description="What a family shares of its Vault with the advocate of a relationship.")
class VaultGrant(relay.Node):
    id: relay.NodeID[int]
    scopes: list[VaultScope] = strawberry.field(description="The parts shared.")
    created_at: datetime = strawberry.field(description="When it was granted.")
    expires_at: datetime | None = strawberry.field(description="When it ends by itself, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When it ended.")
    end_reason: AccessEndReason | None = strawberry.field(description="Why it ended.")
    _row: strawberry.Private[m.VaultGrant]

    @classmethod
    def from_model(cls, g: m.VaultGrant) -> VaultGrant:
        return cls(
            id=g.id,
            scopes=[m.VaultScope(s) for s in g.scopes],
            created_at=g.created_at,
            expires_at=g.expires_at,
            revoked_at=g.revoked_at,
            end_reason=g.end_reason,
            _row=g,
        )

    @strawberry.field(description="ACTIVE, REVOKED or EXPIRED, as of now.")
    def status(self, info: Info) -> GrantStatus:
        return grants.status(self._row, info.context.services.clock.now())

    @strawberry.field(
        description=(
            "Whether revokeVaultAccess would succeed for the viewer now: its family, while it is live."
        )
    )
    def viewer_can_revoke(self, info: Info) -> bool:
        return grants.may_revoke(info.context.viewer, self._row, info.context.services.clock.now())

    @strawberry.field(description="The children it covers.")
    def child_ids(self) -> list[relay.GlobalID]:
        return [relay.GlobalID("Child", str(c)) for c in self._row.child_ids]

    @strawberry.field(description="Who ended it, when someone did.")
    async def revoked_by(self, info: Info) -> User | None:
        if self._row.revoked_by_id is None:
            return None
        user = await info.context.loaders.user.load(self._row.revoked_by_id)
        return User.from_model(user) if user else None

    @strawberry.field(description="The relationship it belongs to.")
    async def relationship(self, info: Info) -> SupportRelationship | None:
        row = await info.context.loaders.relationship.load(self._row.relationship_id)
        seen = row is not None and relationship_access.may_read(info.context.viewer, row)
        return SupportRelationship.from_model(row) if row and seen else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[VaultGrant | None]:
        return await nodes(info.context.viewer, node_ids, access.grants, cls.from_model)


@strawberry.type(description="One read of the Vault by someone other than the family.")
class VaultAccessLogEntry(relay.Node):
    id: relay.NodeID[int]
    scope: VaultScope = strawberry.field(description="Which part was read.")
    what: str = strawberry.field(description="What was read.")
    at: datetime = strawberry.field(description="When.")
    actor_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, r: m.VaultAccessLog) -> VaultAccessLogEntry:
        return cls(id=r.id, scope=r.scope, what=r.what, at=r.at, actor_id=r.actor_id)

    @strawberry.field(description="Who read it.")
    async def actor(self, info: Info) -> User | None:
        user = await info.context.loaders.user.load(self.actor_id)
        return User.from_model(user) if user else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[VaultAccessLogEntry | None]:
        return await nodes(info.context.viewer, node_ids, access.access_log_entries, cls.from_model)


@strawberry.type(description="A page of the Vault access log, newest first.")
class VaultAccessLogConnection(relay.Connection[VaultAccessLogEntry], TotalCount):
    pass


@strawberry.type(description="A family's review of a closed support relationship.")
class Review(relay.Node):
    id: relay.NodeID[int]
    rating: int = strawberry.field(description="1 to 5.")
    text: str = strawberry.field(description="What the family wrote.")
    created_at: datetime = strawberry.field(description="When.")
    hidden: bool = strawberry.field(description="Hidden by an admin.")

    @classmethod
    def from_model(cls, r: m.Review) -> Review:
        return cls(
            id=r.id, rating=r.rating, text=r.text, created_at=r.created_at, hidden=r.hidden_at is not None
        )

    @strawberry.field(description="Whether hideReview would succeed for the viewer now: admins, signed in.")
    def viewer_can_hide(self, info: Info) -> bool:
        return account_access.is_admin(info.context.viewer)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Review | None]:
        return await nodes(info.context.viewer, node_ids, account_access.reviews, cls.from_model)


@strawberry.type(description="A page of Vault grants, newest first.")
class VaultGrantConnection(relay.Connection[VaultGrant], TotalCount):
    pass


@strawberry.type(description="A page of reviews, newest first.")
class ReviewConnection(relay.Connection[Review], TotalCount):
    pass


@strawberry.type(description="An advocate's average rating.")
class Rating:
    average: float | None = strawberry.field(description="The mean of visible reviews; null with none.")
    count: int = strawberry.field(description="How many visible reviews.")


# --- inputs and payloads --------------------------------------------------------------------


@strawberry.input(description="A piece of evidence about one child.")
class AddEvidenceInput:
    child_id: relay.GlobalID = strawberry.field(description="One of your children.")
    title: str = strawberry.field(description="1–200 characters.")
    category: EvidenceCategory = strawberry.field(description="What kind of document.")
    date: date = strawberry.field(description="The document's date; not in the future.")
    description: str = strawberry.field(default="", description="Up to 20,000 characters.")


@strawberry.type(description="The result of an evidence change.")
class EvidencePayload:
    evidence: Evidence | None = strawberry.field(description="The evidence.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="The evidence to delete.")
class DeleteEvidenceInput:
    evidence_id: relay.GlobalID = strawberry.field(description="Your evidence.")


@strawberry.input(description="A dated entry in a child's timeline.")
class AddTimelineEntryInput:
    child_id: relay.GlobalID = strawberry.field(description="One of your children.")
    date: date = strawberry.field(description="When; up to a year ahead for planned meetings.")
    title: str = strawberry.field(description="1–200 characters.")
    note: str = strawberry.field(default="", description="Up to 5,000 characters.")


@strawberry.type(description="The result of addTimelineEntry.")
class TimelineEntryPayload:
    timeline_entry: TimelineEntry | None = strawberry.field(description="The entry.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="A child's EHCP case details; leave out what stays.")
class UpdateEhcpCaseInput:
    child_id: relay.GlobalID = strawberry.field(description="One of your children.")
    stage: EhcpStage | None = strawberry.field(default=None, description="The stage.")
    local_authority: str | None = strawberry.field(default=None, description="Up to 100 characters.")
    request_date: date | None = strawberry.field(default=None, description="When assessment was requested.")


@strawberry.type(description="The result of updateEhcpCase.")
class EhcpCasePayload:
    ehcp_case: EhcpCase | None = strawberry.field(description="The case as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="Share parts of the Vault with the advocate of an active relationship.")
class GrantVaultAccessInput:
    relationship_id: relay.GlobalID = strawberry.field(description="An active relationship of yours.")
    scopes: list[VaultScope] = strawberry.field(description="At least one.")
    child_ids: list[relay.GlobalID] = strawberry.field(description="At least one of your children.")
    expires_at: datetime | None = strawberry.field(default=None, description="When it ends by itself.")


@strawberry.input(description="The grant to revoke.")
class RevokeVaultAccessInput:
    grant_id: relay.GlobalID = strawberry.field(description="One of your grants.")


@strawberry.type(description="The result of a grant change.")
class VaultGrantPayload:
    vault_grant: VaultGrant | None = strawberry.field(description="The grant.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="End a support relationship.")
class EndSupportRelationshipInput:
    relationship_id: relay.GlobalID = strawberry.field(description="An active relationship of yours.")
    reason: CloseReason = strawberry.field(description="Why it ends.")
    note: str = strawberry.field(default="", description='e.g. "Case resolved, EHCP finalised"; up to 1,000.')


@strawberry.type(description="The result of endSupportRelationship or leaveReview.")
class SupportRelationshipPayload:
    support_relationship: SupportRelationship | None = strawberry.field(description="It, now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="A review of a closed relationship.")
class LeaveReviewInput:
    relationship_id: relay.GlobalID = strawberry.field(description="A closed relationship of yours.")
    rating: int = strawberry.field(description="1 to 5.")
    text: str = strawberry.field(default="", description="Up to 2,000 characters.")


@strawberry.type(description="The result of leaveReview or hideReview.")
class ReviewPayload:
    review: Review | None = strawberry.field(description="The review.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="The review to hide.")
class HideReviewInput:
    review_id: relay.GlobalID = strawberry.field(description="Any review.")


@strawberry.type(description="An advocate's access to part of a family's Vault ended.")
class AccessRevokedEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume from here.")
    occurred_at: datetime = strawberry.field(description="When it ended.")
    reason: AccessEndReason = strawberry.field(description="Why.")
    vault_grant: VaultGrant = strawberry.field(description="The grant that ended.")
    family: Family = strawberry.field(description="Whose Vault it was.")


def _child_ids(ids: list[relay.GlobalID]) -> list[int]:
    return [decode_id(i, "Child", "childIds") for i in ids]


@strawberry.type
class VaultQuery:
    @strawberry.field(
        description="A family's Vault: your own, or one a live grant shares with you.",
        permission_classes=[IsSignedIn, needs(Scope.VAULT_READ)],
    )
    async def vault(
        self,
        info: Info,
        family_id: Annotated[
            relay.GlobalID,
            strawberry.argument(
                description="The family whose Vault to read (your own, or one shared with you)."
            ),
        ],
    ) -> Vault | None:
        row_id = id_of(family_id, "Family")
        if row_id is None:
            return None
        acc = await access.access(info.context.services, info.context.viewer, row_id)
        return Vault(family_id=row_id) if acc is not None else None

    @strawberry.field(
        description="The viewer's support relationships, newest first.",
        permission_classes=[IsSignedIn, needs(Scope.REQUESTS_READ)],
    )
    async def support_relationships(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> SupportRelationshipConnection:
        page = await relationships.list_for(info.context.viewer, None, window(first, after, last, before))
        return to_connection(SupportRelationshipConnection, page, SupportRelationship.from_model)  # type: ignore[return-value]


@strawberry.type(description="A page of support relationships, newest first.")
class SupportRelationshipConnection(relay.Connection[SupportRelationship], TotalCount):
    pass


@strawberry.type
class VaultMutation:
    @strawberry.mutation(description="Add evidence to the Vault.", permission_classes=[IsFamily])
    async def add_evidence(self, info: Info, input: Annotated[AddEvidenceInput, INPUT]) -> EvidencePayload:
        async def run() -> m.Evidence:
            return await vault.add_evidence(
                info.context.services,
                info.context.viewer,
                child_id=decode_id(input.child_id, "Child", "childId"),
                title=input.title,
                category=input.category,
                on=input.date,
                description=input.description,
            )

        row, errs = await attempt(run())
        return EvidencePayload(evidence=Evidence.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Delete evidence from the Vault.", permission_classes=[IsFamily])
    async def delete_evidence(
        self, info: Info, input: Annotated[DeleteEvidenceInput, INPUT]
    ) -> EvidencePayload:
        async def run() -> m.Evidence:
            return await vault.delete_evidence(
                info.context.services,
                info.context.viewer,
                decode_id(input.evidence_id, "Evidence", "evidenceId"),
            )

        row, errs = await attempt(run())
        return EvidencePayload(evidence=Evidence.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Add a timeline entry.", permission_classes=[IsFamily])
    async def add_timeline_entry(
        self, info: Info, input: Annotated[AddTimelineEntryInput, INPUT]
    ) -> TimelineEntryPayload:
        async def run() -> m.TimelineEntry:
            return await vault.add_timeline_entry(
                info.context.services,
                info.context.viewer,
                child_id=decode_id(input.child_id, "Child", "childId"),
                on=input.date,
                title=input.title,
                note=input.note,
            )

        row, errs = await attempt(run())
        return TimelineEntryPayload(
            timeline_entry=TimelineEntry.from_model(row) if row else None, user_errors=errs
        )

    @strawberry.mutation(description="Set a child's EHCP case details.", permission_classes=[IsFamily])
    async def update_ehcp_case(
        self, info: Info, input: Annotated[UpdateEhcpCaseInput, INPUT]
    ) -> EhcpCasePayload:
        async def run() -> m.EhcpCase:
            return await vault.update_ehcp_case(
                info.context.services,
                info.context.viewer,
                child_id=decode_id(input.child_id, "Child", "childId"),
                stage=input.stage,
                local_authority=input.local_authority,
                request_date=input.request_date,
            )

        row, errs = await attempt(run())
        return EhcpCasePayload(ehcp_case=EhcpCase.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description="Share parts of your Vault with the advocate of an active relationship.",
        permission_classes=[IsFamily],
    )
    async def grant_vault_access(
        self, info: Info, input: Annotated[GrantVaultAccessInput, INPUT]
    ) -> VaultGrantPayload:
        async def run() -> m.VaultGrant:
            return await grants.grant(
                info.context.services,
                info.context.viewer,
                relationship_id=decode_id(input.relationship_id, "SupportRelationship", "relationshipId"),
                scopes=list(input.scopes),
                child_ids=_child_ids(input.child_ids),
                expires_at=input.expires_at,
            )

        row, errs = await attempt(run())
        return VaultGrantPayload(vault_grant=VaultGrant.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Revoke a grant at once.", permission_classes=[IsFamily])
    async def revoke_vault_access(
        self, info: Info, input: Annotated[RevokeVaultAccessInput, INPUT]
    ) -> VaultGrantPayload:
        async def run() -> m.VaultGrant:
            return await grants.revoke(
                info.context.services, info.context.viewer, decode_id(input.grant_id, "VaultGrant", "grantId")
            )

        row, errs = await attempt(run())
        return VaultGrantPayload(vault_grant=VaultGrant.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description="End a support relationship: every grant under it is revoked at once.",
        permission_classes=[IsSignedIn, needs(Scope.REQUESTS_WRITE)],
    )
    async def end_support_relationship(
        self, info: Info, input: Annotated[EndSupportRelationshipInput, INPUT]
    ) -> SupportRelationshipPayload:
        async def run() -> RelationshipRow:
            return await relationships.end(
                info.context.services,
                info.context.viewer,
                decode_id(input.relationship_id, "SupportRelationship", "relationshipId"),
                input.reason,
                input.note,
            )

        row, errs = await attempt(run())
        return SupportRelationshipPayload(
            support_relationship=SupportRelationship.from_model(row) if row else None, user_errors=errs
        )

    @strawberry.mutation(description="Review a closed relationship (once).", permission_classes=[IsFamily])
    async def leave_review(self, info: Info, input: Annotated[LeaveReviewInput, INPUT]) -> ReviewPayload:
        async def run() -> m.Review:
            return await relationships.leave_review(
                info.context.services,
                info.context.viewer,
                decode_id(input.relationship_id, "SupportRelationship", "relationshipId"),
                input.rating,
                input.text,
            )

        row, errs = await attempt(run())
        return ReviewPayload(review=Review.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="Hide a review (admins).", permission_classes=[IsAdmin])
    async def hide_review(self, info: Info, input: Annotated[HideReviewInput, INPUT]) -> ReviewPayload:
        async def run() -> m.Review:
            return await relationships.hide_review(
                info.context.services, info.context.viewer, decode_id(input.review_id, "Review", "reviewId")
            )

        row, errs = await attempt(run())
        return ReviewPayload(review=Review.from_model(row) if row else None, user_errors=errs)


@strawberry.type
class VaultSubscription:
    @strawberry.subscription(
        description="Each of the advocate's grants that ends, live, with the reason.",
        permission_classes=[IsAdvocate, needs(Scope.EVENTS_SUBSCRIBE)],
    )
    async def access_revoked(
        self, info: Info, after: Since = None
    ) -> AsyncGenerator[AccessRevokedEvent, None]:
        viewer = core.require_viewer(info.context.viewer)

        async def build(envelope: Envelope) -> AccessRevokedEvent | None:
            grant = await _LIVE_GRANTS.get(viewer, envelope.payload["grantId"])
            family = await info.context.loaders.family.load(grant.family_id) if grant else None
            if grant is None or family is None:
                return None
            return AccessRevokedEvent(
                cursor=envelope.cursor,
                occurred_at=envelope.occurred_at,
                reason=m.AccessEndReason(envelope.payload["reason"]),
                vault_grant=VaultGrant.from_model(grant),
                family=Family.from_model(family),
            )

        async for event in events_for(
            info, viewer, user_channel(viewer.user_id), after, {grants.ACCESS_REVOKED}, build
        ):
            yield event


async def access_log_connection(info: Info, family_id: int, window: Window) -> VaultAccessLogConnection:
    page = await vault.access_log(info.context.viewer, family_id, window)
    return to_connection(VaultAccessLogConnection, page, VaultAccessLogEntry.from_model)  # type: ignore[return-value]
