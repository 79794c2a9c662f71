"""Relay conventions: global IDs in and out, keyset connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.types.info import Info
from strawberry.types.nodes import SelectedField, Selection
from tortoise.models import Model

from resolvers.errors import NotFound
from resolvers.ids import parse_row_id
from resolvers.pagination import DEFAULT_PAGE_SIZE, Page, Window, window
from resolvers.viewer import Viewer

N = TypeVar("N", bound=relay.Node)
M = TypeVar("M", bound=Model)


def decode_id(global_id: relay.GlobalID, type_name: str, field: str) -> int:
    """The row id inside a global ID of `type_name`; anything else is NOT_FOUND for `field`."""
    row_id = id_of(global_id, type_name)
    if row_id is None:
        raise NotFound(type_name, field)
    return row_id


def id_of(global_id: relay.GlobalID | None, type_name: str) -> int | None:
    """The row id inside a global ID of `type_name`, or None when it cannot name such a row."""
    if global_id is None or global_id.type_name != type_name:
        return None
    return parse_row_id(global_id.node_id)


def encode_id(type_name: str, row_id: int) -> relay.GlobalID:
    return relay.GlobalID(type_name, str(row_id))


@strawberry.type
class TotalCount:
    """`totalCount` on a connection: how many items the whole list holds, counted only when asked."""

    _total: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    @strawberry.field(description="How many items the whole list holds, across every page.")
    async def total_count(self) -> int:
        if self._total is None:
            return len(getattr(self, "edges", []))
        return await self._total()


def to_connection(
    connection_type: type[relay.Connection[N]],
    page: Page[M],
    convert: Callable[[M], N],
    total: Callable[[], Awaitable[int]] | None = None,
) -> relay.Connection[N]:
    edges: list[relay.Edge[N]] = [
        relay.Edge(cursor=cursor, node=convert(item))
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return connection_type(
        _total=total or page.total,  # type: ignore[call-arg]
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    )


async def nodes(
    viewer: Viewer | None,
    node_ids: Any,
    fetch: Callable[[Viewer | None, Sequence[object]], Awaitable[list[M | None]]],
    convert: Callable[[M], N],
) -> list[N | None]:
    """`resolve_nodes` for one type: the rows its domain's access rule lets the viewer see, fetched
    in one query, each converted, None in the place of any other id."""
    rows = await fetch(viewer, list(node_ids))
    return [convert(row) if row is not None else None for row in rows]


def node_fields(info: Info) -> dict[str, list[SelectedField]]:
    """The fields a connection's caller selected on its nodes (under `edges { node }` and
    `nodes`), fragments included, by name: what a list resolver may fetch with the page."""
    node_level: list[SelectedField] = []
    for field in info.selected_fields:
        for child in _flatten(field.selections):
            if child.name == "nodes":
                node_level.append(child)
            elif child.name == "edges":
                node_level.extend(f for f in _flatten(child.selections) if f.name == "node")
    return selected_under(node_level)


def window_of(field: SelectedField, default: int = DEFAULT_PAGE_SIZE) -> Window:
    """The window a selected connection field asks for, read from its arguments as they stand in
    the operation (a list resolver prefetching its rows' pages); bad values are INVALID."""
    args = field.arguments

    def size(name: str) -> int | None:
        value = args.get(name)
        # strawberry leaves a literal as its source text; validation has passed, so it is an Int.
        return int(value) if isinstance(value, str) else value

    after, before = args.get("after"), args.get("before")
    return window(size("first"), after, size("last"), before, default=default)


def selected_under(fields: Sequence[SelectedField]) -> dict[str, list[SelectedField]]:
    """The fields selected under these (the same field, perhaps asked in several fragments), by name."""
    found: dict[str, list[SelectedField]] = {}
    for field in fields:
        for f in _flatten(field.selections):
            found.setdefault(f.name, []).append(f)
    return found


def _flatten(selections: Sequence[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _flatten(selection.selections)
