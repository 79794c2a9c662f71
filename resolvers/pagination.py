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
# No cursor this API makes is longer; a longer one is refused before it is decoded.
MAX_CURSOR = 512


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    # How many rows the whole list holds, counted only when a client asks (`totalCount`).
    total: Callable[[], Awaitable[int]] | None = None


def empty_page() -> Page[Any]:
    """A page of nothing, for a list the viewer may not see."""
    return Page([], [], has_next_page=False, has_previous_page=False)


def encode_cursor(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, field: str = "after") -> int:
    if len(cursor) > MAX_CURSOR:
        raise InvalidInput(field, "This cursor is not valid for this list.")
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        prefix, row_id = raw.rsplit(":", 1)
        value = parse_row_id(row_id)
        if prefix != kind or value is None:
            raise ValueError(raw)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(field, "This cursor is not valid for this list.") from exc


def encode_keyset(kind: str, *parts: str) -> str:
    """A cursor naming a position in an order over several columns (values as strings)."""
    raw = json.dumps([kind, *parts], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(kind: str, cursor: str, size: int, field: str = "after") -> list[str]:
    """The `size` values inside a cursor of `kind`; anything else is INVALID for `field`."""
    if len(cursor) > MAX_CURSOR:
        raise InvalidInput(field, "This cursor is not valid for this list.")
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        data = json.loads(raw)
        if not isinstance(data, list) or len(data) != size + 1 or data[0] != kind:
            raise ValueError(raw)
        if not all(isinstance(part, str) for part in data):
            raise ValueError(raw)
        return [str(part) for part in data[1:]]
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(field, "This cursor is not valid for this list.") from exc


@dataclass(frozen=True)
class Window:
    """The part of a list a client asked for, as Relay's connections spell it: `first` items
    (after the `after` cursor), or the `last` items (before the `before` cursor). Either cursor
    may bound either direction; the items always come in the list's own order."""

    size: int
    after: str | None = None
    before: str | None = None
    from_end: bool = False

    def page(
        self, rows: Sequence[M], cursor: Callable[[M], str], total: Callable[[], Awaitable[int]] | None
    ) -> Page[M]:
        """The page from `rows` read in the window's direction, at most `size + 1` of them (the
        extra row only says that more lie beyond)."""
        more = len(rows) > self.size
        shown = list(rows[: self.size])
        if self.from_end:
            shown.reverse()
        return Page(
            items=shown,
            cursors=[cursor(row) for row in shown],
            has_next_page=self.before is not None if self.from_end else more,
            has_previous_page=more if self.from_end else self.after is not None,
            total=total,
        )


def window(
    first: int | None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    *,
    default: int = DEFAULT_PAGE_SIZE,
) -> Window:
    """The window a connection's four arguments ask for. `first` defaults to `default` in the
    schema, so `last` alone takes the place of that default; `first` and `last` both given with
    another `first`, or either out of range, is INVALID."""
    if last is not None:
        if first is not None and first != default:
            raise InvalidInput("last", "Give `first` or `last`, not both.")
        return Window(_size("last", last), after, before, from_end=True)
    return Window(default if first is None else _size("first", first), after, before)


def _size(field: str, value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidInput(field, f"`{field}` must be between 0 and {MAX_PAGE_SIZE}.")
    return value


async def paginate(
    query: QuerySet[M],
    *,
    kind: str,
    window: Window,
    newest_first: bool = True,
) -> Page[M]:
    """One page of `query` ordered by id, within the rows the window's cursors name."""
    filters: dict[str, Any] = {}
    if window.after is not None:
        filters["id__lt" if newest_first else "id__gt"] = decode_cursor(kind, window.after)
    if window.before is not None:
        filters["id__gt" if newest_first else "id__lt"] = decode_cursor(kind, window.before, "before")
    descending = newest_first != window.from_end
    rows = await query.filter(**filters).order_by("-id" if descending else "id").limit(window.size + 1)
    return window.page(rows, lambda row: encode_cursor(kind, row.pk), counter(query))


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
    """One window on a parent's rows (a thread's messages, a ticket's notes), as a loader key,
    with its cursors' row ids read once."""

    parent_id: int
    window: Window
    after_id: int | None
    before_id: int | None


def page_key(kind: str, parent_id: int, window: Window) -> PageKey:
    """The loader key for a window on a parent's rows; a bad cursor is INVALID."""
    return PageKey(
        parent_id,
        window,
        decode_cursor(kind, window.after) if window.after is not None else None,
        decode_cursor(kind, window.before, "before") if window.before is not None else None,
    )


async def pages_by_parent(
    model: type[M],
    parent_column: str,
    kind: str,
    keys: Sequence[PageKey],
    *,
    newest_first: bool,
    only: str = "",
) -> list[Page[M]]:
    """Pages of many parents' rows, ordered by id: one windowed statement per distinct window
    among the keys, so a list of 100 parents costs what a list of 10 does. `only` is a fixed SQL
    condition on the rows listed (never anything a client sent), such as `"hidden_at" IS NULL`."""
    groups: dict[Window, tuple[PageKey, set[int]]] = {}
    for key in keys:
        groups.setdefault(key.window, (key, set()))[1].add(key.parent_id)
    meta = model._meta
    columns = ", ".join(f'"{column}"' for column in meta.fields_db_projection.values())
    found: dict[tuple[Window, int], list[M]] = {}
    for window, (key, parents) in groups.items():
        # Every value spliced in is an integer checked here or taken from the database.
        ids = ",".join(str(int(i)) for i in sorted(parents))
        bounds = f" AND {only}" if only else ""
        if key.after_id is not None:
            bounds += f' AND "id" {"<" if newest_first else ">"} {int(key.after_id)}'
        if key.before_id is not None:
            bounds += f' AND "id" {">" if newest_first else "<"} {int(key.before_id)}'
        order = "DESC" if newest_first != window.from_end else "ASC"
        sql = (
            f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER "
            f'(PARTITION BY "{parent_column}" ORDER BY "id" {order}) AS rn '
            f'FROM "{meta.db_table}" WHERE "{parent_column}" IN ({ids}){bounds}) ranked '
            f'WHERE rn <= {int(window.size) + 1} ORDER BY "{parent_column}", "id" {order}'
        )
        for parent in parents:
            found[(window, parent)] = []
        rows: list[M] = await model.raw(sql)
        for row in rows:
            found[(window, getattr(row, parent_column))].append(row)
    return [
        key.window.page(found[(key.window, key.parent_id)], lambda row: encode_cursor(kind, row.pk), None)
        for key in keys
    ]
