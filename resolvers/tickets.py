"""The advocate's ticket queue: every request and the case it becomes, with SLA clocks, a checklist,
private notes and a resolution.

A ticket is the advocate's own working record. Families never see one: every read and every event
here is for the advocate who owns the ticket, and nothing here is written to a channel or a table a
family reads. The ticket follows its request through `request_changed`, which every change to a
request, its relationship or its thread calls inside its own transaction; clock-driven changes
(AT_RISK, BREACHED) are recorded by the sweep, each by one conditional write, so a restart loses
nothing: the state is derived from stored timestamps and the time now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from enum import StrEnum

from tortoise.expressions import Case, F, Q, When
from tortoise.queryset import QuerySet

from models.advocates import Advocate
from models.notifications import NotificationKind
from models.support import (
    OPEN_STATUSES,
    Message,
    RelationshipStatus,
    RequestStatus,
    SupportRelationship,
    SupportRequest,
)
from models.tickets import (
    ChecklistItem,
    ChecklistTemplate,
    SlaClock,
    SlaClockKind,
    SlaState,
    Ticket,
    TicketNote,
    TicketOutcome,
    TicketStatus,
)
from resolvers import notifications, validation
from resolvers.access import accounts as account_access
from resolvers.access import tickets as access
from resolvers.access.core import own_row
from resolvers.errors import InvalidInput, NotFound, UserError
from resolvers.events import Outbox, advocate_channel, unit_of_work
from resolvers.ids import parse_row_id
from resolvers.pagination import (
    Page,
    PageKey,
    Window,
    counter,
    decode_keyset,
    encode_keyset,
    page_key,
    pages_by_parent,
    paginate,
)
from resolvers.services import Services
from resolvers.viewer import Viewer

TICKET_UPDATED = "ticket.updated"

MAX_ITEM_TEXT = 500
MAX_ITEMS_PER_TICKET = 100
MAX_TEMPLATE_NAME = 100
MAX_TEMPLATES = 50
MAX_NOTE = 10_000
MAX_RESOLUTION_NOTE = 10_000
MIN_SLA_HOURS = 1
MAX_FIRST_MESSAGE_SLA_HOURS = 168
# A clock is AT_RISK once less than this share of its time is left.
AT_RISK_SHARE = 0.25


class TicketChange(StrEnum):
    """What changed, carried by each `ticketUpdated` event."""

    CREATED = "CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    FAMILY_MESSAGE = "FAMILY_MESSAGE"
    ADVOCATE_MESSAGE = "ADVOCATE_MESSAGE"
    SLA_MET = "SLA_MET"
    SLA_AT_RISK = "SLA_AT_RISK"
    SLA_BREACHED = "SLA_BREACHED"
    CHECKLIST_CHANGED = "CHECKLIST_CHANGED"
    NOTE_ADDED = "NOTE_ADDED"
    NOTE_DELETED = "NOTE_DELETED"
    RESOLVED = "RESOLVED"


class TicketOrder(StrEnum):
    """How the queue is sorted."""

    NEXT_SLA_DUE = "NEXT_SLA_DUE"
    NEWEST_FIRST = "NEWEST_FIRST"


RUNNING_STATES = (SlaState.ON_TRACK, SlaState.AT_RISK, SlaState.BREACHED)


# --- SLA clocks: state from stored timestamps and now -----------------------------------------


def is_running(clock: SlaClock) -> bool:
    return clock.met_at is None and clock.stopped_at is None


def clock_state(clock: SlaClock, now: datetime) -> SlaState:
    """ON_TRACK, AT_RISK or BREACHED while running; once stopped, MET (on time), BREACHED (met
    late, or stopped after its due time) or CANCELLED (stopped in time without being met)."""
    if clock.met_at is not None:
        return SlaState.MET if clock.met_at <= clock.due_at else SlaState.BREACHED
    if clock.stopped_at is not None:
        return SlaState.BREACHED if clock.stopped_at >= clock.due_at else SlaState.CANCELLED
    if now >= clock.due_at:
        return SlaState.BREACHED
    if now > clock.at_risk_from:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def clock_at_risk_at(clock: SlaClock, now: datetime) -> datetime | None:
    """When the clock turned AT_RISK, if it has (whether or not the sweep has recorded it yet)."""
    if clock.at_risk_at is not None:
        return clock.at_risk_at
    end = clock.met_at or clock.stopped_at or now
    return clock.at_risk_from if end > clock.at_risk_from else None


def clock_breached_at(clock: SlaClock, now: datetime) -> datetime | None:
    """When the clock breached (its due time), if it has."""
    if clock.breached_at is not None:
        return clock.breached_at
    return clock.due_at if clock_state(clock, now) is SlaState.BREACHED else None


def ticket_sla_state(ticket: Ticket, now: datetime) -> SlaState | None:
    """The state of the next-due running clock; None when no clock is running."""
    if ticket.next_sla_due_at is None or ticket.next_sla_at_risk_from is None:
        return None
    if now >= ticket.next_sla_due_at:
        return SlaState.BREACHED
    if now > ticket.next_sla_at_risk_from:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


def _at_risk_from(started: datetime, due: datetime) -> datetime:
    return due - (due - started) * AT_RISK_SHARE


async def _start_clock(
    ticket_id: int, kind: SlaClockKind, started: datetime, due: datetime, outbox: Outbox
) -> SlaClock:
    hours = round((due - started) / timedelta(hours=1))
    return await SlaClock.create(
        ticket_id=ticket_id,
        kind=kind,
        target_hours=hours,
        started_at=started,
        due_at=due,
        at_risk_from=_at_risk_from(started, due),
        using_db=outbox.connection,
    )


async def _settle(clock: SlaClock, met_at: datetime | None, stopped_at: datetime | None) -> bool:
    """Stop a running clock as met (preferred) or as stopped; True when this call stopped it."""
    if not is_running(clock):
        return False
    if met_at is not None:
        done = await SlaClock.filter(id=clock.id, met_at__isnull=True, stopped_at__isnull=True).update(
            met_at=met_at
        )
        if done:
            clock.met_at = met_at
        return bool(done)
    if stopped_at is not None:
        done = await SlaClock.filter(id=clock.id, met_at__isnull=True, stopped_at__isnull=True).update(
            stopped_at=stopped_at
        )
        if done:
            clock.stopped_at = stopped_at
    return False


def _next_due(clocks: Sequence[SlaClock]) -> tuple[datetime | None, datetime | None]:
    running = sorted((c for c in clocks if is_running(c)), key=lambda c: (c.due_at, c.id))
    return (running[0].due_at, running[0].at_risk_from) if running else (None, None)


# --- following the request ---------------------------------------------------------------------


async def _announce(outbox: Outbox, ticket: Ticket, changes: Sequence[TicketChange]) -> None:
    await outbox.emit(
        advocate_channel(ticket.advocate_id),
        TICKET_UPDATED,
        {"ticketId": ticket.id, "changes": [c.value for c in changes]},
    )


async def _last_message(thread_id: int, *, author_id: int, by_author: bool) -> tuple[int, datetime] | None:
    query = Message.filter(thread_id=thread_id)
    query = query.filter(author_id=author_id) if by_author else query.exclude(author_id=author_id)
    rows = await query.order_by("-id").limit(1).values_list("id", "created_at")
    if not rows:
        return None
    row_id, at = rows[0]
    return int(row_id), at


async def request_changed(outbox: Outbox, request_id: int) -> None:
    """Bring a request's ticket in line with the request, its relationship and its thread, in the
    current transaction, and tell the advocate's dashboard what changed. Creates the ticket and its
    first-response clock when the request is new."""
    now = outbox.now
    # Locked first, so changes to one ticket apply one at a time and each sees the last one's result.
    ticket = await Ticket.filter(request_id=request_id).select_for_update().first()
    request = await SupportRequest.get(id=request_id)
    advocate = await Advocate.get(id=request.advocate_id)
    changes: list[TicketChange] = []
    if ticket is None:
        ticket = await Ticket.create(
            advocate_id=request.advocate_id,
            family_id=request.family_id,
            request_id=request.id,
            status=TicketStatus.NEW,
            created_at=now,
            updated_at=now,
            using_db=outbox.connection,
        )
        await _start_clock(
            ticket.id, SlaClockKind.FIRST_RESPONSE, request.created_at, request.respond_by, outbox
        )
        changes.append(TicketChange.CREATED)
    relationship = await SupportRelationship.get_or_none(request_id=request.id)
    clocks = {c.kind: c for c in await SlaClock.filter(ticket_id=ticket.id)}

    last_advocate = await _last_message(request.thread_id, author_id=advocate.user_id, by_author=True)
    last_family = await _last_message(request.thread_id, author_id=advocate.user_id, by_author=False)

    first_response = clocks.get(SlaClockKind.FIRST_RESPONSE)
    if first_response is not None and is_running(first_response):
        # Answering the request, or writing to the family before answering, is a response.
        responded: datetime | None = request.responded_at
        if last_advocate is not None:
            first_written = (
                await Message.filter(thread_id=request.thread_id, author_id=advocate.user_id)
                .order_by("id")
                .first()
            )
            if first_written is not None and (responded is None or first_written.created_at < responded):
                responded = first_written.created_at
        ended = now if request.status not in OPEN_STATUSES and relationship is None else None
        if await _settle(first_response, responded, ended):
            changes.append(TicketChange.SLA_MET)

    if relationship is not None:
        first_message = clocks.get(SlaClockKind.FIRST_MESSAGE)
        if first_message is None:
            first_due = relationship.opened_at + timedelta(hours=advocate.first_message_sla_hours)
            first_message = await _start_clock(
                ticket.id, SlaClockKind.FIRST_MESSAGE, relationship.opened_at, first_due, outbox
            )
            clocks[SlaClockKind.FIRST_MESSAGE] = first_message
        closed = relationship.closed_at if relationship.status is RelationshipStatus.CLOSED else None
        if await _settle(first_message, relationship.first_advocate_message_at, closed):
            changes.append(TicketChange.SLA_MET)

    status = _status(ticket, request, relationship, last_family, last_advocate)
    if status is not ticket.status and TicketChange.CREATED not in changes:
        changes.append(TicketChange.STATUS_CHANGED)
    family_at = last_family[1] if last_family else None
    advocate_at = last_advocate[1] if last_advocate else None
    if family_at != ticket.last_family_message_at and TicketChange.CREATED not in changes:
        changes.append(TicketChange.FAMILY_MESSAGE)
    if advocate_at != ticket.last_advocate_message_at:
        changes.append(TicketChange.ADVOCATE_MESSAGE)
    due, at_risk_from = _next_due(list(clocks.values()))
    if not changes and (due, at_risk_from) == (ticket.next_sla_due_at, ticket.next_sla_at_risk_from):
        return
    await Ticket.filter(id=ticket.id).update(
        status=status,
        relationship_id=relationship.id if relationship else None,
        next_sla_due_at=due,
        next_sla_at_risk_from=at_risk_from,
        last_family_message_at=family_at,
        last_advocate_message_at=advocate_at,
        updated_at=now,
    )
    await _announce(outbox, ticket, sorted(set(changes), key=list(TicketChange).index))


def _status(
    ticket: Ticket,
    request: SupportRequest,
    relationship: SupportRelationship | None,
    last_family: tuple[int, datetime] | None,
    last_advocate: tuple[int, datetime] | None,
) -> TicketStatus:
    if ticket.status is TicketStatus.RESOLVED:
        return TicketStatus.RESOLVED
    if relationship is not None:
        return (
            TicketStatus.ACTIVE if relationship.status is RelationshipStatus.ACTIVE else TicketStatus.CLOSED
        )
    if request.status is RequestStatus.PENDING:
        return TicketStatus.NEW
    if request.status is RequestStatus.INFO_REQUESTED:
        # The family answering the advocate's question puts the ball back in the advocate's court.
        family_last = last_family[0] if last_family else 0
        advocate_last = last_advocate[0] if last_advocate else 0
        return TicketStatus.FAMILY_REPLIED if family_last > advocate_last else TicketStatus.WAITING_ON_FAMILY
    return TicketStatus.CLOSED


# --- the sweep: AT_RISK and BREACHED as time passes ---------------------------------------------

_TITLES = {
    (SlaClockKind.FIRST_RESPONSE, SlaState.AT_RISK): "A support request needs your answer soon",
    (SlaClockKind.FIRST_RESPONSE, SlaState.BREACHED): "A support request is past its response time",
    (SlaClockKind.FIRST_MESSAGE, SlaState.AT_RISK): "Send your first message to a family soon",
    (SlaClockKind.FIRST_MESSAGE, SlaState.BREACHED): "Your first message to a family is overdue",
}


async def sweep(services: Services, batch: int = 200) -> int:
    """Record clocks that have turned AT_RISK or BREACHED, telling the advocate; returns how many.
    Every server process runs this; conditional writes record each change once."""
    now = services.clock.now()
    recorded = 0
    running = SlaClock.filter(met_at__isnull=True, stopped_at__isnull=True, breached_at__isnull=True)
    for clock in await running.filter(due_at__lte=now).order_by("due_at").limit(batch):
        recorded += await _record(services, clock, SlaState.BREACHED)
    for clock in (
        await running.filter(at_risk_at__isnull=True, at_risk_from__lt=now, due_at__gt=now)
        .order_by("at_risk_from")
        .limit(batch)
    ):
        recorded += await _record(services, clock, SlaState.AT_RISK)
    return recorded


async def _record(services: Services, clock: SlaClock, state: SlaState) -> int:
    async with unit_of_work(services) as outbox:
        ticket = await Ticket.filter(id=clock.ticket_id).select_for_update().first()
        if ticket is None:
            return 0
        pending = SlaClock.filter(
            id=clock.id, met_at__isnull=True, stopped_at__isnull=True, breached_at__isnull=True
        )
        if state is SlaState.BREACHED:
            if not await pending.update(breached_at=clock.due_at):
                return 0
            # A clock that went straight past both thresholds (a sweep missed) was AT_RISK on the way.
            await SlaClock.filter(id=clock.id, at_risk_at__isnull=True).update(at_risk_at=clock.at_risk_from)
            change = TicketChange.SLA_BREACHED
            kind = NotificationKind.SLA_BREACHED
        else:
            if not await pending.filter(at_risk_at__isnull=True).update(at_risk_at=clock.at_risk_from):
                return 0
            change = TicketChange.SLA_AT_RISK
            kind = NotificationKind.SLA_AT_RISK
        await Ticket.filter(id=ticket.id).update(updated_at=outbox.now)
        await _announce(outbox, ticket, [change])
        advocate = await Advocate.get(id=ticket.advocate_id)
        request = await SupportRequest.get(id=ticket.request_id)
        what = (
            "an answer" if clock.kind is SlaClockKind.FIRST_RESPONSE else "your first message after accepting"
        )
        await notifications.notify(
            outbox,
            advocate.user_id,
            kind,
            _TITLES[(clock.kind, state)],
            f"The case about a {request.child_age_years}-year-old is due {what} by "
            f"{clock.due_at.strftime('%d %b %Y %H:%M')} UTC.",
            notifications.subject("Ticket", ticket.id),
        )
    return 1


# --- reading --------------------------------------------------------------------------------


async def tickets_by_request(request_ids: Sequence[int]) -> list[Ticket | None]:
    """Batch load; callers keep what `access.tickets.may_read` allows."""
    rows = {t.request_id: t for t in await Ticket.filter(request_id__in=list(request_ids))}
    return [rows.get(i) for i in request_ids]


@dataclass(frozen=True)
class QueueFilter:
    status: list[TicketStatus] | None = None
    sla_state: list[SlaState] | None = None


def _sla_filter(query: QuerySet[Ticket], states: list[SlaState], now: datetime) -> QuerySet[Ticket]:
    conditions: list[Q] = []
    for state in set(states):
        if state is SlaState.BREACHED:
            conditions.append(Q(next_sla_due_at__lte=now))
        elif state is SlaState.AT_RISK:
            conditions.append(Q(next_sla_at_risk_from__lt=now, next_sla_due_at__gt=now))
        elif state is SlaState.ON_TRACK:
            conditions.append(Q(next_sla_at_risk_from__gte=now))
        else:
            raise InvalidInput(
                "slaState",
                "Filter by ON_TRACK, AT_RISK or BREACHED: a ticket's SLA state is that of its running clock.",
            )
    return query.filter(Q(*conditions, join_type=Q.OR))


QUEUE_CURSOR = "TicketQueue"


# `queue(related=[FAMILY_NAME])`: each row's `family_name`, the family's display name.
FAMILY_NAME = "family_name"


async def queue(
    services: Services,
    viewer: Viewer | None,
    flt: QueueFilter,
    order: TicketOrder,
    window: Window,
    related: Sequence[str] = (),
) -> Page[Ticket]:
    """The advocate's tickets, filtered; by default the next SLA due first, then those with no
    clock running, oldest first. Keyset cursors, so pages hold still as tickets change. `related`
    rows (`request`, `relationship`) and the family's name (`FAMILY_NAME`) come in the same
    statement."""
    query = Ticket.filter(access.listed(viewer))
    joined = [name for name in related if name != FAMILY_NAME]
    if joined:
        query = query.select_related(*joined)
    if FAMILY_NAME in related:
        # The one column, not the family's and the user's whole rows.
        query = query.annotate(family_name=F("family__user__display_name"))
    if flt.status:
        query = query.filter(status__in=list(flt.status))
    if flt.sla_state:
        query = _sla_filter(query, flt.sla_state, services.clock.now())
    if order is TicketOrder.NEWEST_FIRST:
        return await paginate(query, kind="Ticket", window=window)
    total = counter(query)
    if window.after is not None:
        query = query.filter(_beyond(_queue_position(window.after, "after"), later=True))
    if window.before is not None:
        query = query.filter(_beyond(_queue_position(window.before, "before"), later=False))
    # NULLS LAST, spelt portably: tickets with a running clock by (due, id), then the rest by id.
    order_by = ("untimed", "next_sla_due_at", "id")
    if window.from_end:
        order_by = ("-untimed", "-next_sla_due_at", "-id")
    rows = list(
        await query.annotate(untimed=Case(When(next_sla_due_at__isnull=True, then="1"), default="0"))
        .order_by(*order_by)
        .limit(window.size + 1)
    )
    return window.page(
        rows,
        lambda t: encode_keyset(
            QUEUE_CURSOR, t.next_sla_due_at.isoformat() if t.next_sla_due_at else "", str(t.id)
        ),
        total,
    )


def _queue_position(cursor: str, field: str) -> tuple[datetime | None, int]:
    """The (due, id) a queue cursor names; anything else is INVALID for `field`."""
    due_text, id_text = decode_keyset(QUEUE_CURSOR, cursor, 2, field)
    try:
        row_id = parse_row_id(id_text)
        if row_id is None:
            raise ValueError(id_text)
        due = datetime.fromisoformat(due_text) if due_text else None
    except ValueError as exc:
        raise InvalidInput(field, "This cursor is not valid for this list.") from exc
    if due is not None and due.tzinfo is None:
        raise InvalidInput(field, "This cursor is not valid for this list.")
    return due, row_id


def _beyond(position: tuple[datetime | None, int], *, later: bool) -> Q:
    """The tickets after (`later`) or before `position` in the queue's order: (due, id) with the
    tickets that have no clock running last, by id."""
    due, row_id = position
    if due is None:
        if later:
            return Q(next_sla_due_at__isnull=True, id__gt=row_id)
        return Q(next_sla_due_at__isnull=False) | Q(next_sla_due_at__isnull=True, id__lt=row_id)
    if later:
        return (
            Q(next_sla_due_at__isnull=True)
            | Q(next_sla_due_at__gt=due)
            | Q(next_sla_due_at=due, id__gt=row_id)
        )
    return Q(next_sla_due_at__lt=due) | Q(next_sla_due_at=due, id__lt=row_id)


# --- batch loads for the dashboard (one query per field, however many tickets) -------------------


async def clocks_by_ticket(ticket_ids: Sequence[int]) -> list[list[SlaClock]]:
    grouped: dict[int, list[SlaClock]] = {i: [] for i in ticket_ids}
    for clock in await SlaClock.filter(ticket_id__in=list(ticket_ids)).order_by("started_at", "id"):
        grouped[clock.ticket_id].append(clock)
    return [grouped[i] for i in ticket_ids]


@dataclass(frozen=True, slots=True)
class ChecklistRow:
    """A checklist item as read for display: its columns, without a model instance (a page of 50
    tickets reads 100 or more; building each as a model was a tenth of the page's CPU)."""

    id: int
    ticket_id: int
    text: str
    position: int
    done: bool
    done_at: datetime | None
    done_by_id: int | None
    created_at: datetime


_CHECKLIST_COLUMNS = tuple(f.name for f in dataclass_fields(ChecklistRow))


async def items_by_ticket(ticket_ids: Sequence[int]) -> list[list[ChecklistRow]]:
    grouped: dict[int, list[ChecklistRow]] = {i: [] for i in ticket_ids}
    rows = (
        await ChecklistItem.filter(ticket_id__in=list(ticket_ids))
        .order_by("position", "id")
        .values(*_CHECKLIST_COLUMNS)
    )
    for row in rows:
        item = ChecklistRow(**row)
        grouped[item.ticket_id].append(item)
    return [grouped[i] for i in ticket_ids]


async def notes_pages(keys: Sequence[PageKey]) -> list[Page[TicketNote]]:
    """Newest-first pages of notes for many tickets, in one windowed query per distinct page."""
    return await pages_by_parent(TicketNote, "ticket_id", "TicketNote", keys, newest_first=True)


def notes_key(ticket_id: int, window: Window) -> PageKey:
    """The loader key for a window on a ticket's notes; a bad cursor is INVALID."""
    return page_key("TicketNote", ticket_id, window)


# --- changing a ticket ----------------------------------------------------------------------


async def _own_ticket(viewer: Viewer | None, ticket_id: int) -> tuple[Viewer, Ticket]:
    v = access.writer(viewer)
    ticket = await own_row(Ticket, ticket_id, "Ticket", "ticketId", advocate_id=v.advocate_id)
    return v, ticket


async def _own_item(viewer: Viewer | None, item_id: int) -> tuple[Viewer, ChecklistItem]:
    v = access.writer(viewer)
    item = await own_row(
        ChecklistItem, item_id, "Checklist item", "itemId", ticket__advocate_id=v.advocate_id
    )
    return v, item


async def _lock(ticket_id: int) -> Ticket:
    """The ticket, locked until the transaction ends: checklist changes to one ticket queue up."""
    ticket = await Ticket.filter(id=ticket_id).select_for_update().first()
    if ticket is None:
        raise NotFound("Ticket", "ticketId")
    return ticket


async def _touched(outbox: Outbox, ticket: Ticket, change: TicketChange) -> None:
    await Ticket.filter(id=ticket.id).update(updated_at=outbox.now)
    await _announce(outbox, ticket, [change])


def _item_text(field: str, text: str) -> str:
    return validation.text(field, text, max_length=MAX_ITEM_TEXT)


async def _append_items(outbox: Outbox, ticket: Ticket, texts: list[str], field: str) -> list[ChecklistItem]:
    existing = await ChecklistItem.filter(ticket_id=ticket.id).count()
    if existing + len(texts) > MAX_ITEMS_PER_TICKET:
        raise UserError(
            "TOO_MANY_ITEMS",
            f"A checklist holds at most {MAX_ITEMS_PER_TICKET} items; remove some first.",
            field,
        )
    last = await ChecklistItem.filter(ticket_id=ticket.id).order_by("-position").first()
    start = last.position + 1 if last else 0
    return [
        await ChecklistItem.create(
            ticket_id=ticket.id,
            text=text,
            position=start + offset,
            created_at=outbox.now,
            using_db=outbox.connection,
        )
        for offset, text in enumerate(texts)
    ]


async def add_item(services: Services, viewer: Viewer | None, ticket_id: int, text: str) -> ChecklistItem:
    """Add an item to the end of a ticket's checklist."""
    _, ticket = await _own_ticket(viewer, ticket_id)
    clean = _item_text("text", text)
    async with unit_of_work(services) as outbox:
        locked = await _lock(ticket.id)
        (item,) = await _append_items(outbox, locked, [clean], "ticketId")
        await _touched(outbox, locked, TicketChange.CHECKLIST_CHANGED)
    return item


async def set_done(services: Services, viewer: Viewer | None, item_id: int, done: bool) -> ChecklistItem:
    """Tick or untick an item; doing what is already done changes nothing (and says nothing)."""
    v, item = await _own_item(viewer, item_id)
    async with unit_of_work(services) as outbox:
        changed = await ChecklistItem.filter(id=item.id, done=not done).update(
            done=done,
            done_at=outbox.now if done else None,
            done_by_id=v.user_id if done else None,
        )
        if changed:
            ticket = await Ticket.get(id=item.ticket_id)
            await _touched(outbox, ticket, TicketChange.CHECKLIST_CHANGED)
    found = await ChecklistItem.get_or_none(id=item.id)
    if found is None:
        raise NotFound("Checklist item", "itemId")
    return found


async def remove_item(services: Services, viewer: Viewer | None, item_id: int) -> ChecklistItem:
    """Take an item off its checklist; returns it as it was."""
    _, item = await _own_item(viewer, item_id)
    async with unit_of_work(services) as outbox:
        if not await ChecklistItem.filter(id=item.id).delete():
            raise NotFound("Checklist item", "itemId")
        ticket = await Ticket.get(id=item.ticket_id)
        await _touched(outbox, ticket, TicketChange.CHECKLIST_CHANGED)
    return item


async def reorder_items(
    services: Services, viewer: Viewer | None, ticket_id: int, item_ids: list[int]
) -> Ticket:
    """Put a checklist in the given order; the list must name each of its items exactly once."""
    _, ticket = await _own_ticket(viewer, ticket_id)
    if len(item_ids) > MAX_ITEMS_PER_TICKET:
        raise InvalidInput("itemIds", f"A checklist has at most {MAX_ITEMS_PER_TICKET} items.", "TOO_LONG")
    if len(set(item_ids)) != len(item_ids):
        raise InvalidInput("itemIds", "Name each item once.", "DUPLICATE")
    async with unit_of_work(services) as outbox:
        locked = await _lock(ticket.id)
        current = await ChecklistItem.filter(ticket_id=locked.id).values_list("id", flat=True)
        if {int(i) for i in current} != set(item_ids):  # type: ignore[call-overload]
            raise UserError(
                "ITEMS_MISMATCH",
                "List every item of this checklist exactly once; it may have changed meanwhile.",
                "itemIds",
            )
        for position, item_id in enumerate(item_ids):
            await ChecklistItem.filter(id=item_id, ticket_id=locked.id).update(position=position)
        await _touched(outbox, locked, TicketChange.CHECKLIST_CHANGED)
    return await Ticket.get(id=ticket.id)


def _template_items(items: list[str]) -> list[str]:
    if not items:
        raise InvalidInput("items", "A template needs at least one item.", "REQUIRED")
    if len(items) > MAX_ITEMS_PER_TICKET:
        raise InvalidInput("items", f"A template holds at most {MAX_ITEMS_PER_TICKET} items.", "TOO_LONG")
    return [_item_text("items", text) for text in items]


async def create_template(
    services: Services, viewer: Viewer | None, name: str, items: list[str]
) -> ChecklistTemplate:
    """Keep a named list of checklist items to apply to tickets."""
    v = access.writer(viewer)
    clean_name = validation.text("name", name, max_length=MAX_TEMPLATE_NAME)
    clean_items = _template_items(items)
    async with unit_of_work(services):
        # Serialise per advocate, so the cap holds when two are made at once.
        await Advocate.filter(id=v.advocate_id).select_for_update().first()
        if await ChecklistTemplate.filter(advocate_id=v.advocate_id).count() >= MAX_TEMPLATES:
            raise UserError(
                "TOO_MANY_TEMPLATES", f"Keep at most {MAX_TEMPLATES} templates; delete one first.", "name"
            )
        return await ChecklistTemplate.create(
            advocate_id=v.advocate_id, name=clean_name, items=clean_items, created_at=services.clock.now()
        )


async def delete_template(services: Services, viewer: Viewer | None, template_id: int) -> ChecklistTemplate:
    """Delete a template; checklists made from it stay as they are."""
    v = access.writer(viewer)
    template = await ChecklistTemplate.get_or_none(id=template_id, advocate_id=v.advocate_id)
    if template is None or not await ChecklistTemplate.filter(id=template.id).delete():
        raise NotFound("Checklist template", "templateId")
    return template


async def templates(viewer: Viewer | None) -> list[ChecklistTemplate]:
    return list(await ChecklistTemplate.filter(access.listed(viewer)).order_by("name", "id"))


async def apply_template(
    services: Services, viewer: Viewer | None, ticket_id: int, template_id: int
) -> Ticket:
    """Append a template's items to a ticket's checklist."""
    v, ticket = await _own_ticket(viewer, ticket_id)
    template = await own_row(
        ChecklistTemplate, template_id, "Checklist template", "templateId", advocate_id=v.advocate_id
    )
    async with unit_of_work(services) as outbox:
        locked = await _lock(ticket.id)
        await _append_items(outbox, locked, list(template.items), "templateId")
        await _touched(outbox, locked, TicketChange.CHECKLIST_CHANGED)
    return await Ticket.get(id=ticket.id)


async def add_note(services: Services, viewer: Viewer | None, ticket_id: int, body: str) -> TicketNote:
    """A private note on a ticket: only its advocate ever reads it."""
    v, ticket = await _own_ticket(viewer, ticket_id)
    clean = validation.text("body", body, max_length=MAX_NOTE, multiline=True)
    async with unit_of_work(services) as outbox:
        note = await TicketNote.create(
            ticket_id=ticket.id,
            author_id=v.user_id,
            body=clean,
            created_at=outbox.now,
            using_db=outbox.connection,
        )
        await _touched(outbox, ticket, TicketChange.NOTE_ADDED)
    return note


async def delete_note(services: Services, viewer: Viewer | None, note_id: int) -> TicketNote:
    """Delete one of the advocate's private notes; returns it as it was."""
    v = access.writer(viewer)
    note = await own_row(TicketNote, note_id, "Ticket note", "noteId", ticket__advocate_id=v.advocate_id)
    async with unit_of_work(services) as outbox:
        if not await TicketNote.filter(id=note.id).delete():
            raise NotFound("Ticket note", "noteId")
        ticket = await Ticket.get(id=note.ticket_id)
        await _touched(outbox, ticket, TicketChange.NOTE_DELETED)
    return note


_NOT_RESOLVABLE = {
    TicketStatus.RESOLVED: ("ALREADY_RESOLVED", "This ticket is already resolved."),
    TicketStatus.ACTIVE: (
        "CASE_ACTIVE",
        "You are still supporting this family: end the support relationship first, then resolve.",
    ),
    TicketStatus.NEW: ("REQUEST_OPEN", "Accept or decline this request before resolving it."),
    TicketStatus.WAITING_ON_FAMILY: ("REQUEST_OPEN", "Accept or decline this request before resolving it."),
    TicketStatus.FAMILY_REPLIED: ("REQUEST_OPEN", "Accept or decline this request before resolving it."),
}


def _refuse_resolve(ticket: Ticket) -> UserError:
    code, message = _NOT_RESOLVABLE[ticket.status]
    return UserError(code, message, "ticketId")


async def resolve(
    services: Services, viewer: Viewer | None, ticket_id: int, outcome: TicketOutcome, note: str | None
) -> Ticket:
    """Record how a finished case turned out. Only a closed ticket (request declined, withdrawn or
    expired, or relationship ended) can be resolved, and only once."""
    _, ticket = await _own_ticket(viewer, ticket_id)
    clean = validation.text(
        "note", note or "", max_length=MAX_RESOLUTION_NOTE, required=False, multiline=True
    )
    if not access.may_resolve(viewer, ticket):
        raise _refuse_resolve(ticket)
    async with unit_of_work(services) as outbox:
        moved = await Ticket.filter(id=ticket.id, status=TicketStatus.CLOSED).update(
            status=TicketStatus.RESOLVED,
            outcome=outcome,
            resolution_note=clean,
            resolved_at=outbox.now,
            updated_at=outbox.now,
        )
        if not moved:
            raise _refuse_resolve(await Ticket.get(id=ticket.id))
        await _announce(outbox, ticket, [TicketChange.RESOLVED])
    return await Ticket.get(id=ticket.id)


async def update_targets(
    services: Services,
    viewer: Viewer | None,
    *,
    response_hours: int | None,
    first_message_hours: int | None,
) -> Advocate:
    """Change the advocate's SLA targets for clocks that start from now on; running clocks keep
    the due time they started with."""
    v = account_access.advocate_session(viewer)
    max_response = int(services.policy.request_expiry / timedelta(hours=1))
    changes: dict[str, object] = {}
    if response_hours is not None:
        if not MIN_SLA_HOURS <= response_hours <= max_response:
            raise InvalidInput(
                "responseHours",
                f"Answer within {MIN_SLA_HOURS} to {max_response} hours (requests expire after that).",
                "OUT_OF_RANGE",
            )
        changes["response_sla_hours"] = response_hours
    if first_message_hours is not None:
        if not MIN_SLA_HOURS <= first_message_hours <= MAX_FIRST_MESSAGE_SLA_HOURS:
            raise InvalidInput(
                "firstMessageHours",
                f"Send a first message within {MIN_SLA_HOURS} to {MAX_FIRST_MESSAGE_SLA_HOURS} hours.",
                "OUT_OF_RANGE",
            )
        changes["first_message_sla_hours"] = first_message_hours
    if changes:
        await Advocate.filter(id=v.advocate_id).update(**changes, updated_at=services.clock.now())
    return await Advocate.get(id=v.advocate_id)
