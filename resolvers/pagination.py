"""Keyset pagination: cursors name a row, not an offset, so they stay valid as rows arrive."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
    )
