"""Who may see a ticket and what hangs off it: only the advocate who owns it (API tokens need
REQUESTS_READ to read, REQUESTS_WRITE to change). A family never sees a ticket."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import Q

from models.accounts import ApiScope
from models.tickets import ChecklistItem, ChecklistTemplate, Ticket, TicketNote, TicketStatus
from resolvers.access import core
from resolvers.viewer import Viewer


def may_read(viewer: Viewer | None, ticket: Ticket) -> bool:
    """The ticket's own advocate."""
    return core.is_advocate(viewer, ApiScope.REQUESTS_READ, ticket.advocate_id)


def may_resolve(viewer: Viewer | None, ticket: Ticket) -> bool:
    """Record a ticket's outcome: its advocate (API tokens need REQUESTS_WRITE), once the case has
    closed, and only once."""
    return (
        core.is_advocate(viewer, ApiScope.REQUESTS_WRITE, ticket.advocate_id)
        and ticket.status is TicketStatus.CLOSED
    )


def may_read_part(viewer: Viewer | None, part: ChecklistItem | TicketNote) -> bool:
    """A checklist item or a note, to the advocate of its ticket."""
    return may_read(viewer, part.ticket)


def may_read_template(viewer: Viewer | None, template: ChecklistTemplate) -> bool:
    """A checklist template, to the advocate who keeps it."""
    return core.is_advocate(viewer, ApiScope.REQUESTS_READ, template.advocate_id)


async def tickets(viewer: Viewer | None, ids: Sequence[object]) -> list[Ticket | None]:
    return await core.fetch(viewer, Ticket, ids, may_read)


async def items(viewer: Viewer | None, ids: Sequence[object]) -> list[ChecklistItem | None]:
    return await core.fetch(viewer, ChecklistItem, ids, may_read_part, "ticket")


async def notes(viewer: Viewer | None, ids: Sequence[object]) -> list[TicketNote | None]:
    return await core.fetch(viewer, TicketNote, ids, may_read_part, "ticket")


async def templates(viewer: Viewer | None, ids: Sequence[object]) -> list[ChecklistTemplate | None]:
    return await core.fetch(viewer, ChecklistTemplate, ids, may_read_template)


def listed(viewer: Viewer | None) -> Q:
    """The tickets (or templates) an advocate's own lists hold; FORBIDDEN for anyone else or without
    REQUESTS_READ. `may_read`, as a filter."""
    return Q(advocate_id=reader(viewer).advocate_id)


def reader(viewer: Viewer | None) -> Viewer:
    """An advocate reading its own queue, templates and live feed."""
    return core.acting_advocate(viewer, ApiScope.REQUESTS_READ)


def writer(viewer: Viewer | None) -> Viewer:
    """An advocate working its own tickets and templates."""
    return core.acting_advocate(viewer, ApiScope.REQUESTS_WRITE)
