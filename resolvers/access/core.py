"""The parts every access rule is made of: the viewer's role and token scopes, a row's parties,
and deciding for many rows at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.accounts import ApiScope, Role
from resolvers.errors import Forbidden, NotFound, Unauthenticated
from resolvers.ids import parse_row_id
from resolvers.viewer import Viewer

M = TypeVar("M", bound=Model)
Rule = Callable[[Viewer | None, M], bool]


def require_viewer(viewer: Viewer | None) -> Viewer:
    """The viewer, or UNAUTHENTICATED."""
    if viewer is None:
        raise Unauthenticated()
    return viewer


def require(
    viewer: Viewer | None,
    *,
    roles: Iterable[Role] | None = None,
    scope: ApiScope | None = None,
    session_only: bool = False,
) -> Viewer:
    """The viewer if its role, token scope and kind allow the action; otherwise the top-level error."""
    v = require_viewer(viewer)
    if roles is not None and v.role not in set(roles):
        raise Forbidden()
    if session_only and v.is_api_token:
        raise Forbidden("API tokens cannot do this; sign in instead.")
    if scope is not None and not v.has_scope(scope):
        raise Forbidden(f"This API token lacks the {scope.value} scope.")
    return v


def holds(viewer: Viewer | None, scope: ApiScope) -> bool:
    """A signed-in viewer whose credential carries `scope` (sessions carry every scope)."""
    return viewer is not None and viewer.has_scope(scope)


def _same(mine: int | None, theirs: int | None) -> bool:
    return mine is not None and mine == theirs


def is_family(viewer: Viewer | None, scope: ApiScope, family_id: int | None) -> bool:
    """The family `family_id` itself, with `scope`."""
    return viewer is not None and holds(viewer, scope) and _same(viewer.family_id, family_id)


def is_advocate(viewer: Viewer | None, scope: ApiScope, advocate_id: int | None) -> bool:
    """The advocate `advocate_id` itself, with `scope`."""
    return viewer is not None and holds(viewer, scope) and _same(viewer.advocate_id, advocate_id)


def acting_family(viewer: Viewer | None, scope: ApiScope) -> Viewer:
    """A family acting on its own rows, with `scope`; otherwise the top-level error."""
    v = require(viewer, roles=[Role.FAMILY], scope=scope)
    assert v.family_id is not None
    return v


def acting_advocate(viewer: Viewer | None, scope: ApiScope | None, *, session_only: bool = False) -> Viewer:
    """An advocate acting on its own rows, with `scope` (or signed in); otherwise the top-level error."""
    v = require(viewer, roles=[Role.ADVOCATE], scope=scope, session_only=session_only)
    assert v.advocate_id is not None
    return v


def is_party(viewer: Viewer | None, scope: ApiScope, family_id: int, advocate_id: int) -> bool:
    """The family or the advocate a row is between, with `scope`."""
    return is_family(viewer, scope, family_id) or is_advocate(viewer, scope, advocate_id)


def keep(viewer: Viewer | None, rows: Iterable[M], rule: Rule[M]) -> list[M]:
    """The rows `rule` lets the viewer see, in their order."""
    return [row for row in rows if rule(viewer, row)]


def row_id(raw: object) -> int | None:
    """A row id from a client (a node id), or None when it cannot name a row."""
    return parse_row_id(raw)


async def fetch(
    viewer: Viewer | None, model: type[M], ids: Sequence[object], rule: Rule[M], *related: str
) -> list[M | None]:
    """The rows with these ids in one query, each in its place, or None where absent or not the
    viewer's to see (the two look the same)."""
    return await fetch_each(model, [(viewer, raw) for raw in ids], rule, *related)


async def fetch_each(
    model: type[M], wanted: Sequence[tuple[Viewer | None, object]], rule: Rule[M], *related: str
) -> list[M | None]:
    """`fetch` for many viewers at once (live events reaching many subscribers): every row in one
    query, each in its place for the viewer that asked, or None where `rule` does not let that viewer
    see it."""
    ids = [row_id(raw) for _, raw in wanted]
    found: dict[int, M] = {}
    if any(i is not None for i in ids):
        found = {
            row.pk: row for row in await _by_ids(model, sorted({i for i in ids if i is not None}), related)
        }
    rows = [found.get(i) if i is not None else None for i in ids]
    return [
        row if row is not None and rule(viewer, row) else None
        for row, (viewer, _) in zip(rows, wanted, strict=True)
    ]


# Statements `_by_ids` had tortoise build, by model, joined relations, number of ids and client class.
_statements: dict[tuple[type[Model], tuple[str, ...], int, type[BaseDBAsyncClient]], tuple[str, Any]] = {}
# Past this many ids a statement is built each time, as tortoise does (a page is 100 rows at most).
_MOST_IDS_CACHED = 512


async def _by_ids(model: type[M], ids: list[int], related: tuple[str, ...]) -> list[M]:
    """`model.filter(id__in=ids).select_related(*related)`, without tortoise building the statement
    each time (80 µs of CPU a query, 600 µs with a join: the largest part of loading a row by id).
    The statement is tortoise's own, kept for the next query of as many ids; the ids are padded with
    the last one up to a power of two (`IN (4, 7, 7, 7)` reads the same rows), so that a model has a
    handful of statements, not one per count. Rows are made by tortoise's executor, as `await query`
    makes them."""
    db = model._choose_db()  # as the query would: the transaction's connection inside one
    size = 1 << (len(ids) - 1).bit_length()
    if size > _MOST_IDS_CACHED:
        return list(await _query(model, ids, related, db))
    padded = ids + [ids[-1]] * (size - len(ids))
    key = (model, related, size, type(db))
    statement = _statements.get(key)
    if statement is None:
        query = _query(model, padded, related, db)
        sql = query.sql()
        _, values = query.query.get_parameterized_sql()
        if list(values) != padded:
            # Parameters besides the ids (none of our models has any): not kept.
            return list(await query)
        statement = _statements[key] = (sql, query._select_related_idx)
    sql, joined = statement[0], cast(Any, statement[1])  # tortoise's own list of joins
    executor = db.executor_class(model=model, db=db, select_related_idx=joined)
    return cast(list[M], await executor.execute_select(sql, padded))


def _query(model: type[M], ids: list[int], related: tuple[str, ...], db: BaseDBAsyncClient) -> QuerySet[M]:
    query = model.filter(id__in=ids).using_db(db)
    return query.select_related(*related) if related else query


async def own_row(model: type[M], wanted: int, what: str, field: str, **owner: int | None) -> M:
    """A row the acting family or advocate is changing, if it is theirs (`owner`: the column that
    names them and their id); NOT_FOUND otherwise, the same as for a row that does not exist."""
    row = await model.filter(id=wanted, **owner).first()
    if row is None:
        raise NotFound(what, field)
    return row
