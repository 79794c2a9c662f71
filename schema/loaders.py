"""Per-request dataloaders (per event on websockets), over the batch functions in resolvers/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from models.accounts import User
from models.advocates import Advocate
from models.documents import Document
from models.families import Child, Family
from models.support import Message, SupportRelationship, SupportRequest, Thread
from models.tickets import SlaClock, Ticket, TicketNote
from models.vault import Review
from resolvers import documents, loaders, messages, relationships, tickets
from resolvers.pagination import Page, PageKey, counts_by_parent
from resolvers.services import Services
from resolvers.viewer import Viewer

K = TypeVar("K")
V = TypeVar("V")


class Loaders:
    """The request's dataloaders, each made on first use (most requests use two or three)."""

    @cached_property
    def user(self) -> DataLoader[int, User | None]:
        return DataLoader(loaders.users_by_id)

    @cached_property
    def family(self) -> DataLoader[int, Family | None]:
        return DataLoader(loaders.families_by_id)

    @cached_property
    def family_name(self) -> DataLoader[int, str]:
        return DataLoader(loaders.family_names_by_id)

    @cached_property
    def family_by_user(self) -> DataLoader[int, Family | None]:
        return DataLoader(loaders.families_by_user_id)

    @cached_property
    def children(self) -> DataLoader[int, list[Child]]:
        return DataLoader(loaders.children_by_family_id)

    @cached_property
    def child(self) -> DataLoader[int, Child | None]:
        return DataLoader(loaders.children_by_id)

    @cached_property
    def advocate(self) -> DataLoader[int, Advocate | None]:
        return DataLoader(loaders.advocates_by_id)

    @cached_property
    def request(self) -> DataLoader[int, SupportRequest | None]:
        return DataLoader(loaders.requests_by_id)

    @cached_property
    def relationship(self) -> DataLoader[int, SupportRelationship | None]:
        return DataLoader(loaders.relationships_by_id)

    @cached_property
    def relationship_by_request(self) -> DataLoader[int, SupportRelationship | None]:
        return DataLoader(loaders.relationships_by_request_id)

    @cached_property
    def thread(self) -> DataLoader[int, Thread | None]:
        return DataLoader(loaders.threads_by_id)

    @cached_property
    def ticket_by_request(self) -> DataLoader[int, Ticket | None]:
        return DataLoader(tickets.tickets_by_request)

    @cached_property
    def sla_clocks(self) -> DataLoader[int, list[SlaClock]]:
        return DataLoader(tickets.clocks_by_ticket)

    @cached_property
    def checklist(self) -> DataLoader[int, list[tickets.ChecklistRow]]:
        return DataLoader(tickets.items_by_ticket)

    @cached_property
    def notes(self) -> DataLoader[PageKey, Page[TicketNote]]:
        return DataLoader(tickets.notes_pages)

    @cached_property
    def messages(self) -> DataLoader[PageKey, Page[Message]]:
        return DataLoader(messages.pages)

    @cached_property
    def counts(self) -> DataLoader[tuple[type[Model], str, int], int]:
        """How many rows a parent has, by (model, parent column, parent id)."""
        return DataLoader(counts_by_parent)

    @cached_property
    def rating(self) -> DataLoader[int, tuple[float | None, int]]:
        return DataLoader(relationships.ratings)

    @cached_property
    def reviews(self) -> DataLoader[PageKey, Page[Review]]:
        return DataLoader(relationships.review_pages)

    def download_paths(self, services: Services, viewer: Viewer | None) -> DataLoader[Document, str | None]:
        """Signed download paths of the documents a request lists, issued (and, to an advocate,
        logged) together: `viewer` is fixed for the loaders' life, as for `documents`."""

        async def load(keys: list[Document]) -> list[str | None]:
            return await documents.download_paths(services, viewer, keys)

        return self._made_once("_download_paths", load, cache=False)

    def documents(
        self, services: Services, viewer: Viewer | None
    ) -> DataLoader[documents.EvidenceDocuments, Page[Document] | None]:
        """Pages of evidence items' documents as this request's viewer may read them (`viewer` is
        fixed for the loaders' life: a request, or one event on a websocket)."""

        async def load(keys: list[documents.EvidenceDocuments]) -> list[Page[Document] | None]:
            return await documents.document_pages(services, viewer, keys)

        return self._made_once("_documents", load)

    def _made_once(
        self, name: str, load: Callable[[list[K]], Awaitable[list[V]]], *, cache: bool = True
    ) -> DataLoader[K, V]:
        """The loader kept under `name`, made from `load` on first use (a loader whose batch
        function needs the request's services and viewer, which `cached_property` cannot take)."""
        loader: DataLoader[K, V] | None = self.__dict__.get(name)
        if loader is None:
            loader = self.__dict__[name] = DataLoader(load, cache=cache)
        return loader
