"""The advocate's ticket queue: tickets, SLA clocks, checklists, private notes, and the live feed.

Every type here is the advocate's alone: each resolves only for the advocate who owns the ticket,
and a family (or anyone else) gets null or NOT_FOUND, never a hint that it exists.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.permission import BasePermission
from strawberry.types.nodes import SelectedField

from models import support as support_models
from models import tickets as m
from models.accounts import ApiScope as Scope
from resolvers import tickets
from resolvers.access import relationships as relationship_access
from resolvers.access import requests as request_access
from resolvers.access import tickets as access
from resolvers.events import Envelope, advocate_channel
from resolvers.pagination import Page, window
from schema.accounts import User
from schema.advocates import AdvocatePayload
from schema.arguments import INPUT, After, Before, First, Last, Since
from schema.connections import TotalCount, decode_id, node_fields, nodes, to_connection
from schema.context import Info
from schema.enums import SlaClockKind, SlaState, TicketChange, TicketOrder, TicketOutcome, TicketStatus
from schema.errors import UserError, attempt
from schema.loading import now_or_later, prefetch
from schema.permissions import IsAdvocate, IsSession, needs
from schema.streams import LiveRows, events_for
from schema.support import SupportRelationship, SupportRequest, thread_loads

# The rows live events name, loaded together for every subscriber asking at once.
_LIVE_TICKETS = LiveRows(m.Ticket, access.may_read)


@strawberry.type(
    description=(
        "One service-level clock of a ticket. Its due time was fixed when it started; it stops when met."
    )
)
class SlaClock:
    kind: SlaClockKind = strawberry.field(description="What the clock measures.")
    state: SlaState = strawberry.field(description="Where the clock stands now.")
    target_hours: int = strawberry.field(description="The target it started with, in hours.")
    started_at: datetime = strawberry.field(description="When it started.")
    due_at: datetime = strawberry.field(description="When it is due.")
    at_risk_at: datetime | None = strawberry.field(
        description="When it turned AT_RISK (under a quarter of the time left); null if it has not."
    )
    breached_at: datetime | None = strawberry.field(description="When it breached; null if it has not.")
    met_at: datetime | None = strawberry.field(description="When it was met; null until then.")
    stopped_at: datetime | None = strawberry.field(
        description="When it stopped without being met (the request or case ended first)."
    )
    running: bool = strawberry.field(description="Whether it is still running.")

    @classmethod
    def from_model(cls, c: m.SlaClock, now: datetime) -> SlaClock:
        return cls(
            kind=c.kind,
            state=tickets.clock_state(c, now),
            target_hours=c.target_hours,
            started_at=c.started_at,
            due_at=c.due_at,
            at_risk_at=tickets.clock_at_risk_at(c, now),
            breached_at=tickets.clock_breached_at(c, now),
            met_at=c.met_at,
            stopped_at=c.stopped_at,
            running=tickets.is_running(c),
        )


@strawberry.type(description="An item on a ticket's checklist.")
class ChecklistItem(relay.Node):
    id: relay.NodeID[int]
    text: str = strawberry.field(description="What to do.")
    done: bool = strawberry.field(description="Whether it is ticked.")
    done_at: datetime | None = strawberry.field(description="When it was ticked.")
    position: int = strawberry.field(description="Its place in the checklist (ascending).")
    created_at: datetime = strawberry.field(description="When it was added.")
    _row: strawberry.Private[m.ChecklistItem | tickets.ChecklistRow]

    @classmethod
    def from_model(cls, item: m.ChecklistItem | tickets.ChecklistRow) -> ChecklistItem:
        return cls(
            id=item.id,
            text=item.text,
            done=item.done,
            done_at=item.done_at,
            position=item.position,
            created_at=item.created_at,
            _row=item,
        )

    @strawberry.field(description="Who ticked it.")
    async def done_by(self, info: Info) -> User | None:
        if self._row.done_by_id is None:
            return None
        user = await info.context.loaders.user.load(self._row.done_by_id)
        return User.from_model(user) if user else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[ChecklistItem | None]:
        return await nodes(info.context.viewer, node_ids, access.items, cls.from_model)


@strawberry.type(description="A private note on a ticket. Only the ticket's advocate ever sees it.")
class TicketNote(relay.Node):
    id: relay.NodeID[int]
    body: str = strawberry.field(description="The note.")
    created_at: datetime = strawberry.field(description="When it was written.")
    author_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, note: m.TicketNote) -> TicketNote:
        return cls(id=note.id, body=note.body, created_at=note.created_at, author_id=note.author_id)

    @strawberry.field(description="Who wrote it.")
    async def author(self, info: Info) -> User | None:
        user = await info.context.loaders.user.load(self.author_id)
        return User.from_model(user) if user else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[TicketNote | None]:
        return await nodes(info.context.viewer, node_ids, access.notes, cls.from_model)


@strawberry.type(description="A page of a ticket's private notes, newest first.")
class TicketNoteConnection(relay.Connection[TicketNote], TotalCount):
    pass


@strawberry.type(description="A named list of checklist items the advocate keeps, to apply to tickets.")
class ChecklistTemplate(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="The template's name.")
    items: list[str] = strawberry.field(description="The items, in order.")
    created_at: datetime = strawberry.field(description="When it was made.")

    @classmethod
    def from_model(cls, t: m.ChecklistTemplate) -> ChecklistTemplate:
        return cls(id=t.id, name=t.name, items=list(t.items), created_at=t.created_at)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[ChecklistTemplate | None]:
        return await nodes(info.context.viewer, node_ids, access.templates, cls.from_model)


@strawberry.type(
    description=(
        "A support request, and the case it becomes, in the advocate's queue. Only that advocate "
        "ever sees it."
    )
)
class Ticket(relay.Node):
    id: relay.NodeID[int]
    status: TicketStatus = strawberry.field(description="Where the ticket stands.")
    outcome: TicketOutcome | None = strawberry.field(description="How the case turned out, once resolved.")
    resolved_at: datetime | None = strawberry.field(description="When it was resolved.")
    next_sla_due_at: datetime | None = strawberry.field(
        description="The earliest due time of the clocks still running; null when none is."
    )
    last_family_message_at: datetime | None = strawberry.field(
        description="When the family last wrote in the thread."
    )
    last_advocate_message_at: datetime | None = strawberry.field(
        description="When you last wrote in the thread."
    )
    created_at: datetime = strawberry.field(description="When the request arrived.")
    updated_at: datetime = strawberry.field(description="When anything on the ticket last changed.")
    _row: strawberry.Private[m.Ticket]

    @classmethod
    def from_model(cls, t: m.Ticket) -> Ticket:
        return cls(
            id=t.id,
            status=t.status,
            outcome=t.outcome,
            resolved_at=t.resolved_at,
            next_sla_due_at=t.next_sla_due_at,
            last_family_message_at=t.last_family_message_at,
            last_advocate_message_at=t.last_advocate_message_at,
            created_at=t.created_at,
            updated_at=t.updated_at,
            _row=t,
        )

    @strawberry.field(
        description=(
            "Whether resolveTicket would succeed for the viewer now: its advocate, once the case "
            "has closed (declined, withdrawn, expired or ended), and only once."
        )
    )
    def viewer_can_resolve(self, info: Info) -> bool:
        return access.may_resolve(info.context.viewer, self._row)

    @strawberry.field(description="Your private note on resolving it.")
    def resolution_note(self, info: Info) -> str | None:
        return self._row.resolution_note or None if access.may_read(info.context.viewer, self._row) else None

    @strawberry.field(description="The state of the next-due running clock; null when none is running.")
    def sla_state(self, info: Info) -> SlaState | None:
        return tickets.ticket_sla_state(self._row, info.context.services.clock.now())

    @strawberry.field(description="Its SLA clocks, in the order they started.")
    def sla_clocks(self, info: Info) -> list[SlaClock]:
        now = info.context.services.clock.now()
        return now_or_later(
            info.context.loaders.sla_clocks,
            self.id,
            lambda clocks: [SlaClock.from_model(c, now) for c in clocks],
        )

    @strawberry.field(description="The support request.")
    def request(self, info: Info) -> SupportRequest | None:
        viewer = info.context.viewer

        def build(row: support_models.SupportRequest | None) -> SupportRequest | None:
            return SupportRequest.from_model(row) if row and request_access.may_read(viewer, row) else None

        return now_or_later(info.context.loaders.request, self._row.request_id, build)

    @strawberry.field(description="The support relationship, once the request was accepted.")
    def relationship(self, info: Info) -> SupportRelationship | None:
        if self._row.relationship_id is None:
            return None
        viewer = info.context.viewer

        def build(row: support_models.SupportRelationship | None) -> SupportRelationship | None:
            seen = row is not None and relationship_access.may_read(viewer, row)
            return SupportRelationship.from_model(row) if row and seen else None

        return now_or_later(info.context.loaders.relationship, self._row.relationship_id, build)

    @strawberry.field(description="The family's name.")
    def family_display_name(self, info: Info) -> str:
        return now_or_later(info.context.loaders.family_name, self._row.family_id, str)

    @strawberry.field(description="The child's name, as when the request was sent.")
    def child_display_name(self, info: Info) -> str:
        return now_or_later(
            info.context.loaders.request,
            self._row.request_id,
            lambda row: row.child_display_name if row else "",
        )

    @strawberry.field(description="The checklist, in order (at most 100 items).")
    def checklist(self, info: Info) -> list[ChecklistItem]:
        if not access.may_read(info.context.viewer, self._row):
            return []
        return now_or_later(
            info.context.loaders.checklist,
            self.id,
            lambda items: [ChecklistItem.from_model(i) for i in items],
        )

    @strawberry.field(description="Your private notes, newest first. Never shown to the family.")
    async def notes(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> TicketNoteConnection:
        key = tickets.notes_key(self.id, window(first, after, last, before))
        if not access.may_read(info.context.viewer, self._row):
            empty: Page[m.TicketNote] = Page([], [], has_next_page=False, has_previous_page=False)
            return to_connection(TicketNoteConnection, empty, TicketNote.from_model)  # type: ignore[return-value]
        page = await info.context.loaders.notes.load(key)
        loaders, ticket_id = info.context.loaders, self.id

        def total() -> Awaitable[int]:
            return loaders.counts.load((m.TicketNote, "ticket_id", ticket_id))

        return to_connection(TicketNoteConnection, page, TicketNote.from_model, total)  # type: ignore[return-value]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Ticket | None]:
        return await nodes(info.context.viewer, node_ids, access.tickets, cls.from_model)


@strawberry.type(description="A page of the ticket queue.")
class TicketConnection(relay.Connection[Ticket], TotalCount):
    pass


@strawberry.input(description="Which tickets to list; every field is optional.")
class TicketFilter:
    status: list[TicketStatus] | None = strawberry.field(default=None, description="Any of these.")
    sla_state: list[SlaState] | None = strawberry.field(
        default=None,
        description="The state of the next-due running clock: any of ON_TRACK, AT_RISK, BREACHED.",
    )


@strawberry.input(description="A new item at the end of a ticket's checklist.")
class AddChecklistItemInput:
    ticket_id: relay.GlobalID = strawberry.field(description="One of your tickets.")
    text: str = strawberry.field(description="1–500 characters.")


@strawberry.input(description="Tick an item.")
class TickChecklistItemInput:
    item_id: relay.GlobalID = strawberry.field(description="An item on one of your tickets.")


@strawberry.input(description="Untick an item.")
class UntickChecklistItemInput:
    item_id: relay.GlobalID = strawberry.field(description="An item on one of your tickets.")


@strawberry.input(description="Take an item off its checklist.")
class RemoveChecklistItemInput:
    item_id: relay.GlobalID = strawberry.field(description="An item on one of your tickets.")


@strawberry.input(description="A new order for a ticket's checklist.")
class ReorderChecklistItemsInput:
    ticket_id: relay.GlobalID = strawberry.field(description="One of your tickets.")
    item_ids: list[relay.GlobalID] = strawberry.field(
        description="Every item of its checklist, each once, in the new order."
    )


@strawberry.input(description="A named list of checklist items to keep.")
class CreateChecklistTemplateInput:
    name: str = strawberry.field(description="1–100 characters.")
    items: list[str] = strawberry.field(description="1–100 items of 1–500 characters each.")


@strawberry.input(description="Delete a checklist template.")
class DeleteChecklistTemplateInput:
    template_id: relay.GlobalID = strawberry.field(description="One of your templates.")


@strawberry.input(description="Append a template's items to a ticket's checklist.")
class ApplyChecklistTemplateInput:
    ticket_id: relay.GlobalID = strawberry.field(description="One of your tickets.")
    template_id: relay.GlobalID = strawberry.field(description="One of your templates.")


@strawberry.input(description="A private note on a ticket.")
class AddTicketNoteInput:
    ticket_id: relay.GlobalID = strawberry.field(description="One of your tickets.")
    body: str = strawberry.field(description="1–10,000 characters. Only you will see it.")


@strawberry.input(description="Delete a private note.")
class DeleteTicketNoteInput:
    note_id: relay.GlobalID = strawberry.field(description="One of your notes.")


@strawberry.input(description="Record how a finished case turned out.")
class ResolveTicketInput:
    ticket_id: relay.GlobalID = strawberry.field(
        description="One of your tickets whose request was declined, withdrawn or expired, or whose "
        "relationship has ended."
    )
    outcome: TicketOutcome = strawberry.field(description="How it turned out.")
    note: str | None = strawberry.field(
        default=None, description="A private note, up to 10,000 characters; only you will see it."
    )


@strawberry.input(description="Your SLA targets, for clocks that start from now on; leave out what stays.")
class UpdateSlaTargetsInput:
    response_hours: int | None = strawberry.field(
        default=None, description="Hours to answer a new request: 1–336 (default 48)."
    )
    first_message_hours: int | None = strawberry.field(
        default=None, description="Hours to write to the family after accepting: 1–168 (default 24)."
    )


@strawberry.type(description="The result of a change to a checklist item.")
class ChecklistItemPayload:
    checklist_item: ChecklistItem | None = strawberry.field(
        description="The item as it is now (as it was, when removed)."
    )
    ticket: Ticket | None = strawberry.field(description="Its ticket, as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="The result of a change to a ticket.")
class TicketPayload:
    ticket: Ticket | None = strawberry.field(description="The ticket as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="The result of a change to a private note.")
class TicketNotePayload:
    ticket_note: TicketNote | None = strawberry.field(description="The note (as it was, when deleted).")
    ticket: Ticket | None = strawberry.field(description="Its ticket, as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="The result of a change to a checklist template.")
class ChecklistTemplatePayload:
    checklist_template: ChecklistTemplate | None = strawberry.field(
        description="The template (as it was, when deleted)."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="A ticket as it changes, live.")
class TicketUpdatedEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume from here.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    changes: list[TicketChange] = strawberry.field(description="What changed.")
    ticket: Ticket = strawberry.field(description="The ticket as it is now.")


async def _ticket(info: Info, ticket_id: int | None) -> Ticket | None:
    if ticket_id is None:
        return None
    [row] = await access.tickets(info.context.viewer, [ticket_id])
    return Ticket.from_model(row) if row else None


async def _item_payload(info: Info, action: Awaitable[m.ChecklistItem]) -> ChecklistItemPayload:
    row, errs = await attempt(action)
    return ChecklistItemPayload(
        checklist_item=ChecklistItem.from_model(row) if row else None,
        ticket=await _ticket(info, row.ticket_id if row else None),
        user_errors=errs,
    )


async def _ticket_payload(info: Info, action: Awaitable[m.Ticket]) -> TicketPayload:
    row, errs = await attempt(action)
    return TicketPayload(ticket=Ticket.from_model(row) if row else None, user_errors=errs)


async def _note_payload(info: Info, action: Awaitable[m.TicketNote]) -> TicketNotePayload:
    row, errs = await attempt(action)
    return TicketNotePayload(
        ticket_note=TicketNote.from_model(row) if row else None,
        ticket=await _ticket(info, row.ticket_id if row else None),
        user_errors=errs,
    )


async def _template_payload(action: Awaitable[m.ChecklistTemplate]) -> ChecklistTemplatePayload:
    row, errs = await attempt(action)
    return ChecklistTemplatePayload(
        checklist_template=ChecklistTemplate.from_model(row) if row else None, user_errors=errs
    )


def _run(make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """Decode IDs inside the attempt, so a wrong one is a user error like any other."""

    async def run() -> Any:
        return await make()

    return run()


# Relations of a ticket joined into the queue's statement, by the node fields that read them.
_PREFETCH = {
    "request": {"request", "childDisplayName"},
    "relationship": {"relationship"},
    tickets.FAMILY_NAME: {"familyDisplayName"},
}


async def _prefetch(info: Info, rows: list[m.Ticket], fields: dict[str, list[SelectedField]]) -> None:
    """What the page's nested fields will ask their loaders for, loaded now in one batch each, so
    that they answer without a task of their own (`schema.loading`); the same statements as when
    each field asks."""
    loaders = info.context.loaders
    viewer = info.context.viewer
    ids = [row.id for row in rows if access.may_read(viewer, row)]
    loads: list[tuple[DataLoader[Any, Any], list[Any]]] = []
    if "checklist" in fields:
        loads.append((loaders.checklist, ids))
    if "slaClocks" in fields:
        loads.append((loaders.sla_clocks, ids))
    requests = [row.request for row in rows if "request" in fields and row.request is not None]
    loads.extend(thread_loads(info, requests, fields.get("request", [])))
    await prefetch(loads)


_READ: list[type[BasePermission]] = [IsAdvocate, needs(Scope.REQUESTS_READ)]
_WRITE: list[type[BasePermission]] = [IsAdvocate, needs(Scope.REQUESTS_WRITE)]


@strawberry.type
class TicketQuery:
    @strawberry.field(
        description=(
            "The signed-in advocate's tickets: every request and case. By default the next SLA due "
            "first, then tickets with no clock running."
        ),
        permission_classes=_READ,
    )
    async def ticket_queue(
        self,
        info: Info,
        filter: Annotated[
            TicketFilter | None, strawberry.argument(description="Narrow the queue; every field is optional.")
        ] = None,
        order_by: Annotated[
            TicketOrder, strawberry.argument(description="How to sort the queue.")
        ] = TicketOrder.NEXT_SLA_DUE,
        first: First = 20,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> TicketConnection:
        f = filter or TicketFilter()
        chosen = node_fields(info)
        selected = set(chosen)
        # What the page's rows will ask their loaders for, fetched with the tickets instead.
        related = [
            name
            for name, fields in _PREFETCH.items()
            if selected & fields  # a name the client selected on the nodes
        ]
        page = await tickets.queue(
            info.context.services,
            info.context.viewer,
            tickets.QueueFilter(status=f.status, sla_state=f.sla_state),
            order_by,
            window(first, after, last, before),
            related,
        )
        loaders = info.context.loaders
        for row in page.items:
            if "request" in related:
                loaders.request.prime(row.request_id, row.request)
            if "relationship" in related and row.relationship_id is not None:
                loaders.relationship.prime(row.relationship_id, row.relationship)
            if tickets.FAMILY_NAME in related:
                loaders.family_name.prime(row.family_id, getattr(row, tickets.FAMILY_NAME))
        await _prefetch(info, page.items, chosen)
        return to_connection(TicketConnection, page, Ticket.from_model)  # type: ignore[return-value]

    @strawberry.field(
        description="The signed-in advocate's checklist templates, by name.", permission_classes=_READ
    )
    async def checklist_templates(self, info: Info) -> list[ChecklistTemplate]:
        return [ChecklistTemplate.from_model(t) for t in await tickets.templates(info.context.viewer)]


@strawberry.type
class TicketMutation:
    @strawberry.mutation(description="Add an item to a ticket's checklist.", permission_classes=_WRITE)
    async def add_checklist_item(
        self, info: Info, input: Annotated[AddChecklistItemInput, INPUT]
    ) -> ChecklistItemPayload:
        return await _item_payload(
            info,
            _run(
                lambda: tickets.add_item(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.ticket_id, "Ticket", "ticketId"),
                    input.text,
                )
            ),
        )

    @strawberry.mutation(description="Tick a checklist item.", permission_classes=_WRITE)
    async def tick_checklist_item(
        self, info: Info, input: Annotated[TickChecklistItemInput, INPUT]
    ) -> ChecklistItemPayload:
        return await _item_payload(
            info,
            _run(
                lambda: tickets.set_done(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.item_id, "ChecklistItem", "itemId"),
                    True,
                )
            ),
        )

    @strawberry.mutation(description="Untick a checklist item.", permission_classes=_WRITE)
    async def untick_checklist_item(
        self, info: Info, input: Annotated[UntickChecklistItemInput, INPUT]
    ) -> ChecklistItemPayload:
        return await _item_payload(
            info,
            _run(
                lambda: tickets.set_done(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.item_id, "ChecklistItem", "itemId"),
                    False,
                )
            ),
        )

    @strawberry.mutation(description="Take an item off its checklist.", permission_classes=_WRITE)
    async def remove_checklist_item(
        self, info: Info, input: Annotated[RemoveChecklistItemInput, INPUT]
    ) -> ChecklistItemPayload:
        return await _item_payload(
            info,
            _run(
                lambda: tickets.remove_item(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.item_id, "ChecklistItem", "itemId"),
                )
            ),
        )

    @strawberry.mutation(description="Put a ticket's checklist in a new order.", permission_classes=_WRITE)
    async def reorder_checklist_items(
        self, info: Info, input: Annotated[ReorderChecklistItemsInput, INPUT]
    ) -> TicketPayload:
        return await _ticket_payload(
            info,
            _run(
                lambda: tickets.reorder_items(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.ticket_id, "Ticket", "ticketId"),
                    [decode_id(i, "ChecklistItem", "itemIds") for i in input.item_ids],
                )
            ),
        )

    @strawberry.mutation(description="Keep a named list of checklist items.", permission_classes=_WRITE)
    async def create_checklist_template(
        self, info: Info, input: Annotated[CreateChecklistTemplateInput, INPUT]
    ) -> ChecklistTemplatePayload:
        return await _template_payload(
            tickets.create_template(info.context.services, info.context.viewer, input.name, input.items)
        )

    @strawberry.mutation(description="Delete a checklist template.", permission_classes=_WRITE)
    async def delete_checklist_template(
        self, info: Info, input: Annotated[DeleteChecklistTemplateInput, INPUT]
    ) -> ChecklistTemplatePayload:
        return await _template_payload(
            _run(
                lambda: tickets.delete_template(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.template_id, "ChecklistTemplate", "templateId"),
                )
            )
        )

    @strawberry.mutation(
        description="Append a template's items to a ticket's checklist.", permission_classes=_WRITE
    )
    async def apply_checklist_template(
        self, info: Info, input: Annotated[ApplyChecklistTemplateInput, INPUT]
    ) -> TicketPayload:
        return await _ticket_payload(
            info,
            _run(
                lambda: tickets.apply_template(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.ticket_id, "Ticket", "ticketId"),
                    decode_id(input.template_id, "ChecklistTemplate", "templateId"),
                )
            ),
        )

    @strawberry.mutation(
        description="Add a private note to a ticket; the family never sees it.", permission_classes=_WRITE
    )
    async def add_ticket_note(
        self, info: Info, input: Annotated[AddTicketNoteInput, INPUT]
    ) -> TicketNotePayload:
        return await _note_payload(
            info,
            _run(
                lambda: tickets.add_note(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.ticket_id, "Ticket", "ticketId"),
                    input.body,
                )
            ),
        )

    @strawberry.mutation(description="Delete one of your private notes.", permission_classes=_WRITE)
    async def delete_ticket_note(
        self, info: Info, input: Annotated[DeleteTicketNoteInput, INPUT]
    ) -> TicketNotePayload:
        return await _note_payload(
            info,
            _run(
                lambda: tickets.delete_note(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.note_id, "TicketNote", "noteId"),
                )
            ),
        )

    @strawberry.mutation(
        description=(
            "Record how a finished case turned out. The request must have been declined, withdrawn or "
            "expired, or the relationship ended; a ticket is resolved once."
        ),
        permission_classes=_WRITE,
    )
    async def resolve_ticket(self, info: Info, input: Annotated[ResolveTicketInput, INPUT]) -> TicketPayload:
        return await _ticket_payload(
            info,
            _run(
                lambda: tickets.resolve(
                    info.context.services,
                    info.context.viewer,
                    decode_id(input.ticket_id, "Ticket", "ticketId"),
                    input.outcome,
                    input.note,
                )
            ),
        )

    @strawberry.mutation(
        description="Change your SLA targets; clocks already running keep their due times.",
        permission_classes=[IsAdvocate, IsSession],
    )
    async def update_sla_targets(
        self, info: Info, input: Annotated[UpdateSlaTargetsInput, INPUT]
    ) -> AdvocatePayload:
        from schema.advocates import Advocate

        row, errs = await attempt(
            tickets.update_targets(
                info.context.services,
                info.context.viewer,
                response_hours=input.response_hours,
                first_message_hours=input.first_message_hours,
            )
        )
        return AdvocatePayload(advocate=Advocate.from_model(row) if row else None, user_errors=errs)


@strawberry.type
class TicketSubscription:
    @strawberry.subscription(
        description=(
            "Each change to the signed-in advocate's queue, live: new requests, status changes, "
            "messages, SLA clocks turning AT_RISK or BREACHED, checklists, notes, resolutions."
        ),
        permission_classes=[IsAdvocate, needs(Scope.EVENTS_SUBSCRIBE), needs(Scope.REQUESTS_READ)],
    )
    async def ticket_updated(
        self, info: Info, after: Since = None
    ) -> AsyncGenerator[TicketUpdatedEvent, None]:
        viewer = access.reader(info.context.viewer)
        assert viewer.advocate_id is not None
        channel = advocate_channel(viewer.advocate_id)

        async def build(envelope: Envelope) -> TicketUpdatedEvent | None:
            row = await _LIVE_TICKETS.get(viewer, envelope.payload["ticketId"])
            if row is None:
                return None
            return TicketUpdatedEvent(
                cursor=envelope.cursor,
                occurred_at=envelope.occurred_at,
                changes=[TicketChange(c) for c in envelope.payload.get("changes", [])],
                ticket=Ticket.from_model(row),
            )

        async for event in events_for(info, viewer, channel, after, {tickets.TICKET_UPDATED}, build):
            yield event
