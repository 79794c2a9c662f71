"""Support requests, relationships and their shared message thread."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.permission import BasePermission
from strawberry.types.nodes import SelectedField

from models import families as m_families
from models import support as m
from models.accounts import ApiScope as Scope
from resolvers import messages, support_requests
from resolvers.access import accounts as account_access
from resolvers.access import core
from resolvers.access import relationships as relationship_access
from resolvers.access import requests as request_access
from resolvers.access import tickets as ticket_access
from resolvers.access import vault as vault_access
from resolvers.errors import InvalidInput
from resolvers.events import Envelope, thread_channel, user_channel
from resolvers.pagination import Window, page_key, window
from schema.accounts import User
from schema.advocates import Advocate
from schema.arguments import INPUT, After, Before, First, Last, Since
from schema.connections import TotalCount, decode_id, id_of, nodes, selected_under, to_connection, window_of
from schema.context import Info
from schema.enums import (
    CloseReason,
    DeclineReason,
    EhcpStage,
    RelationshipStatus,
    RequestStatus,
    SuggestionKind,
    SupportType,
)
from schema.errors import UserError, attempt
from schema.families import Child, Family
from schema.loading import now_or_later
from schema.permissions import IsAdvocate, IsFamily, IsSignedIn, needs
from schema.streams import LiveRows, events_for, once, stream

# The rows live events name, loaded together for every subscriber asking at once.
_LIVE_REQUESTS = LiveRows(m.SupportRequest, request_access.may_read)

if TYPE_CHECKING:
    from schema.tickets import Ticket
    from schema.vault import Review, VaultGrant, VaultGrantConnection

THREAD_CLOSED = "thread.closed"
# A thread's page size when the client gives none.
MESSAGES_FIRST = 50


def _child(info: Info, child_id: int | None, family_id: int) -> Child | None:
    """The child's record, to whoever may read it (`access.vault`): its own family, with VAULT_READ.
    Advocates see what the request says of the child, or what a grant shares through `vault`.
    Whether the viewer owns the family's Vault is known before the row is loaded. None once the
    family has deleted the child."""
    viewer = info.context.viewer
    if child_id is None or not vault_access.owns(viewer, family_id):
        return None

    def build(row: m_families.Child | None) -> Child | None:
        return Child.from_model(row) if row and vault_access.may_read_record(viewer, row) else None

    return now_or_later(info.context.loaders.child, child_id, build)


@strawberry.type(description="A message in the thread a request and its relationship share.")
class Message(relay.Node):
    id: relay.NodeID[int]
    body: str = strawberry.field(description="The text.")
    created_at: datetime = strawberry.field(description="When it was sent.")
    author_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, msg: m.Message) -> Message:
        return cls(id=msg.id, body=msg.body, created_at=msg.created_at, author_id=msg.author_id)

    @strawberry.field(description="Who wrote it.")
    def author(self, info: Info) -> User | None:
        return now_or_later(
            info.context.loaders.user, self.author_id, lambda user: User.from_model(user) if user else None
        )

    @strawberry.field(description="Whether the viewer wrote it.")
    def from_viewer(self, info: Info) -> bool:
        return account_access.is_self(info.context.viewer, self.author_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Message | None]:
        return await nodes(info.context.viewer, node_ids, relationship_access.messages, cls.from_model)


@strawberry.type(description="A page of messages, oldest first.")
class MessageConnection(relay.Connection[Message], TotalCount):
    pass


def _thread_messages(
    info: Info, row: m.SupportRequest | m.SupportRelationship, asked: Window
) -> MessageConnection:
    """A page of the thread a request or relationship carries, to its parties; else an empty page."""
    if not relationship_access.may_read_thread_of(info.context.viewer, row):
        return MessageConnection(
            edges=[],
            page_info=relay.PageInfo(
                has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None
            ),
        )
    loaders = info.context.loaders
    thread_id = row.thread_id

    def total() -> Awaitable[int]:
        return loaders.counts.load((m.Message, "thread_id", thread_id))

    return now_or_later(
        loaders.messages,
        page_key("Message", thread_id, asked),
        lambda page: to_connection(MessageConnection, page, Message.from_model, total),  # type: ignore[return-value]
    )


def _may_message(info: Info, row: m.SupportRequest | m.SupportRelationship) -> bool:
    """`viewerCanMessage`: the thread's parties while it is open, read through the thread loader."""
    viewer = info.context.viewer
    if not relationship_access.may_read_thread_of(viewer, row):
        return False
    return now_or_later(
        info.context.loaders.thread,
        row.thread_id,
        lambda thread: thread is not None and relationship_access.may_post(viewer, thread),
    )


