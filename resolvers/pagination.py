"""Keyset pagination: cursors name a row, not an offset, so they stay valid as rows arrive."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from resolvers.errors import InvalidInput
from resolvers.ids import parse_row_id

M = TypeVar("M", bound=Model)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    # How many rows the whole list holds, counted only when a client asks (`totalCount`).
    total: Callable[[], Awaitable[int]] | None = None


def encode_cursor(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        prefix, row_id = raw.rsplit(":", 1)
        value = parse_row_id(row_id)
        if prefix != kind or value is None:
            raise ValueError(raw)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("after", "This cursor is not valid for this list.") from exc


def encode_keyset(kind: str, *parts: str) -> str:
    """A cursor naming a position in an order over several columns (values as strings)."""
    raw = json.dumps([kind, *parts], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(kind: str, cursor: str, size: int) -> list[str]:
    """The `size` values inside a cursor of `kind`; anything else is INVALID."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        data = json.loads(raw)
        if not isinstance(data, list) or len(data) != size + 1 or data[0] != kind:
            raise ValueError(raw)
        if not all(isinstance(part, str) for part in data):
            raise ValueError(raw)
        return [str(part) for part in data[1:]]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("after", "This cursor is not valid for this list.") from exc


def check_first(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise InvalidInput("first", f"`first` must be between 0 and {MAX_PAGE_SIZE}.")
    return first


async def paginate(
    query: QuerySet[M],
    *,
    kind: str,
    first: int | None,
    after: str | None,
    newest_first: bool = True,
) -> Page[M]:
    """One page of `query` ordered by id, after the row `after` names."""
    limit = check_first(first)
    filters: dict[str, Any] = {}
    if after is not None:
        after_id = decode_cursor(kind, after)
        filters["id__lt" if newest_first else "id__gt"] = after_id
    rows = await query.filter(**filters).order_by("-id" if newest_first else "id").limit(limit + 1)
    has_next = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=rows,
        cursors=[encode_cursor(kind, row.pk) for row in rows],
        has_next_page=has_next,
        has_previous_page=after is not None,
        total=counter(query),
    )


def counter(query: QuerySet[M]) -> Callable[[], Awaitable[int]]:
    """The rows `query` holds, counted when called (the same filters as the list, no cursor)."""

    async def count() -> int:
        return await query.count()

    return count


async def counts_by_parent(keys: Sequence[tuple[type[Model], str, int]]) -> list[int]:
    """How many rows each parent has (a thread's messages, a ticket's notes): one grouped statement
    per kind of child, however many parents."""
    groups: dict[tuple[type[Model], str], set[int]] = {}
    for model, column, parent_id in keys:
        groups.setdefault((model, column), set()).add(parent_id)
    found: dict[tuple[type[Model], str, int], int] = {}
    for (model, column), parents in groups.items():
        rows = (
            await model.filter(**{f"{column}__in": sorted(parents)})
            .annotate(n=Count("id"))
            .group_by(column)
            .values(column, "n")
        )
        for row in rows:
            found[(model, column, int(row[column]))] = int(row["n"])
    return [found.get(key, 0) for key in keys]


@dataclass(frozen=True)
class PageKey:
    """One page of a parent's rows (a thread's messages, a ticket's notes), as a loader key."""

    parent_id: int
    first: int
    after_id: int | None


def page_key(kind: str, parent_id: int, first: int | None, after: str | None) -> PageKey:
    """The loader key for a page; a bad `first` or cursor is INVALID."""
    return PageKey(parent_id, check_first(first), decode_cursor(kind, after) if after else None)


async def pages_by_parent(
    model: type[M], parent_column: str, kind: str, keys: Sequence[PageKey], *, newest_first: bool
) -> list[Page[M]]:
    """Pages of many parents' rows, ordered by id: one windowed statement per distinct (first,
    after) among the keys, so a list of 100 parents costs what a list of 10 does."""
    groups: dict[tuple[int, int | None], set[int]] = {}
    for key in keys:
        groups.setdefault((key.first, key.after_id), set()).add(key.parent_id)
    meta = model._meta
    columns = ", ".join(f'"{column}"' for column in meta.fields_db_projection.values())
    order = "DESC" if newest_first else "ASC"
    found: dict[tuple[int, int | None, int], list[M]] = {}
    for (first, after_id), parents in groups.items():
        # Every value spliced in is an integer checked here or taken from the database.
        ids = ",".join(str(int(i)) for i in sorted(parents))
        after = f' AND "id" {"<" if newest_first else ">"} {int(after_id)}' if after_id is not None else ""
        sql = (
            f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER "
            f'(PARTITION BY "{parent_column}" ORDER BY "id" {order}) AS rn '
            f'FROM "{meta.db_table}" WHERE "{parent_column}" IN ({ids}){after}) ranked '
            f'WHERE rn <= {int(first) + 1} ORDER BY "{parent_column}", "id" {order}'
        )
        for parent in parents:
            found[(first, after_id, parent)] = []
        rows: list[M] = await model.raw(sql)
        for row in rows:
            found[(first, after_id, getattr(row, parent_column))].append(row)
    pages: list[Page[M]] = []
    for key in keys:
        window = found[(key.first, key.after_id, key.parent_id)]
        shown = window[: key.first]
        pages.append(
            Page(
                items=shown,
                cursors=[encode_cursor(kind, row.pk) for row in shown],
                has_next_page=len(window) > key.first,
                has_previous_page=key.after_id is not None,
            )
        )
    return pages
