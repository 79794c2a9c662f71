"""Per-request dataloaders (per event on websockets), over the batch functions in resolvers/."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from models.accounts import User
from models.advocates import Advocate
from models.families import Child, Family
from models.support import Message, SupportRelationship, SupportRequest
from models.tickets import ChecklistItem, SlaClock, Ticket, TicketNote
from resolvers import loaders, messages, relationships, tickets
from resolvers.pagination import Page, PageKey


class Loaders:
    def __init__(self) -> None:
        self.user: DataLoader[int, User | None] = DataLoader(loaders.users_by_id)
        self.family: DataLoader[int, Family | None] = DataLoader(loaders.families_by_id)
        self.family_name: DataLoader[int, str] = DataLoader(loaders.family_names_by_id)
        self.family_by_user: DataLoader[int, Family | None] = DataLoader(loaders.families_by_user_id)
        self.children: DataLoader[int, list[Child]] = DataLoader(loaders.children_by_family_id)
        self.child: DataLoader[int, Child | None] = DataLoader(loaders.children_by_id)
        self.advocate: DataLoader[int, Advocate | None] = DataLoader(loaders.advocates_by_id)
        self.request: DataLoader[int, SupportRequest | None] = DataLoader(loaders.requests_by_id)
        self.relationship: DataLoader[int, SupportRelationship | None] = DataLoader(
            loaders.relationships_by_id
        )
        self.relationship_by_request: DataLoader[int, SupportRelationship | None] = DataLoader(
            loaders.relationships_by_request_id
        )
        self.ticket_by_request: DataLoader[int, Ticket | None] = DataLoader(tickets.tickets_by_request)
        self.sla_clocks: DataLoader[int, list[SlaClock]] = DataLoader(tickets.clocks_by_ticket)
        self.checklist: DataLoader[int, list[ChecklistItem]] = DataLoader(tickets.items_by_ticket)
        self.notes: DataLoader[PageKey, Page[TicketNote]] = DataLoader(tickets.notes_pages)
        self.messages: DataLoader[PageKey, Page[Message]] = DataLoader(messages.pages)
        self.rating: DataLoader[int, tuple[float | None, int]] = DataLoader(relationships.ratings)