def thread_loads(
    info: Info, rows: Sequence[m.SupportRequest | m.SupportRelationship], fields: Sequence[SelectedField]
) -> list[tuple[DataLoader[Any, Any], list[Any]]]:
    """The loads that `child` and `messages`, selected under `fields` of these rows, will make: for
    a list resolver to make them with its page (`schema.loading.prefetch`)."""
    viewer = info.context.viewer
    under = selected_under(fields)
    loads: list[tuple[DataLoader[Any, Any], list[Any]]] = []
    if "child" in under:
        children = [
            row.child_id
            for row in rows
            if row.child_id is not None and vault_access.owns(viewer, row.family_id)
        ]
        loads.append((info.context.loaders.child, children))
    for field in under.get("messages", []):
        try:
            asked = window_of(field, MESSAGES_FIRST)
            keys = [
                page_key("Message", row.thread_id, asked)
                for row in rows
                if relationship_access.may_read_thread_of(viewer, row)
            ]
        except InvalidInput:
            continue  # a bad page size or cursor: the field itself says so, once per row
        loads.append((info.context.loaders.messages, keys))
    return loads


@strawberry.type(description="Somewhere else a declined family might turn.")
class SuggestedAlternative:
    kind: SuggestionKind = strawberry.field(
        description="Another advocate, IPSEA, SENDIASS, or another organisation."
    )
    name: str = strawberry.field(description="Who.")
    note: str = strawberry.field(description="Why, or how to reach them.")
    advocate_id: strawberry.Private[int | None]

    @strawberry.field(description="The advocate suggested, when the suggestion is an advocate.")
    async def advocate(self, info: Info) -> Advocate | None:
        if self.advocate_id is None:
            return None
        found = await Advocate.resolve_nodes(info=info, node_ids=[str(self.advocate_id)])
        return found[0]


@strawberry.type(description="A family's request to one advocate for support with one child.")
class SupportRequest(relay.Node):
    id: relay.NodeID[int]
    status: RequestStatus = strawberry.field(description="Where the request stands.")
    message: str = strawberry.field(description="What the family wrote.")
    support_types: list[SupportType] = strawberry.field(description="The kinds of support sought.")
    child_display_name: str = strawberry.field(description="The child's name, as when sent.")
    child_age_years: int = strawberry.field(description="The child's age when the request was sent.")
    ehcp_stage: EhcpStage = strawberry.field(description="The EHCP stage when the request was sent.")
    created_at: datetime = strawberry.field(description="When it was sent.")
    respond_by: datetime = strawberry.field(description="When the advocate should answer by (SLA).")
    expires_at: datetime = strawberry.field(description="When it expires if nobody answers.")
    decline_reason: DeclineReason | None = strawberry.field(description="Why it was declined.")
    decline_message: str | None = strawberry.field(description="The advocate's note when declining.")
    _row: strawberry.Private[m.SupportRequest]

    @classmethod
    def from_model(cls, r: m.SupportRequest) -> SupportRequest:
        return cls(
            id=r.id,
            status=r.status,
            message=r.message,
            support_types=[m.SupportType(t) for t in r.support_types],
            child_display_name=r.child_display_name,
            child_age_years=r.child_age_years,
            ehcp_stage=r.ehcp_stage,
            created_at=r.created_at,
            respond_by=r.respond_by,
            expires_at=r.expires_at,
            decline_reason=r.decline_reason,
            decline_message=r.decline_message or None,
            _row=r,
        )

    @strawberry.field(description="The family that sent it.")
    def family(self, info: Info) -> Family | None:
        return now_or_later(
            info.context.loaders.family,
            self._row.family_id,
            lambda row: Family.from_model(row) if row else None,
        )

    @strawberry.field(
        description="The child it is about; only the family sees the child's record (API tokens: VAULT_READ)."
    )
    def child(self, info: Info) -> Child | None:
        return _child(info, self._row.child_id, self._row.family_id)

    @strawberry.field(description="The advocate it was sent to.")
    def advocate(self, info: Info) -> Advocate | None:
        return now_or_later(
            info.context.loaders.advocate,
            self._row.advocate_id,
            lambda row: Advocate.from_model(row) if row else None,
        )

    @strawberry.field(
        description=(
            "Whether acceptSupportRequest would succeed for the viewer now: its advocate, while it "
            "is open, with room in the advocate's capacity."
        )
    )
    def viewer_can_accept(self, info: Info) -> bool:
        if not request_access.may_answer(info.context.viewer, self._row, info.context.services.clock.now()):
            return False
        return now_or_later(
            info.context.loaders.advocate,
            self._row.advocate_id,
            lambda advocate: advocate is not None and support_requests.has_room(advocate),
        )

    @strawberry.field(
        description=(
            "Whether declineSupportRequest would succeed for the viewer now: its advocate, while open."
        )
    )
    def viewer_can_decline(self, info: Info) -> bool:
        return request_access.may_answer(info.context.viewer, self._row, info.context.services.clock.now())

    @strawberry.field(
        description=(
            "Whether requestMoreInformation would succeed for the viewer now: its advocate, while open."
        )
    )
    def viewer_can_request_information(self, info: Info) -> bool:
        return request_access.may_answer(info.context.viewer, self._row, info.context.services.clock.now())

    @strawberry.field(
        description="Whether requestMoreInformation would succeed for the viewer now.",
        deprecation_reason="Use `viewerCanRequestInformation`, the same answer under its documented name.",
    )
    def viewer_can_request_more_information(self, info: Info) -> bool:
        return request_access.may_answer(info.context.viewer, self._row, info.context.services.clock.now())

    @strawberry.field(
        description=(
            "Whether sendMessage to this request's thread would succeed for the viewer now: either "
            "party, while the conversation is open."
        )
    )
    def viewer_can_message(self, info: Info) -> bool:
        return _may_message(info, self._row)

    @strawberry.field(
        description=(
            "Whether withdrawSupportRequest would succeed for the viewer now: the family that sent "
            "it, while open."
        )
    )
    def viewer_can_withdraw(self, info: Info) -> bool:
        return request_access.may_withdraw(info.context.viewer, self._row, info.context.services.clock.now())

    @strawberry.field(description="Where else the advocate suggested the family turn, on declining.")
    def suggested_alternatives(self) -> list[SuggestedAlternative]:
        return [
            SuggestedAlternative(
                kind=m.SuggestionKind(s["kind"]),
                name=s.get("name", ""),
                note=s.get("note", ""),
                advocate_id=int(s["advocateId"]) if s.get("advocateId") else None,
            )
            for s in self._row.suggested_alternatives
        ]

    @strawberry.field(description="The relationship it became, once accepted.")
    async def relationship(self, info: Info) -> SupportRelationship | None:
        row = await info.context.loaders.relationship_by_request.load(self._row.id)
        seen = row is not None and relationship_access.may_read(info.context.viewer, row)
        return SupportRelationship.from_model(row) if row and seen else None

    @strawberry.field(description="The thread shared with the relationship, oldest first.")
    def messages(
        self,
        info: Info,
        first: First = MESSAGES_FIRST,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> MessageConnection:
        return _thread_messages(info, self._row, window(first, after, last, before, default=MESSAGES_FIRST))

    @strawberry.field(
        description="Your ticket for it, for the advocate it was sent to; null for anyone else."
    )
    async def ticket(self, info: Info) -> Annotated[Ticket, strawberry.lazy("schema.tickets")] | None:
        from schema.tickets import Ticket as TicketType

        row = await info.context.loaders.ticket_by_request.load(self.id)
        seen = row is not None and ticket_access.may_read(info.context.viewer, row)
        return TicketType.from_model(row) if row and seen else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[SupportRequest | None]:
        return await nodes(info.context.viewer, node_ids, request_access.requests, cls.from_model)


@strawberry.type(description="An advocate supporting a family with one child (an advocate connection).")
class SupportRelationship(relay.Node):
    id: relay.NodeID[int]
    status: RelationshipStatus = strawberry.field(description="ACTIVE or CLOSED.")
    opened_at: datetime = strawberry.field(description="When the request was accepted.")
    closed_at: datetime | None = strawberry.field(description="When it ended.")
    close_reason: CloseReason | None = strawberry.field(description="Why it ended.")
    close_note: str | None = strawberry.field(description="The note left when it ended.")
    _row: strawberry.Private[m.SupportRelationship]

    @classmethod
    def from_model(cls, r: m.SupportRelationship) -> SupportRelationship:
        return cls(
            id=r.id,
            status=r.status,
            opened_at=r.opened_at,
            closed_at=r.closed_at,
            close_reason=r.close_reason,
            close_note=r.close_note or None,
            _row=r,
        )

    @strawberry.field(description="The family supported.")
    def family(self, info: Info) -> Family | None:
        return now_or_later(
            info.context.loaders.family,
            self._row.family_id,
            lambda row: Family.from_model(row) if row else None,
        )

    @strawberry.field(description="The advocate.")
    def advocate(self, info: Info) -> Advocate | None:
        return now_or_later(
            info.context.loaders.advocate,
            self._row.advocate_id,
            lambda row: Advocate.from_model(row) if row else None,
        )

    @strawberry.field(description="The request it came from.")
    def request(self, info: Info) -> SupportRequest | None:
        viewer = info.context.viewer

        def build(row: m.SupportRequest | None) -> SupportRequest | None:
            return SupportRequest.from_model(row) if row and request_access.may_read(viewer, row) else None

        return now_or_later(info.context.loaders.request, self._row.request_id, build)

    @strawberry.field(description="The thread, oldest first; read-only once closed.")
    def messages(
        self,
        info: Info,
        first: First = MESSAGES_FIRST,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> MessageConnection:
        return _thread_messages(info, self._row, window(first, after, last, before, default=MESSAGES_FIRST))

    @strawberry.field(
        description="The child supported; only the family sees the child's record (API tokens: VAULT_READ)."
    )
    def child(self, info: Info) -> Child | None:
        return _child(info, self._row.child_id, self._row.family_id)

    @strawberry.field(
        description=(
            "Whether endSupportRelationship would succeed for the viewer now: either party, while it "
            "is active."
        )
    )
    def viewer_can_end(self, info: Info) -> bool:
        return relationship_access.may_end(info.context.viewer, self._row)

    @strawberry.field(
        description=(
            "Whether sendMessage to this relationship's thread would succeed for the viewer now: "
            "either party, while the relationship is active."
        )
    )
    def viewer_can_message(self, info: Info) -> bool:
        return _may_message(info, self._row)

    @strawberry.field(
        description=(
            "Whether grantVaultAccess would be allowed for the viewer now: the family, its email "
            "address confirmed, while the relationship is active (the grant still needs its scopes "
            "and children)."
        )
    )
    def viewer_can_grant(self, info: Info) -> bool:
        viewer = info.context.viewer
        if viewer is None or not vault_access.may_grant(viewer, self._row, email_verified=True):
            return False
        return now_or_later(
            info.context.loaders.user,
            viewer.user_id,
            lambda user: (
                user is not None
                and vault_access.may_grant(
                    viewer, self._row, email_verified=user.email_verified_at is not None
                )
            ),
        )

    @strawberry.field(
        description=(
            "Whether leaveReview would be allowed for the viewer now: the family, once the "
            "relationship has ended, if it has not reviewed it yet."
        )
    )
    async def viewer_can_review(self, info: Info) -> bool:
        from resolvers import relationships

        viewer = info.context.viewer
        if not relationship_access.may_review(viewer, self._row, reviewed=False):
            return False
        reviewed = await relationships.review_of(self._row) is not None
        return relationship_access.may_review(viewer, self._row, reviewed=reviewed)

    @strawberry.field(description="Who ended it.")
    async def closed_by(self, info: Info) -> User | None:
        if self._row.closed_by_id is None:
            return None
        user = await info.context.loaders.user.load(self._row.closed_by_id)
        return User.from_model(user) if user else None

    @strawberry.field(description="The Vault grants made under it, newest first, with their status.")
    async def grants(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[VaultGrantConnection, strawberry.lazy("schema.vault")]:
        from resolvers import grants
        from schema.vault import VaultGrant as GrantType
        from schema.vault import VaultGrantConnection as Conn

        page = await grants.relationship_page(
            info.context.viewer, self._row, window(first, after, last, before)
        )
        return to_connection(Conn, page, GrantType.from_model)  # type: ignore[return-value]

    @strawberry.field(
        description="The Vault grants made under it, newest first, with their status.",
        deprecation_reason="Use `grants`, a connection: this list grows with every grant ever made.",
    )
    async def vault_grants(self, info: Info) -> list[Annotated[VaultGrant, strawberry.lazy("schema.vault")]]:
        from resolvers import grants
        from schema.vault import VaultGrant as GrantType

        return [
            GrantType.from_model(g) for g in await grants.for_relationship(info.context.viewer, self._row)
        ]

    @strawberry.field(description="The family's review, once left.")
    async def review(self, info: Info) -> Annotated[Review, strawberry.lazy("schema.vault")] | None:
        from resolvers import relationships
        from schema.vault import Review as ReviewType

        row = await relationships.review_of(self._row)
        seen = row is not None and account_access.may_see_review(info.context.viewer, row)
        return ReviewType.from_model(row) if row and seen else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[SupportRelationship | None]:
        return await nodes(info.context.viewer, node_ids, relationship_access.relationships, cls.from_model)


@strawberry.type(description="A page of support requests, newest first.")
class SupportRequestConnection(relay.Connection[SupportRequest], TotalCount):
    pass


@strawberry.input(description="Which support requests to list.")
class SupportRequestFilter:
    status: list[RequestStatus] | None = strawberry.field(default=None, description="Any of these.")


@strawberry.input(description="A request for support, to one advocate about one child.")
class SendSupportRequestInput:
    advocate_id: relay.GlobalID = strawberry.field(description="A verified advocate taking requests.")
    child_id: relay.GlobalID = strawberry.field(description="One of your children.")
    message: str = strawberry.field(description="Your situation, in 1–5,000 characters.")
    support_types: list[SupportType] = strawberry.field(description="At least one.")


@strawberry.input(description="A message to the family asking for more before deciding.")
class RequestMoreInformationInput:
    request_id: relay.GlobalID = strawberry.field(description="An open request to you.")
    message: str = strawberry.field(description="Your questions, in 1–5,000 characters.")


@strawberry.input(description="Accept a request, opening the relationship.")
class AcceptSupportRequestInput:
    request_id: relay.GlobalID = strawberry.field(description="An open request to you.")
    message: str | None = strawberry.field(default=None, description="A first message to the family.")


@strawberry.input(description="Another place to turn, when declining.")
class SuggestedAlternativeInput:
    kind: SuggestionKind = strawberry.field(description="What kind of alternative.")
    advocate_id: relay.GlobalID | None = strawberry.field(
        default=None, description="For ADVOCATE: a verified advocate."
    )
    name: str | None = strawberry.field(default=None, description="For organisations: its name.")
    note: str | None = strawberry.field(default=None, description="Up to 500 characters.")


@strawberry.input(description="Decline a request, with a reason and where else to turn.")
class DeclineSupportRequestInput:
    request_id: relay.GlobalID = strawberry.field(description="An open request to you.")
    reason: DeclineReason = strawberry.field(description="Why.")
    message: str | None = strawberry.field(default=None, description="A note to the family.")
    suggested_alternatives: list[SuggestedAlternativeInput] = strawberry.field(
        default_factory=list, description="Up to 5."
    )


@strawberry.input(description="Take back a request that has not been decided.")
class WithdrawSupportRequestInput:
    request_id: relay.GlobalID = strawberry.field(description="One of your open requests.")


@strawberry.type(description="The result of a change to a support request.")
class SupportRequestPayload:
    support_request: SupportRequest | None = strawberry.field(description="The request as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.input(description="A message in a request's or relationship's thread.")
class SendMessageInput:
    request_id: relay.GlobalID | None = strawberry.field(default=None, description="The request…")
    relationship_id: relay.GlobalID | None = strawberry.field(
        default=None, description="…or the relationship."
    )
    body: str = strawberry.field(description="1–5,000 characters.")


@strawberry.type(description="The result of sendMessage.")
class SendMessagePayload:
    message: Message | None = strawberry.field(description="The message sent.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was sent, if so.")


def _request_payload(row: m.SupportRequest | None, errs: list[UserError]) -> SupportRequestPayload:
    return SupportRequestPayload(
        support_request=SupportRequest.from_model(row) if row else None, user_errors=errs
    )


@strawberry.type
class SupportQuery:
    @strawberry.field(
        description="A family's sent requests or an advocate's received ones, newest first.",
        permission_classes=[IsSignedIn, needs(Scope.REQUESTS_READ)],
    )
    async def support_requests(
        self,
        info: Info,
        filter: Annotated[
            SupportRequestFilter | None,
            strawberry.argument(description="Narrow the list; every field is optional."),
        ] = None,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> SupportRequestConnection:
        status = filter.status if filter else None
        page = await support_requests.list_for(
            info.context.viewer, status, window(first, after, last, before)
        )
        return to_connection(SupportRequestConnection, page, SupportRequest.from_model)  # type: ignore[return-value]


@strawberry.type
class SupportMutation:
    @strawberry.mutation(
        description="Send a support request to an advocate.",
        permission_classes=[IsFamily, needs(Scope.REQUESTS_WRITE)],
    )
    async def send_support_request(
        self, info: Info, input: Annotated[SendSupportRequestInput, INPUT]
    ) -> SupportRequestPayload:
        async def run() -> m.SupportRequest:
            return await support_requests.send(
                info.context.services,
                info.context.viewer,
                advocate_id=decode_id(input.advocate_id, "Advocate", "advocateId"),
                child_id=decode_id(input.child_id, "Child", "childId"),
                message=input.message,
                support_types=list(input.support_types),
            )

        return _request_payload(*await attempt(run()))

    @strawberry.mutation(
        description="Ask the family for more information; no commitment.",
        permission_classes=[IsAdvocate, needs(Scope.REQUESTS_WRITE)],
    )
    async def request_more_information(
        self, info: Info, input: Annotated[RequestMoreInformationInput, INPUT]
    ) -> SupportRequestPayload:
        async def run() -> m.SupportRequest:
            return await support_requests.request_more_information(
                info.context.services,
                info.context.viewer,
                decode_id(input.request_id, "SupportRequest", "requestId"),
                input.message,
            )

        return _request_payload(*await attempt(run()))

    @strawberry.mutation(
        description="Accept a request: the relationship and its thread open, within capacity.",
        permission_classes=[IsAdvocate, needs(Scope.REQUESTS_WRITE)],
    )
    async def accept_support_request(
        self, info: Info, input: Annotated[AcceptSupportRequestInput, INPUT]
    ) -> SupportRequestPayload:
        async def run() -> m.SupportRequest:
            return await support_requests.accept(
                info.context.services,
                info.context.viewer,
                decode_id(input.request_id, "SupportRequest", "requestId"),
                input.message,
            )

        return _request_payload(*await attempt(run()))

    @strawberry.mutation(
        description="Decline a request with a reason and suggestions.",
        permission_classes=[IsAdvocate, needs(Scope.REQUESTS_WRITE)],
    )
    async def decline_support_request(
        self, info: Info, input: Annotated[DeclineSupportRequestInput, INPUT]
    ) -> SupportRequestPayload:
        async def run() -> m.SupportRequest:
            suggestions = [
                support_requests.Suggestion(
                    kind=s.kind,
                    advocate_id=decode_id(s.advocate_id, "Advocate", "suggestedAlternatives")
                    if s.advocate_id is not None
                    else None,
                    name=s.name,
                    note=s.note,
                )
                for s in input.suggested_alternatives
            ]
            return await support_requests.decline(
                info.context.services,
                info.context.viewer,
                decode_id(input.request_id, "SupportRequest", "requestId"),
                reason=input.reason,
                message=input.message,
                suggestions=suggestions,
            )

        return _request_payload(*await attempt(run()))

    @strawberry.mutation(
        description="Withdraw one of your open requests.",
        permission_classes=[IsFamily, needs(Scope.REQUESTS_WRITE)],
    )
    async def withdraw_support_request(
        self, info: Info, input: Annotated[WithdrawSupportRequestInput, INPUT]
    ) -> SupportRequestPayload:
        async def run() -> m.SupportRequest:
            return await support_requests.withdraw(
                info.context.services,
                info.context.viewer,
                decode_id(input.request_id, "SupportRequest", "requestId"),
            )

        return _request_payload(*await attempt(run()))

    @strawberry.mutation(
        description="Post to a request's or relationship's thread while it is open.",
        permission_classes=[IsSignedIn, needs(Scope.REQUESTS_WRITE)],
    )
    async def send_message(self, info: Info, input: Annotated[SendMessageInput, INPUT]) -> SendMessagePayload:
        async def run() -> m.Message:
            return await messages.send(
                info.context.services,
                info.context.viewer,
                request_id=decode_id(input.request_id, "SupportRequest", "requestId")
                if input.request_id is not None
                else None,
                relationship_id=decode_id(input.relationship_id, "SupportRelationship", "relationshipId")
                if input.relationship_id is not None
                else None,
                body=input.body,
            )

        row, errs = await attempt(run())
        return SendMessagePayload(message=Message.from_model(row) if row else None, user_errors=errs)


@strawberry.type(description="A support request as it arrives or changes, live.")
class SupportRequestEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume from here.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    support_request: SupportRequest = strawberry.field(description="The request as it is now.")


@strawberry.type(description="A message as it is posted, live.")
class MessageAddedEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume from here.")
    occurred_at: datetime = strawberry.field(description="When it was posted.")
    message: Message = strawberry.field(description="The message.")


_LIVE_SCOPES: list[type[BasePermission]] = [needs(Scope.EVENTS_SUBSCRIBE), needs(Scope.REQUESTS_READ)]


async def _request_events(
    info: Info, after: str | None, kinds: set[str]
) -> AsyncGenerator[SupportRequestEvent, None]:
    viewer = core.require_viewer(info.context.viewer)

    async def build(envelope: Envelope) -> SupportRequestEvent | None:
        row = await _LIVE_REQUESTS.get(viewer, envelope.payload["requestId"])
        if row is None:
            return None
        return SupportRequestEvent(
            cursor=envelope.cursor,
            occurred_at=envelope.occurred_at,
            support_request=SupportRequest.from_model(row),
        )

    async for event in events_for(info, viewer, user_channel(viewer.user_id), after, kinds, build):
        yield event


@strawberry.type
class SupportSubscription:
    @strawberry.subscription(
        description="Each new request sent to the signed-in advocate, live.",
        permission_classes=[IsAdvocate, *_LIVE_SCOPES],
    )
    async def new_support_request(
        self, info: Info, after: Since = None
    ) -> AsyncGenerator[SupportRequestEvent, None]:
        async for event in _request_events(info, after, {support_requests.CREATED}):
            yield event

    @strawberry.subscription(
        description="Each change to a request of the viewer's (either side), live.",
        permission_classes=[IsSignedIn, *_LIVE_SCOPES],
    )
    async def support_request_updated(
        self, info: Info, after: Since = None
    ) -> AsyncGenerator[SupportRequestEvent, None]:
        async for event in _request_events(info, after, {support_requests.UPDATED}):
            yield event

    @strawberry.subscription(
        description="Each new message in a request's or relationship's thread, live.",
        permission_classes=[IsSignedIn, *_LIVE_SCOPES],
    )
    async def message_added(
        self,
        info: Info,
        request_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(
                description="The request whose thread to follow (give this or relationshipId)."
            ),
        ] = None,
        relationship_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(
                description="The relationship whose thread to follow (give this or requestId)."
            ),
        ] = None,
        after: Since = None,
    ) -> AsyncGenerator[MessageAddedEvent, None]:
        viewer = core.require_viewer(info.context.viewer)
        request_row = id_of(request_id, "SupportRequest")
        relationship_row = id_of(relationship_id, "SupportRelationship")
        thread = None
        # An id given that cannot name its row finds nothing, as an id of no row does.
        if (request_id is None or request_row is not None) and (
            relationship_id is None or relationship_row is not None
        ):
            thread = await messages.visible_thread(
                viewer, request_id=request_row, relationship_id=relationship_row
            )
        if thread is None:
            from graphql import GraphQLError

            raise GraphQLError("Thread not found.", extensions={"code": "NOT_FOUND"})
        kinds = {messages.EVENT_KIND, THREAD_CLOSED}
        async for envelope in stream(info, viewer, thread_channel(thread.id), after, kinds):
            if envelope.kind == THREAD_CLOSED:
                # The relationship ended: the thread is read-only, so the live feed ends too.
                return
            [msg] = await once(
                envelope,
                ("messageAdded", viewer),
                partial(relationship_access.messages, viewer, [envelope.payload["messageId"]]),
            )
            if msg is not None:
                yield MessageAddedEvent(
                    cursor=envelope.cursor, occurred_at=envelope.occurred_at, message=Message.from_model(msg)
                )
